"""The OCI lifecycle: create, start, state, kill, delete, plus run, list, check.

Each `cmd_*` takes the parsed command line and returns what the CLI prints
(a str) or an exit code. Status rules and error wording follow runc where
engines match on the text ("container does not exist", "container not
running"). Everything `create` makes is registered on an undo stack, so a
failure at any step leaves nothing behind.
Imports: errors, log, store, spec.*, launcher, init.context, linux.*.
"""

from __future__ import annotations

import os
import time

from pyrunc import log, store as store_mod
from pyrunc.errors import ConfigError, ContainerError, ContainerNotFound, InvalidStatus, PyruncError, UsageError
from pyrunc.store import CREATED, CREATING, PAUSED, RUNNING, STOPPED, Store


# ---------------------------------------------------------------- helpers

def _store(parsed) -> Store:
    return Store(parsed.globals["root"])


def _one_id(parsed, extra_ok: int = 0) -> str:
    args = parsed.args
    name = parsed.command.name
    if not args:
        raise UsageError(f"{name}: requires a container id; see `pyrunc {name} --help`")
    if len(args) > 1 + extra_ok:
        raise UsageError(f"{name}: unexpected arguments after the container id: {' '.join(args[1 + extra_ok:])}")
    return args[0]


def load_config(bundle: str | None):
    """Read, validate and model a bundle's config.json (no side effects)."""
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.spec import check, load, model

    bundle_dir = load.resolve_bundle(bundle)
    doc = load.read_config(bundle_dir)
    problems = validate_config(doc)
    if problems:
        raise ConfigError(problems)
    for path, message in check.warnings(doc, read_cap_last_cap()):
        log.warning(f"config.json: {path}: {message}" if path else f"config.json: {message}")
    return model.Config(doc, bundle_dir)


def validate_config(doc: dict) -> list[tuple[str, str]]:
    """Schema problems first; the semantic checks need a schema-valid document."""
    from pyrunc.spec import check, schema

    problems = schema.validate(doc)
    log.phase("schema validation")
    if problems:
        return problems
    return check.check(doc)


# ---------------------------------------------------------------- create

class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring", "preserve_fds",
                 "wait_for_init")

    def __init__(self, opts: dict, wait_for_init: bool = False):
        self.bundle = opts.get("bundle")
        self.pid_file = opts.get("pid_file")
        self.console_socket = opts.get("console_socket")
        self.no_pivot = bool(opts.get("no_pivot"))
        self.no_new_keyring = bool(opts.get("no_new_keyring"))
        self.preserve_fds = int(opts.get("preserve_fds") or 0)
        self.wait_for_init = wait_for_init


def cmd_create(parsed) -> int:
    container_id = _one_id(parsed)
    create_container(_store(parsed), container_id, CreateOptions(parsed.options))
    return 0


def create_container(st: Store, container_id: str, opts: CreateOptions):
    """Create the container and leave its init waiting for `start`.

    Returns the Launched record (init pid, its pidfd). On failure everything
    made so far is undone and the error propagates.
    """
    log.phase("interpreter and imports")
    store_mod.validate_id(container_id)
    if st.exists(container_id):
        from pyrunc.errors import ContainerExists

        raise ContainerExists(container_id)
    cfg = load_config(opts.bundle)
    log.phase("config loaded and validated")
    _check_terminal(cfg, opts)
    listen_fds = _listen_fds()
    preserve = opts.preserve_fds + listen_fds

    import contextlib

    from pyrunc.init.context import InitContext
    from pyrunc.launcher import launch
    from pyrunc.linux import cgroups
    from pyrunc.linux.cgroups.fs import CgroupDirs

    with contextlib.ExitStack() as undo:
        lock = st.create(container_id)
        undo.callback(st.remove, container_id)
        undo.callback(lock.close)
        layout = cgroups.detect_layout()
        cgroup_dirs = CgroupDirs(cgroups.resolve_paths(layout, cfg.linux.cgroups_path, container_id))
        cgroups.refuse_shared_cgroup(layout, cgroup_dirs.paths)
        undo.callback(_destroy_cgroups, cgroup_dirs)
        cgroup_dirs.create()
        log.phase("state dir and cgroups")
        fifo_path = st.path(container_id, store_mod.FIFO_FILE)
        os.mkfifo(fifo_path, 0o600)
        fifo_fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        ctx = InitContext(container_id, cfg, None, fifo_fd, cgroup_dirs, layout, no_pivot=opts.no_pivot,
                          no_new_keyring=opts.no_new_keyring, preserve_fds=preserve,
                          wait_for_init=opts.wait_for_init)
        launched = launch(ctx, undo, close_in_child=(lock.fd,))
        state = {
            "ociVersion": cfg.oci_version,
            "id": container_id,
            "pid": launched.init_pid,
            "bundle": cfg.bundle,
            "rootfs": cfg.root_path,
            "created": store_mod.rfc3339_nano(time.time_ns()),
            "annotations": cfg.annotations,
            "startTime": launched.start_time,
            "cgroups": cgroup_dirs.to_state(),
            "sharedPidNamespace": _shares_pid_namespace(cfg),
            "hooks": {k: [h.to_dict() for h in v] for k, v in cfg.hooks.items() if v},
        }
        st.save(container_id, state)
        if opts.pid_file:
            store_mod.write_atomic(os.path.abspath(opts.pid_file), str(launched.init_pid).encode(), 0o644)
        log.phase("state saved")
        undo.pop_all()
    lock.close()
    return launched


def _check_terminal(cfg, opts: CreateOptions) -> None:
    if cfg.process is not None and cfg.process.terminal:
        if not opts.console_socket:
            raise PyruncError("process.terminal is true, so --console-socket is required")
        raise PyruncError("process.terminal: terminals are not supported yet")
    if opts.console_socket:
        raise PyruncError("--console-socket given, but process.terminal is false in config.json")


def _listen_fds() -> int:
    """Socket activation: LISTEN_FDS fds after stdio are passed on too."""
    value = os.environ.get("LISTEN_FDS", "")
    if value.isdigit() and os.environ.get("LISTEN_PID", str(os.getpid())) == str(os.getpid()):
        return int(value)
    return 0


def _shares_pid_namespace(cfg) -> bool:
    ns = cfg.linux.namespace("pid")
    return ns is None or bool(ns.path)


def _destroy_cgroups(cgroup_dirs) -> None:
    # Only directories this create made: any process in them is ours.
    if cgroup_dirs.created:
        cgroup_dirs.kill_all()
    for problem in cgroup_dirs.destroy():
        log.warning(problem)


# ---------------------------------------------------------------- start

def cmd_start(parsed) -> int:
    container_id = _one_id(parsed)
    start_container(_store(parsed), container_id)
    return 0


def start_container(st: Store, container_id: str) -> None:
    with st.lock(container_id):
        state = st.load(container_id)
        status = st.status(state)
        if status == STOPPED:
            raise InvalidStatus(container_id, "cannot start a container that has stopped")
        if status in (RUNNING, PAUSED):
            raise InvalidStatus(container_id, "cannot start an already running container")
        if status != CREATED:
            raise InvalidStatus(container_id, f"cannot start a container in the {status} state")
        fifo = st.path(container_id, store_mod.FIFO_FILE)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            # ENXIO: no reader, so the init is gone.
            raise InvalidStatus(container_id, f"cannot start container: its init process is gone ({err.strerror.lower()})") from None
        try:
            os.unlink(fifo)
            os.write(fd, b"0")
        finally:
            os.close(fd)


# ---------------------------------------------------------------- state

def cmd_state(parsed) -> str:
    from pyrunc import jsonlite

    container_id = _one_id(parsed)
    st = _store(parsed)
    state = st.load(container_id)
    return jsonlite.dumps(public_state(st, state), indent=2) + "\n"


def public_state(st: Store, state: dict, owner: str = "") -> dict:
    """The state JSON runc prints: OCI fields plus rootfs, created, owner."""
    status = st.status(state)
    if status == CREATING:
        return {"ociVersion": state.get("ociVersion", ""), "id": state["id"], "pid": 0, "status": CREATING,
                "bundle": state.get("bundle", ""), "rootfs": "", "created": "", "owner": owner}
    out = {
        "ociVersion": state.get("ociVersion", ""),
        "id": state["id"],
        "pid": 0 if status == STOPPED else state.get("pid", 0),
        "status": status,
        "bundle": state.get("bundle", ""),
        "rootfs": state.get("rootfs", ""),
        "created": state.get("created", ""),
    }
    if state.get("annotations"):
        out["annotations"] = state["annotations"]
    out["owner"] = owner
    return out


# ---------------------------------------------------------------- kill

def cmd_kill(parsed) -> int:
    from pyrunc.linux.signals import parse_signal

    container_id = _one_id(parsed, extra_ok=1)
    raw = parsed.args[1] if len(parsed.args) > 1 else "SIGTERM"
    try:
        signal_number = parse_signal(raw)
    except ValueError as err:
        raise UsageError(str(err)) from None
    st = _store(parsed)
    state = st.load(container_id)
    status = st.status(state)
    if status not in (CREATED, RUNNING, PAUSED):
        raise InvalidStatus(container_id, "container not running")
    if parsed.options.get("all"):
        from pyrunc.linux.cgroups.fs import CgroupDirs

        CgroupDirs.from_state(state.get("cgroups")).kill_all(signal_number, wait=0)
        return 0
    send_signal(container_id, state, signal_number)
    return 0


def send_signal(container_id: str, state: dict, signal_number: int) -> None:
    """Signal the init, making sure first that its pid was not reused."""
    import _signal

    from pyrunc.linux import proc

    pid = state.get("pid", 0)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise InvalidStatus(container_id, "container not running") from None
    try:
        # The pidfd pins the process: if the start time still matches now,
        # the signal cannot reach a stranger that reused the pid.
        if not proc.is_alive(pid, state.get("startTime", -1)):
            raise InvalidStatus(container_id, "container not running")
        try:
            _signal.pidfd_send_signal(pidfd, signal_number)
        except ProcessLookupError:
            raise InvalidStatus(container_id, "container not running") from None
    finally:
        os.close(pidfd)


# ---------------------------------------------------------------- delete

def cmd_delete(parsed) -> int:
    container_id = _one_id(parsed)
    delete_container(_store(parsed), container_id, force=bool(parsed.options.get("force")))
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
            state = st.load(container_id)
        except ContainerNotFound:
            # A directory without state.json: a create that died half-way.
            st.remove(container_id)
            if force:
                return
            raise
        status = st.status(state)
        if status in (RUNNING, PAUSED) and not force:
            raise InvalidStatus(container_id, f"cannot delete container {container_id} that is not stopped: {status}")
        if status != STOPPED:
            # created (as runc: no --force needed), or running with --force.
            _kill_and_wait(state)
        destroy_container(st, state)


def _kill_and_wait(state: dict, timeout: float = 10.0) -> None:
    import _signal
    import select

    from pyrunc.linux import proc

    pid = state.get("pid", 0)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not proc.is_alive(pid, state.get("startTime", -1)):
            return
        try:
            _signal.pidfd_send_signal(pidfd, 9)
        except ProcessLookupError:
            return
        # A pidfd polls readable once the process has exited: no sleep loop.
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            raise PyruncError(f"{state['id']}: container init did not die within {timeout:.0f}s of SIGKILL")
    finally:
        os.close(pidfd)


def destroy_container(st: Store, state: dict) -> None:
    """Remove what `create` made: leftover processes, cgroups, the state dir."""
    from pyrunc.linux.cgroups.fs import CgroupDirs

    cgroup_dirs = CgroupDirs.from_state(state.get("cgroups"))
    # Without a pid namespace of its own, the container's processes outlive
    # its init (as in runc, only then are they killed: with a pid namespace
    # the kernel already did, and a shared cgroup must not lose its others).
    if state.get("sharedPidNamespace", True):
        cgroup_dirs.kill_all()
    for problem in cgroup_dirs.destroy():
        log.warning(f"{state['id']}: {problem}")
    st.remove(state["id"])


# ---------------------------------------------------------------- run

def cmd_run(parsed) -> int:
    container_id = _one_id(parsed)
    opts = parsed.options
    detach = bool(opts.get("detach"))
    st = _store(parsed)
    subreaper = not detach and not opts.get("no_subreaper")
    if subreaper:
        from pyrunc.linux import _libc

        # The init is forked by an intermediate process; as subreaper we
        # adopt it when that exits, and can wait for it.
        _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
    create_opts = CreateOptions(opts, wait_for_init=not detach and not subreaper)
    launched = create_container(st, container_id, create_opts)
    if detach:
        try:
            start_container(st, container_id)
        except BaseException:
            _delete_quietly(st, container_id)
            raise
        return 0
    forwarder = _SignalForwarder(launched.pidfd)
    try:
        start_container(st, container_id)
        code = _wait_for_exit(launched, waited_pid=launched.stage1_pid if create_opts.wait_for_init else launched.init_pid)
    except BaseException:
        forwarder.restore()
        _delete_quietly(st, container_id)
        raise
    forwarder.restore()
    if not opts.get("keep"):
        _delete_quietly(st, container_id)
    return code


def _delete_quietly(st: Store, container_id: str) -> None:
    try:
        delete_container(st, container_id, force=True)
    except PyruncError as err:
        log.warning(f"{container_id}: cleanup after run: {err}")


class _SignalForwarder:
    """While `run` waits in the foreground, signals it receives go to the
    container's init (as runc does); SIGCHLD just wakes the wait."""

    _FORWARDED = (1, 2, 3, 10, 12, 14, 15, 28)  # HUP INT QUIT USR1 USR2 ALRM TERM WINCH

    def __init__(self, pidfd: int):
        import _signal

        self.pidfd = pidfd
        self.saved = {n: _signal.signal(n, self._forward) for n in self._FORWARDED}

    def _forward(self, number, frame) -> None:
        import _signal

        try:
            _signal.pidfd_send_signal(self.pidfd, number)
        except OSError:
            pass

    def restore(self) -> None:
        import _signal

        for number, handler in self.saved.items():
            _signal.signal(number, handler)


def _wait_for_exit(launched, waited_pid: int) -> int:
    """Reap children until `waited_pid` exits; its exit code, 128+N for signal N."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if pid == waited_pid:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


# ---------------------------------------------------------------- list

def cmd_list(parsed):
    from pyrunc import jsonlite

    fmt = parsed.options.get("format") or "table"
    if fmt not in ("table", "json"):
        raise UsageError(f"list: invalid format {fmt!r}: must be table or json")
    if parsed.args:
        raise UsageError("list: takes no arguments")
    st = _store(parsed)
    entries = []
    for container_id in st.list_ids():
        try:
            state = st.load(container_id)
        except (ContainerError, PyruncError) as err:
            log.warning(f"load container {container_id}: {err}")
            continue
        if state.get("creating"):
            continue
        entries.append(public_state(st, state, owner=_owner(st.path(container_id))))
    if parsed.options.get("quiet"):
        return "".join(e["id"] + "\n" for e in entries)
    if fmt == "json":
        return (jsonlite.dumps(entries) if entries else "null") + "\n"
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"], e["owner"]) for e in entries]
    return _tabulate(rows)


def _tabulate(rows: list[tuple]) -> str:
    # Go's tabwriter(minwidth 12, padding 3), as runc's list uses.
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines) + "\n"


def _owner(path: str) -> str:
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"#{uid}"


# ---------------------------------------------------------------- check

def cmd_check(parsed) -> int:
    """`pyrunc check`: every problem in the bundle, one line each."""
    from pyrunc.errors import format_problem
    from pyrunc.linux.capabilities import read_cap_last_cap
    from pyrunc.spec import check, load

    if parsed.args:
        raise UsageError("check: takes no arguments; use --bundle DIR")
    bundle_dir = load.resolve_bundle(parsed.options.get("bundle"))
    doc = load.read_config(bundle_dir)
    problems = validate_config(doc)
    if not problems:
        root = os.path.join(bundle_dir, (doc.get("root") or {}).get("path", "rootfs"))
        if not os.path.isdir(root):
            problems.append(("root.path", f'"{root}" is not a directory'))
    for path, message in problems:
        log.error(format_problem("config.json", path, message))
    if problems:
        return 1
    for path, message in check.warnings(doc, read_cap_last_cap()):
        log.warning(format_problem("config.json", path, message))
    return 0
