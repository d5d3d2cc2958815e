"""Thin, typed wrappers over the system calls `os` lacks, and their constants.

Each wrapper raises OSError(errno, strerror, target) on failure, so callers can
turn it into a KernelError naming the operation and its target.
The calls come from the C module _sys (pyrunc/linux/_sys.c, built at install)
or, where it was not built, from _libc_ctypes, the same through ctypes:
importing ctypes and declaring its prototypes costs every forking command
~2 ms of CPU, the C module ~0.1 ms. IMPLEMENTATION says which one is in use.
Imports: _sys or _libc_ctypes.
"""

from __future__ import annotations

from pyrunc import oslite as os

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

try:
    from pyrunc.linux._sys import (
        bpf, capset, clone3_fork as _clone3_fork, close_range, fstatfs_type, ioprio_set, join_session_keyring,
        mount, mount_setattr, move_mount, open_tree, openat2, personality, pivot_root, prctl, sched_setattr,
        seccomp_set_mode_filter, setdomainname, sethostname, setns, umount2, unshare,
    )

    IMPLEMENTATION = "c"
except ImportError:
    from pyrunc.linux._libc_ctypes import (  # noqa: F401 (re-exported)
        bpf, capset, clone3_fork as _clone3_fork, close_range, fstatfs_type, ioprio_set, join_session_keyring,
        mount, mount_setattr, move_mount, open_tree, openat2, personality, pivot_root, prctl, sched_setattr,
        seccomp_set_mode_filter, setdomainname, sethostname, setns, umount2, unshare,
    )

    IMPLEMENTATION = "ctypes"


def clone3(namespace_flags: int = 0, cgroup_dir_fd: int = -1) -> int:
    """os.fork(), but the child starts in the new namespaces
    `namespace_flags` (CLONE_NEW*) and, with `cgroup_dir_fd`, as a member of
    that cgroup v2 directory (CLONE_INTO_CGROUP, Linux 5.7).

    Why: moving a process later (a write to cgroup.procs) takes the kernel's
    global cgroup lock for writing, and that waits an RCU grace period, 6-15 ms;
    a child born in the cgroup never moves. And a child born in its pid
    namespace is pid 1 there without a second fork. Mirrors os.fork(): the
    interpreter's before/after-fork work runs around the call, which keeps
    the GIL. Only for a single-threaded caller: C-level pthread_atfork
    handlers do not run. Raises OSError where the kernel, a seccomp filter
    or the C library says no; then fork and do the rest in the child
    instead."""
    if len(os.listdir("/proc/self/task")) != 1:
        raise OSError(22, "clone3 needs a single-threaded caller")
    return _clone3_fork(namespace_flags, cgroup_dir_fd)
