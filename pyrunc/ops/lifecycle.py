"""`start`, `state`, `kill`, `delete`: the OCI lifecycle after create.

Each verb loads the container's record (store.Store.load_record), derives
its status from the kernel (store.Store.status) and asks status.require;
signals go through a pidfd after a start-time check, so a reused pid is
never signalled.
Imports: errors, faults, log, record, status, store, ops.common, linux.{proc, signals, cgroups}.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log, status as status_rules, store as store_mod
from pyrunc.errors import ContainerNotFound, PyruncError, UsageError
from pyrunc.ops.common import one_id, store_for
from pyrunc.record import ContainerRecord
from pyrunc.store import CREATED, CREATING, PAUSED, RUNNING, STOPPED, CorruptState, Store


def cmd_start(parsed) -> int:
    container_id = one_id(parsed)
    start_container(store_for(parsed), container_id)
    return 0


def start_container(st: Store, container_id: str) -> None:
    with st.lock(container_id):
        record = st.load_record(container_id)
        status_rules.require("start", container_id, st.status(record))
        fifo = st.path(container_id, store_mod.FIFO_FILE)
        if not os.access(st.path(container_id), os.W_OK):
            raise PyruncError(f"{container_id}: cannot start the container: its state directory cannot be changed "
                              f"({st.path(container_id)} is not writable)")
        status_fd = _open_start_status(st, container_id)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            # ENXIO: no reader, so the init is gone since the status said created.
            if status_fd >= 0:
                os.close(status_fd)
            status_rules.require("start", container_id, STOPPED)
            raise
        start_container_hooks = _hooks_of(record, "startContainer")
        if start_container_hooks:
            from pyrunc import hooks
            from pyrunc.ops.exec import run_start_container_hooks

            try:
                run_start_container_hooks(st, record, start_container_hooks)
            except (hooks.HookError, PyruncError) as err:
                # runtime.md step 7: an error, and the container is stopped.
                os.close(fd)
                if status_fd >= 0:
                    os.close(status_fd)
                _kill_and_wait(record)
                raise PyruncError(f"container {container_id}: {err}") from None
        # The byte first, then the fifo's removal: a start killed in between
        # leaves a running container whose fifo has no reader (status says
        # running); one killed before the byte leaves it created, its init
        # still waiting (it holds the fifo open for writing too, so a writer
        # that leaves without a byte does not end its wait): start again.
        from pyrunc import faults  # not at the top: `state` and `kill` need none

        try:
            faults.point("start:before-fifo-write")
            os.write(fd, b"0")
            faults.point("start:after-fifo-write")
        finally:
            os.close(fd)
        try:
            os.unlink(fifo)
        except OSError as err:
            log.warning(f"{container_id}: remove {fifo}: {err.strerror.lower()}")
        if status_fd >= 0:
            _wait_for_exec(record, status_fd)
        poststart = _hooks_of(record, "poststart")
        if poststart:
            from pyrunc import hooks

            # spec 1.2: a failing poststart hook is a warning; the container runs on.
            hooks.run_hooks_warning_only("poststart", poststart, _public_hook_state(record, RUNNING), log.warning,
                                         record.bundle)


def _open_start_status(st: Store, container_id: str) -> int:
    """start.fifo, made by create when there are poststart hooks (else -1)."""
    try:
        return os.open(st.path(container_id, store_mod.START_STATUS_FILE), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1


def _wait_for_exec(record: ContainerRecord, status_fd: int) -> None:
    """After the start byte, the init (the stub) execs the program: EOF on
    start.fifo (its end closed by that execve) means the program runs; the
    init dying first is an error. Every wait ends: EOF or the pidfd."""
    import select

    container_id = record.id
    try:
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        pidfd = -1
    try:
        poller = select.poll()
        poller.register(status_fd, select.POLLIN)
        if pidfd >= 0:
            poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if status_fd in events:
                data = os.read(status_fd, 4096)
                if data:
                    raise PyruncError(f"container {container_id}: {data.decode(errors='replace').strip()}")
                return  # EOF: every writer is gone, the init has exec'd
            if pidfd in events:
                data = b""
                try:
                    data = os.read(status_fd, 4096)
                except BlockingIOError:
                    pass
                reason = data.decode(errors="replace").strip() or "the init exited before running the program"
                raise PyruncError(f"container {container_id}: {reason}")
    finally:
        os.close(status_fd)
        if pidfd >= 0:
            os.close(pidfd)


def cmd_state(parsed) -> str:
    from pyrunc import jsonlite

    container_id = one_id(parsed)
    return jsonlite.dumps(container_state(store_for(parsed), container_id), indent=2) + "\n"


def container_state(st: Store, container_id: str) -> dict:
    """The state JSON `state` prints (see public_state)."""
    return public_state(st, st.load_record(container_id))


def public_state(st: Store, record: ContainerRecord, owner: str = "") -> dict:
    """The state JSON runc prints: OCI fields plus rootfs, created, owner."""
    status = st.status(record)
    if status == CREATING:
        return {"ociVersion": record.oci_version, "id": record.id, "pid": 0, "status": CREATING,
                "bundle": record.bundle, "rootfs": "", "created": "", "owner": owner}
    out = {
        "ociVersion": record.oci_version,
        "id": record.id,
        "pid": 0 if status == STOPPED else record.pid,
        "status": status,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
    }
    if record.annotations:
        out["annotations"] = record.annotations
    out["owner"] = owner
    return out


def cmd_kill(parsed) -> int:
    from pyrunc.linux.signals import parse_signal

    container_id = one_id(parsed, extra_ok=1)
    raw = parsed.args[1] if len(parsed.args) > 1 else "SIGTERM"
    try:
        signal_number = parse_signal(raw)
    except ValueError as err:
        raise UsageError(str(err)) from None
    kill_container(store_for(parsed), container_id, signal_number, all_processes=bool(parsed.options.get("all")))
    return 0


def kill_container(st: Store, container_id: str, signal_number: int, all_processes: bool = False) -> None:
    """Signal the init (or, with all_processes, every process in the cgroup)."""
    record = st.load_record(container_id)
    status = st.status(record)
    status_rules.require("kill --all" if all_processes else "kill", container_id, status)
    if all_processes:
        # As runc: --all signals whatever is left in the cgroup, also after
        # the init has exited (containerd's shim runs `kill --all ID 9` then,
        # for containers without a pid namespace of their own), and is not an
        # error when nothing is left.
        if _cgroups(record).paths or status not in (CREATED, RUNNING, PAUSED):
            signal_all(record, signal_number)
        else:
            # Rootless without a cgroup: the init is all pyrunc can find (in
            # a pid namespace of its own, its death ends the rest).
            send_signal(record, signal_number)
        return
    send_signal(record, signal_number)
    if status == PAUSED and signal_number == 9:
        # A frozen process dies only once thawed (runc thaws for SIGKILL too).
        _thaw(record)


def _cgroups(record: ContainerRecord):
    """The container's cgroup manager (the driver its create chose)."""
    from pyrunc.linux.cgroups import manager

    return manager.from_state(record.cgroups)


def _thaw(record: ContainerRecord) -> None:
    try:
        _cgroups(record).thaw()
    except (PyruncError, OSError) as err:
        log.warning(f"{record.id}: thaw: {err}")


def signal_all(record: ContainerRecord, signal_number: int) -> None:
    """runc's signalAllProcesses: freeze the cgroup (nothing forks meanwhile),
    signal every process in it, thaw it (so a SIGKILL takes effect also in a
    paused container; as with runc, the container is not paused afterwards)."""
    cgroups = _cgroups(record)
    try:
        cgroups.freeze(timeout=1.0)
    except (PyruncError, OSError):
        pass  # no freezer, or the cgroup is gone: signal anyway
    try:
        cgroups.kill_all(signal_number, wait=0)
    finally:
        _thaw(record)


def send_signal(record: ContainerRecord, signal_number: int) -> None:
    """Signal the init, making sure first that its pid was not reused; an
    init gone since its status was read is refused as a stopped one."""
    import _signal

    from pyrunc.linux import proc

    try:
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        pidfd = -1
    try:
        # The pidfd pins the process: if the start time still matches now,
        # the signal cannot reach a stranger that reused the pid.
        if pidfd >= 0 and proc.is_alive(record.pid, record.start_time):
            try:
                _signal.pidfd_send_signal(pidfd, signal_number)
                return
            except ProcessLookupError:
                pass
        status_rules.require("kill", record.id, STOPPED)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def cmd_delete(parsed) -> int:
    container_id = one_id(parsed)
    delete_container(store_for(parsed), container_id, force=bool(parsed.options.get("force")))
    return 0


def delete_container(st: Store, container_id: str, force: bool = False) -> None:
    store_mod.validate_id(container_id)
    if not st.exists(container_id):
        if force:
            return
        raise ContainerNotFound(container_id)
    try:
        lock = st.lock(container_id)
    except ContainerNotFound:
        if force:
            return
        raise
    with lock:
        try:
            record = st.load_record(container_id)
        except ContainerNotFound:
            # A directory without state.json: a create that died half-way.
            _check_removable(st, container_id)
            st.remove(container_id)
            if force:
                return
            raise
        except CorruptState:
            if not force:
                raise
            _check_removable(st, container_id)
            from pyrunc.ops.salvage import destroy_corrupt

            destroy_corrupt(st, container_id)
            return
        # Nothing is killed that could not be removed afterwards.
        _check_removable(st, container_id)
        if record.creating:
            # We hold its lock, so its create was killed half-way: remove
            # what it made (the partial state names the cgroups; killing
            # their processes ends an init it left waiting).
            destroy_container(st, record)
            return
        status = st.status(record)
        status_rules.require("delete --force" if force else "delete", container_id, status)
        from pyrunc import faults

        faults.point("delete:before-kill")
        if status != STOPPED:
            # created (as runc: no --force needed), or running with --force.
            _kill_and_wait(record, thaw=status == PAUSED)
        faults.point("delete:after-kill")
        destroy_container(st, record)


def _check_removable(st: Store, container_id: str) -> None:
    for path in (st.root, st.path(container_id)):
        if not os.access(path, os.W_OK):
            raise PyruncError(f"{container_id}: cannot remove the container: its state directory cannot be "
                              f"changed ({path} is not writable)")


def _kill_and_wait(record: ContainerRecord, timeout: float = 10.0, thaw: bool = False) -> None:
    import _signal
    import select

    from pyrunc.linux import proc

    pid = record.pid
    if pid <= 0:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not proc.is_alive(pid, record.start_time):
            return
        try:
            _signal.pidfd_send_signal(pidfd, 9)
        except ProcessLookupError:
            return
        if thaw:
            _thaw(record)  # a frozen init cannot die
        # A pidfd polls readable once the process has exited: no sleep loop.
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            raise PyruncError(f"{record.id}: container init did not die within {timeout:.0f}s of SIGKILL")
    finally:
        os.close(pidfd)


def _hooks_of(record: ContainerRecord, kind: str) -> list:
    raw = record.hooks.get(kind)
    if not raw:
        return []  # the common case: spares start and delete the model's import
    from pyrunc.spec.model import Hook

    return [Hook(h) for h in raw]


def _public_hook_state(record: ContainerRecord, status: str) -> dict:
    from pyrunc import hooks

    return hooks.state_document(record.oci_version, record.id, status, record.pid if status != STOPPED else 0,
                                record.bundle, record.annotations)


def destroy_container(st: Store, record: ContainerRecord) -> None:
    """Remove what `create` made: leftover processes, cgroups, the state dir;
    then run the poststop hooks (failures are warnings, as the spec says)."""
    cgroups = _cgroups(record)
    # Without a pid namespace of its own, the container's processes outlive
    # its init (as in runc, only then are they killed: with a pid namespace
    # the kernel already did, and a shared cgroup must not lose its others).
    if record.shared_pid_namespace:
        cgroups.kill_all()
    for problem in cgroups.destroy():
        log.warning(f"{record.id}: {problem}")
    from pyrunc import faults

    faults.point("delete:after-cgroup-removal")
    faults.point("delete:before-state-removal")
    st.remove(record.id)
    poststop = _hooks_of(record, "poststop")
    if poststop:
        from pyrunc import hooks

        hooks.run_hooks_warning_only("poststop", poststop, _public_hook_state(record, STOPPED), log.warning,
                                     record.bundle)
