"""Reading the files a user names (config.json, process.json, --resources)
and pyrunc's own state: regular files only, and never more than a limit,
so a path to /dev/zero, a fifo or a huge file is a one-line refusal
instead of a read that blocks or runs out of memory.
A leaf module: stdlib and errors only.
"""

from __future__ import annotations

import stat

from pyrunc import oslite as os
from pyrunc.errors import PyruncError

# Far above any real config (Docker's seccomp profile makes one of ~60 KiB).
MAX_DOCUMENT = 16 << 20


def read_regular(path: str, what: str, limit: int = MAX_DOCUMENT) -> bytes:
    """The content of `path`, which must be a regular file of at most
    `limit` bytes (symlinks to one are fine). OSError for what open(2) and
    read(2) say (the caller words those); PyruncError naming `what` for a
    file that is not regular or too large. O_NONBLOCK: opening a fifo must
    not wait for a writer."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, os.strerror(21), path)
        if not stat.S_ISREG(mode):
            raise PyruncError(f"{what}: not a regular file ({_kind(mode)})")
        return read_limited(fd, what, limit)
    finally:
        os.close(fd)


def read_limited(fd: int, what: str, limit: int = MAX_DOCUMENT) -> bytes:
    """Everything readable from `fd` up to EOF (a pipe too), refused once it
    exceeds `limit` bytes."""
    chunks = []
    size = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except InterruptedError:
            continue
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PyruncError(f"{what}: larger than {limit >> 20} MiB")
        chunks.append(chunk)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"
