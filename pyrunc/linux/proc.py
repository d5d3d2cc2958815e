"""Parsers for /proc files, and the one place that reads them.

A process is identified by (pid, start time): a pid alone can be reused.
The parsers are pure (they take text) so tests feed them canned content.
Imports: stdlib only.
"""

from __future__ import annotations

from pyrunc import oslite as os

PROC = "/proc"


def parse_stat(text: str) -> tuple[str, int]:
    """(state letter, start time in clock ticks) from /proc/<pid>/stat text.

    The command name (field 2) may hold spaces and parentheses, so split after
    the last ')'. Start time is field 22, state is field 3.
    """
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def read_stat(pid: int, proc: str = PROC) -> tuple[str, int] | None:
    """(state, start time) of `pid`, or None when no such process exists."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            return parse_stat(f.read().decode("utf-8", "replace"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    except (ValueError, IndexError):
        return None


def parse_in_user_namespace(uid_map: str) -> bool:
    """False for the initial user namespace's uid_map (the whole range
    mapped onto itself), True for any other."""
    return uid_map.split() != ["0", "0", "4294967295"]


def in_user_namespace(proc: str = PROC) -> bool:
    """Whether this process runs in a user namespace other than the host's."""
    try:
        with open(f"{proc}/self/uid_map") as f:
            return parse_in_user_namespace(f.read())
    except OSError:
        return False


def parse_host_uid(uid_map: str, uid: int) -> int | None:
    """The uid that `uid` of a user namespace is outside it, by that
    namespace's uid_map text ("INSIDE OUTSIDE COUNT" lines); None when
    unmapped. In the initial namespace the map is the identity."""
    for line in uid_map.splitlines():
        fields = line.split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            continue
        inside, outside, count = (int(f) for f in fields)
        if inside <= uid < inside + count:
            return outside + (uid - inside)
    return None


def host_uid(proc: str = PROC) -> int:
    """This process's effective uid as the user namespace's parent sees it:
    in rootless Podman's namespace pyrunc is uid 0, mapped to the user who
    ran Podman (runc's DetectUID asks busctl for the same). One level only:
    a namespace nested in another is read as its parent's view."""
    euid = os.geteuid()
    try:
        with open(f"{proc}/self/uid_map") as f:
            text = f.read()
    except OSError:
        return euid
    mapped = parse_host_uid(text, euid)
    return euid if mapped is None else mapped


def read_start_time(pid: int, proc: str = PROC) -> int | None:
    stat = read_stat(pid, proc)
    return None if stat is None else stat[1]


def is_alive(pid: int, start_time: int, proc: str = PROC) -> bool:
    """True if `pid` is the same process that started at `start_time` and has
    not exited (a zombie or dead task counts as exited)."""
    if pid <= 0:
        return False
    stat = read_stat(pid, proc)
    if stat is None:
        return False
    state, started = stat
    return started == start_time and state not in ("Z", "X", "x")


def read_ns_pid(pid: int, proc: str = PROC) -> int | None:
    """`pid` as its own (innermost) pid namespace numbers it (NSpid's last)."""
    try:
        with open(f"{proc}/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def parse_mountinfo(text: str) -> list[dict]:
    """Entries of /proc/<pid>/mountinfo as dicts: id, parent, root,
    mount_point, options, optional (shared:N ...), fstype, source, super_options."""
    mounts = []
    for line in text.splitlines():
        if not line:
            continue
        left, _, right = line.partition(" - ")
        fields = left.split(" ")
        tail = right.split(" ")
        mounts.append({
            "id": int(fields[0]),
            "parent": int(fields[1]),
            "root": _unescape(fields[3]),
            "mount_point": _unescape(fields[4]),
            "options": fields[5],
            "optional": fields[6:],
            "fstype": tail[0],
            "source": _unescape(tail[1]) if len(tail) > 1 else "",
            "super_options": tail[2] if len(tail) > 2 else "",
        })
    return mounts


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mountinfo(pid: int | str = "self", proc: str = PROC) -> list[dict]:
    with open(f"{proc}/{pid}/mountinfo", "rb") as f:
        return parse_mountinfo(f.read().decode("utf-8", "surrogateescape"))


def parse_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup → {controller: path}; the v2 entry has key ""."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
        for name in controllers.split(","):
            if name:
                paths[name.removeprefix("name=")] = path
    return paths


def read_cgroup(pid: int | str = "self", proc: str = PROC) -> dict[str, str]:
    with open(f"{proc}/{pid}/cgroup") as f:
        return parse_cgroup(f.read())


def exit_code(wait_status: int) -> int:
    """A wait status as a shell (and runc) reports it: the exit code, or
    128+N for a process killed by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code
