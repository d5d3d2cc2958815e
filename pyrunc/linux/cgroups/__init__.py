"""Cgroups: where a container's cgroups live, and a manager for them.

The host's layout is read from mountinfo: every v1 hierarchy (`cgroup`
filesystems, by controller) and the v2 hierarchy (`cgroup2`, unified mode, or
/sys/fs/cgroup/unified on a hybrid host). A container's cgroup is one directory
per hierarchy; the key "" names the v2 one.

`cgroupsPath` as runc reads it with the cgroupfs driver: absolute paths sit
under each hierarchy's root, relative ones under the runtime's own cgroup, and
an empty one means `<own cgroup>/<id>`. A path can never climb out of the
mount (`..` is resolved before joining).
Imports: errors, linux.proc.
"""

from __future__ import annotations

import os
import posixpath

from pyrunc.errors import PyruncError
from pyrunc.linux import proc

V2_KEY = ""


class Layout:
    """The host's cgroup mounts: {hierarchy key: mount point}."""

    __slots__ = ("mounts", "mode")

    def __init__(self, mounts: dict[str, str], mode: str):
        self.mounts = mounts
        self.mode = mode  # "legacy", "hybrid", "unified" or "none"


def parse_layout(mountinfo: list[dict]) -> Layout:
    """The cgroup hierarchies in `mountinfo` (as parsed by linux.proc)."""
    mounts: dict[str, str] = {}
    for m in mountinfo:
        if m["fstype"] == "cgroup2":
            mounts.setdefault(V2_KEY, m["mount_point"])
        elif m["fstype"] == "cgroup":
            controllers = [o for o in m["super_options"].split(",") if o not in ("rw", "ro") and "=" not in o[:5]]
            named = [o[5:] for o in m["super_options"].split(",") if o.startswith("name=")]
            key = ",".join(controllers) or (named[0] if named else "")
            if key:
                mounts.setdefault(key, m["mount_point"])
    has_v1 = any(k != V2_KEY for k in mounts)
    if V2_KEY in mounts:
        mode = "hybrid" if has_v1 else "unified"
    else:
        mode = "legacy" if has_v1 else "none"
    return Layout(mounts, mode)


def detect_layout() -> Layout:
    return parse_layout(proc.read_mountinfo("self"))


def clean_path(path: str) -> str:
    """Normalise a cgroup path so it stays under its hierarchy's root."""
    return posixpath.normpath("/" + path)


def resolve_paths(layout: Layout, cgroups_path: str, container_id: str,
                  own: dict[str, str] | None = None) -> dict[str, str]:
    """The container's cgroup directory in every hierarchy."""
    if cgroups_path.startswith("/"):
        relative_to = None
        sub = clean_path(cgroups_path)
    else:
        relative_to = own if own is not None else proc.read_cgroup("self")
        sub = clean_path(cgroups_path or container_id)
    paths = {}
    for key, mount_point in layout.mounts.items():
        base = "/"
        if relative_to is not None:
            base = clean_path(relative_to.get(key.split(",")[0], relative_to.get(key, "/")))
        paths[key] = mount_point + clean_path(posixpath.join(base, sub.lstrip("/")))
    if not paths:
        raise PyruncError("cgroups: no cgroup hierarchy is mounted on this host")
    return paths
