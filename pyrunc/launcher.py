"""The parent side of `create`: fork the container's processes and drive the
handshake until its init waits for `start`.

Usually the init is cloned straight into its namespaces and cgroup
(namespaces_to_clone_into, fork_into) and the left column talks to it
directly; a user namespace, a namespace path or a time namespace need
stage1 in between:

    pyrunc create ──clone3──▶ stage1 ──fork──▶ init (stage2)
         │  ── cgroups-ready ──▶│                │
         │  ◀── idmap-request? ─┤                │
         │  ── idmap-done ──▶   │                │
         │  ◀── pid ────────────┘ (exits)        │
         │  ◀── hooks? / hooks-done ──▶          │
         │  ◀── timings ─────────────────────────┤ becomes the stub (linux.trampoline):
         │  ◀── seccomp-listener? + fd ──────────┤
         │  ◀── ready ───────────────────────────┘ (waits on exec.fifo)

Joining a pid namespace by path, stage1 stays outside it and is the one
that builds the container; it becomes the stub, which forks the init into
that namespace and sends "pid" for it.

Undo is the caller's job: `launch` registers what it made on its UndoStack.
Imports: sync, init.*, linux.proc, errors.
"""

from __future__ import annotations

import os

from pyrunc import faults, log, sync
from pyrunc.errors import InitError
from pyrunc.init.context import InitContext


class Launched:
    __slots__ = ("init_pid", "start_time", "pidfd", "stage1_pid", "terminal")

    def __init__(self, init_pid: int, start_time: int, pidfd: int, stage1_pid: int, terminal: bool = False):
        self.init_pid = init_pid
        self.start_time = start_time
        self.pidfd = pidfd
        self.stage1_pid = stage1_pid
        # process.terminal: the init sent a pty master to the console socket.
        self.terminal = terminal


def launch(ctx: InitContext, undo, run_hooks=None, close_in_child=(), on_listener=None,
           prepare_cgroups=None) -> Launched:
    """Fork stage1 and wait until the init reports "ready".

    `undo` is an ops.create.UndoStack (or anything with .callback): callbacks pushed here kill
    the init if a later step fails. `prepare_cgroups(pid)`, if given, has
    systemd put `pid` (stage1 or the init) in the container's unit and
    sets the limits after the fork (the child joins its cgroups once told
    they are ready); a cgroupfs manager's are made before the fork. `run_hooks(init_pid)` runs the
    runtime-namespace hooks (prestart, createRuntime) when the init asks for
    them; `on_listener(fd, init_pid)` gets the seccomp notify fd.
    """
    parent_sock, child_sock = sync.socketpair()
    ctx.sock = child_sock
    ctx.send_timings = log.debug_enabled()
    stage1 = load_init_code(ctx.config, ctx.seccomp_program)
    stage1_pid, join_v2, cloned_with = fork_into(ctx.cgroups, namespaces_to_clone_into(ctx.config))
    if stage1_pid == 0:
        # In the child: drop what only the parent may hold (the container lock
        # above all, or the waiting init would keep it for its whole life).
        # Its code loads while the parent readies the cgroups; then it
        # joins them itself, before anything else (stage1).
        try:
            parent_sock.close()
            for fd in close_in_child:
                os.close(fd)
            if cloned_with:
                stage1.run_as_init(ctx, join_v2, cloned_with)
            stage1.run(ctx, join_v2)
        finally:
            os._exit(1)
    child_sock.close()
    os.close(ctx.fifo_fd)
    if ctx.start_status_fd >= 0:
        os.close(ctx.start_status_fd)  # only the init may hold it, or `start` never sees EOF
    faults.point("create:after-fork")
    log.phase("cloned into the cgroup and namespaces" if cloned_with else "forked stage1")
    try:
        if prepare_cgroups is not None:
            prepare_cgroups(stage1_pid)
        sync.send(parent_sock, "cgroups-ready")
    except BaseException:
        _kill_pid(stage1_pid)
        parent_sock.close()
        raise
    # stage1 is reaped once it has reported the init's pid; an init cloned
    # directly is our child and the container itself: never waited for here.
    stage1_reaped = [bool(cloned_with)]

    def reap_stage1():
        if not stage1_reaped[0]:
            stage1_reaped[0] = True
            try:
                os.waitpid(stage1_pid, 0)
            except ChildProcessError:
                pass

    try:
        # stage1's "pid" and the init's own messages share the socket and may
        # arrive in either order; what needs the init's pid waits for it.
        init_pid, pidfd = 0, -1
        if cloned_with:
            init_pid, pidfd = stage1_pid, _track_init(stage1_pid, undo, our_child=True)
        hooks_wanted, ready = False, False
        listeners: list[int] = []
        builder_filters = _builder_loads_filter(ctx)
        while not (init_pid and ready):
            message = sync.expect_any(
                parent_sock, ("idmap-request", "pid", "hooks", "seccomp-listener", "timings", "ready"),
                "container setup failed before the init process started" if not init_pid else
                "container init exited before finishing setup", on_warning=_init_warning)
            kind = message["type"]
            if kind == "idmap-request":
                from pyrunc.linux import idmap

                idmap.write_id_maps(stage1_pid, ctx.config.linux)
                sync.send(parent_sock, "idmap-done")
            elif kind == "pid":
                init_pid = int(message["pid"])
                pidfd = _track_init(init_pid, undo, our_child=False)
                if not ctx.wait_for_init:
                    reap_stage1()
                log.phase("namespaces")
            elif kind == "hooks":
                hooks_wanted = True
            elif kind == "seccomp-listener":
                listeners.extend(message.get("fds", ()))
            elif kind == "timings":
                for step, ms in (message.get("timings") or {}).items():
                    log.debug(f"init: {step}: {ms:.2f} ms")
            else:
                ready = True
            if init_pid and hooks_wanted:
                hooks_wanted = False
                if run_hooks is not None:
                    faults.point("create:before-hooks")
                    run_hooks(init_pid)
                sync.send(parent_sock, "hooks-done")
                faults.point("create:after-hooks")
            # The filter's holder must be known: the init, or stage1 when it
            # loaded the filter itself (see filter_holder_before_pid).
            holder = init_pid or (stage1_pid if builder_filters else 0)
            while holder and listeners:
                fd = listeners.pop(0)
                try:
                    if on_listener is not None:
                        on_listener(fd, holder)
                finally:
                    os.close(fd)
        log.phase("init ready")
        faults.point("create:after-ready")
    except BaseException:
        parent_sock.close()
        if not ctx.wait_for_init:
            reap_stage1()
        raise
    parent_sock.close()
    from pyrunc.linux import proc

    start_time = proc.read_start_time(init_pid)
    if start_time is None:
        raise InitError("container init exited right after setup")
    return Launched(init_pid, start_time, pidfd, stage1_pid, ctx.config.process.terminal)


def _builder_loads_filter(ctx: InitContext) -> bool:
    """Joining a pid namespace by path, stage1 builds the container and its
    stub forks the init only at the end: with no_new_privs off, stage1
    itself loads the filter (before the user switch), and the init's pid
    comes after syscalls the profile may notify. The listener then goes to
    the agent at once with stage1's pid, as runc hands it over (with the pid
    of the process that loaded it) before that process goes on."""
    config = ctx.config
    return (ctx.seccomp_program is not None and not config.process.no_new_privileges
            and any(ns.type == "pid" and ns.path for ns in config.linux.namespaces))


def load_init_code(config, seccomp_program=None):
    """Import what the child runs, here before the fork: loading it in the
    child cost 3 ms of CPU there (0.7 ms in a fresh interpreter), most of it
    copy-on-write faults on the pages both processes share; loaded here,
    nothing of it is copied. The init imports the rest lazily, and only
    what this config needs is loaded (after pivot_root the container's root
    hides the host's library, so nothing may be left out that it uses)."""
    from pyrunc.init import stage1
    from pyrunc.linux import lsm  # noqa: F401  (rootfs.mount_all)

    if any(m.type == "cgroup" for m in config.mounts):
        from pyrunc.linux.cgroups import mount  # noqa: F401  (stage2's cgroup mounts)
    if seccomp_program is not None:
        from pyrunc.linux import seccomp  # noqa: F401  (process._load_seccomp)
    if config.hooks["createContainer"]:
        from pyrunc import hooks  # noqa: F401
    if config.process.terminal:
        from pyrunc.linux import console  # noqa: F401
    if config.linux.sysctl:
        from pyrunc.linux import sysctl  # noqa: F401
    return stage1


def fork_into(cgroups, namespace_flags: int = 0) -> tuple[int, bool, int]:
    """os.fork(); where the kernel allows, the child is born in the
    container's cgroup v2 directory and in the new namespaces
    `namespace_flags` (clone3, see _libc.clone3), which spares the RCU grace
    period a later move into the cgroup costs, and a second fork.

    Returns (pid, join_v2, cloned_with): join_v2 says the child must still
    join v2 itself (the cgroup manager's join_self), as it always must join
    the v1 hierarchies; cloned_with is `namespace_flags` when the child is in
    them, else 0 (a plain fork: it must make them itself)."""
    path = cgroups.clone_into if cgroups is not None else None
    fd = -1
    if path:
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass  # the child's own join then reports what is wrong
    if fd < 0 and not namespace_flags:
        return os.fork(), True, 0
    from pyrunc.linux import _libc

    try:
        return _libc.clone3(namespace_flags, fd), fd < 0, namespace_flags
    except OSError as err:
        log.debug(f"clone3 into {path or 'new namespaces'}: {err.strerror}; forking, then joining")
    finally:
        if fd >= 0:
            os.close(fd)
    return os.fork(), True, 0


def namespaces_to_clone_into(config) -> int:
    """CLONE_NEW* flags the init can be cloned with, so that it needs no
    stage1 (stage1.run_as_init); 0 when it does. A user namespace needs its
    id maps written before anything else is made in it, a namespace joined
    by path (the pid one above all) must be joined before the others are
    made, and time offsets must be written before anyone enters the time
    namespace: those take the two-process path."""
    from pyrunc.linux import namespaces

    spaces = config.linux.namespaces
    if any(ns.path or ns.type in ("user", "time") for ns in spaces):
        return 0
    return namespaces.new_namespace_flags(spaces, exclude=("user", "time", "cgroup"))


def launch_exec(container_id: str, init_pid: int, start_time: int, process, *, cgroups=None,
                seccomp_program=None, preserve_fds: int = 0, console_fd: int = -1, on_listener=None,
                stdio=(), program_path: str = "") -> int:
    """Fork the `exec` joiner; return the host pid of the process once it is
    about to exec. The container's init is pinned by a pidfd while its
    namespaces are opened, so a reused pid cannot send us elsewhere.
    `stdio` (fds for 0-2) and `program_path` run a hook instead (start)."""
    import errno

    from pyrunc.errors import InvalidStatus, KernelError
    from pyrunc.init.exec import ExecContext, open_container_namespaces, run_joiner

    if seccomp_program is not None:
        from pyrunc.linux import seccomp  # noqa: F401  (the joiner cannot load it in the container: load_init_code)
    from pyrunc.linux import proc

    try:
        pidfd = os.pidfd_open(init_pid)
    except ProcessLookupError:
        raise InvalidStatus(container_id, "cannot exec in a stopped container") from None
    try:
        if not proc.is_alive(init_pid, start_time):
            raise InvalidStatus(container_id, "cannot exec in a stopped container")
        try:
            ns_fds = open_container_namespaces(init_pid, ["user", "ipc", "uts", "network", "pid", "cgroup",
                                                          "time", "mount"])
        except KernelError as err:
            if err.errno != errno.ENOENT:
                raise
            # The init is exiting: its namespaces are gone before it is a zombie.
            raise InvalidStatus(container_id, "cannot exec in a stopped container") from None
    finally:
        os.close(pidfd)
    faults.point("exec:after-namespaces-open")
    user_ns = any(kind == "user" for kind, _ in ns_fds)
    parent_sock, child_sock = sync.socketpair()
    ctx = ExecContext(child_sock, ns_fds, cgroups, process, seccomp_program=seccomp_program,
                      preserve_fds=preserve_fds, console_fd=console_fd, container_id=container_id,
                      become_root=user_ns, stdio=stdio, program_path=program_path)
    try:
        joiner, ctx.join_v2, _ = fork_into(cgroups)
        if joiner == 0:
            try:
                parent_sock.close()
                run_joiner(ctx)
            finally:
                os._exit(1)
    finally:
        child_sock.close()
        for _, fd in ns_fds:
            os.close(fd)
    faults.point("exec:after-fork")
    try:
        # The joiner's "pid" and the process's own messages may arrive in
        # either order: both write to the same socket.
        pid, ready, listeners = 0, False, []
        while not (pid and ready):
            message = sync.expect_any(parent_sock, ("pid", "seccomp-listener", "ready"),
                                      "exec: joining the container failed" if not pid else
                                      "exec: the process exited during setup", on_warning=_init_warning)
            if message["type"] == "pid":
                pid = int(message["pid"])
                os.waitpid(joiner, 0)
                faults.point("exec:after-pid")
            elif message["type"] == "ready":
                ready = True
            else:
                listeners.extend(message.get("fds", ()))
            # To the agent as soon as the filter's holder is known, not after
            # "ready": it may make a notified syscall (close) before that.
            # With no_new_privs off the joiner loaded the filter, before the
            # user switch, and goes on with setresuid, capset, chdir ...,
            # any of them possibly notified, before its stub forks the
            # process: the agent gets the listener at once, with the
            # joiner's pid (runc's syncParentSeccomp: the pid of the process
            # that loaded the filter), or the process's pid never comes.
            holder = pid or (joiner if not process.no_new_privileges else 0)
            while holder and listeners:
                fd = listeners.pop(0)
                try:
                    if on_listener is not None:
                        on_listener(fd, holder)
                finally:
                    os.close(fd)
        faults.point("exec:after-ready")
        return pid
    except BaseException:
        try:
            os.kill(joiner, 9)
            os.waitpid(joiner, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    finally:
        parent_sock.close()


def _init_warning(text: str) -> None:
    """A warning the container's processes sent (sync.send_warning): to the log."""
    log.warning(f"container init: {text}")


def _track_init(pid: int, undo, our_child: bool) -> int:
    """A pidfd of the init, and the undo step that kills it if create fails."""
    if our_child:
        undo.callback(_kill_pid, pid)  # cloned straight as the init: kill and reap, whatever follows
        pidfd = os.pidfd_open(pid)
        undo.callback(os.close, pidfd)
    else:
        pidfd = os.pidfd_open(pid)
        undo.callback(_kill_init, pidfd, pid)
    faults.point("create:after-pid")
    return pidfd


def _kill_pid(pid: int) -> None:
    """Kill and reap a child of ours (stage1 before it forked anything)."""
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _kill_init(pidfd: int, init_pid: int) -> None:
    import _signal

    try:
        _signal.pidfd_send_signal(pidfd, 9)
    except ProcessLookupError:
        pass
    except OSError as err:
        log.warning(f"kill container init {init_pid}: {err.strerror.lower()}")
    finally:
        os.close(pidfd)
