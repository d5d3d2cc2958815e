"""A user namespace's id maps, written for another process (the parent must:
a process cannot map ids in its own new namespace beyond its own).

Root writes /proc/<pid>/uid_map and gid_map itself. An unprivileged user may
write only a single mapping of its own id (and for gids only after denying
setgroups in that namespace); anything more goes through the setuid
newuidmap/newgidmap helpers (package uidmap), which allow the ranges
/etc/subuid and /etc/subgid give the user, as runc and crun do.
Imports: errors.
"""

from __future__ import annotations

import errno

from pyrunc import oslite as os
from pyrunc.errors import KernelError, PyruncError

HELPER_DIRS = "/usr/bin:/bin:/usr/sbin:/sbin"

# (map file, config field, helper, the caller's own id)
_MAPS = (("uid_map", "linux.uidMappings", "newuidmap", os.geteuid),
         ("gid_map", "linux.gidMappings", "newgidmap", os.getegid))


def format_id_map(mappings) -> str:
    """linux.uidMappings → the text of /proc/<pid>/uid_map."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def is_own_id_only(mappings, own_id: int) -> bool:
    """A single mapping of just the caller's id: what the kernel lets an
    unprivileged user write without a helper."""
    return len(mappings) == 1 and mappings[0].host_id == own_id and mappings[0].size == 1


def write_id_maps(pid: int, linux) -> None:
    """Write `pid`'s uid and gid maps from linux.uidMappings/gidMappings:
    directly, or, refused that (not root), through newuidmap/newgidmap.
    Raises a one-line PyruncError naming the field."""
    for name, field, helper, own_id in _MAPS:
        mappings = linux.uid_mappings if name == "uid_map" else linux.gid_mappings
        if not mappings:
            continue
        err = write_map_file(pid, name, format_id_map(mappings))
        if err == errno.EPERM and name == "gid_map" and is_own_id_only(mappings, own_id()):
            # The kernel takes an unprivileged gid map only once setgroups
            # is denied: the container could otherwise drop a group the
            # host uses to keep its user out of something.
            _deny_setgroups(pid)
            err = write_map_file(pid, name, format_id_map(mappings))
        if err == errno.EPERM and not is_own_id_only(mappings, own_id()):
            _run_helper(helper, pid, mappings, field)
        elif err:
            raise KernelError(f"write {field} to", f"/proc/{pid}/{name}", err)


def write_map_file(pid: int, name: str, text: str) -> int:
    """0, or the errno of the write."""
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        return err.errno
    return 0


def _deny_setgroups(pid: int) -> None:
    path = f"/proc/{pid}/setgroups"
    try:
        with open(path, "w") as f:
            f.write("deny")
    except OSError as err:
        raise KernelError("write deny to", path, err.errno) from None


def _run_helper(helper: str, pid: int, mappings, field: str) -> None:
    """newuidmap/newgidmap PID ID HOSTID SIZE ...: they check each range
    against /etc/subuid or /etc/subgid; their complaint becomes our line."""
    import shutil
    import subprocess

    # From the system's directories only, never the caller's PATH: the
    # helper is trusted with the mapping (runc looks it up in PATH).
    path = shutil.which(helper, path=HELPER_DIRS)
    if path is None:
        raise PyruncError(f"{field}: mapping more than your own id needs {helper} (package uidmap), "
                          "which is not installed")
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/bin:/bin"}, close_fds=True)
    if result.returncode != 0:
        lines = result.stdout.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit code {result.returncode}"
        raise PyruncError(f"{field}: {helper} refused the mapping: {reason.removeprefix(helper + ': ')}")
