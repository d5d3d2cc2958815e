"""The one ctypes module: thin, typed wrappers over the system calls `os` lacks.

Each wrapper raises OSError(errno, strerror, target) on failure, so callers can
turn it into a KernelError naming the operation and its target.
Imports: ctypes only.
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers the C library does not wrap, per architecture.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "open_tree": 428, "move_mount": 429, "clone3": 435, "close_range": 436,
               "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "open_tree": 428, "move_mount": 429, "clone3": 435, "close_range": 436,
                "openat2": 437, "mount_setattr": 442},
}
ARCH = os.uname().machine
_NR = _SYSCALLS.get(ARCH, {})

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# clone(2) namespace flags (linux/sched.h)
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# openat2(2) resolve flags (linux/openat2.h)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2

# mount_setattr(2) (linux/mount.h); AT_EMPTY_PATH is not in the os module before Python 3.14
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# open_tree(2) and move_mount(2) (linux/mount.h)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_c_char_p = ctypes.c_char_p
_c_int = ctypes.c_int
_c_ulong = ctypes.c_ulong
_c_long = ctypes.c_long

_mount = _libc.mount
_mount.argtypes = (_c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_char_p)
_mount.restype = _c_int
_umount2 = _libc.umount2
_umount2.argtypes = (_c_char_p, _c_int)
_umount2.restype = _c_int
_unshare = _libc.unshare
_unshare.argtypes = (_c_int,)
_unshare.restype = _c_int
_setns = _libc.setns
_setns.argtypes = (_c_int, _c_int)
_setns.restype = _c_int
_sethostname = _libc.sethostname
_sethostname.argtypes = (_c_char_p, ctypes.c_size_t)
_sethostname.restype = _c_int
_setdomainname = _libc.setdomainname
_setdomainname.argtypes = (_c_char_p, ctypes.c_size_t)
_setdomainname.restype = _c_int
_prctl = _libc.prctl
_prctl.argtypes = (_c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
_prctl.restype = _c_int
_syscall = _libc.syscall
_syscall.restype = _c_long


def _fail(target: str | None = None):
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), target)


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    if _mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        _fail(target)


def umount2(target: str, flags: int = 0) -> None:
    if _umount2(_b(target), flags) != 0:
        _fail(target)


def unshare(flags: int) -> None:
    if _unshare(flags) != 0:
        _fail()


def setns(fd: int, nstype: int = 0) -> None:
    if _setns(fd, nstype) != 0:
        _fail()


def sethostname(name: str) -> None:
    raw = name.encode()
    if _sethostname(raw, len(raw)) != 0:
        _fail()


def setdomainname(name: str) -> None:
    raw = name.encode()
    if _setdomainname(raw, len(raw)) != 0:
        _fail()


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result = _prctl(option, arg2, arg3, arg4, arg5)
    if result < 0:
        _fail()
    return result


def pivot_root(new_root: str, put_old: str) -> None:
    if _syscall(_c_long(_NR["pivot_root"]), _b(new_root), _b(put_old)) != 0:
        _fail(new_root)


def close_range(first: int, last: int, flags: int = 0) -> None:
    if _syscall(_c_long(_NR["close_range"]), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)) != 0:
        _fail()


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open `path` relative to `dir_fd` under the `resolve` rules."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _syscall(_c_long(_NR["openat2"]), _c_int(dir_fd), _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        _fail(path)
    return fd


_fstatfs = _libc.fstatfs
_fstatfs.argtypes = (_c_int, ctypes.c_void_p)
_fstatfs.restype = _c_int


def fstatfs_type(fd: int) -> int:
    """f_type of fstatfs(2): which filesystem `fd` is on (PROC_SUPER_MAGIC ...)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux; f_type first
    if _fstatfs(fd, buf) != 0:
        _fail()
    return ctypes.c_long.from_buffer(buf).value


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(dir_fd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0, propagation: int = 0,
                  userns_fd: int = 0) -> None:
    """`userns_fd`: the user namespace whose maps MOUNT_ATTR_IDMAP gives the mount."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    result = _syscall(
        _c_long(_NR["mount_setattr"]), _c_int(dir_fd), _b(path), ctypes.c_uint(flags),
        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result != 0:
        _fail(path)


def open_tree(dir_fd: int, path: str, flags: int) -> int:
    """A new fd on the mount at `path`; with OPEN_TREE_CLONE, a detached copy
    of it (and of its submounts with AT_RECURSIVE). ENOSYS before Linux 5.2."""
    if "open_tree" not in _NR:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), path)  # no number known for this architecture
    fd = _syscall(_c_long(_NR["open_tree"]), _c_int(dir_fd), _b(path), ctypes.c_uint(flags))
    if fd < 0:
        _fail(path)
    return fd


def move_mount(from_fd: int, from_path: str, to_fd: int, to_path: str, flags: int) -> None:
    if "move_mount" not in _NR:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), to_path)
    result = _syscall(_c_long(_NR["move_mount"]), _c_int(from_fd), _b(from_path), _c_int(to_fd), _b(to_path),
                      ctypes.c_uint(flags))
    if result != 0:
        _fail(to_path)


_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> int:
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING): a fresh session keyring, so the
    container does not share the caller's keys."""
    nr = _KEYCTL.get(ARCH)
    if nr is None:
        raise OSError(38, os.strerror(38))
    result = _syscall(_c_long(nr), _c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name))
    if result < 0:
        _fail()
    return result


_MORE = {
    "x86_64": {"sched_setattr": 314, "ioprio_set": 251},
    "aarch64": {"sched_setattr": 274, "ioprio_set": 30},
}.get(ARCH, {})


def sched_setattr(pid: int, attr: bytes) -> None:
    buf = ctypes.create_string_buffer(attr, len(attr))
    if _syscall(_c_long(_MORE["sched_setattr"]), _c_int(pid), buf, ctypes.c_uint(0)) != 0:
        _fail()


def ioprio_set(which: int, who: int, ioprio: int) -> None:
    if _syscall(_c_long(_MORE["ioprio_set"]), _c_int(which), _c_int(who), _c_int(ioprio)) != 0:
        _fail()


_personality = _libc.personality
_personality.argtypes = (ctypes.c_ulong,)
_personality.restype = _c_int


def personality(persona: int) -> None:
    if _personality(persona) == -1:
        _fail()



class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


_SECCOMP_NR = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER = 1


def seccomp_set_mode_filter(flags: int, bpf: bytes) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, program); the result is the
    listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0."""
    count = len(bpf) // 8
    buffer = (_SockFilter * count).from_buffer_copy(bpf)
    prog = _SockFprog(count, ctypes.cast(buffer, ctypes.POINTER(_SockFilter)))
    result = _syscall(_c_long(_SECCOMP_NR[ARCH]), ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                      ctypes.byref(prog))
    if result < 0:
        _fail()
    return result


# ---- fork straight into new namespaces and a cgroup v2 directory

CLONE_CHILD_CLEARTID = 0x00200000
CLONE_CHILD_SETTID = 0x01000000
CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls", "set_tid",
        "set_tid_size", "cgroup")]


# A PyDLL call keeps the GIL, as os.fork() does around fork().
_syscall_keeping_gil = ctypes.PyDLL(None, use_errno=True).syscall
_syscall_keeping_gil.restype = _c_long
_pthread_self = _libc.pthread_self
_pthread_self.restype = ctypes.c_void_p


def _own_tid_address() -> int | None:
    """Where the C library keeps the calling thread's tid (glibc's
    struct pthread.tid, whose offset it publishes for debuggers). Its fork()
    has the kernel write the child's tid there; so must ours, or the child's
    library would go on believing it is the parent's thread."""
    try:
        bits, _, offset = (ctypes.c_uint32 * 3).in_dll(_libc, "_thread_db_pthread_tid")
    except ValueError:
        return None
    if bits != 32:
        return None
    return _pthread_self() + offset


def clone3(namespace_flags: int = 0, cgroup_dir_fd: int = -1) -> int:
    """os.fork(), but the child starts in the new namespaces
    `namespace_flags` (CLONE_NEW*) and, with `cgroup_dir_fd`, as a member of
    that cgroup v2 directory (CLONE_INTO_CGROUP, Linux 5.7).

    Why: moving a process later (a write to cgroup.procs) takes the kernel's
    global cgroup lock for writing, and that waits an RCU grace period, 6-15 ms;
    a child born in the cgroup never moves. And a child born in its pid
    namespace is pid 1 there without a second fork. Mirrors os.fork(): the
    interpreter's before/after-fork work runs around the call, which keeps
    the GIL (PyDLL). Only for a single-threaded caller: C-level
    pthread_atfork handlers do not run. Raises OSError where the kernel, a
    seccomp filter or the C library says no; then fork and do the rest in
    the child instead."""
    tid_address = _own_tid_address()
    if tid_address is None or "clone3" not in _NR:
        raise OSError(38, "clone3 is not available here")
    if len(os.listdir("/proc/self/task")) != 1:
        raise OSError(22, "clone3 needs a single-threaded caller")
    flags = namespace_flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID
    if cgroup_dir_fd >= 0:
        flags |= CLONE_INTO_CGROUP
    args = _CloneArgs(flags=flags, child_tid=tid_address, exit_signal=_SIGCHLD,
                      cgroup=max(cgroup_dir_fd, 0))
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _syscall_keeping_gil(_c_long(_NR["clone3"]), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return pid
