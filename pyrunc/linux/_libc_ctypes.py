"""The pure-Python fallback of pyrunc/linux/_sys.c: the same functions,
signatures and errors, through ctypes. _libc uses it where the C module was
not built (an install without a compiler, an interpreter other than the one
it was built for); tests/unit/test_libc_impls.py holds the two to the same
results.
Imports: ctypes only.
"""

from __future__ import annotations

import ctypes
import errno

from pyrunc import oslite as os

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers the C library does not wrap, per architecture.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "bpf": 321, "open_tree": 428, "move_mount": 429, "clone3": 435,
               "close_range": 436, "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "bpf": 280, "open_tree": 428, "move_mount": 429, "clone3": 435,
                "close_range": 436, "openat2": 437, "mount_setattr": 442},
}
ARCH = os.uname().machine
_NR = _SYSCALLS.get(ARCH, {})

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


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """The effective, permitted and inheritable sets, exactly (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
                          _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
    if _libc.capset(ctypes.byref(header), data) != 0:
        _fail()


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


# ---- bpf(2)

_MAX_POINTERS = 4


def bpf(cmd: int, attr: bytearray, pointers=()) -> int:
    """bpf(2) with `attr` (the union bpf_attr's prefix) as given, after
    writing into it the address of each (offset, writable buffer) of
    `pointers`."""
    if "bpf" not in _NR:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))  # no number known for this architecture
    if len(pointers) > _MAX_POINTERS:
        raise ValueError("bpf: too many pointers")
    attr_view = (ctypes.c_char * len(attr)).from_buffer(attr)
    held = []  # alive until the call returns
    for offset, buffer in pointers:
        if offset < 0 or offset + 8 > len(attr):
            raise ValueError("bpf: pointer offset outside attr")
        view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
        held.append(view)
        attr[offset:offset + 8] = ctypes.addressof(view).to_bytes(8, "little")
    result = _syscall(_c_long(_NR["bpf"]), _c_int(cmd), attr_view, ctypes.c_uint(len(attr)))
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


def clone3_fork(namespace_flags: int, cgroup_dir_fd: int) -> int:
    """_libc.clone3 once it has checked that the caller is single-threaded;
    the call keeps the GIL (PyDLL), as os.fork() does around fork()."""
    tid_address = _own_tid_address()
    if tid_address is None or "clone3" not in _NR:
        raise OSError(38, "clone3 is not available here")
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
