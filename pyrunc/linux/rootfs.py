"""The container's root filesystem, set up inside its new mount namespace.

Order matters, and each step says why it sits where it does. Everything that
touches a path inside the rootfs resolves it with openat2(RESOLVE_IN_ROOT)
(see linux.mounts), so the rootfs's own symlinks cannot reach the host.
Every system call goes through a linux.syscalls.Kernel (`kernel`, REAL by
default), so tests/unit/test_init_sequence.py can run these steps on a fake.
Imports: errors, spec.model (types only), linux.{_libc, mounts, proc, syscalls}.
"""

from __future__ import annotations

import errno
import stat

from pyrunc import oslite as os
from pyrunc.errors import KernelError, PyruncError
from pyrunc.linux import _libc, mounts, proc
from pyrunc.linux.syscalls import REAL, Kernel
from pyrunc.linux._libc import MNT_DETACH, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE

# linux.rootfsPropagation → mount(2) flags; applied recursively either way.
PROPAGATION = {
    "": MS_SLAVE | MS_REC,
    "slave": MS_SLAVE | MS_REC,
    "rslave": MS_SLAVE | MS_REC,
    "private": MS_PRIVATE | MS_REC,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": _libc.MS_SHARED | MS_REC,
    "rshared": _libc.MS_SHARED | MS_REC,
    "unbindable": _libc.MS_UNBINDABLE | MS_REC,
    "runbindable": _libc.MS_UNBINDABLE | MS_REC,
}

# The devices runtime-linux.md requires in every container: (name, major, minor).
DEFAULT_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
                   ("tty", 5, 0))
DEV_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                ("/proc/self/fd/2", "stderr"))


def set_root_propagation(propagation: str, *, kernel: Kernel = REAL) -> None:
    """Step 1: before any mount, make "/" slave (or rootfsPropagation), so
    nothing the container mounts propagates back to the host. An unbindable
    root waits until after pivot_root: the rootfs must be bound first."""
    flags = PROPAGATION[""] if "unbindable" in propagation else PROPAGATION[propagation]
    mounts.mount(None, "/", None, flags, what='propagation of "/"', kernel=kernel)


def apply_root_propagation(propagation: str, *, kernel: Kernel = REAL) -> None:
    """After pivot_root: give the new "/" the configured propagation (the
    first call changed the host's "/" as seen from this namespace)."""
    if propagation:
        mounts.mount(None, "/", None, PROPAGATION[propagation], what='propagation of "/"', kernel=kernel)


def make_parent_private(rootfs: str, *, kernel: Kernel = REAL) -> None:
    """pivot_root fails when the new root's parent mount is shared, and a
    shared parent would carry our rootfs bind to other namespaces: make the
    mount holding the rootfs private if it is shared."""
    from pyrunc.linux import proc

    best = None
    for m in proc.read_mountinfo("self"):
        point = m["mount_point"]
        if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and (
            best is None or len(point) >= len(best["mount_point"])
        ):
            best = m
    if best and any(o.startswith("shared:") for o in best["optional"]):
        mounts.mount(None, best["mount_point"], None, MS_PRIVATE, what=f'propagation of "{best["mount_point"]}"',
                     kernel=kernel)


def bind_rootfs(rootfs: str, *, kernel: Kernel = REAL) -> None:
    """Step 2: bind the rootfs onto itself: pivot_root needs a mount point,
    and the bind keeps our later changes off the host's view of the directory."""
    mounts.mount(rootfs, rootfs, None, MS_BIND | MS_REC, what=f'rootfs "{rootfs}"', kernel=kernel)


# Filesystems that take an SELinux context= option for linux.mountLabel.
LABELLED_FSTYPES = frozenset(("tmpfs", "devpts", "mqueue"))


def mount_entries(root_fd: int, entries, bundle: str, cgroup_mount=None, mount_label: str = "",
                  pid_ns_fd: int = -1, source_fds: dict | None = None, *, kernel: Kernel = REAL) -> None:
    """Step 3: every mounts[] entry, in order, destinations resolved in the
    root; `mount_label` (SELinux) on the filesystems that take one. With
    `pid_ns_fd`, the pid namespace the container joins by path, while this
    process is outside it: procfs is mounted for that namespace (its
    "pidns" option), not for this process's. `source_fds` ({index: fd}):
    bind-mount sources opened already, with rights this process may lack,
    and the detached trees of idmapped mounts (linux.idmapped)."""
    from pyrunc.linux import lsm

    for index, entry in enumerate(entries):
        plan = mounts.parse_mount_options(entry.options)
        if _readonly_later(entry, plan):
            plan.flags &= ~MS_RDONLY  # readonly_deferred_mounts, once what goes inside is made
        if mount_label and entry.type in LABELLED_FSTYPES:
            plan.data = lsm.format_mount_label(plan.data, mount_label)
        if entry.type == "bind":
            plan.flags |= MS_BIND
        if entry.type == "cgroup" and cgroup_mount is not None:
            cgroup_mount(root_fd, entry, plan)
            continue
        source = entry.source
        if entry.idmapped and index not in (source_fds or {}):
            # stage1 makes every idmapped mount's tree or fails (the checks
            # in ops.create refuse what it cannot serve).
            raise PyruncError(f'mount "{entry.source}" on "{entry.destination}": no idmapped mount was made for it')
        if plan.is_bind and source_fds and index in source_fds:
            fd = source_fds[index]
            mounts.mount_in_root(root_fd, entry.destination, mounts.fd_path(fd), None, plan,
                                 source_is_dir=stat.S_ISDIR(kernel.fstat(fd).st_mode),
                                 label=f'"{entry.source}" on "{entry.destination}"',
                                 tree_fd=fd if entry.idmapped else -1, kernel=kernel)
            continue
        if plan.is_bind:
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            if not kernel.lexists(source):
                raise PyruncError(f'mount "{entry.source}" on "{entry.destination}": source does not exist')
            mounts.mount_in_root(root_fd, entry.destination, source, None, plan,
                                 source_is_dir=mounts.is_directory_source(source, kernel=kernel), kernel=kernel)
            continue
        fstype = entry.type or None
        if fstype in ("proc", "sysfs"):
            mounts.refuse_symlinks_on_the_way(root_fd, entry.destination, f'"{fstype}"', kernel=kernel)
        if fstype == "proc" and pid_ns_fd >= 0:
            _mount_proc_for(pid_ns_fd, root_fd, entry, plan, kernel=kernel)
            continue
        try:
            mounts.mount_in_root(root_fd, entry.destination, source or fstype, fstype, plan, kernel=kernel)
        except KernelError as err:
            # sysfs cannot be mounted without a network namespace of our own
            # (or in a user namespace): bind the host's /sys read-only instead.
            if fstype == "sysfs" and err.errno in (errno.EPERM, errno.EBUSY):
                plan.flags |= MS_BIND | MS_REC | MS_RDONLY
                mounts.mount_in_root(root_fd, entry.destination, "/sys", None, plan, kernel=kernel)
            else:
                raise


def _readonly_later(entry, plan) -> bool:
    """A read-only tmpfs, or /dev, is mounted writable first (as runc does):
    mount points, devices, the console and tmpcopyup's copy go in after."""
    return bool(plan.flags & MS_RDONLY) and (
        (entry.type == "tmpfs" and not plan.is_bind) or entry.destination.rstrip("/") == "/dev")


def readonly_deferred_mounts(entries, *, kernel: Kernel = REAL) -> None:
    """Make read-only the mounts mount_entries left writable for now
    (_readonly_later), in the container's root ("/" by now)."""
    root_fd = -1
    try:
        for entry in entries:
            plan = mounts.parse_mount_options(entry.options)
            if not _readonly_later(entry, plan):
                continue
            if root_fd < 0:
                root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            mounts.remount(root_fd, entry.destination, MS_BIND | MS_REMOUNT | (plan.flags & mounts.PER_MOUNT_FLAGS),
                           f'"{entry.source or entry.type}" on "{entry.destination}" read-only', kernel=kernel)
    finally:
        if root_fd >= 0:
            kernel.close(root_fd)


# Whether this kernel's procfs takes "pidns" (Linux 6.18); None: not tried yet.
_PROCFS_PIDNS: list = [None]


def _mount_proc_for(pid_ns_fd: int, root_fd: int, entry, plan, *, kernel: Kernel) -> None:
    """procfs for the pid namespace the container joins (this process is
    outside it): its "pidns" option, or else a stub in that namespace
    mounts it (mounts.mount_proc_in_pid_ns)."""
    if _PROCFS_PIDNS[0] is not False:
        with_option = plan.copy()
        with_option.data.append(f"pidns={mounts.fd_path(pid_ns_fd)}")
        try:
            mounts.mount_in_root(root_fd, entry.destination, entry.source or "proc", "proc", with_option, kernel=kernel)
            _PROCFS_PIDNS[0] = True
            return
        except KernelError as err:
            if err.errno != errno.EINVAL or _PROCFS_PIDNS[0]:
                raise
            _PROCFS_PIDNS[0] = False  # "unknown parameter": an older kernel
    mounts.mount_in_root(root_fd, entry.destination, entry.source or "proc", "proc", plan,
                         mounter=lambda target_fd, flags, data, what: mounts.mount_proc_in_pid_ns(
                             pid_ns_fd, target_fd, flags, data, what), kernel=kernel)


def needs_dev_setup(entries) -> bool:
    """/dev gets default devices unless the config bind-mounts a /dev in."""
    for entry in entries:
        if entry.destination.rstrip("/") == "/dev" and (entry.type == "bind" or
                                                        "bind" in entry.options or "rbind" in entry.options):
            return False
    return True


def create_devices(root_fd: int, devices, use_bind: bool, *, kernel: Kernel = REAL) -> None:
    """Step 4: the default devices plus linux.devices, by mknod (or, inside
    a user namespace where mknod is not allowed, bind mounts of the host's)."""
    wanted = {f"/dev/{name}": ("c", major, minor, 0o666, 0, 0) for name, major, minor in DEFAULT_DEVICES}
    configured = set()
    for d in devices:
        mode = d.file_mode if d.file_mode is not None else 0o666
        wanted[d.path] = (d.type, d.major, d.minor, mode, d.uid or 0, d.gid or 0)
        configured.add(d.path)
    old_umask = kernel.umask(0)
    try:
        for path, (kind, major, minor, mode, uid, gid) in wanted.items():
            _create_device(root_fd, path, kind, major, minor, mode & 0o7777, uid, gid, use_bind,
                           must_match=path in configured, kernel=kernel)
    finally:
        kernel.umask(old_umask)


_TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _create_device(root_fd: int, path: str, kind: str, major: int, minor: int, mode: int, uid: int, gid: int,
                   use_bind: bool, must_match: bool = False, *, kernel: Kernel) -> None:
    parent, _, name = path.rstrip("/").rpartition("/")
    parent_fd = mounts.mkdirs_in_root(root_fd, parent or "/", kernel=kernel)
    try:
        dir_fd = kernel.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)
    finally:
        kernel.close(parent_fd)
    try:
        if must_match:
            _refuse_other_file(dir_fd, name, path, kind, major, minor, kernel=kernel)
        try:
            kernel.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise PyruncError(f'device "{path}": a directory is in the way') from None
        if use_bind and kind != "p":
            fd = kernel.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o000,
                         dir_fd=dir_fd)
            kernel.close(fd)
            target = mounts.open_in_root(root_fd, path, kernel=kernel)
            try:
                mounts.mount(path, mounts.fd_path(target), None, MS_BIND, what=f'device "{path}"', kernel=kernel)
            finally:
                kernel.close(target)
            return
        try:
            kernel.mknod(name, _TYPE_BITS[kind] | mode, os.makedev(major, minor), dir_fd=dir_fd)
        except OSError as err:
            raise KernelError("mknod", f'"{path}"', err.errno) from None
        kernel.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        kernel.close(dir_fd)


def _refuse_other_file(dir_fd: int, name: str, path: str, kind: str, major: int, minor: int, *,
                       kernel: Kernel) -> None:
    """config-linux.md (Devices): "If a file already exists at path that does
    not match the requested device, the runtime MUST generate an error"; the
    same device node may stay (it is re-created with the requested mode)."""
    try:
        st = kernel.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    same_type = stat.S_IFMT(st.st_mode) == _TYPE_BITS[kind]
    if same_type and (kind == "p" or (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)):
        return
    raise PyruncError(f'linux.devices: "{path}": a different file is already there '
                      f"(mode {stat.filemode(st.st_mode)}), not device {kind} {major}:{minor}")


def create_dev_symlinks(root_fd: int, has_devpts: bool, *, kernel: Kernel = REAL) -> None:
    """/dev/fd, /dev/std{in,out,err} (runtime-linux.md), /dev/core, and
    /dev/ptmx → pts/ptmx when the container has its own devpts."""
    links = list(DEV_SYMLINKS)
    if kernel.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    dev_fd = mounts.mkdirs_in_root(root_fd, "/dev", kernel=kernel)
    try:
        dir_fd = kernel.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dev_fd)
    finally:
        kernel.close(dev_fd)
    try:
        for target, name in links:
            try:
                kernel.symlink(target, name, dir_fd=dir_fd)
            except FileExistsError:
                pass
        if has_devpts:
            try:
                kernel.unlink("ptmx", dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            kernel.symlink("pts/ptmx", "ptmx", dir_fd=dir_fd)
    finally:
        kernel.close(dir_fd)


def pivot_root(rootfs: str, *, kernel: Kernel = REAL) -> None:
    """Step 6: make the rootfs "/" and detach the old root entirely.

    pivot_root(".", ".") stacks the old root on top of the new one; after
    fchdir to the old root it is "." and can be lazily unmounted (made slave
    first so the unmount does not propagate to the host)."""
    old_root = kernel.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        new_root = kernel.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            kernel.fchdir(new_root)
            try:
                kernel.pivot_root(".", ".")
            except OSError as err:
                raise KernelError("pivot_root", f'"{rootfs}"', err.errno) from None
            kernel.fchdir(old_root)
            mounts.mount(None, ".", None, MS_SLAVE | MS_REC, what="old root propagation", kernel=kernel)
            try:
                kernel.umount2(".", MNT_DETACH)
            except OSError as err:
                raise KernelError("unmount", "old root", err.errno) from None
            kernel.chdir("/")
        finally:
            kernel.close(new_root)
    finally:
        kernel.close(old_root)


def move_root(rootfs: str, *, kernel: Kernel = REAL) -> None:
    """--no-pivot: move the rootfs over "/" and chroot into it (for a rootfs
    on a ramdisk, where pivot_root is impossible). Weaker isolation: the
    host's mounts stay in the container's mount namespace, out of sight."""
    detach_host_proc_and_sysfs(rootfs, kernel=kernel)
    kernel.chdir(rootfs)
    mounts.mount(rootfs, "/", None, _libc.MS_MOVE, what=f'rootfs "{rootfs}" onto "/"', kernel=kernel)
    kernel.chroot(".")
    kernel.chdir("/")


def detach_host_proc_and_sysfs(rootfs: str, *, kernel: Kernel = REAL) -> None:
    """Unmount every whole procfs and sysfs outside `rootfs` (as runc's
    msMoveRoot). The kernel lets a user namespace mount a fresh procfs or
    sysfs only while one is "fully visible" somewhere in its mount namespace
    (mnt_already_visible): behind a chroot the host's /proc still is, and a
    container doing unshare -U -m -p then mount -t proc would get a /proc
    without the masked paths. A mount that cannot be detached (locked into
    a user namespace's copy) is covered with an empty tmpfs instead."""
    fd = mounts.open_own_proc_file("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC, kernel=kernel)
    try:
        entries = proc.parse_mountinfo(_read_all(fd, kernel).decode("utf-8", "surrogateescape"))
    finally:
        kernel.close(fd)
    inside = os.path.realpath(rootfs).rstrip("/") + "/"
    done: list[str] = []
    for entry in entries:
        target = entry["mount_point"]
        if entry["fstype"] not in ("proc", "sysfs") or entry["root"] != "/":
            continue
        if (target + "/").startswith(inside) or any((target + "/").startswith(d.rstrip("/") + "/") for d in done):
            continue  # the container's own, or gone with a parent already detached
        # Slave first: the unmount must not propagate back to the host.
        mounts.mount(None, target, None, MS_SLAVE | MS_REC, what=f'propagation of "{target}"', kernel=kernel)
        try:
            kernel.umount2(target, MNT_DETACH)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.EPERM):
                raise KernelError("unmount", f'"{target}"', err.errno) from None
            mounts.mount("tmpfs", target, "tmpfs", 0, what=f'tmpfs over "{target}"', kernel=kernel)
        done.append(target)


def _read_all(fd: int, kernel: Kernel) -> bytes:
    chunks = []
    while chunk := kernel.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def mask_paths(paths: list[str], *, kernel: Kernel = REAL) -> None:
    """Step 7: hide each masked path: files under a bind of /dev/null,
    directories under an empty read-only tmpfs. Missing paths are skipped.

    The /dev/null used is checked to be the real null device first, so a
    container cannot turn the mask into a bind of a host file (CVE-2025-31133)."""
    if not paths:
        return
    null_fd = _open_real_null(kernel=kernel)
    try:
        root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for path in paths:
                try:
                    fd = mounts.open_in_root(root_fd, path, kernel=kernel)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as err:
                    raise KernelError("mask", f'"{path}"', err.errno) from None
                try:
                    target = mounts.fd_path(fd)
                    if stat.S_ISDIR(kernel.fstat(fd).st_mode):
                        source, fstype, flags = "tmpfs", "tmpfs", MS_RDONLY
                    else:
                        source, fstype, flags = mounts.fd_path(null_fd), None, MS_BIND
                    mounts.mount(source, target, fstype, flags, None, what=f'mask "{path}"', kernel=kernel)
                finally:
                    kernel.close(fd)
        finally:
            kernel.close(root_fd)
    finally:
        kernel.close(null_fd)


def _open_real_null(*, kernel: Kernel) -> int:
    fd = kernel.open("/dev/null", os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
    st = kernel.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 1 or os.minor(st.st_rdev) != 3:
        kernel.close(fd)
        raise PyruncError("masked paths: /dev/null in the container is not the null device (1:3); refusing to mask with it")
    return fd


def readonly_paths(paths: list[str], *, kernel: Kernel = REAL) -> None:
    """Step 7b: bind each path onto itself, then remount it read-only."""
    if not paths:
        return
    root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in paths:
            try:
                fd = mounts.open_in_root(root_fd, path, kernel=kernel)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                target = mounts.fd_path(fd)
                mounts.mount(target, target, None, MS_BIND | MS_REC, what=f'readonly "{path}"', kernel=kernel)
            finally:
                kernel.close(fd)
            mounts.remount(root_fd, path, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, f'readonly "{path}"',
                           kernel=kernel)
    finally:
        kernel.close(root_fd)


def readonly_root(*, kernel: Kernel = REAL) -> None:
    """Step 7c (root.readonly): last, since masking needs a writable /."""
    root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mounts.remount(root_fd, "/", MS_BIND | MS_REMOUNT | MS_RDONLY, 'readonly root "/"', kernel=kernel)
    finally:
        kernel.close(root_fd)


def make_directory(path: str, field: str, *, kernel: Kernel = REAL) -> None:
    """mkdir -p inside the (already pivoted) root; errors name `field`."""
    root_fd = kernel.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        kernel.close(mounts.mkdirs_in_root(root_fd, path, kernel=kernel))
    except OSError as err:
        why = "a /proc magic link or a symlink loop is on the way" if err.errno == errno.ELOOP else err.strerror.lower()
        raise PyruncError(f'{field}: cannot create "{path}": {why}') from None
    finally:
        kernel.close(root_fd)
