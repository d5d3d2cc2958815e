"""File descriptors handed to the container: only 0-2 and the preserved ones.

Every other fd is marked close-on-exec just before the container process is
executed, so nothing the runtime opened (state dir, cgroup files, log file,
sockets) leaks into it (CVE-2024-21626).
Imports: linux._libc.
"""

from __future__ import annotations

import os

from pyrunc.linux import _libc


def mark_cloexec_from(first: int) -> None:
    """Set FD_CLOEXEC on every fd >= `first`."""
    try:
        _libc.close_range(first, 0xFFFFFFFF, _libc.CLOSE_RANGE_CLOEXEC)
        return
    except (OSError, KeyError):
        pass
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def make_inheritable(first: int, count: int) -> None:
    """Clear FD_CLOEXEC on fds first..first+count-1 (--preserve-fds)."""
    for fd in range(first, first + count):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
