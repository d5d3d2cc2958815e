"""Terminals: the container's pty and the --console-socket hand-over.

The pty pair is allocated from the container's own devpts (through
/dev/ptmx after pivot_root), so `tty` inside prints /dev/pts/0. The master
goes to whoever listens on --console-socket in one SCM_RIGHTS message (the
payload is the master's name, as runc sends it); the slave becomes the
process's controlling terminal and fds 0-2, and is bound onto /dev/console.
Imports: errors, linux.{_libc, mounts, syscalls} (fcntl, _socket, struct).
"""

from __future__ import annotations

import _socket
import fcntl
import struct

from pyrunc import oslite as os
from pyrunc.errors import KernelError, PyruncError
from pyrunc.linux import _libc, mounts
from pyrunc.linux.syscalls import REAL, Kernel

# ioctl numbers (asm-generic/ioctls.h; the same on x86_64 and arm64)
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCGPTPEER = 0x5441


def connect_console_socket(path: str) -> int:
    """Connect to --console-socket now, before anything is created, so a bad
    path is a clean error (the fd is handed to the init)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise PyruncError(f'--console-socket: connect to "{path}": {err.strerror.lower()}') from None
    return sock.detach()


def open_pty(*, kernel: Kernel = REAL) -> tuple[int, int, str]:
    """(master fd, slave fd, slave path) from the devpts behind /dev/ptmx."""
    try:
        master = kernel.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("open", "/dev/ptmx (process.terminal needs a devpts in the container)", err.errno) from None
    try:
        kernel.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", kernel.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        # TIOCGPTPEER opens the slave through the master, not by a path a
        # container could have replaced.
        slave = kernel.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        kernel.close(master)
        raise KernelError("allocate", "pty", err.errno) from None
    return master, slave, f"/dev/pts/{number}"


def set_window_size(fd: int, rows: int, cols: int, *, kernel: Kernel = REAL) -> None:
    kernel.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_window_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def send_fd(sock_fd: int, fd: int, name: str, *, kernel: Kernel = REAL) -> None:
    """One message, payload `name`, carrying `fd` (as runc's utils.SendFd)."""
    try:
        kernel.send_fd(sock_fd, name.encode(), fd)
    except OSError as err:
        raise KernelError("send the pty master to", "--console-socket", err.errno) from None


def receive_fd(sock_fd: int) -> int:
    """The fd sent by send_fd (for `run` relaying its own terminal)."""
    sock = _socket.socket(fileno=sock_fd)
    try:
        _, ancillary, _, _ = sock.recvmsg(4096, _socket.CMSG_SPACE(4))
    finally:
        sock.detach()
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(payload) >= 4:
            return struct.unpack("i", payload[:4])[0]
    raise PyruncError("the container init sent no terminal")


def bind_console(slave: int, slave_path: str, *, kernel: Kernel = REAL) -> None:
    """/dev/console is the container's terminal (runtime-linux.md). Bound
    from our own fd, onto a file opened without following symlinks, so
    neither end can be swapped for another path (CVE-2025-52565)."""
    try:
        target = kernel.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise KernelError("create", "/dev/console", err.errno) from None
    try:
        mounts.sys_mount(mounts.fd_path(slave), mounts.fd_path(target), None, _libc.MS_BIND, kernel=kernel)
    except OSError as err:
        raise KernelError("mount", f'"{slave_path}" on "/dev/console"', err.errno) from None
    finally:
        kernel.close(target)
