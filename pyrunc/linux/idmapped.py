"""Idmapped bind mounts (runtime-spec 1.1: mounts[].uidMappings/gidMappings,
options idmap and ridmap), made with the new mount API as runc 1.2 and crun do.

open_tree(OPEN_TREE_CLONE) makes a detached copy of the source (with its
submounts for an rbind), mount_setattr(MOUNT_ATTR_IDMAP) gives it the maps of
a user namespace made for the purpose (every submount too for ridmap), and
the container's init attaches it with move_mount (mounts.mount_in_root).

The copy is made in the runtime's own mount namespace, with the host root's
rights: in the container's, owned by its user namespace, the host's mounts
are locked, and the kernel refuses a non-recursive copy of a directory
holding a locked submount.
Imports: errors, linux.{_libc, idmap}.
"""

from __future__ import annotations

import errno

from pyrunc import oslite as os
from pyrunc.errors import KernelError
from pyrunc.linux import _libc
from pyrunc.linux.idmap import format_id_map, write_map_file

NO_API = "this kernel lacks the new mount API; idmapped mounts need Linux 5.12 or later"
NOT_IDMAPPABLE = "the filesystem of the source cannot be idmapped on this kernel"


def _why(code: int, einval: str = "") -> str:
    """What the errno means here, where strerror alone would not tell."""
    return NO_API if code == errno.ENOSYS else einval if code == errno.EINVAL else ""


def user_namespace_fd(uid_mappings, gid_mappings) -> int:
    """An fd on a new user namespace with these maps (IDMapping lists): a
    child unshares it, this process (root) writes its maps and opens it, and
    the child exits; the namespace lives on in the fd."""
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(ready_r)
            _libc.unshare(_libc.CLONE_NEWUSER)
            # Its pid as /proc knows it: this process may be in a pid
            # namespace of its own, which that /proc does not show.
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(go_r, 1)  # EOF: the parent has opened the namespace (or gave up)
        except BaseException:
            pass
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(ready_w)
    try:
        seen_as = os.read(ready_r, 32).decode()
        if not seen_as.isdigit():
            raise KernelError("unshare", "a user namespace for an idmapped mount", errno.EPERM)
        for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            err = write_map_file(int(seen_as), name, format_id_map(mappings))
            if err:
                raise KernelError(f"write {name} of an idmapped mount to", f"/proc/{seen_as}/{name}", err)
        return os.open(f"/proc/{seen_as}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def detached_tree(source: str, clone_recursive: bool, idmap_recursive: bool, userns_fd: int) -> int:
    """An fd on a detached, idmapped copy of the mount at `source`.
    `clone_recursive` (rbind): with its submounts; `idmap_recursive`
    (ridmap): the submounts idmapped too, not the top mount only."""
    flags = _libc.OPEN_TREE_CLONE | _libc.OPEN_TREE_CLOEXEC | (_libc.AT_RECURSIVE if clone_recursive else 0)
    try:
        fd = _libc.open_tree(-100, source, flags)  # AT_FDCWD; `source` is absolute
    except OSError as err:
        raise KernelError("open_tree", "", err.errno, _why(err.errno)) from None
    try:
        _libc.mount_setattr(fd, "", _libc.AT_EMPTY_PATH | (_libc.AT_RECURSIVE if idmap_recursive else 0),
                            _libc.MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    except OSError as err:
        os.close(fd)
        raise KernelError("mount_setattr(MOUNT_ATTR_IDMAP)", "", err.errno, _why(err.errno, NOT_IDMAPPABLE)) from None
    return fd

