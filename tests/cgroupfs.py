"""The host's cgroup layout, as the tests look at it from outside.

Two kinds of host run the suites: cgroup v1 or hybrid (a tmpfs at
/sys/fs/cgroup with one mount per controller, cgroup2 at
/sys/fs/cgroup/unified), and pure cgroup v2 (cgroup2 at /sys/fs/cgroup, as
systemd mounts it by default; the VM lane's host). These helpers find a
container's cgroup files on either.
"""

from __future__ import annotations

import os

BASE = "/sys/fs/cgroup"
# Core v2 features, not controllers listed in cgroup.controllers.
_V2_BUILTIN = {"freezer": "cgroup.freeze", "devices": None}


def is_unified() -> bool:
    """/sys/fs/cgroup itself is the (only) cgroup2 hierarchy."""
    return os.path.isfile(os.path.join(BASE, "cgroup.controllers"))


def v2_mount() -> str | None:
    """Where the cgroup2 hierarchy is mounted, if it is."""
    if is_unified():
        return BASE
    unified = os.path.join(BASE, "unified")
    return unified if os.path.isfile(os.path.join(unified, "cgroup.procs")) else None


def has_controller(name: str) -> bool:
    """Whether a container can get `name` limits here: a v1 hierarchy of
    that name, or a v2 controller the root offers (the freezer and the
    device filter are part of v2 itself)."""
    if is_unified():
        if name in _V2_BUILTIN:
            return True
        with open(os.path.join(BASE, "cgroup.controllers")) as f:
            return name in f.read().split()
    return os.path.ismount(os.path.join(BASE, name))


def directory(controller: str, cgroup: str) -> str:
    """The directory of `cgroup` (an absolute cgroupsPath) that holds the
    files of `controller`."""
    if is_unified():
        return os.path.join(BASE, cgroup.lstrip("/"))
    return os.path.join(BASE, controller, cgroup.lstrip("/"))


def read(controller: str, cgroup: str, name: str) -> str:
    with open(os.path.join(directory(controller, cgroup), name)) as f:
        return f.read().strip()


def keyed(text: str) -> dict[str, str]:
    """"key value" lines (memory.events, pids.events, cgroup.events)."""
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
