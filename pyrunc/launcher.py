"""The parent side of `create` (LaunchSequence) and `exec` (launch_exec):
fork the container's processes and drive the handshake until the init
waits for `start`, or the exec'd process is about to run.

Where stage1 forks the init in Python, each has its own channel
(sync.Channel); every channel is read in the order its messages must
come; "?" marks a message the config decides: idmap-request with a new
user namespace, hooks with prestart or createRuntime hooks, timings with
--debug, seccomp-listener with a SCMP_ACT_NOTIFY profile (from Python
before the user switch with no_new_privs off, from the stub with it on).
Any message may instead be an error frame, and warnings go to the log on
the way.

1. Forked: a user or time namespace, a namespace joined by path (but a pid
   one: 3.), or a kernel without clone3 needs stage1 in between, which
   forks the init and exits. Two channels:

    pyrunc create ──fork──▶ stage1 ──fork──▶ init (stage2)
         │  ══ stage1's channel ═══════│      │
         │  ── cgroups-ready ─────────▶│      │
         │  ◀─ idmap-request? ─────────┤      │
         │  ── idmap-done ────────────▶│      │
         │  ◀─ pid ────────────────────┘ (exits, or waits: run --no-subreaper)
         │  ══ the init's channel ════════════│
         │  ◀─ hooks? ────────────────────────┤ (runtime hooks, with the init's pid)
         │  ── hooks-done ───────────────────▶│
         │  ◀─ seccomp-listener? + fd ────────┤ no_new_privs off (to the agent at once)
         │  ◀─ timings? ──────────────────────┤ becomes the stub (linux.trampoline):
         │  ◀─ seccomp-listener? + fd ────────┤ no_new_privs on
         │  ◀─ ready ─────────────────────────┘ (waits on exec.fifo)

2. Cloned: the init is cloned straight into its namespaces and cgroup
   (namespaces_to_clone_into, fork_into) and is stage1 and init at once:
   one channel, cgroups-ready then the init's part of 1 (no idmap, no pid).

3. Joining a pid namespace by path: stage1 stays outside it and builds the
   container itself, then becomes the stub, which forks the init into that
   namespace. One channel: cgroups-ready, idmap-request?, then the init's
   part of 1 from stage1, whose pid the runtime hooks and a listener loaded
   with no_new_privs off get (it loaded the filter); then the stub's fork:
   "pid" from the stub and the init's last messages (seccomp-listener?,
   ready) share the stub's one sync fd, so "pid" may come before, between
   or after them (each side's own order holds).

`exec`: one channel; the joiner's seccomp-listener? (no_new_privs off, with
the joiner's pid), then its stub's fork as in 3.

Undo is the caller's job: the sequence registers what it made on its
UndoStack. Imports: sync, hooks, init.*, linux.{proc, cgroups, seccomp,
idmap}, errors.
"""

from __future__ import annotations

from pyrunc import oslite as os
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


class LaunchSequence:
    """The parent's steps of create, in their order (module docstring):
    the container's cgroups and limits through its manager (ctx.cgroups),
    the fork, the id maps, the runtime hooks (prestart, createRuntime), the
    seccomp listener's hand-over to the agent (linux.seccomp.listenerPath),
    until the init waits for `start`.

    `undo` is an ops.create.UndoStack (or anything with .callback): what is
    pushed there kills the init if a later step fails. `close_in_child`:
    fds only the parent may hold (the container lock above all, or the
    waiting init would keep it for its whole life). `rootless`: runc's
    rootless cgroup manager (no device rules when unprivileged)."""

    def __init__(self, ctx: InitContext, undo, *, close_in_child=(), rootless: bool = False):
        self.ctx = ctx
        self.undo = undo
        self.close_in_child = close_in_child
        self.rootless = rootless
        config = ctx.config
        self.joins_pid_ns = any(ns.type == "pid" and ns.path for ns in config.linux.namespaces)
        user_ns = config.linux.namespace("user")
        self.new_user_ns = user_ns is not None and not user_ns.path
        self.wants_hooks = bool(config.hooks["prestart"] or config.hooks["createRuntime"])
        self.listener = _sends_listener(ctx.seccomp_program)
        # Who loads the filter: the Python init before its user switch
        # (no_new_privs off), or the stub, last (on).
        self.listener_from_setup = self.listener and not config.process.no_new_privileges
        self.stage1_pid = 0
        self.init_pid = 0
        self.pidfd = -1
        self._stage1_reaped = False

    def run(self) -> Launched:
        """Fork stage1 and wait until the init reports "ready"."""
        ctx = self.ctx
        # Imported before the fork: after it, until the init execs, every
        # page this process writes is copied first.
        from pyrunc.linux.cgroups import devices, manager as cgroup_manager  # noqa: F401

        # cgroupfs directories and limits need no process: made before the
        # fork, as the cloned init would only wait for them meanwhile. The
        # systemd driver puts the forked process itself in the unit.
        late_cgroups = not isinstance(ctx.cgroups, (cgroup_manager.FsV1Manager, cgroup_manager.FsV2Manager))
        if not late_cgroups:
            self._prepare_cgroups(0)
        init_parent, init_child = sync.socketpair()
        # stage1's own channel, where stage1 may fork the init (1. in the
        # module docstring); joining a pid namespace by path it never does.
        stage1_parent, stage1_child = sync.socketpair() if not self.joins_pid_ns else (init_parent, init_child)
        ctx.sock = init_child
        ctx.stage1_sock = stage1_child
        ctx.send_timings = log.debug_enabled()
        stage1 = load_init_code(ctx.config, ctx.seccomp_program)
        stage1_pid, join_v2, cloned_with = fork_into(ctx.cgroups, namespaces_to_clone_into(ctx.config))
        if stage1_pid == 0:
            # In the child: drop what only the parent may hold. Its code
            # loads while the parent readies the cgroups; then it joins
            # them itself, before anything else (stage1).
            try:
                _close_pair_ends((init_parent, stage1_parent))
                for fd in self.close_in_child:
                    os.close(fd)
                if cloned_with:
                    if stage1_child is not init_child:
                        stage1_child.close()  # stage1 is the init: one channel (2.)
                        ctx.stage1_sock = init_child
                    stage1.run_as_init(ctx, join_v2, cloned_with)
                stage1.run(ctx, join_v2)
            finally:
                os._exit(1)
        self.stage1_pid = stage1_pid
        _close_pair_ends((init_child, stage1_child))
        os.close(ctx.fifo_fd)
        if ctx.start_status_fd >= 0:
            os.close(ctx.start_status_fd)  # only the init may hold it, or `start` never sees EOF
        if cloned_with and stage1_parent is not init_parent:
            stage1_parent.close()
            stage1_parent = init_parent
        faults.point("create:after-fork")
        log.phase("cloned into the cgroup and namespaces" if cloned_with else "forked stage1")
        init = sync.Channel(init_parent, "container init", _init_warning)
        first = init if stage1_parent is init_parent else sync.Channel(stage1_parent, "container setup (stage1)",
                                                                       _init_warning)
        try:
            if late_cgroups:
                self._prepare_cgroups(stage1_pid)
            first.send("cgroups-ready")
        except BaseException:
            _kill_pid(stage1_pid)
            _close_pair_ends((init_parent, stage1_parent))
            raise
        # stage1 is reaped once it has reported the init's pid; an init cloned
        # directly is our child and the container itself: never waited for here.
        self._stage1_reaped = bool(cloned_with)
        try:
            if cloned_with:
                self.init_pid, self.pidfd = stage1_pid, _track_init(stage1_pid, self.undo, our_child=True)
            self._stage1_steps(first)
            self._init_steps(init)
            log.phase("init ready")
            faults.point("create:after-ready")
        except BaseException:
            _close_pair_ends((init_parent, stage1_parent))
            if not ctx.wait_for_init:
                self._reap_stage1()
            raise
        _close_pair_ends((init_parent, stage1_parent))
        from pyrunc.linux import proc

        start_time = proc.read_start_time(self.init_pid)
        if start_time is None:
            raise InitError("container init exited right after setup")
        return Launched(self.init_pid, start_time, self.pidfd, stage1_pid, ctx.config.process.terminal)

    def _stage1_steps(self, channel: sync.Channel) -> None:
        """stage1 joins the cgroups and namespaces: the id maps of a new user
        namespace, then, where stage1 forks the init, its pid."""
        if self.new_user_ns:
            channel.expect("idmap-request", "while joining its cgroups and namespaces")
            from pyrunc.linux import idmap

            idmap.write_id_maps(self.stage1_pid, self.ctx.config.linux)
            channel.send("idmap-done")
        if not self.init_pid and not self.joins_pid_ns:
            message = channel.expect("pid", "before the init process started")
            self._init_started(int(message["pid"]))

    def _init_steps(self, channel: sync.Channel) -> None:
        """The init sets up the container: the runtime hooks when it asks,
        the listener, the timings, "ready" (module docstring)."""
        # Joining a pid namespace by path, stage1 builds the container: the
        # hooks and a listener loaded before the user switch get its pid.
        builder = self.init_pid or self.stage1_pid
        if self.wants_hooks:
            channel.expect("hooks", "before its runtime hooks")
            faults.point("create:before-hooks")
            self._run_runtime_hooks(builder)
            channel.send("hooks-done")
            faults.point("create:after-hooks")
        if self.listener_from_setup:
            self._hand_over_listener(channel.expect("seccomp-listener", "while setting up the process"), builder)
        if self.ctx.send_timings:
            message = channel.expect("timings", "while setting up the container")
            for step, ms in (message.get("timings") or {}).items():
                log.debug(f"init: {step}: {ms:.2f} ms")
        last = ("seccomp-listener", "ready") if self.listener and not self.listener_from_setup else ("ready",)
        if not self.joins_pid_ns:
            for kind in last:
                message = channel.expect(kind, "before waiting for start")
                if kind == "seccomp-listener":
                    self._hand_over_listener(message, self.init_pid)
            return
        read_stub_fork(channel, last, self._init_started, self._hand_over_listener, "before waiting for start")

    def _init_started(self, pid: int) -> None:
        self.init_pid = pid
        self.pidfd = _track_init(pid, self.undo, our_child=False)
        if not self.ctx.wait_for_init:
            self._reap_stage1()
        log.phase("namespaces")

    def _reap_stage1(self) -> None:
        if not self._stage1_reaped:
            self._stage1_reaped = True
            try:
                os.waitpid(self.stage1_pid, 0)
            except ChildProcessError:
                pass

    def _prepare_cgroups(self, pid: int) -> None:
        """linux.resources and the device rules, before any process of the
        container runs (runc sets them before its init runs, too); `pid`
        (stage1 or the init) goes in the systemd unit, 0 for cgroupfs."""
        faults.point("create:after-cgroups")
        from pyrunc.linux.cgroups import devices

        config, manager = self.ctx.config, self.ctx.cgroups
        resources = config.linux.resources
        rules = devices.container_device_rules(resources.get("devices"), [d.path for d in config.linux.devices])
        if self.rootless and _unprivileged():
            # No device rules, as runc's rootless manager: an unprivileged
            # user can attach no device filter, and a user namespace
            # cannot make device nodes (bound ones keep the host's modes).
            # The host's root given --rootless=true keeps them (runc too).
            resources = {k: v for k, v in resources.items() if k != "devices"}
            rules = None
        for warning in manager.apply(pid, resources, rules):
            log.warning(warning)
        log_cgroup_timings(manager)
        faults.point("create:after-resources")
        log.phase("cgroups and limits")

    def _run_runtime_hooks(self, pid: int) -> None:
        from pyrunc import hooks

        # runtime.md: prestart and createRuntime are steps 3-4, after the
        # environment was created (step 2), so the status is "created".
        config = self.ctx.config
        state = self._hook_state("created", pid)
        hooks.run_hooks("prestart", config.hooks["prestart"], state, config.bundle)
        hooks.run_hooks("createRuntime", config.hooks["createRuntime"], state, config.bundle)

    def _hand_over_listener(self, message: dict, holder: int) -> None:
        """The seccomp notify fd to the agent at linux.seccomp.listenerPath,
        with the pid of the process that loaded the filter: at once, as it
        may already make a notified syscall (runc's syncParentSeccomp)."""
        fds = _listener_fds(message)
        try:
            from pyrunc.linux import seccomp

            profile = self.ctx.config.linux.seccomp
            seccomp.send_to_listener(profile["listenerPath"], profile.get("listenerMetadata", ""), holder, fds[0],
                                     self._hook_state("creating", holder))
        finally:
            for fd in fds:
                os.close(fd)

    def _hook_state(self, status: str, pid: int) -> dict:
        """The state JSON runtime-namespace hooks and the agent get (host pid)."""
        from pyrunc import hooks

        config = self.ctx.config
        return hooks.state_document(config.oci_version, self.ctx.container_id, status, pid, config.bundle,
                                    config.annotations)


def read_stub_fork(channel: sync.Channel, last: tuple[str, ...], on_pid, on_listener, step: str) -> int:
    """The stub's fork (launcher docstring, 3.; exec): "pid" from the stub
    and the child's `last` messages ("seccomp-listener"?, "ready") share
    the stub's one sync fd, so "pid" may come anywhere among them; each
    side's own order holds. on_pid(pid) at once; a listener the child
    loaded goes to on_listener(message, pid) once its pid is known.
    Returns the pid."""
    pending, listener, pid = list(last), None, 0
    try:
        while pending or not pid:
            kinds = (pending[0],) if pending else ()
            message = channel.expect_any(kinds if pid else ("pid", *kinds), step)
            if message["type"] == "pid":
                pid = int(message["pid"])
                on_pid(pid)
            elif pending.pop(0) == "seccomp-listener":
                listener = message
            if listener is not None and pid:
                message, listener = listener, None
                on_listener(message, pid)
    finally:
        for fd in (listener or {}).get("fds", ()):
            os.close(fd)
    return pid


def _sends_listener(program) -> bool:
    """Whether the process loading `program` sends a seccomp-listener
    message: SECCOMP_FILTER_FLAG_NEW_LISTENER (linux.seccomp.load)."""
    return program is not None and bool(program.flags & 8)


def _listener_fds(message: dict) -> list[int]:
    fds = message.get("fds") or []
    if not fds:
        raise InitError('container process: "seccomp-listener" came without its fd')
    return fds


def _close_pair_ends(socks) -> None:
    """Close each distinct socket once (one channel may stand for two)."""
    for i, sock in enumerate(socks):
        if all(sock is not other for other in socks[:i]):
            sock.close()


def log_cgroup_timings(manager) -> None:
    """--debug: the cgroup manager's own steps (the systemd driver's D-Bus
    round trips among them)."""
    for step, ms in manager.timings:
        log.debug(f"cgroups: {step}: {ms:.2f} ms")
    manager.timings.clear()


def _unprivileged() -> bool:
    from pyrunc.linux import proc

    return os.geteuid() != 0 or proc.in_user_namespace()


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
    channel = sync.Channel(parent_sock, "exec: the process joining the container", _init_warning)

    def hand_over(message: dict, holder: int) -> None:
        fds = _listener_fds(message)
        try:
            if on_listener is not None:
                on_listener(fds[0], holder)
        finally:
            for fd in fds:
                os.close(fd)

    def started(pid: int) -> None:
        os.waitpid(joiner, 0)  # the stub's parent, gone once it sent the pid
        faults.point("exec:after-pid")

    try:
        # In order (as create's init, LaunchSequence): the joiner's listener
        # with no_new_privs off, then the stub's fork. The joiner loaded that
        # filter before the user switch and goes on with setresuid, capset,
        # chdir ..., any of them possibly notified, before its stub forks
        # the process: the agent gets the listener at once, with the
        # joiner's pid (runc's syncParentSeccomp: the pid of the process
        # that loaded the filter), or the process's pid never comes.
        listener = _sends_listener(seccomp_program)
        if listener and not process.no_new_privileges:
            hand_over(channel.expect("seccomp-listener", "while setting up the process"), joiner)
        last = ("seccomp-listener", "ready") if listener and process.no_new_privileges else ("ready",)
        pid = read_stub_fork(channel, last, started, hand_over, "before the program runs")
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
