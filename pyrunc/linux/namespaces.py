"""Namespaces: OCI type ↔ CLONE_* flag ↔ /proc/<pid>/ns name, joining by path
and creating new ones in the order the kernel needs.
Imports: linux._libc.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc.errors import KernelError
from pyrunc.linux import _libc

CLONE_FLAGS = {
    "user": _libc.CLONE_NEWUSER,
    "mount": _libc.CLONE_NEWNS,
    "pid": _libc.CLONE_NEWPID,
    "network": _libc.CLONE_NEWNET,
    "ipc": _libc.CLONE_NEWIPC,
    "uts": _libc.CLONE_NEWUTS,
    "cgroup": _libc.CLONE_NEWCGROUP,
    "time": _libc.CLONE_NEWTIME,
}
PROC_NAMES = {
    "user": "user", "mount": "mnt", "pid": "pid", "network": "net",
    "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "time": "time",
}
# Joining order: the user namespace first (it grants the rights to join the
# rest), the mount namespace last (after it, paths resolve in the container).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def open_namespace_paths(namespaces) -> list[tuple[str, int]]:
    """Open every namespace path up front (in the host's mount namespace,
    before joining one changes what paths mean), in join order."""
    return open_in_join_order({ns.type: ns.path for ns in namespaces if ns.path})


def open_in_join_order(paths: dict[str, str], what: str = "{kind} {path}",
                       skip_ours: bool = False) -> list[tuple[str, int]]:
    """fds of the namespace files `paths` (type → path), in join order; all
    closed again if one fails (its error names `what`). `skip_ours`: leave
    out a namespace this process is in already (one shared with the host)."""
    opened = []
    try:
        for kind in JOIN_ORDER:
            path = paths.get(kind)
            if path is None:
                continue
            try:
                if skip_ours and os.stat(path).st_ino == os.stat(f"/proc/self/ns/{PROC_NAMES[kind]}").st_ino:
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise KernelError("open namespace", what.format(kind=kind, path=path), err.errno) from None
            opened.append((kind, fd))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def join_namespaces(opened: list[tuple[str, int]]) -> None:
    """setns(2) into each opened namespace; the fds are closed afterwards."""
    for kind, fd in opened:
        try:
            _libc.setns(fd, CLONE_FLAGS[kind])
        except OSError as err:
            raise KernelError("join namespace", kind, err.errno) from None
        finally:
            os.close(fd)


def new_namespace_flags(namespaces, exclude=("user",)) -> int:
    """CLONE_* flags of the namespaces to create (those without a path)."""
    flags = 0
    for ns in namespaces:
        if not ns.path and ns.type not in exclude:
            flags |= CLONE_FLAGS[ns.type]
    return flags


def unshare(flags: int) -> None:
    if not flags:
        return
    try:
        _libc.unshare(flags)
    except OSError as err:
        names = [k for k, v in CLONE_FLAGS.items() if flags & v]
        raise KernelError("unshare", "namespaces " + ",".join(names), err.errno) from None


def format_time_offsets(offsets: dict) -> str:
    """linux.timeOffsets → the text /proc/self/timens_offsets takes."""
    lines = []
    for clock, name in (("monotonic", "monotonic"), ("boottime", "boottime")):
        value = offsets.get(clock)
        if value:
            lines.append(f"{name} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n")
    return "".join(lines)


def write_time_offsets(offsets: dict) -> None:
    text = format_time_offsets(offsets)
    if not text:
        return
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(text)
    except OSError as err:
        raise KernelError("write", "/proc/self/timens_offsets", err.errno) from None
