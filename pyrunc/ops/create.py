"""`create`: validate, then build the container and leave its init waiting.

Everything made is registered on an undo stack (UndoStack, below), so a
failure at any step leaves nothing behind: no state dir, cgroup, mount or
process.
Imports: errors, log, store, ops.common, launcher, init.context, linux.cgroups.
"""

from __future__ import annotations

import time

from pyrunc import oslite as os
from pyrunc import faults, log, store as store_mod
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.ops.common import check_preserved_fds, load_config, one_id, rootless_cgroups, store_for
from pyrunc.record import PARTIAL_KEYS, ContainerRecord
from pyrunc.store import Store


class CreateOptions:
    """What create takes besides the bundle's config (runc's create flags)."""

    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring", "preserve_fds",
                 "wait_for_init", "console_fd", "systemd_cgroup", "rootless", "listen_fds")

    def __init__(self, bundle: str | None = None, pid_file: str | None = None, console_socket: str | None = None,
                 no_pivot: bool = False, no_new_keyring: bool = False, preserve_fds: int = 0,
                 wait_for_init: bool = False, console_fd: int = -1, systemd_cgroup: bool = False,
                 rootless: bool = False, listen_fds: int = 0):
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = bool(no_pivot)
        self.no_new_keyring = bool(no_new_keyring)
        self.preserve_fds = int(preserve_fds or 0)
        self.wait_for_init = wait_for_init
        # `run` relaying the terminal itself passes its socketpair end here.
        self.console_fd = console_fd
        self.systemd_cgroup = systemd_cgroup
        # runc's rootless cgroup manager (ops.common.rootless_cgroups).
        self.rootless = rootless
        # Socket activation's fds after stdio, passed on too: only the
        # command line takes them from LISTEN_FDS (a library caller's
        # environment is its own, not the container's).
        self.listen_fds = int(listen_fds or 0)

    @classmethod
    def from_flags(cls, opts: dict, systemd_cgroup: bool = False, rootless: bool = False) -> "CreateOptions":
        """From the command line's option dict (create's and run's flags)."""
        return cls(bundle=opts.get("bundle"), pid_file=opts.get("pid_file"), console_socket=opts.get("console_socket"),
                   no_pivot=bool(opts.get("no_pivot")), no_new_keyring=bool(opts.get("no_new_keyring")),
                   preserve_fds=int(opts.get("preserve_fds") or 0), systemd_cgroup=systemd_cgroup,
                   rootless=rootless, listen_fds=listen_fds_from_env())


def cmd_create(parsed) -> int:
    check_caller_fds(int(parsed.options.get("preserve_fds") or 0), listen_fds_from_env())
    container_id = one_id(parsed)
    create_container(store_for(parsed), container_id,
                     CreateOptions.from_flags(parsed.options, bool(parsed.globals.get("systemd_cgroup")),
                                              rootless=rootless_cgroups(parsed)))
    return 0


def create_container(st: Store, container_id: str, opts: CreateOptions):
    """Create the container and leave its init waiting for `start`.

    Returns the Launched record (init pid, its pidfd). On failure everything
    made so far is undone and the error propagates.
    """
    log.phase("command line and imports")
    store_mod.validate_id(container_id)
    if st.exists(container_id):
        from pyrunc.errors import ContainerExists

        raise ContainerExists(container_id)
    cfg = load_config(opts.bundle)
    log.phase("config loaded and validated")
    _check_terminal(cfg, opts)
    _check_lsm_labels(cfg)
    if os.geteuid() != 0:
        _check_unprivileged(cfg)
    if cfg.linux.sysctl:
        _refuse_sysctls_in_host_namespaces(cfg)
    seccomp_program = _compile_seccomp(cfg)
    preserve = opts.preserve_fds + opts.listen_fds

    from pyrunc.init.context import InitContext
    from pyrunc.launcher import LaunchSequence, log_cgroup_timings
    from pyrunc.linux import cgroups
    from pyrunc.linux.cgroups import manager as cgroup_manager

    layout = cgroups.detect_layout()
    # The container's cgroups, through one manager from here on. A
    # cgroupsPath this host cannot have, or a systemd that cannot be
    # reached, is refused before anything exists.
    manager = cgroup_manager.new_manager(cfg.linux.cgroups_path, container_id, systemd=opts.systemd_cgroup,
                                         annotations=cfg.annotations, layout=layout,
                                         rootless=opts.rootless, resources=cfg.linux.resources)
    log_cgroup_timings(manager)
    with UndoStack() as undo:
        console_fd = opts.console_fd
        if opts.console_socket:
            from pyrunc.linux import console

            console_fd = console.connect_console_socket(opts.console_socket)
            undo.callback(os.close, console_fd)
        lock = claim_container(st, undo, container_id, cfg, manager)
        # What the init (or stage1) is cloned into; the rest while its code loads.
        for warning in manager.prepare():
            log.warning(warning)
        log.phase("state dir")
        fifo_path = st.path(container_id, store_mod.FIFO_FILE)
        os.mkfifo(fifo_path, 0o600)
        # Read and write: the init is a writer too, so `start` leaving without
        # its byte (killed) does not end the init's wait with an EOF.
        fifo_fd = os.open(fifo_path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        start_status_fd = -1
        if cfg.hooks["poststart"]:
            # `start` must see the program executed before it runs poststart
            # (config.md: poststart runs "after the user-specified process is
            # executed"). O_RDWR: never blocks, and the init stays a writer
            # until its execve closes the fd.
            status_path = st.path(container_id, store_mod.START_STATUS_FILE)
            os.mkfifo(status_path, 0o600)
            start_status_fd = os.open(status_path, os.O_RDWR | os.O_CLOEXEC)
        ctx = InitContext(container_id, cfg, None, fifo_fd, manager, layout, no_pivot=opts.no_pivot,
                          no_new_keyring=opts.no_new_keyring, preserve_fds=preserve,
                          wait_for_init=opts.wait_for_init, seccomp_program=seccomp_program,
                          console_fd=console_fd, start_status_fd=start_status_fd)

        # The parent's steps (cgroups and limits, the fork, the runtime
        # hooks, the seccomp listener) are the launch sequence's.
        launched = LaunchSequence(ctx, undo, close_in_child=(lock.fd, *manager.private_fds()),
                                  rootless=opts.rootless).run()
        faults.point("create:after-launch")
        record = new_record(cfg, container_id, launched.init_pid, launched.start_time, manager, seccomp_program)
        if seccomp_program is not None:
            store_mod.write_file(st.path(container_id, store_mod.SECCOMP_FILE), seccomp_program.bpf, 0o600,
                                 container_id)
        st.save_init(container_id, launched.init_pid, launched.start_time, record.cgroups)
        faults.point("create:before-state-save")
        st.save_record(record)
        faults.point("create:after-state-save")
        faults.point("create:before-pid-file")
        if opts.pid_file:
            store_mod.write_file(os.path.abspath(opts.pid_file), str(launched.init_pid).encode(), 0o644, "--pid-file")
        log.phase("state saved")
        undo.pop_all()
    lock.close()
    if opts.console_socket:
        os.close(console_fd)  # the init has its own copy, and sent the pty through it
    return launched


class UndoStack:
    """What a failed create must undo, run last-in first-out when the block
    exits with an exception. A failing undo step is a warning and the others
    still run (contextlib.ExitStack would let it replace the real error, and
    costs 2 ms to import)."""

    def __init__(self):
        self._callbacks: list = []

    def callback(self, func, *args) -> None:
        self._callbacks.append((func, args))

    def pop_all(self) -> None:
        """Success: keep everything that was made."""
        self._callbacks.clear()

    def __enter__(self) -> "UndoStack":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        while self._callbacks:
            func, args = self._callbacks.pop()
            try:
                func(*args)
            except Exception as err:  # keep undoing; the original error is what the user sees
                log.warning(f"cleanup after failed create: {getattr(func, '__name__', func)}: {err}")
        return False


def new_record(cfg, container_id: str, pid: int, start_time: int, manager, seccomp_program) -> ContainerRecord:
    """The state of a container whose init exists (create, restore)."""
    return ContainerRecord(
        oci_version=cfg.oci_version,
        id=container_id,
        pid=pid,
        bundle=cfg.bundle,
        rootfs=cfg.root_path,
        created=store_mod.rfc3339_nano(time.time_ns()),
        annotations=cfg.annotations,
        start_time=start_time,
        cgroups=manager.to_state(),
        resources=cfg.linux.resources,
        shared_pid_namespace=_shares_pid_namespace(cfg),
        hooks={k: [h.to_dict() for h in v] for k, v in cfg.hooks.items() if v},
        # What `exec` needs of the config, as it was at create time.
        process=cfg.process_dict,
        seccomp=_seccomp_state(cfg, seccomp_program),
    )


def _seccomp_state(cfg, program) -> dict | None:
    """The compiled filter lives beside state.json (seccomp.bpf), so `exec`
    applies the container's profile without compiling it again."""
    if program is None:
        return None
    profile = cfg.linux.seccomp
    return {"flags": program.flags, "notify": program.uses_notify, "listenerPath": profile.get("listenerPath", ""),
            "listenerMetadata": profile.get("listenerMetadata", "")}


def _compile_seccomp(cfg, cache_dir: str | None = None):
    """linux.seccomp → BPF, before anything exists (a bad profile is a clean
    error); None when the config has no profile."""
    if cfg.linux.seccomp is None:
        return None
    from pyrunc.linux import seccomp

    program = seccomp.compile_profile_cached(cfg.linux.seccomp, cache_dir or seccomp.CACHE_DIR)
    for warning in program.warnings:
        log.warning(f"config.json: {warning}")
    if program.uses_notify and not cfg.linux.seccomp.get("listenerPath"):
        raise PyruncError("config.json: linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY")
    log.phase("seccomp compiled")
    return program


def _refuse_sysctls_in_host_namespaces(cfg) -> None:
    """A namespace joined by path may be the host's own (runc refuses
    sysctls there too): a sysctl would change the host."""
    from pyrunc.linux import namespaces, sysctl

    for key in cfg.linux.sysctl:
        kind = sysctl.parse(key).namespace
        ns = cfg.linux.namespace(kind) if kind else None
        if ns is None or not ns.path:
            continue
        try:
            joined = os.stat(ns.path).st_ino
            ours = os.stat(f"/proc/self/ns/{namespaces.PROC_NAMES[kind]}").st_ino
        except OSError:
            continue  # joining it reports the problem
        if joined == ours:
            raise ConfigError([(f'linux.sysctl["{key}"]', f'the {kind} namespace joined by path ("{ns.path}") is '
                                                          "the host's own; refusing to change the host")])


def _check_unprivileged(cfg) -> None:
    """A user other than root runs only what a user namespace of its own can
    hold (runc's rootless validation): without one, every step would need
    the host's root and fail half-way, or worse, act in the host's."""
    for i, entry in enumerate(cfg.mounts):
        if entry.idmapped:
            # As runc 1.2: the mount's user namespace and its maps need the host's root.
            raise ConfigError([(f"mounts[{i}]", "idmapped mounts are not supported for rootless containers")])
    user_ns = cfg.linux.namespace("user")
    if user_ns is None:
        raise ConfigError([("linux.namespaces", 'a rootless container requires a user namespace; add {"type": '
                                                '"user"} (`pyrunc spec --rootless` writes one)')])
    if not user_ns.path:
        for field, mappings in (("linux.uidMappings", cfg.linux.uid_mappings),
                                ("linux.gidMappings", cfg.linux.gid_mappings)):
            if not mappings:
                raise ConfigError([(field, "a rootless container's new user namespace needs mappings "
                                           "(at least your own id to 0)")])


def _check_lsm_labels(cfg) -> None:
    """Refuse labels this host cannot apply, before anything is made."""
    if not (cfg.process.apparmor_profile or cfg.process.selinux_label or cfg.linux.mount_label):
        return
    from pyrunc.linux import lsm

    log.debug(lsm.describe_host())
    problems = lsm.unavailable_labels(cfg.process.apparmor_profile, cfg.process.selinux_label,
                                      cfg.linux.mount_label)
    if problems:
        raise ConfigError(problems)


def _check_terminal(cfg, opts: CreateOptions) -> None:
    """Refuse a terminal nobody will receive, before anything is created."""
    if cfg.process.terminal:
        if not opts.console_socket and opts.console_fd < 0:
            raise PyruncError("process.terminal is true, so --console-socket is required "
                              "(or `pyrunc run` in the foreground, which relays the terminal)")
    elif opts.console_socket:
        raise PyruncError("--console-socket given, but process.terminal is false in config.json")


def check_caller_fds(preserve_fds: int, listen_fds: int = 0) -> None:
    """First thing in create and run: --preserve-fds and LISTEN_FDS name fds
    the caller really passed."""
    if listen_fds:
        check_preserved_fds(listen_fds, "LISTEN_FDS")
    check_preserved_fds(listen_fds + preserve_fds)


def listen_fds_from_env() -> int:
    """Socket activation (sd_listen_fds, as runc reads it): LISTEN_FDS
    counts, when LISTEN_PID names this process."""
    value = os.environ.get("LISTEN_FDS", "")
    if value.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return int(value)
    return 0


def _shares_pid_namespace(cfg) -> bool:
    ns = cfg.linux.namespace("pid")
    return ns is None or bool(ns.path)


def claim_container(st: Store, undo, container_id: str, cfg, manager):
    """The container's directory, locked (create, restore), and a partial
    state: if this process is killed from here on, `delete` finds the
    cgroups it made (whose processes are ours). `undo` removes them all.
    Returns the lock."""
    lock = st.create(container_id)
    undo.callback(st.remove, container_id)
    undo.callback(lock.close)
    st.save_record(ContainerRecord(container_id, keys=PARTIAL_KEYS, oci_version=cfg.oci_version, bundle=cfg.bundle,
                                   rootfs=cfg.root_path, annotations=cfg.annotations,
                                   cgroups=manager.partial_state(), creating=True))
    faults.point("create:after-state-dir")
    undo.callback(_destroy_cgroups, manager)
    return lock


def _destroy_cgroups(manager) -> None:
    # Only what this create made: any process in it is ours.
    for problem in manager.destroy(kill=True):
        log.warning(problem)
