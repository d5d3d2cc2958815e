"""The last steps before a container process runs, shared by the container
init and `exec`: rlimits, scheduling, LSM labels, seccomp, user and
capabilities, cwd, the program lookup, no_new_privs, the fd sweep; the
stub (linux.trampoline) does the rest.

The order is the contract (runc's standard_init_linux.go follows the same):
  0. HOME from the container's /etc/passwd when process.env has none;
  1. rlimits, scheduler, I/O priority: raising them needs privileges the
     process may drop below;
  2. LSM exec labels: written to /proc/self/attr, they apply at execve;
  3. seccomp, when no_new_privs is off: loading a filter without it needs
     CAP_SYS_ADMIN, so before the capability drop;
  4. chdir(cwd) with the runtime's rights (runc's order), checked to be
     inside the root (CVE-2024-21626); as the user after step 5 only if
     those rights were refused;
  5. groups, gid, uid, then the capability sets (keep-caps across the switch);
  6. the program looked up with the container's PATH: "not found" is an
     error of `create`, not a silent exit after `start`;
  7. no_new_privs;
  8. every fd but 0-2 and the preserved ones made close-on-exec;
  9. seccomp when no_new_privs is on: by the stub, as close to execve as
     possible, so the profile has to allow the fewest runtime syscalls
     (send, poll, read, execve: as with runc), and not clone even when the
     stub forks the process into the container.
System calls go through `kernel` (linux.syscalls.Kernel; REAL by default).
Imports: errors, linux.*, spec.model (types and DEFAULT_PATH).
"""

from __future__ import annotations

import errno
import stat

import _signal

from pyrunc import oslite as os
from pyrunc.errors import KernelError, ProgramError, PyruncError, SetupError
from pyrunc.linux import _libc, capabilities, mounts, trampoline
from pyrunc.linux.syscalls import REAL, Kernel
from pyrunc.linux.rlimits import RLIMITS
from pyrunc.spec.model import DEFAULT_PATH

SIGPIPE, SIGXFSZ = 13, 25


def finalize(process, *, seccomp_program=None, preserve_fds: int = 0, send_listener=None,
             personality: dict | None = None, program_path: str = "", tty_fd: int = -1,
             kernel: Kernel = REAL) -> str:
    """Steps 1-8 above; returns the resolved path of process.args[0] (or the
    checked `program_path`, a hook's). The stub loads a filter that waits
    for no_new_privs (step 9): see init.stage2.become_the_stub. `tty_fd`:
    the terminal the stub will make the process's stdio. `kernel`: the
    system calls (linux.syscalls)."""
    # The stub's sealed memfd, made before any filter could forbid memfd_create.
    if trampoline.supported():
        kernel.sealed_stub_fd()
    set_home(process, kernel=kernel)
    _set_rlimits(process.rlimits, kernel=kernel)
    if process.scheduler:
        set_scheduler(process.scheduler)
    if process.io_priority:
        set_io_priority(process.io_priority)
    if personality:
        set_personality(personality)
    set_lsm_labels(process.apparmor_profile, process.selinux_label, kernel=kernel)
    give_stdio_to_user(process.user.uid, [tty_fd] if tty_fd >= 0 else [0, 1, 2], kernel=kernel)
    # Python ignores SIGPIPE and SIGXFSZ for itself; the program must start
    # with the default dispositions, as after any exec. Restored before
    # seccomp, so a profile need not allow rt_sigaction for it.
    kernel.signal(SIGPIPE, _signal.SIG_DFL)
    kernel.signal(SIGXFSZ, _signal.SIG_DFL)
    # The cwd is entered with the runtime's rights first, as runc does: a
    # directory the user cannot search (the user's own home under a 0700
    # /home, /root for a non-root user) is still its cwd. Only where those
    # rights are refused (root squashed on NFS, unmapped in a user
    # namespace) does the user try after the switch.
    entered = _chdir_and_verify(process.cwd, retry_as_user=True, kernel=kernel)
    if seccomp_program is not None and not process.no_new_privileges:
        _load_seccomp(seccomp_program, send_listener, kernel=kernel)
    set_user_and_caps(process, kernel=kernel)
    if not entered:
        # The profile may deny getcwd now (runtime-tools' linux_seccomp does);
        # the path was resolved in the root all the same.
        _chdir_and_verify(process.cwd, may_skip_check=seccomp_program is not None, kernel=kernel)
    if program_path:
        _check_executable(program_path, program_path, kernel=kernel)
        path = program_path
    else:
        path = look_path(process.args[0], process, kernel=kernel)
    if process.no_new_privileges:
        kernel.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
    kernel.make_inheritable(3, preserve_fds)
    kernel.mark_cloexec_from(3 + preserve_fds)
    return path


# /etc/passwd is the container's: read no more than this of it.
PASSWD_LIMIT = 4 << 20


def set_home(process, *, kernel: Kernel = REAL) -> None:
    """HOME, when process.env has none (or an empty one), from the
    container's /etc/passwd for the process's uid, "/" without an entry, as
    runc and crun set it (shells and tools expect it). Read before the user
    switch, as runc does: the file may be unreadable to the user."""
    if process.env_value("HOME"):
        return
    try:
        fd = kernel.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a fifo must not block us
    except OSError:
        data = b""
    else:
        try:
            data = _read_passwd(fd, kernel=kernel)
        finally:
            kernel.close(fd)
    process.env = [e for e in process.env if not e.startswith("HOME=")] + [f"HOME={home_of(data, process.user.uid)}"]


def _read_passwd(fd: int, *, kernel: Kernel) -> bytes:
    try:
        if not stat.S_ISREG(kernel.fstat(fd).st_mode):
            return b""
        return kernel.read(fd, PASSWD_LIMIT)
    except OSError:
        return b""


def home_of(passwd: bytes, uid: int) -> str:
    """The home directory of the first passwd(5) entry with `uid`; "/"
    when there is none or it names none."""
    for line in passwd.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2].strip() == str(uid):
            return fields[5] or "/"
    return "/"


def give_stdio_to_user(uid: int, fds: list[int], *, kernel: Kernel = REAL) -> None:
    """The process's terminal, or the files, pipes and sockets it gets as
    stdio, are made its user's (the group kept: devpts gives the tty group),
    as runc does: a non-root user can then reopen them (/dev/stdout,
    /proc/self/fd/1) and use its console. Unlike runc, a character device
    among the caller's stdio (a host terminal, /dev/null) is never given
    away. Owners the namespace cannot map are skipped."""
    for fd in fds:
        try:
            st = kernel.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid:
            continue
        if fd in (0, 1, 2) and stat.S_ISCHR(st.st_mode):
            continue
        try:
            kernel.fchown(fd, uid, -1)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.EPERM):
                raise KernelError("give the process's stdio to", f"uid {uid}", err.errno) from None


def _chdir(cwd: str, retry_as_user: bool = False, *, kernel: Kernel) -> bool:
    """chdir to `cwd` resolved in the root as a path: a /proc magic link in
    it (/proc/self/fd/N, /proc/self/cwd) is refused, never followed to where
    it points (CVE-2024-21626 class). With the caller's credentials (fchdir
    checks search permission). With `retry_as_user`, a refusal of those
    rights (EACCES, EPERM) returns False: try again after the user switch."""
    try:
        root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = mounts.open_in_root(root_fd, cwd, os.O_PATH | os.O_DIRECTORY, kernel=kernel)
        finally:
            kernel.close(root_fd)
        try:
            kernel.fchdir(fd)
        finally:
            kernel.close(fd)
    except OSError as err:
        if retry_as_user and err.errno in (errno.EACCES, errno.EPERM):
            return False
        why = "a /proc magic link or a symlink loop" if err.errno == errno.ELOOP else err.strerror.lower()
        raise SetupError(f'process.cwd: chdir to "{cwd}": {why}', err.errno) from None
    return True


def _chdir_and_verify(cwd: str, retry_as_user: bool = False, may_skip_check: bool = False, *,
                      kernel: Kernel) -> bool:
    """_chdir, then check where it landed: False (nothing done) when it is
    to be retried as the user."""
    if not _chdir(cwd, retry_as_user, kernel=kernel):
        return False
    # A cwd reached through a leaked fd (/proc/self/fd/N) could sit outside
    # the root; the kernel then reports it as "(unreachable)/..." (CVE-2024-21626).
    try:
        where = kernel.getcwd()
    except PermissionError:
        if may_skip_check:  # getcwd denied by the container's seccomp profile
            return True
        raise
    if not where.startswith("/"):
        raise PyruncError(f'process.cwd: "{cwd}" is outside the container\'s root')
    return True


def _load_seccomp(program, send_listener, *, kernel: Kernel) -> None:
    listener = kernel.load_seccomp(program)
    if listener is not None:
        if send_listener is None:
            raise PyruncError("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
        send_listener(listener)
        kernel.close(listener)


def write_oom_score_adj(value: int) -> None:
    """process.oomScoreAdj; written before any user namespace, where lowering
    it would need CAP_SYS_RESOURCE in the host's namespace."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as err:
        raise KernelError("set process.oomScoreAdj to", str(value), err.errno) from None


def _set_rlimits(rlimits, *, kernel: Kernel) -> None:
    for i, limit in enumerate(rlimits):
        soft = -1 if limit.soft >= 1 << 63 else limit.soft
        hard = -1 if limit.hard >= 1 << 63 else limit.hard
        try:
            kernel.prlimit(0, RLIMITS[limit.type], (soft, hard))
        except (OSError, ValueError) as err:
            reason = err.strerror.lower() if isinstance(err, OSError) else str(err)
            raise PyruncError(f"process.rlimits[{i}]: setrlimit {limit.type}: {reason}") from None


SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}


def set_scheduler(scheduler: dict) -> None:
    """process.scheduler through sched_setattr(2)."""
    import struct

    flags = 0
    for name in scheduler.get("flags") or ():
        flags |= SCHED_FLAGS.get(name, 0)
    # struct sched_attr (SCHED_ATTR_SIZE_VER0 = 48 bytes)
    attr = struct.pack("=IIQiIQQQ", 48, SCHED_POLICIES[scheduler["policy"]], flags, scheduler.get("nice", 0),
                       scheduler.get("priority", 0), scheduler.get("runtime", 0), scheduler.get("deadline", 0),
                       scheduler.get("period", 0))
    try:
        _libc.sched_setattr(0, attr)
    except OSError as err:
        raise KernelError("set process.scheduler", scheduler["policy"], err.errno) from None


IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def set_io_priority(io_priority: dict) -> None:
    """process.ioPriority through ioprio_set(2) (IOPRIO_WHO_PROCESS, self)."""
    value = IOPRIO_CLASSES[io_priority["class"]] << 13 | io_priority.get("priority", 0)
    try:
        _libc.ioprio_set(1, 0, value)
    except OSError as err:
        raise KernelError("set process.ioPriority", io_priority["class"], err.errno) from None


PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


def set_personality(personality: dict) -> None:
    """linux.personality: the execution domain the program starts in."""
    try:
        _libc.personality(PERSONALITY_DOMAINS[personality["domain"]])
    except OSError as err:
        raise KernelError("set linux.personality", personality["domain"], err.errno) from None


def set_lsm_labels(apparmor_profile: str, selinux_label: str, *, kernel: Kernel = REAL) -> None:
    """AppArmor profile and SELinux label for the next execve (create and
    exec have refused labels whose module this host lacks)."""
    if apparmor_profile:
        _write_attr(("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"), f"exec {apparmor_profile}",
                    "process.apparmorProfile", kernel=kernel)
    if selinux_label:
        _write_attr(("/proc/self/attr/exec",), selinux_label, "process.selinuxLabel", kernel=kernel)


def _write_attr(paths: tuple[str, ...], value: str, field: str, *, kernel: Kernel = REAL) -> None:
    for path in paths:
        try:
            fd = mounts.open_own_proc_file(path, os.O_WRONLY | os.O_CLOEXEC, kernel=kernel)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise KernelError(f"set {field} through", path, err.errno) from None
        try:
            kernel.write(fd, value.encode())
            return
        except OSError as err:
            raise KernelError(f"set {field} through", path, err.errno) from None
        finally:
            kernel.close(fd)
    raise PyruncError(f"{field}: this kernel has no /proc/self/attr interface for it")


def _setgroups_allowed(*, kernel: Kernel) -> bool:
    # An unprivileged user's own gid mapping is written only after setgroups
    # was denied in the namespace (linux.idmap); the process then keeps the
    # groups it has, as with runc.
    # Read through pyrunc's own procfs: exec's process is not "self" in the
    # container's until the stub forks it in.
    try:
        fd = mounts.open_own_proc_file("/proc/self/setgroups", os.O_RDONLY | os.O_CLOEXEC, kernel=kernel)
    except OSError:
        return True
    try:
        return kernel.read(fd, 64).strip() != b"deny"
    finally:
        kernel.close(fd)


def set_user_and_caps(process, *, kernel: Kernel = REAL) -> None:
    user = process.user
    caps = process.capabilities
    last_cap = capabilities.read_cap_last_cap()
    if caps is not None:
        # The bounding set first: dropping needs CAP_SETPCAP, which the
        # container may not keep.
        kernel.drop_bounding(capabilities.numbers(caps["bounding"], last_cap), last_cap)
    # Keep the permitted set across the switch away from uid 0.
    kernel.prctl(capabilities.PR_SET_KEEPCAPS, 1)
    if _setgroups_allowed(kernel=kernel):
        try:
            kernel.setgroups(user.additional_gids)
        except OSError as err:
            raise KernelError("setgroups", str(user.additional_gids), err.errno) from None
    elif user.additional_gids:
        raise PyruncError("process.user.additionalGids: cannot be set: setgroups is denied in this user namespace "
                          "(a single gid mapping made without newgidmap)")
    try:
        kernel.setresgid(user.gid, user.gid, user.gid)
        kernel.setresuid(user.uid, user.uid, user.uid)
    except OSError as err:
        raise KernelError("set user", f"{user.uid}:{user.gid}", err.errno) from None
    kernel.prctl(capabilities.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        try:
            kernel.set_process_caps(
                capabilities.numbers(caps["effective"], last_cap),
                capabilities.numbers(caps["permitted"], last_cap),
                capabilities.numbers(caps["inheritable"], last_cap),
                capabilities.numbers(caps["ambient"], last_cap),
                last_cap,
            )
        except OSError as err:
            raise KernelError("set capabilities", "", err.errno) from None
    kernel.umask(user.umask if user.umask is not None else 0o022)


def look_path(program: str, process, *, kernel: Kernel = REAL) -> str:
    """Go's exec.LookPath with the container's PATH, checked for the user.

    Plain access(2), not faccessat2 (what `effective_ids=True` calls): the
    user's real and effective ids are the same by now, and a seccomp profile
    already loaded (noNewPrivileges off) may predate faccessat2 (Linux 5.8);
    glibc falls back to faccessat only on ENOSYS, not on the profile's EPERM."""
    if "/" in program:
        _check_executable(program, program, kernel=kernel)
        return program
    path_var = process.env_value("PATH")
    if path_var is None:
        path_var = DEFAULT_PATH
    for directory in path_var.split(":"):
        candidate = os.path.join(directory or ".", program)
        if kernel.isfile(candidate) and kernel.access(candidate, os.X_OK):
            return candidate
    raise ProgramError(f'exec: "{program}": executable file not found in $PATH', errno.ENOENT)


# Paths only the process itself resolves: the process that sets it up may
# not be "self" in the container's /proc (it is outside the pid namespace).
# The stub's execve answers for those (127 or 126 as its exit code: errors.program_exit_code).
_OWN_PATHS = ("/proc/self/", "/proc/thread-self/", "/dev/fd/", "/dev/stdin", "/dev/stdout", "/dev/stderr")


def _check_executable(program: str, path: str, *, kernel: Kernel = REAL) -> None:
    try:
        st = kernel.stat(path)
    except FileNotFoundError:
        if path.startswith(_OWN_PATHS):
            return
        raise ProgramError(f'exec: "{program}": stat {path}: no such file or directory', errno.ENOENT) from None
    except OSError as err:
        raise ProgramError(f'exec: "{program}": stat {path}: {err.strerror.lower()}', err.errno) from None
    if stat.S_ISDIR(st.st_mode) or not kernel.access(path, os.X_OK):
        raise ProgramError(f'exec: "{program}": permission denied', errno.EACCES)
