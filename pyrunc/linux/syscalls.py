"""The system calls the container init's steps make, named in one place.

`Kernel` lists every call the init's set-up makes (stage2's steps, the
rootfs, mount, cgroup-mount, terminal and sysctl steps under them, and
init.process's user, capability and seccomp steps); `REAL` is the instance
that forwards each one to `os` or `linux._libc`, unchanged.

How the steps get it: as an argument. stage2.setup(ctx, timings,
kernel=REAL) passes its `kernel` down to every step, and the helpers that
other code shares (linux.mounts, linux.rootfs, linux.console, init.process)
take it as a keyword that defaults to REAL, so exec, checkpoint and the
parent side call them as before. Not a module global swapped by tests:
what a step uses is visible in its signature, two set-ups cannot share a
fake by accident, and nothing has to be restored after a test. A unit test
hands setup a recording fake (tests/unit/test_init_sequence.py) and checks
the order of the steps and what a failure at each one leaves behind,
without root and without touching the host's mounts; the real-kernel tests
run the same code with REAL.

Why a class of static methods: REAL's attributes are the functions of `os`
and `_libc` themselves, so a call costs one attribute lookup more, and this
module imports nothing the init's code did not load already (it is loaded
before the fork with the rest, by linux.mounts; nothing may be imported
after pivot_root). A few entries are a step's thin helper rather than one
system call (the capability sets, the seccomp load, the fd
sweep, the stub's memfd, sendmsg with an fd): each is one request to the
kernel about this process, which a test must not make on itself.
Imports: linux.{_libc, capabilities, fds, proc, trampoline}.
"""

from __future__ import annotations

import _signal
import _socket
import fcntl
import resource
import struct

from pyrunc import oslite as os
from pyrunc.linux import _libc, capabilities, fds, proc, trampoline


def _send_fd(sock_fd: int, payload: bytes, fd: int) -> None:
    """sendmsg(2) of `payload` with `fd` as SCM_RIGHTS on a socket fd we
    do not own (the socket object is detached, never closed)."""
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        sock.detach()


def _load_seccomp(program):
    from pyrunc.linux import seccomp  # loaded before the fork, with a program only (launcher.load_init_code)

    return seccomp.load(program)


class Kernel:
    """The real kernel: every attribute is the call itself."""

    __slots__ = ()

    # process and session
    setsid = staticmethod(os.setsid)
    prctl = staticmethod(_libc.prctl)
    join_session_keyring = staticmethod(_libc.join_session_keyring)
    sethostname = staticmethod(_libc.sethostname)
    setdomainname = staticmethod(_libc.setdomainname)
    in_user_namespace = staticmethod(proc.in_user_namespace)
    umask = staticmethod(os.umask)
    prlimit = staticmethod(resource.prlimit)
    signal = staticmethod(_signal.signal)

    # files and directories (paths as the step names them)
    open = staticmethod(os.open)
    openat2 = staticmethod(_libc.openat2)
    close = staticmethod(os.close)
    dup = staticmethod(os.dup)
    read = staticmethod(os.read)
    write = staticmethod(os.write)
    stat = staticmethod(os.stat)
    lstat = staticmethod(os.lstat)
    fstat = staticmethod(os.fstat)
    fstatvfs = staticmethod(os.fstatvfs)
    fstatfs_type = staticmethod(_libc.fstatfs_type)
    isdir = staticmethod(os.path.isdir)
    exists = staticmethod(os.path.exists)
    lexists = staticmethod(os.path.lexists)
    isfile = staticmethod(os.path.isfile)
    access = staticmethod(os.access)
    mkdir = staticmethod(os.mkdir)
    mknod = staticmethod(os.mknod)
    chown = staticmethod(os.chown)
    fchown = staticmethod(os.fchown)
    fchmod = staticmethod(os.fchmod)
    symlink = staticmethod(os.symlink)
    unlink = staticmethod(os.unlink)
    readlink = staticmethod(os.readlink)
    ioctl = staticmethod(fcntl.ioctl)
    send_fd = staticmethod(_send_fd)

    # root and working directory
    chdir = staticmethod(os.chdir)
    fchdir = staticmethod(os.fchdir)
    getcwd = staticmethod(os.getcwd)
    chroot = staticmethod(os.chroot)
    pivot_root = staticmethod(_libc.pivot_root)

    # mounts
    mount = staticmethod(_libc.mount)
    umount2 = staticmethod(_libc.umount2)
    mount_setattr = staticmethod(_libc.mount_setattr)
    move_mount = staticmethod(_libc.move_mount)

    # credentials, capabilities, seccomp, fds handed to the program
    setgroups = staticmethod(os.setgroups)
    setresgid = staticmethod(os.setresgid)
    setresuid = staticmethod(os.setresuid)
    drop_bounding = staticmethod(capabilities.drop_bounding)
    set_process_caps = staticmethod(capabilities.set_process_caps)
    load_seccomp = staticmethod(_load_seccomp)
    sealed_stub_fd = staticmethod(trampoline.sealed_fd)
    make_inheritable = staticmethod(fds.make_inheritable)
    mark_cloexec_from = staticmethod(fds.mark_cloexec_from)


REAL = Kernel()
