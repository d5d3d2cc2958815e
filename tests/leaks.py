"""What a container can leave behind on the host, measured from outside.

Used by the fault, fuzz and stress tests: each function looks at the kernel
(/proc, cgroupfs) rather than at pyrunc's own idea of what exists.
"""

from __future__ import annotations

import os

CGROUP_BASE = "/sys/fs/cgroup"


def is_zombie(pid: int | str) -> bool:
    """Exited, not yet reaped (or gone): holds nothing but its pid. Orphans
    are reaped by the host's init, which may take its time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return True
    return text[text.rindex(")") + 2:].split()[0] in ("Z", "X")


def processes_in(path: str) -> list[int]:
    """Live pids whose root or cwd is `path` or below it (a leaked init would be)."""
    path = path.rstrip("/")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for link in ("root", "cwd"):
            try:
                target = os.readlink(f"/proc/{name}/{link}")
            except OSError:
                continue
            if target == path or target.startswith(path + "/"):
                found.append(int(name))
                break
    return [pid for pid in found if not is_zombie(pid)]


def processes_in_cgroup(parent: str) -> list[int]:
    """Live pids in a cgroup at or below /<parent>, in any hierarchy. Finds a
    leaked container process even after pivot_root, where /proc/<pid>/root
    reads "/"."""
    needle = "/" + parent.strip("/")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cgroup") as f:
                paths = [line.rstrip("\n").split(":", 2)[2] for line in f if line.count(":") >= 2]
        except OSError:
            continue
        if any(p == needle or p.startswith(needle + "/") for p in paths):
            found.append(int(name))
    return [pid for pid in found if not is_zombie(pid)]


def mounts_mentioning(path: str) -> list[str]:
    """Lines of our mountinfo that name `path` (a rootfs bind left on the host)."""
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if path in line]


def mount_count() -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


def cgroup_hierarchies() -> list[str]:
    """The mounted cgroup hierarchies: /sys/fs/cgroup itself on a pure v2
    host, the mounts inside it on a v1 or hybrid one."""
    if not os.path.isdir(CGROUP_BASE):
        return []
    if os.path.isfile(os.path.join(CGROUP_BASE, "cgroup.controllers")):
        return [CGROUP_BASE]
    return [os.path.join(CGROUP_BASE, n) for n in sorted(os.listdir(CGROUP_BASE))
            if os.path.ismount(os.path.join(CGROUP_BASE, n))]


def cgroup_dirs_under(parent: str) -> list[str]:
    """Every cgroup directory below /<parent> in every hierarchy (not the
    parent itself)."""
    found = []
    for hierarchy in cgroup_hierarchies():
        top = os.path.join(hierarchy, parent.strip("/"))
        for directory, subdirs, _ in os.walk(top):
            found += [os.path.join(directory, d) for d in subdirs]
    return sorted(found)


def remove_cgroup_parent(parent: str) -> None:
    """rmdir /<parent> (and anything left below it) in every hierarchy."""
    for hierarchy in cgroup_hierarchies():
        top = os.path.join(hierarchy, parent.strip("/"))
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: len(entry[0]), reverse=True):
            try:
                os.rmdir(directory)
            except OSError:
                pass


def systemd_units(pattern: str) -> list[str]:
    """Units systemd has loaded whose names match `pattern` (a glob)."""
    import subprocess

    out = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", pattern],
                         capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def stop_systemd_unit(name: str) -> None:
    """Stop a unit a test session made (its slice), and forget it."""
    import subprocess

    subprocess.run(["systemctl", "stop", name], capture_output=True)
    subprocess.run(["systemctl", "reset-failed", name], capture_output=True)


def files_under(root: str, ignore=()) -> list[str]:
    """Every path below `root` (the state root), but the names in `ignore`."""
    found = []
    if not os.path.isdir(root):
        return found
    for directory, subdirs, files in os.walk(root):
        if directory == root:
            subdirs[:] = [d for d in subdirs if d not in ignore]
        found += [os.path.join(directory, n) for n in subdirs + files]
    return sorted(found)


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def system_file_handles() -> int:
    """Allocated file handles, system-wide (first field of /proc/sys/fs/file-nr)."""
    with open("/proc/sys/fs/file-nr") as f:
        return int(f.read().split()[0])


def zombie_children(pid: int | None = None) -> list[int]:
    """Zombies whose parent is `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(name))
    return found


def children(pid: int | None = None) -> list[int]:
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def seccomp_cache_entries() -> set[str]:
    """The compiled filters in pyrunc's seccomp cache (outside any root)."""
    from pyrunc.linux import seccomp

    try:
        return set(os.listdir(seccomp.CACHE_DIR))
    except OSError:
        return set()


def remove_seccomp_cache_entries(keep: set[str]) -> None:
    """Remove what a test session added to the cache (it is only a cache)."""
    from pyrunc.linux import seccomp

    for name in seccomp_cache_entries() - keep:
        try:
            os.unlink(os.path.join(seccomp.CACHE_DIR, name))
        except OSError:
            pass
