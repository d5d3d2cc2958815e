"""stage2: the container init. Builds the container, then becomes the stub,
which waits for `start` and execs the program.

The steps run in a fixed order; each comment says why it sits where it does.
Errors before "ready" go back to `pyrunc create` over the sync socket, which
reports them and removes the container. Once set up, this process becomes
the stub (linux.trampoline): in place when it is the init itself (pid 1 of
a pid namespace it was the first in, or without one of its own); when the
container joins a pid namespace by path, this process is stage1, outside
it, and the stub forks the init into it. Either way no Python process ever
appears in a pid namespace that holds anything of the container's
(CVE-2019-5736 class). The stub says "ready" and waits on the exec fifo;
`pyrunc start` writes one byte into it.
Every system call of the set-up goes through one linux.syscalls.Kernel,
passed down from setup() (REAL in the init; a recording fake in
tests/unit/test_init_sequence.py, which checks this order without root).
Imports: sync, init.{context, process}, linux.* (no pyseccomp, nothing heavy).
"""

from __future__ import annotations

import stat
import time

from pyrunc import oslite as os
from pyrunc import faults, sync
from pyrunc.errors import KernelError, PyruncError
from pyrunc.init import process as process_steps
from pyrunc.init.context import InitContext, error_message
# hooks, linux.console and linux.sysctl are loaded before the fork when the
# config needs them (launcher.load_init_code): imported below, they are cached.
from pyrunc.linux import _libc, namespaces, rootfs, trampoline
from pyrunc.linux.syscalls import REAL, Kernel


def run(ctx: InitContext) -> None:
    """Never returns: whatever happens, this forked process ends here and
    never unwinds into the code of the `pyrunc create` it was forked from."""
    try:
        _run(ctx)
    finally:
        os._exit(1)


def _run(ctx: InitContext) -> None:
    try:
        timings: dict = {}
        exec_path = setup(ctx, timings)
        faults.point("init:before-ready")
        if ctx.send_timings:
            sync.send(ctx.sock, "timings", timings=timings)
        become_the_stub(ctx, exec_path)
    except BaseException as err:
        try:
            sync.send(ctx.sock, "error", **error_message(err))
        except OSError:
            pass
        os._exit(1)


def become_the_stub(ctx: InitContext, exec_path: str) -> None:
    """The rest is the stub's: fork into the joined pid namespace (FORK, and
    REAP for `run --no-subreaper`, whose stage1 relays the exit status),
    take the terminal, load a seccomp filter that waits for no_new_privs
    (the last step but the wait: the profile needs to allow only that),
    say "ready", wait for `start`, exec. Returns only with an OSError."""
    process = ctx.config.process
    program = ctx.seccomp_program if process.no_new_privileges else None
    bpf = trampoline.seccomp_fd(program.bpf, program.flags) if program is not None else -1
    flags = trampoline.WAIT
    if ctx.joins_pid_ns:
        flags |= trampoline.FORK | trampoline.SETSID | (trampoline.REAP if ctx.wait_for_init else 0)
    sync_fd = ctx.sock.fileno()
    if bpf < 0 and ctx.tty_fd < 0 and not ctx.joins_pid_ns:
        # Nothing left that could fail and be worth reporting, nor a pid to
        # send: "ready" now, so create need not wait for the stub's exec.
        sync.send(ctx.sock, "ready")
        ctx.sock.close()
        sync_fd = -1
    trampoline.run(exec_path, process.args, process.env, flags=flags, sync=sync_fd, tty=ctx.tty_fd,
                   bpf=bpf, fifo=ctx.fifo_fd, status=ctx.start_status_fd, proc_fd=ctx.proc_fd)


def _hook_state(ctx: InitContext, status: str) -> dict:
    """The state createContainer hooks get: the pid of the process running
    them (the init in its own view, or, joining a pid namespace, this
    process outside it, in every other namespace of the container)."""
    from pyrunc import hooks

    cfg = ctx.config
    return hooks.state_document(cfg.oci_version, ctx.container_id, status, os.getpid(), cfg.bundle, cfg.annotations)


def setup(ctx: InitContext, timings: dict, kernel: Kernel = REAL) -> str:
    """Build the container; return the resolved path of the program.
    `timings` gets the milliseconds each part took (for --debug). Every
    system call goes through `kernel` (linux.syscalls; a unit test's
    recording fake in tests/unit/test_init_sequence.py)."""
    cfg = ctx.config
    started = time.perf_counter()
    # A new session: the container's processes must not share the caller's
    # session or controlling terminal.
    kernel.setsid()
    # Non-dumpable until exec: container processes cannot open this
    # process's /proc entries (exe, maps, fds) while it is the host's
    # interpreter (CVE-2019-5736). execve resets it.
    kernel.prctl(_libc.PR_SET_DUMPABLE, 0)
    if not ctx.no_new_keyring:
        _join_session_keyring(ctx.container_id, kernel=kernel)

    # The UTS namespace is the container's already: name it before the
    # createContainer hooks run, so they see the container as configured.
    if cfg.hostname is not None:
        _call("sethostname", f'"{cfg.hostname}"', kernel.sethostname, cfg.hostname)
    if cfg.domainname is not None:
        _call("setdomainname", f'"{cfg.domainname}"', kernel.setdomainname, cfg.domainname)

    mount_ns = cfg.linux.namespace("mount")
    new_mount_ns = mount_ns is not None and not mount_ns.path
    if new_mount_ns:
        _prepare_rootfs(ctx, kernel=kernel)
        timings["mounts and pivot_root"] = round((time.perf_counter() - started) * 1000, 2)
    else:
        # A joined mount namespace (or the runtime's own) is already set up:
        # the hooks run as they would before pivot_root, then enter the root.
        _run_create_hooks(ctx)
        kernel.chroot(cfg.root_path)
        kernel.chdir("/")

    if cfg.process.terminal:
        _setup_terminal(ctx, kernel=kernel)

    # Sysctls belong to namespaces now private to the container, and go in
    # through its own /proc before /proc/sys turns read-only below.
    if cfg.linux.sysctl:
        _write_sysctls(cfg.linux.sysctl, kernel=kernel)
    if new_mount_ns:
        _finish_rootfs(ctx, kernel=kernel)
    if ctx.joins_pid_ns:
        # Only now, after every process this one spawns (createContainer
        # hooks), and before the capabilities setns needs are dropped: the
        # pid namespace for the stub's child, the init.
        namespaces.join_namespaces([("pid", ctx.pid_ns_fd)])
        ctx.pid_ns_fd = -1

    mark = time.perf_counter()
    exec_path = process_steps.finalize(
        cfg.process, seccomp_program=ctx.seccomp_program, preserve_fds=ctx.preserve_fds,
        send_listener=lambda fd: sync.send_fds(ctx.sock, "seccomp-listener", [fd]),
        personality=cfg.linux.personality, tty_fd=ctx.tty_fd, kernel=kernel,
    )
    try:
        timings["process (user, caps, seccomp)"] = round((time.perf_counter() - mark) * 1000, 2)
    except OSError:
        # The seccomp filter is loaded now and may deny clock_gettime, which
        # only the vDSO answers without a system call (not on every clock
        # source: not in the TCG test VM, nor under Xen PV).
        pass
    faults.point("init:after-user-caps")
    return exec_path


def _prepare_rootfs(ctx: InitContext, kernel: Kernel) -> None:
    cfg = ctx.config
    root = cfg.root_path
    try:
        is_dir = stat.S_ISDIR(kernel.stat(root).st_mode)
    except PermissionError:
        raise PyruncError(f'root.path: "{root}" is not reachable for the container\'s root user (host uid '
                          f'{_host_uid()}): every directory above it must be searchable') from None
    except OSError as err:
        raise PyruncError(f'root.path: "{root}": {err.strerror.lower()}') from None
    if not is_dir:
        raise PyruncError(f'root.path: "{root}" is not a directory')
    rootfs.set_root_propagation(cfg.linux.rootfs_propagation, kernel=kernel)
    if "shared" in cfg.linux.rootfs_propagation:
        rootfs.make_parent_private(root, kernel=kernel)
    rootfs.bind_rootfs(root, kernel=kernel)
    root_fd = kernel.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        cgroup_mount = None
        if any(m.type == "cgroup" for m in cfg.mounts):
            from pyrunc.linux.cgroups import mount as cgroup_mounts

            def cgroup_mount(fd, entry, plan):
                cgroup_mounts.mount_cgroup(fd, entry, plan, ctx.cgroups, ctx.cgroup_layout,
                                           private_ns=_has_new_ns(cfg, "cgroup"), kernel=kernel)
        rootfs.mount_entries(root_fd, cfg.mounts, cfg.bundle, cgroup_mount, cfg.linux.mount_label,
                             pid_ns_fd=ctx.pid_ns_fd, source_fds=ctx.mount_source_fds, kernel=kernel)
        if rootfs.needs_dev_setup(cfg.mounts):
            # mknod needs the host's root: in a user namespace, the config's
            # or the one the runtime itself runs in (rootless Podman's),
            # devices are bound from the host instead, as runc does.
            in_userns = cfg.linux.namespace("user") is not None or kernel.in_user_namespace()
            rootfs.create_devices(root_fd, cfg.linux.devices, use_bind=in_userns, kernel=kernel)
            has_devpts = any(m.type == "devpts" and m.destination.rstrip("/") == "/dev/pts" for m in cfg.mounts)
            rootfs.create_dev_symlinks(root_fd, has_devpts, kernel=kernel)
    finally:
        kernel.close(root_fd)
        for fd in ctx.mount_source_fds.values():
            kernel.close(fd)
        ctx.mount_source_fds = {}
    faults.point("init:after-mounts")
    _run_create_hooks(ctx)
    faults.point("init:before-pivot")
    if ctx.no_pivot:
        rootfs.move_root(root, kernel=kernel)
    else:
        rootfs.pivot_root(root, kernel=kernel)
    faults.point("init:after-pivot")
    # cwd must exist; create it as root while "/" is still writable (runc does too).
    if cfg.process.cwd != "/":
        rootfs.make_directory(cfg.process.cwd, "process.cwd", kernel=kernel)


def _run_create_hooks(ctx: InitContext) -> None:
    """The hooks of create, once the namespaces and mounts are in place and
    before the root is entered (config.md): the parent runs prestart and
    createRuntime, then this process runs createContainer inside the
    container's namespaces, whichever mount namespace that is (its own, a
    joined one, or the runtime's)."""
    cfg = ctx.config
    if cfg.hooks["prestart"] or cfg.hooks["createRuntime"]:
        sync.send(ctx.sock, "hooks")
        sync.expect(ctx.sock, "hooks-done", "pyrunc create exited while running hooks")
    if cfg.hooks["createContainer"]:
        from pyrunc import hooks

        # In the root filesystem, before pivot_root: a hook's `mount --bind
        # x ./lib/x` lands in the container (runc's working directory there).
        hooks.run_hooks("createContainer", cfg.hooks["createContainer"], _hook_state(ctx, "created"),
                        cfg.root_path, inherited_env=cfg.process.env)


def _setup_terminal(ctx: InitContext, kernel: Kernel) -> None:
    """A pty from the container's devpts: master to the console socket, slave
    bound onto /dev/console and kept for the stub, which makes it the
    controlling terminal and fds 0-2. Before the root turns read-only, since
    /dev/console may have to be created."""
    from pyrunc.linux import console

    try:
        master, slave, slave_path = console.open_pty(kernel=kernel)
    except BaseException:
        # The console socket is closed however this step ends.
        kernel.close(ctx.console_fd)
        ctx.console_fd = -1
        raise
    try:
        size = ctx.config.process.console_size
        if size:
            console.set_window_size(slave, size[0], size[1], kernel=kernel)
        if kernel.isdir("/dev"):
            console.bind_console(slave, slave_path, kernel=kernel)
        console.send_fd(ctx.console_fd, master, "/dev/ptmx", kernel=kernel)
    except BaseException:
        kernel.close(slave)
        raise
    finally:
        kernel.close(master)
        kernel.close(ctx.console_fd)
        ctx.console_fd = -1
    ctx.tty_fd = slave


def _finish_rootfs(ctx: InitContext, kernel: Kernel) -> None:
    """After hostname and sysctls: mask, make read-only, set propagation."""
    cfg = ctx.config
    # Read-only tmpfs mounts and /dev only now: the console and the mount
    # points, devices and copies in them are made (runc's finalizeRootfs).
    rootfs.readonly_deferred_mounts(cfg.mounts, kernel=kernel)
    rootfs.mask_paths(cfg.linux.masked_paths, kernel=kernel)
    rootfs.readonly_paths(cfg.linux.readonly_paths, kernel=kernel)
    if cfg.root_readonly:
        rootfs.readonly_root(kernel=kernel)
    # Last: an unbindable root would refuse the binds that masking makes.
    rootfs.apply_root_propagation(cfg.linux.rootfs_propagation, kernel=kernel)


def _host_uid() -> str:
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, outside, _ = line.split()
                if inside == str(os.geteuid()):
                    return outside
    except OSError:
        pass
    return str(os.geteuid())


def _has_new_ns(cfg, kind: str) -> bool:
    ns = cfg.linux.namespace(kind)
    return ns is not None and not ns.path


def _call(op: str, target: str, func, *args) -> None:
    try:
        func(*args)
    except OSError as err:
        raise KernelError(op, target, err.errno) from None


def _join_session_keyring(container_id: str, kernel: Kernel) -> None:
    try:
        kernel.join_session_keyring("_ses." + container_id)
    except OSError as err:
        if err.errno != 38:  # ENOSYS: no keyrings in this kernel; best effort, as runc
            raise KernelError("join session keyring", "", err.errno) from None


def _write_sysctls(sysctls: dict, kernel: Kernel) -> None:
    """Each key beneath its namespaced subtree of the container's procfs,
    which nothing of the container's can have replaced yet (linux.sysctl)."""
    from pyrunc.linux import sysctl

    root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        proc_fd = sysctl.open_proc(root_fd, kernel=kernel)
    except OSError as err:
        raise PyruncError(f"linux.sysctl: needs the container's procfs at /proc (a mounts[] entry of type proc): "
                          f"{err.strerror.lower()}") from None
    finally:
        kernel.close(root_fd)
    try:
        for key, value in sysctls.items():
            try:
                sysctl.write(proc_fd, key, value, kernel=kernel)
            except ValueError as err:
                raise PyruncError(f"linux.sysctl[{key!r}]: {err}") from None
            except OSError as err:
                raise KernelError("write", f"linux.sysctl {key}", err.errno) from None
    finally:
        kernel.close(proc_fd)
