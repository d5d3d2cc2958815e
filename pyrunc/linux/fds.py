"""File descriptors handed to the container: only 0-2 and the preserved ones.

Every other fd is marked close-on-exec just before the container process is
executed, so nothing the runtime opened (state dir, cgroup files, log file,
sockets) leaks into it (CVE-2024-21626).
Imports: linux._libc, resource.
"""

from __future__ import annotations

import resource

from pyrunc import oslite as os
from pyrunc.linux import _libc


def mark_cloexec_from(first: int) -> None:
    """Set FD_CLOEXEC on every fd >= `first`.

    close_range(2) first; a seccomp profile already loaded (noNewPrivileges
    off) may refuse it (older profiles predate it), and /proc may not be
    mounted (no mount namespace, or one joined by path): then every fd number
    below the RLIMIT_NOFILE soft limit, with fcntl, which every profile allows."""
    try:
        _libc.close_range(first, 0xFFFFFFFF, _libc.CLOSE_RANGE_CLOEXEC)
        return
    except (OSError, KeyError):
        pass
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(first, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for fd in fds:
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
