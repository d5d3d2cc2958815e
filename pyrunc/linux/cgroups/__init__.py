"""Cgroups: where a container's cgroups live, and a manager for them.

The host's layout is read from mountinfo: every v1 hierarchy (`cgroup`
filesystems, by controller) and the v2 hierarchy (`cgroup2`, unified mode, or
/sys/fs/cgroup/unified on a hybrid host). A container's cgroup is one directory
per hierarchy; the key "" names the v2 one.

`cgroupsPath` as runc reads it with the cgroupfs driver: absolute paths sit
under each hierarchy's root, relative ones under the runtime's own cgroup (on
a pure v2 host: under its parent, as runc's fs2 does, since the runtime's own
cgroup has processes and so can hand no controller down), and an empty one
means `<that place>/<id>`. A path can never climb out of the mount (`..` is
resolved before joining).
Imports: errors, linux.proc.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc.errors import PyruncError
from pyrunc.linux import proc

V2_KEY = ""


# cgroup v1 mount options that are not controller names.
_NOT_CONTROLLERS = frozenset(("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods",
                              "nsdelegate", "memory_recursiveprot", "memory_localevents", "memory_hugetlb_accounting"))


class Layout:
    """The host's cgroup mounts: {hierarchy key: mount point}, and for each
    the cgroup its mount shows as root (not "/" when this runtime itself
    runs in a container whose cgroupfs is a bind of its own cgroup)."""

    __slots__ = ("mounts", "roots", "mode")

    def __init__(self, mounts: dict[str, str], mode: str, roots: dict[str, str] | None = None):
        self.mounts = mounts
        self.roots = roots or {}
        self.mode = mode  # "legacy", "hybrid", "unified" or "none"


def paused(paths: dict[str, str]) -> bool:
    """Whether the cgroup a container's state names (`paths`, by hierarchy
    key, whatever its driver) is frozen by itself: v2's cgroup.freeze, or v1's
    freezer.state. One file read, what `state`, `start`, `kill` and `list`
    ask of every running container: it lives here, not in the manager, so
    they do not import the managers for it (0.3-0.4 ms a call)."""
    if paths and all(key == V2_KEY for key in paths):
        name = os.path.join(paths[V2_KEY], "cgroup.freeze")
    else:
        name = next((os.path.join(path, "freezer.state") for key, path in paths.items() if "freezer" in key.split(",")), "")
    if not name:
        return False
    try:
        with open(name) as f:
            value = f.read().strip()
    except OSError:
        return False
    return value in ("FROZEN", "FREEZING", "1")


def parse_layout(mountinfo: list[dict]) -> Layout:
    """The cgroup hierarchies in `mountinfo` (as parsed by linux.proc)."""
    mounts: dict[str, str] = {}
    roots: dict[str, str] = {}
    for m in mountinfo:
        if m["fstype"] == "cgroup2":
            key = V2_KEY
        elif m["fstype"] == "cgroup":
            options = m["super_options"].split(",")
            controllers = [o for o in options if o not in _NOT_CONTROLLERS and "=" not in o]
            named = [o[5:] for o in options if o.startswith("name=")]
            key = ",".join(controllers) or (named[0] if named else "")
        else:
            continue
        if (key or m["fstype"] == "cgroup2") and key not in mounts:
            mounts[key] = m["mount_point"]
            roots[key] = m["root"]
    has_v1 = any(k != V2_KEY for k in mounts)
    if V2_KEY in mounts:
        mode = "hybrid" if has_v1 else "unified"
    else:
        mode = "legacy" if has_v1 else "none"
    return Layout(mounts, mode, roots)


def detect_layout() -> Layout:
    return parse_layout(proc.read_mountinfo("self"))


def clean_path(path: str) -> str:
    """Normalise a cgroup path so it stays under its hierarchy's root."""
    return os.path.normpath("/" + path.lstrip("/"))


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
            # /proc/self/cgroup names cgroups from the hierarchy's true root;
            # the mount may show a subtree of it as its root.
            mount_root = clean_path(layout.roots.get(key, "/"))
            if mount_root != "/" and (base == mount_root or base.startswith(mount_root + "/")):
                base = "/" + base[len(mount_root):].lstrip("/")
            if layout.mode == "unified":
                base = os.path.dirname(base)
        joined = clean_path(os.path.join(base, sub.lstrip("/")))
        paths[key] = mount_point.rstrip("/") + (joined if joined != "/" else "")
    if not paths:
        raise PyruncError("cgroups: no cgroup hierarchy is mounted on this host")
    return paths


def process_paths(layout: Layout, pid: int) -> dict[str, str]:
    """The cgroup directories `pid` is in, one per hierarchy ({} when it is gone)."""
    try:
        member = proc.read_cgroup(pid)
    except OSError:
        return {}
    paths = {}
    for key, mount_point in layout.mounts.items():
        path = clean_path(member.get(key.split(",")[0], member.get(key, "/")))
        mount_root = clean_path(layout.roots.get(key, "/"))
        if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
            path = "/" + path[len(mount_root):].lstrip("/")
        paths[key] = mount_point.rstrip("/") + (path if path != "/" else "")
    return paths


def refuse_shared_cgroup(layout: Layout, paths: dict[str, str], own: dict[str, str] | None = None) -> None:
    """A container's cgroup must not be a hierarchy's root, nor the runtime's
    own cgroup or one of its ancestors: destroying the container would kill
    or move processes that are not the container's."""
    own = own if own is not None else proc.read_cgroup("self")
    for key, path in paths.items():
        mount_point = layout.mounts[key].rstrip("/")
        relative = path[len(mount_point):] or "/"
        if relative == "/":
            raise PyruncError(f'linux.cgroupsPath: resolves to the root of the {key or "v2"} cgroup hierarchy; '
                              "give the container a cgroup of its own")
        mine = clean_path(own.get(key.split(",")[0], own.get(key, "/")))
        mount_root = clean_path(layout.roots.get(key, "/"))
        if mount_root != "/" and mine.startswith(mount_root):
            mine = "/" + mine[len(mount_root):].lstrip("/")
        if mine == relative or mine.startswith(relative.rstrip("/") + "/"):
            raise PyruncError(f'linux.cgroupsPath: "{relative}" holds pyrunc\'s own cgroup ({key or "v2"}: {mine}); '
                              "give the container a cgroup of its own")
