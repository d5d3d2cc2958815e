"""stage2: the container init. Builds the container, waits for `start`, execs.

The steps run in a fixed order; each comment says why it sits where it does.
Errors before "ready" go back to `pyrunc create` over the sync socket, which
reports them and removes the container. After "ready" the init waits on the
exec fifo; `pyrunc start` writes one byte into it.
Imports: sync, init.context, linux.* (no pyseccomp, nothing heavy).
"""

from __future__ import annotations

import os
import resource
import select
import stat

# Imported now, not when first used: after pivot_root the host's Python
# library is out of reach, so every module the init needs must be loaded
# before the rootfs is entered (python-prctl's C module for capabilities).
import _prctl  # noqa: F401
import _signal

from pyrunc import sync
from pyrunc.errors import KernelError, PyruncError
from pyrunc.init.context import InitContext, describe_error
from pyrunc.linux import _libc, capabilities, fds, rootfs, trampoline
from pyrunc.linux.rlimits import RLIMITS
from pyrunc.spec.model import DEFAULT_PATH

# Signals whose default action ends a process. While the init waits for
# `start` it is pid 1 of its namespace, where the kernel drops signals that
# have no handler: catch these so `kill` of a created container works.
_FATAL_SIGNALS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31)


def run(ctx: InitContext) -> None:
    """Never returns."""
    try:
        setup(ctx)
        sync.send(ctx.sock, "ready")
        ctx.sock.close()
    except BaseException as err:
        try:
            sync.send(ctx.sock, "error", msg=describe_error(err))
        except OSError:
            pass
        os._exit(1)
    _wait_for_start(ctx.fifo_fd)
    _exec(ctx)


def setup(ctx: InitContext) -> None:
    cfg = ctx.config
    process = cfg.process
    # A new session: the container's processes must not share the caller's
    # session or controlling terminal.
    os.setsid()
    # Non-dumpable until exec: container processes cannot open this
    # process's /proc entries (exe, maps, fds) while it is the host's
    # interpreter (CVE-2019-5736). execve resets it.
    _libc.prctl(_libc.PR_SET_DUMPABLE, 0)
    if not ctx.no_new_keyring:
        _join_session_keyring(ctx.container_id)

    mount_ns = cfg.linux.namespace("mount")
    if mount_ns is not None and not mount_ns.path:
        _prepare_rootfs(ctx)
    else:
        # A joined mount namespace is already set up: enter the root only.
        os.chroot(cfg.root_path)
        os.chdir("/")

    # Hostname and sysctls belong to namespaces now private to the container.
    if cfg.hostname is not None:
        _call("sethostname", f'"{cfg.hostname}"', _libc.sethostname, cfg.hostname)
    if cfg.domainname is not None:
        _call("setdomainname", f'"{cfg.domainname}"', _libc.setdomainname, cfg.domainname)
    for key, value in cfg.linux.sysctl.items():
        _write_sysctl(key, value)

    # Resource settings while still privileged: raising a hard rlimit or
    # lowering oom_score_adj needs capabilities the user may not keep.
    if process.oom_score_adj is not None:
        _write_file("/proc/self/oom_score_adj", str(process.oom_score_adj), "process.oomScoreAdj")
    _set_rlimits(process.rlimits)

    _set_user_and_caps(ctx)

    try:
        os.chdir(process.cwd)
    except OSError as err:
        raise PyruncError(f'process.cwd: chdir to "{process.cwd}": {err.strerror.lower()}') from None
    # A cwd reached through a leaked fd (/proc/self/fd/N) could sit outside
    # the root; the kernel then reports it as "(unreachable)/..." (CVE-2024-21626).
    if not os.getcwd().startswith("/"):
        raise PyruncError(f'process.cwd: "{process.cwd}" is outside the container\'s root')

    # Resolve the program now, so "not found" is a create-time error (as in runc).
    ctx.exec_path = _look_path(process.args[0], process)

    if process.no_new_privileges:
        _libc.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)

    # The trampoline's memfd must exist before the fd sweep makes it close-on-exec.
    if trampoline.supported():
        trampoline.sealed_fd()
    # Last: nothing but 0-2 and the preserved fds survive the exec (CVE-2024-21626).
    fds.make_inheritable(3, ctx.preserve_fds)
    fds.mark_cloexec_from(3 + ctx.preserve_fds)
    _install_wait_handlers()


def _prepare_rootfs(ctx: InitContext) -> None:
    cfg = ctx.config
    root = cfg.root_path
    if not os.path.isdir(root):
        raise PyruncError(f'root.path: "{root}" is not a directory')
    rootfs.set_root_propagation(cfg.linux.rootfs_propagation)
    if "shared" in cfg.linux.rootfs_propagation:
        rootfs.make_parent_private(root)
    rootfs.bind_rootfs(root)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        cgroup_mount = None
        if any(m.type == "cgroup" for m in cfg.mounts):
            from pyrunc.linux.cgroups import mount as cgroup_mounts

            def cgroup_mount(fd, entry, plan):
                cgroup_mounts.mount_cgroup(fd, entry, plan, ctx.cgroups, ctx.cgroup_layout,
                                           private_ns=_has_new_ns(cfg, "cgroup"))
        rootfs.mount_entries(root_fd, cfg.mounts, cfg.bundle, cgroup_mount)
        if rootfs.needs_dev_setup(cfg.mounts):
            in_userns = cfg.linux.namespace("user") is not None
            rootfs.create_devices(root_fd, cfg.linux.devices, use_bind=in_userns)
            has_devpts = any(m.type == "devpts" and m.destination.rstrip("/") == "/dev/pts" for m in cfg.mounts)
            rootfs.create_dev_symlinks(root_fd, has_devpts)
    finally:
        os.close(root_fd)
    if ctx.no_pivot:
        rootfs.move_root(root)
    else:
        rootfs.pivot_root(root)
    # cwd must exist; create it as root while "/" is still writable (runc does too).
    if cfg.process.cwd != "/":
        rootfs.make_directory(cfg.process.cwd, "process.cwd")
    rootfs.mask_paths(cfg.linux.masked_paths)
    rootfs.readonly_paths(cfg.linux.readonly_paths)
    if cfg.root_readonly:
        rootfs.readonly_root()
    # Last: an unbindable root would refuse the binds that masking makes.
    rootfs.apply_root_propagation(cfg.linux.rootfs_propagation)


def _has_new_ns(cfg, kind: str) -> bool:
    ns = cfg.linux.namespace(kind)
    return ns is not None and not ns.path


def _call(op: str, target: str, func, *args) -> None:
    try:
        func(*args)
    except OSError as err:
        raise KernelError(op, target, err.errno) from None


def _join_session_keyring(container_id: str) -> None:
    try:
        _libc.join_session_keyring("_ses." + container_id)
    except OSError as err:
        if err.errno != 38:  # ENOSYS: no keyrings in this kernel; best effort, as runc
            raise KernelError("join session keyring", "", err.errno) from None


def _write_file(path: str, value: str, what: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("open", f"{path} ({what})", err.errno) from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise KernelError("write", f"{path} ({what})", err.errno) from None
    finally:
        os.close(fd)


def _write_sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/") if "/" not in key else "/proc/sys/" + key.lstrip("/")
    _write_file(path, value, f"linux.sysctl {key}")


_RLIM_INFINITY = (1 << 64) - 1


def _set_rlimits(rlimits) -> None:
    for i, limit in enumerate(rlimits):
        soft = -1 if limit.soft >= 1 << 63 else limit.soft
        hard = -1 if limit.hard >= 1 << 63 else limit.hard
        try:
            resource.prlimit(0, RLIMITS[limit.type], (soft, hard))
        except (OSError, ValueError) as err:
            reason = err.strerror.lower() if isinstance(err, OSError) else str(err)
            raise PyruncError(f"process.rlimits[{i}]: setrlimit {limit.type}: {reason}") from None


def _set_user_and_caps(ctx: InitContext) -> None:
    process = ctx.config.process
    user = process.user
    caps = process.capabilities
    last_cap = capabilities.read_cap_last_cap()
    if caps is not None:
        # The bounding set first: dropping needs CAP_SETPCAP, which the
        # container may not keep.
        capabilities.drop_bounding(capabilities.numbers(caps["bounding"], last_cap), last_cap)
    # Keep the permitted set across the switch away from uid 0.
    capabilities.set_keepcaps(True)
    try:
        os.setgroups(user.additional_gids)
    except OSError as err:
        raise KernelError("setgroups", str(user.additional_gids), err.errno) from None
    try:
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as err:
        raise KernelError("set user", f"{user.uid}:{user.gid}", err.errno) from None
    capabilities.set_keepcaps(False)
    if caps is not None:
        try:
            capabilities.set_process_caps(
                capabilities.numbers(caps["effective"], last_cap),
                capabilities.numbers(caps["permitted"], last_cap),
                capabilities.numbers(caps["inheritable"], last_cap),
                capabilities.numbers(caps["ambient"], last_cap),
                last_cap,
            )
        except OSError as err:
            raise KernelError("set capabilities", "", err.errno) from None
    os.umask(user.umask if user.umask is not None else 0o022)


def _look_path(program: str, process) -> str:
    """exec.LookPath with the container's PATH, checked for the user."""
    if "/" in program:
        _check_executable(program, program)
        return program
    path_var = process.env_value("PATH")
    if path_var is None:
        path_var = DEFAULT_PATH
    for directory in path_var.split(":"):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK, effective_ids=True):
            return candidate
    raise PyruncError(f'exec: "{program}": executable file not found in $PATH')


def _check_executable(program: str, path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as err:
        raise PyruncError(f'exec: "{program}": stat {path}: {err.strerror.lower()}') from None
    if stat.S_ISDIR(st.st_mode) or not os.access(path, os.X_OK, effective_ids=True):
        raise PyruncError(f'exec: "{program}": permission denied')


def _install_wait_handlers() -> None:
    for number in _FATAL_SIGNALS:
        _signal.signal(number, _exit_on_signal)


def _exit_on_signal(number, frame) -> None:
    os._exit(128 + number)


def _wait_for_start(fifo_fd: int) -> None:
    """Block until `pyrunc start` writes a byte into the exec fifo.

    The fifo was opened O_RDONLY|O_NONBLOCK: poll() sleeps until a writer
    arrives (a fifo that never had a writer reports no POLLHUP)."""
    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    while True:
        poller.poll()
        try:
            data = os.read(fifo_fd, 1)
        except BlockingIOError:
            continue
        if data:
            break
        # The writer went away without a byte: start failed half-way.
        os._exit(1)
    os.close(fifo_fd)


def _exec(ctx: InitContext) -> None:
    process = ctx.config.process
    # Python ignores SIGPIPE and SIGXFSZ for itself; the container's program
    # must start with default dispositions, as after a plain exec.
    for number in (13, 25) + _FATAL_SIGNALS:
        _signal.signal(number, _signal.SIG_DFL)
    try:
        trampoline.execve(ctx.exec_path, process.args, process.env)
    except OSError as err:
        os.write(2, f"pyrunc: exec {process.args[0]}: {err.strerror.lower()}\n".encode())
        os._exit(127 if err.errno == 2 else 126)
