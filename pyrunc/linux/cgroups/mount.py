"""The `cgroup` mount type inside a container.

v1 (and hybrid): a tmpfs at the destination holding, per hierarchy, a bind of
the container's own cgroup directory, so the container sees its cgroup as the
root of each hierarchy and nothing above it. v2: a fresh cgroup2 mount when
the container has its own cgroup namespace (whose root is its cgroup), else a
bind of its cgroup directory.
System calls go through `kernel` (linux.syscalls.Kernel, REAL by default).
Imports: errors, linux.{mounts, _libc, syscalls}.
"""

from __future__ import annotations

import errno

from pyrunc import oslite as os
from pyrunc.errors import KernelError
from pyrunc.linux import mounts
from pyrunc.linux.syscalls import REAL, Kernel
from pyrunc.linux._libc import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

V2_KEY = ""


def mount_cgroup(root_fd: int, entry, plan, cgroups, layout, private_ns: bool, *, kernel: Kernel = REAL) -> None:
    dest = entry.destination.rstrip("/") or "/"
    readonly = bool(plan.flags & MS_RDONLY)
    base_flags = plan.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if layout.mode == "unified":
        source = cgroups.paths.get(V2_KEY)
        if private_ns or source is None:
            v2 = mounts.MountPlan()
            v2.flags = base_flags | (MS_RDONLY if readonly else 0)
            try:
                mounts.mount_in_root(root_fd, dest, "cgroup2", "cgroup2", v2, kernel=kernel)
            except KernelError as err:
                # In a user namespace the kernel may refuse a fresh cgroup2
                # (EPERM; EBUSY when the namespace's root cgroup is not the
                # user's own, as for rootless containers in a cgroup they
                # could not create): a bind of the container's cgroup, else
                # of the hierarchy, as runc falls back.
                if err.errno not in (errno.EPERM, errno.EBUSY):
                    raise
                _bind(root_fd, source or layout.mounts.get(V2_KEY) or "/sys/fs/cgroup", dest, base_flags, readonly, kernel)
        else:
            _bind(root_fd, source, dest, base_flags, readonly, kernel)
        return
    tmpfs = mounts.MountPlan()
    tmpfs.flags = base_flags
    tmpfs.data = ["mode=755"]
    mounts.mount_in_root(root_fd, dest, "tmpfs", "tmpfs", tmpfs, kernel=kernel)
    for key, mount_point in layout.mounts.items():
        source = cgroups.paths.get(key)
        if source is None:
            continue
        name = "unified" if key == V2_KEY else os.path.basename(mount_point)
        _bind(root_fd, source, f"{dest}/{name}", base_flags, readonly, kernel)
        # Co-mounted controllers (cpu,cpuacct) also answer to each name.
        for alias in key.split(","):
            if key != V2_KEY and alias != name and alias:
                _symlink_in(root_fd, dest, name, alias, kernel)
    if readonly:
        mounts.remount(root_fd, dest, MS_BIND | MS_REMOUNT | MS_RDONLY | base_flags, f'cgroup "{dest}"',
                       kernel=kernel)


def _bind(root_fd: int, source: str, dest: str, flags: int, readonly: bool, kernel: Kernel) -> None:
    plan = mounts.MountPlan()
    plan.flags = MS_BIND | MS_REC | flags | (MS_RDONLY if readonly else 0)
    mounts.mount_in_root(root_fd, dest, source, None, plan, kernel=kernel)


def _symlink_in(root_fd: int, directory: str, target: str, name: str, kernel: Kernel) -> None:
    dir_fd = mounts.open_in_root(root_fd, directory, os.O_RDONLY | os.O_DIRECTORY, kernel=kernel)
    try:
        kernel.symlink(target, name, dir_fd=dir_fd)
    except FileExistsError:
        pass
    finally:
        kernel.close(dir_fd)
