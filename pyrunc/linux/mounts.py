"""Mount options and mount operations that never leave the container's root.

`parse_mount_options` is pure: OCI option strings → a MountPlan of mount(2)
flags, propagation changes, recursive attributes (mount_setattr) and the data
string for the filesystem. The operations resolve every destination inside the
root with openat2(RESOLVE_IN_ROOT) and mount onto /proc/self/fd/N, so a symlink
in the rootfs cannot send a mount to the host (CVE-2021-30465).
The operations make their system calls through a linux.syscalls.Kernel
(`kernel`, REAL by default).
Imports: errors, linux.{_libc, syscalls}.
"""

from __future__ import annotations

import errno
import stat

from pyrunc import oslite as os
from pyrunc.errors import KernelError
from pyrunc.linux import _libc
from pyrunc.linux.syscalls import REAL, Kernel
from pyrunc.linux._libc import (
    MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
    MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED,
    MS_SILENT, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
)

MS_I_VERSION = 1 << 23

# option → (set?, flag). "set" False means the option clears the flag.
_FLAG_OPTIONS = {
    "async": (False, MS_SYNCHRONOUS), "atime": (False, MS_NOATIME), "bind": (True, MS_BIND),
    "defaults": (True, 0), "dev": (False, MS_NODEV), "diratime": (False, MS_NODIRATIME),
    "dirsync": (True, MS_DIRSYNC), "exec": (False, MS_NOEXEC), "iversion": (True, MS_I_VERSION),
    "lazytime": (True, MS_LAZYTIME), "loud": (False, MS_SILENT), "mand": (True, MS_MANDLOCK),
    "noatime": (True, MS_NOATIME), "nodev": (True, MS_NODEV), "nodiratime": (True, MS_NODIRATIME),
    "noexec": (True, MS_NOEXEC), "noiversion": (False, MS_I_VERSION), "nolazytime": (False, MS_LAZYTIME),
    "nomand": (False, MS_MANDLOCK), "norelatime": (False, MS_RELATIME), "nostrictatime": (False, MS_STRICTATIME),
    "nosuid": (True, MS_NOSUID), "nosymfollow": (True, MS_NOSYMFOLLOW), "rbind": (True, MS_BIND | MS_REC),
    "relatime": (True, MS_RELATIME), "remount": (True, MS_REMOUNT), "ro": (True, MS_RDONLY),
    "rw": (False, MS_RDONLY), "silent": (True, MS_SILENT), "strictatime": (True, MS_STRICTATIME),
    "suid": (False, MS_NOSUID), "sync": (True, MS_SYNCHRONOUS), "symfollow": (False, MS_NOSYMFOLLOW),
}
_PROPAGATION_OPTIONS = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Recursive mount attributes (mount_setattr(2) with AT_RECURSIVE): option → (set?, attr)
_RECURSIVE_OPTIONS = {
    "rro": (True, _libc.MOUNT_ATTR_RDONLY), "rrw": (False, _libc.MOUNT_ATTR_RDONLY),
    "rnosuid": (True, _libc.MOUNT_ATTR_NOSUID), "rsuid": (False, _libc.MOUNT_ATTR_NOSUID),
    "rnodev": (True, _libc.MOUNT_ATTR_NODEV), "rdev": (False, _libc.MOUNT_ATTR_NODEV),
    "rnoexec": (True, _libc.MOUNT_ATTR_NOEXEC), "rexec": (False, _libc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (True, _libc.MOUNT_ATTR_NODIRATIME), "rdiratime": (False, _libc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (True, _libc.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (False, _libc.MOUNT_ATTR_NOSYMFOLLOW),
}
# Access-time options replace each other as one group.
_RECURSIVE_ATIME = {
    "rrelatime": _libc.MOUNT_ATTR_RELATIME, "rnoatime": _libc.MOUNT_ATTR_NOATIME,
    "rstrictatime": _libc.MOUNT_ATTR_STRICTATIME,
}
# Options pyrunc understands that are not passed to the kernel.
# tmpcopyup is not for the kernel either: mount_in_root copies the covered
# directory into the tmpfs.
# idmap and ridmap neither: the mount is idmapped (linux.idmapped) before it is attached.
_IGNORED_OPTIONS = frozenset(("tmpcopyup", "idmap", "ridmap"))

KNOWN_OPTIONS = frozenset(_FLAG_OPTIONS) | frozenset(_PROPAGATION_OPTIONS) | frozenset(_RECURSIVE_OPTIONS) \
    | frozenset(_RECURSIVE_ATIME) | _IGNORED_OPTIONS


class MountPlan:
    """What one mounts[] entry's options mean to the kernel."""

    __slots__ = ("flags", "propagation", "attr_set", "attr_clr", "data", "extensions")

    def __init__(self):
        self.flags = 0
        self.propagation: list[int] = []
        self.attr_set = 0
        self.attr_clr = 0
        self.data: list[str] = []
        self.extensions: list[str] = []

    def copy(self) -> "MountPlan":
        other = MountPlan()
        other.flags, other.attr_set, other.attr_clr = self.flags, self.attr_set, self.attr_clr
        other.propagation, other.data, other.extensions = list(self.propagation), list(self.data), list(self.extensions)
        return other

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    @property
    def is_recursive_bind(self) -> bool:
        return self.flags & (MS_BIND | MS_REC) == MS_BIND | MS_REC


def parse_mount_options(options: list[str]) -> MountPlan:
    plan = MountPlan()
    for option in options:
        flag = _FLAG_OPTIONS.get(option)
        if flag is not None:
            is_set, value = flag
            if is_set:
                plan.flags |= value
            else:
                plan.flags &= ~value
            continue
        propagation = _PROPAGATION_OPTIONS.get(option)
        if propagation is not None:
            plan.propagation.append(propagation)
            continue
        recursive = _RECURSIVE_OPTIONS.get(option)
        if recursive is not None:
            is_set, value = recursive
            if is_set:
                plan.attr_set |= value
                plan.attr_clr &= ~value
            else:
                plan.attr_clr |= value
                plan.attr_set &= ~value
            continue
        atime = _RECURSIVE_ATIME.get(option)
        if atime is not None:
            plan.attr_clr |= _libc.MOUNT_ATTR__ATIME
            plan.attr_set = (plan.attr_set & ~_libc.MOUNT_ATTR__ATIME) | atime
            continue
        if option in _IGNORED_OPTIONS:
            plan.extensions.append(option)
            continue
        plan.data.append(option)
    return plan


# ---------------------------------------------------------------- in-root paths

IN_ROOT = _libc.RESOLVE_IN_ROOT | _libc.RESOLVE_NO_MAGICLINKS


# A procfs directory in which this process is "self": fd paths for mount(2)
# go through it, not through whatever /proc is in the current root (the
# container's own, for its pid namespace, where a process building the
# container from outside is not "self"; see use_proc_dir).
_proc_dir = [-1]
PROC_SUPER_MAGIC = 0x9FA0


def open_own_proc() -> int:
    """An O_PATH fd of /proc, checked to be procfs in which this process is
    "self"; -1 if it is not (then fd paths go through /proc/self as is)."""
    try:
        fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        if _libc.fstatfs_type(fd) == PROC_SUPER_MAGIC:
            os.stat("self/fd", dir_fd=fd)
            return fd
    except OSError:
        pass
    os.close(fd)
    return -1


def open_own_proc_file(path: str, flags: int, *, kernel: Kernel = REAL) -> int:
    """open(2) of "/proc/self/..." through the procfs of use_proc_dir."""
    if _proc_dir[0] >= 0 and path.startswith("/proc/self/"):
        return kernel.open(path[len("/proc/"):], flags, dir_fd=_proc_dir[0])
    return kernel.open(path, flags)


def use_proc_dir(fd: int) -> None:
    """From now on, fd_path() names fds through the procfs `fd` (open_own_proc)."""
    _proc_dir[0] = fd


def fd_path(fd: int) -> str:
    """A path to this process's fd `fd` for mount(2): relative to the procfs
    of use_proc_dir when there is one (mount() resolves it from there)."""
    return f"self/fd/{fd}" if _proc_dir[0] >= 0 else f"/proc/self/fd/{fd}"


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, *, kernel: Kernel = REAL) -> int:
    """Open `path` as seen from `root_fd`: symlinks are followed, but as if
    the root were "/", so they cannot leave it; /proc magic links are refused."""
    return kernel.openat2(root_fd, path.lstrip("/") or ".", flags, IN_ROOT)


MAX_SYMLINKS = 40


PROC_SUPER_MAGIC = 0x9FA0


def resolve_in_root(root_fd: int, path: str, *, kernel: Kernel = REAL) -> str:
    """`path` with every symlink in its existing part resolved inside the
    root (as runc's securejoin does); the missing tail is kept, so the
    result names where a mount point must be created. Relative to the root.

    A symlink on procfs is never read as text: /proc/self/fd/N "points" at
    a host path (a magic link), and following its text would make
    directories inside the root named after pyrunc's own files. ELOOP."""
    pending = [c for c in path.split("/") if c]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/".join(resolved + [part])
        try:
            st = kernel.stat(candidate, dir_fd=root_fd, follow_symlinks=False)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS or _on_procfs(root_fd, "/".join(resolved), kernel):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = kernel.readlink(candidate, dir_fd=root_fd)
            if target.startswith("/"):
                resolved = []
            pending = [c for c in target.split("/") if c] + pending
            continue
        resolved.append(part)
    return "/".join(resolved)


def _on_procfs(root_fd: int, directory: str, kernel: Kernel) -> bool:
    fd = kernel.openat2(root_fd, directory or ".", os.O_PATH | os.O_DIRECTORY, IN_ROOT)
    try:
        return kernel.fstatfs_type(fd) == PROC_SUPER_MAGIC
    finally:
        kernel.close(fd)


def refuse_symlinks_on_the_way(root_fd: int, destination: str, what: str, *, kernel: Kernel = REAL) -> None:
    """Kernel filesystems (proc, sysfs) go on a real directory of the root:
    a rootfs whose /proc is a symlink to /tmp would get procfs at /tmp, a
    place the container's programs do not expect one (runc refuses too)."""
    try:
        fd = kernel.openat2(root_fd, destination.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY,
                           _libc.RESOLVE_IN_ROOT | _libc.RESOLVE_NO_SYMLINKS | _libc.RESOLVE_NO_MAGICLINKS)
    except FileNotFoundError:
        return  # made below, one real directory at a time
    except OSError as err:
        why = {errno.ELOOP: "a symlink in the rootfs is on the way",
               errno.ENOTDIR: "it is not a directory in the rootfs"}.get(err.errno, err.strerror.lower())
        raise KernelError("mount", f'{what} on "{destination}"', err.errno, why) from None
    kernel.close(fd)


def mkdirs_in_root(root_fd: int, path: str, mode: int = 0o755, *, kernel: Kernel = REAL) -> int:
    """mkdir -p `path` inside the root; return an O_PATH fd on the directory."""
    parts = [p for p in resolve_in_root(root_fd, path, kernel=kernel).split("/") if p]
    current = kernel.dup(root_fd)
    try:
        for i, part in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            try:
                fd = kernel.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            except FileNotFoundError:
                # Create one component at a time, relative to the directory
                # already resolved, so nothing outside the root is touched.
                try:
                    kernel.mkdir(part, mode, dir_fd=current)
                except FileExistsError:
                    pass
                fd = kernel.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            kernel.close(current)
            current = fd
        return current
    except BaseException:
        kernel.close(current)
        raise


def create_file_in_root(root_fd: int, path: str, mode: int = 0o644, *, kernel: Kernel = REAL) -> int:
    """Make sure a file exists at `path` inside the root; return an O_PATH fd."""
    try:
        return open_in_root(root_fd, path, kernel=kernel)
    except FileNotFoundError:
        pass
    parent, _, name = resolve_in_root(root_fd, path, kernel=kernel).rpartition("/")
    parent_fd = mkdirs_in_root(root_fd, parent, kernel=kernel)
    try:
        try:
            fd = kernel.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, mode,
                         dir_fd=parent_fd)
            kernel.close(fd)
        except FileExistsError:
            pass
    finally:
        kernel.close(parent_fd)
    return open_in_root(root_fd, path, kernel=kernel)


def make_mountpoint(root_fd: int, destination: str, as_file: bool, *, kernel: Kernel = REAL) -> int:
    """Create the mount point (directory, or empty file for a file bind
    mount) unless it exists; return an O_PATH fd on it."""
    try:
        return open_in_root(root_fd, destination, kernel=kernel)
    except FileNotFoundError:
        pass
    if as_file:
        return create_file_in_root(root_fd, destination, kernel=kernel)
    return mkdirs_in_root(root_fd, destination, kernel=kernel)


# ---------------------------------------------------------------- mount calls

def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None,
          what: str = "", *, kernel: Kernel = REAL) -> None:
    try:
        sys_mount(source, target, fstype, flags, data, kernel=kernel)
    except OSError as err:
        raise KernelError("mount", what or f"{fstype or source} on {target}", err.errno) from None


def sys_mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None, *,
              kernel: Kernel = REAL) -> None:
    """mount(2), resolving fd_path() paths (and a pidns= option naming one)
    from the procfs of use_proc_dir: the process's cwd goes there for the
    call and comes back."""
    relative = (source or "").startswith("self/fd/") or target.startswith("self/fd/") or "pidns=self/fd/" in (data or "")
    if _proc_dir[0] < 0 or not relative:
        kernel.mount(source, target, fstype, flags, data)
        return
    cwd = kernel.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        kernel.fchdir(_proc_dir[0])
        kernel.mount(source, target, fstype, flags, data)
    finally:
        kernel.fchdir(cwd)
        kernel.close(cwd)


def mount_in_root(root_fd: int, destination: str, source: str | None, fstype: str | None, plan: MountPlan,
                  source_is_dir: bool = True, mounter=None, label: str = "", tree_fd: int = -1, *,
                  kernel: Kernel = REAL) -> None:
    """Mount one entry at `destination` inside the root, then apply its
    read-only/nosuid/... remount, propagation and recursive attributes.
    `mounter(target_fd, flags, data)` makes a filesystem's mount instead of
    mount(2) here (procfs for another pid namespace). `tree_fd`: a detached
    mount (open_tree) to attach instead of binding `source` (an idmapped
    mount, linux.idmapped). `label` names the mount in errors."""
    label = label or f'"{source or fstype}" on "{destination}"'
    copy_up = not plan.is_bind and fstype == "tmpfs" and "tmpcopyup" in plan.extensions
    try:
        target_fd = make_mountpoint(root_fd, destination, as_file=not source_is_dir, kernel=kernel)
    except OSError as err:
        raise KernelError("create mount point for", label, err.errno) from None
    covered_fd = None
    try:
        data = ",".join(plan.data) or None
        if tree_fd >= 0:
            attach_tree(tree_fd, target_fd, label, kernel=kernel)
        elif plan.is_bind:
            mount(source, fd_path(target_fd), None, plan.flags & (MS_BIND | MS_REC), None, what=label, kernel=kernel)
        else:
            flags = plan.flags & ~(MS_REMOUNT | MS_BIND | MS_REC)
            if copy_up:
                # tmpcopyup (runc, crun; podman's --tmpfs default): the
                # directory the tmpfs covers, still readable through this fd,
                # is copied into it; read-only only after the copy.
                try:
                    covered_fd = kernel.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target_fd)
                except OSError as err:
                    raise KernelError("open for tmpcopyup", label, err.errno) from None
                flags &= ~MS_RDONLY
            if mounter is not None:
                mounter(target_fd, flags, data or "", label)
            else:
                mount(source or fstype, fd_path(target_fd), fstype, flags, data, what=label, kernel=kernel)
    except BaseException:
        if covered_fd is not None:
            kernel.close(covered_fd)
        raise
    finally:
        kernel.close(target_fd)
    if covered_fd is not None:
        try:
            tmpfs_fd = open_in_root(root_fd, destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, kernel=kernel)
            try:
                copy_tree(covered_fd, tmpfs_fd)
                kernel.fchmod(tmpfs_fd, stat.S_IMODE(kernel.fstat(covered_fd).st_mode))
            finally:
                kernel.close(tmpfs_fd)
        except OSError as err:
            raise KernelError("tmpcopyup into", label, err.errno) from None
        finally:
            kernel.close(covered_fd)
        if plan.flags & MS_RDONLY:
            remount(root_fd, destination, MS_BIND | MS_REMOUNT | (plan.flags & PER_MOUNT_FLAGS), label, kernel=kernel)
    # The fd above points at the covered directory; reopen to reach the new mount.
    if plan.is_bind:
        extra = plan.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
        if extra:
            remount(root_fd, destination, MS_BIND | MS_REMOUNT | extra, label, kernel=kernel)
    if plan.propagation or plan.attr_set or plan.attr_clr:
        fd = open_in_root(root_fd, destination, kernel=kernel)
        try:
            for flag in plan.propagation:
                mount(None, fd_path(fd), None, flag, None, what=label, kernel=kernel)
            if plan.attr_set or plan.attr_clr:
                try:
                    kernel.mount_setattr(fd, "", _libc.AT_EMPTY_PATH | _libc.AT_RECURSIVE, plan.attr_set, plan.attr_clr)
                except OSError as err:
                    raise KernelError("mount_setattr", label, err.errno) from None
        finally:
            kernel.close(fd)


def attach_tree(tree_fd: int, target_fd: int, what: str, *, kernel: Kernel = REAL) -> None:
    """move_mount(2) the detached mount `tree_fd` onto `target_fd` (O_PATH)."""
    try:
        kernel.move_mount(tree_fd, "", target_fd, "", _libc.MOVE_MOUNT_F_EMPTY_PATH | _libc.MOVE_MOUNT_T_EMPTY_PATH)
    except OSError as err:
        raise KernelError("move_mount", what, err.errno) from None


PER_MOUNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME \
    | MS_STRICTATIME | MS_NOSYMFOLLOW


def mount_proc_in_pid_ns(pid_ns_fd: int, target_fd: int, flags: int, data: str, what: str) -> None:
    """procfs for the pid namespace `pid_ns_fd` onto `target_fd`, where the
    kernel has no "pidns" option (before Linux 6.18): procfs is made for the
    mounting process's pid namespace, so the mount(2) is made by a stub
    forked into it (a Python child would be Python there: linux.trampoline).
    That child, for the instant of the call, has this process's root and
    cwd, as runc's init has for all of its set-up."""
    import _socket

    from pyrunc import jsonlite
    from pyrunc.linux import trampoline

    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            _libc.setns(pid_ns_fd, _libc.CLONE_NEWPID)
            os.set_inheritable(target_fd, True)  # for the stub's child, which exits after the mount
            trampoline.run(f"/proc/self/fd/{target_fd}", ["proc", "proc", data], [],
                           flags=trampoline.FORK | trampoline.REAP | trampoline.MOUNT, sync=child.fileno(),
                           mount_flags=flags)
        finally:
            os._exit(1)
    child.close()
    errno_value = errno.EPERM
    try:
        while True:
            message = parent.recv(4096)
            if not message:
                break
            fields = jsonlite.loads(message)
            if fields.get("type") == "stub-error" and isinstance(fields.get("errno"), int):
                errno_value = fields["errno"]
    finally:
        parent.close()
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise KernelError("mount", what, errno_value)


def copy_tree(src_fd: int, dst_fd: int) -> None:
    """Copy the content of one open directory into another: directories,
    files, symlinks, devices and fifos with their owner and mode (as runc's
    tmpcopyup), by name relative to the two fds, never following a symlink."""
    with os.scandir(src_fd) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            continue
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst_fd)
            flags = os.O_RDONLY | os.O_DIRECTORY
        elif stat.S_ISREG(st.st_mode):
            flags = os.O_RDONLY
        else:  # device, fifo, socket: the node itself
            os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            os.chmod(name, mode, dir_fd=dst_fd)
            continue
        src = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
        try:
            if stat.S_ISDIR(st.st_mode):
                dst = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_fd)
            else:
                dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                              dir_fd=dst_fd)
            try:
                if stat.S_ISDIR(st.st_mode):
                    copy_tree(src, dst)
                else:
                    offset = 0
                    while offset < st.st_size:
                        sent = os.sendfile(dst, src, offset, st.st_size - offset)
                        if sent == 0:
                            break
                        offset += sent
                os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, mode)  # after chown, which clears set-id bits
            finally:
                os.close(dst)
        finally:
            os.close(src)


def remount(root_fd: int, destination: str, flags: int, label: str = "", *, kernel: Kernel = REAL) -> None:
    """Change the flags of the mount at `destination`, keeping the flags the
    kernel locked (in a user namespace, dropping nosuid/nodev/... is EPERM)."""
    fd = open_in_root(root_fd, destination, kernel=kernel)
    try:
        try:
            sys_mount(None, fd_path(fd), None, flags, None, kernel=kernel)
        except OSError as err:
            if err.errno != errno.EPERM:
                raise KernelError("remount", label or destination, err.errno) from None
            locked = locked_flags(fd, kernel=kernel)
            try:
                sys_mount(None, fd_path(fd), None, flags | locked, None, kernel=kernel)
            except OSError as err2:
                raise KernelError("remount", label or destination, err2.errno) from None
    finally:
        kernel.close(fd)


_STATVFS_TO_MS = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                  (os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                  (os.ST_RELATIME, MS_RELATIME))


def locked_flags(fd: int, *, kernel: Kernel = REAL) -> int:
    flags = kernel.fstatvfs(fd).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if flags & st)


def is_directory_source(source: str, *, kernel: Kernel = REAL) -> bool:
    try:
        return stat.S_ISDIR(kernel.stat(source).st_mode)
    except OSError:
        return True
