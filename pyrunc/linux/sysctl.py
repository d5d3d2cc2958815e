"""linux.sysctl: which keys a container may set, and writing them so that
the kernel cannot resolve outside /proc/sys/<the key's namespaced subtree>.

A key is read as sysctl(8) reads it, once: dotted ("net.ipv4.ip_forward",
where a "/" inside a component stands for a ".": "net.ipv4.conf.eth0/100.x"),
or, when a "/" comes before any ".", as a path ("net/ipv4/conf/eth0.100/x").
Its components must be real names (no "", ".", ".."), and it must lie in a
subtree that belongs to a namespace of the container: net.* (network),
fs.mqueue.* and the System V IPC keys (ipc), kernel.domainname (uts),
user.* (user). Anything else would change the host (kernel.core_pattern,
kernel.modprobe: root code execution).

The write opens the subtree's directory beneath a procfs handle, then the
rest beneath that directory (openat2 RESOLVE_BENEATH, no symlinks, no mount
crossings), and checks the file is on procfs: even a key that slipped
through the checks could not reach another file.
Imports: errors, linux.{_libc, syscalls} (in the functions: spec imports this module).
"""

from __future__ import annotations

from pyrunc import oslite as os

# Sysctls of the IPC namespace outside fs/mqueue (kernel/ipc_sysctl.c).
IPC_KEYS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                      "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


class Key:
    """A parsed sysctl key: path components, its namespace and subtree."""

    __slots__ = ("components", "name", "namespace", "prefix_length")

    def __init__(self, components: list[str], namespace: str, prefix_length: int):
        self.components = components
        # The dotted spelling, each component's own dots written as "/".
        self.name = ".".join(c.replace(".", "/") for c in components)
        self.namespace = namespace
        self.prefix_length = prefix_length


def parse(key: str) -> Key:
    """`key` → Key; ValueError saying why it cannot be set in a container.
    The namespace of a Key is the OCI type that must be the container's own
    ("" for kernel.hostname, which has a field of its own)."""
    slash, dot = key.find("/"), key.find(".")
    if slash >= 0 and (dot < 0 or slash < dot):
        components = key.split("/")
    else:
        components = [part.replace("/", ".") for part in key.split(".")]
    for part in components:
        if part in ("", ".", ".."):
            raise ValueError(f'is not a sysctl name (component "{part}")')
    name = ".".join(c.replace(".", "/") for c in components)
    if components[0] == "net" and len(components) > 1:
        return Key(components, "network", 1)
    if components[:2] == ["fs", "mqueue"] and len(components) > 2:
        return Key(components, "ipc", 2)
    if name in IPC_KEYS:
        return Key(components, "ipc", 1)
    if name == "kernel.domainname":
        return Key(components, "uts", 1)
    if name == "kernel.hostname":
        return Key(components, "", 1)
    if components[0] == "user" and len(components) > 1:
        return Key(components, "user", 1)
    raise ValueError("is not namespaced; refusing to set it for a container")


PROC_SUPER_MAGIC = 0x9FA0


def _kernel(kernel):
    # Imported here, as _libc below: spec imports this module for parse()
    # alone. The init has linux.syscalls loaded long before (linux.mounts).
    if kernel is None:
        from pyrunc.linux.syscalls import REAL

        return REAL
    return kernel


def open_proc(root_fd: int, path: str = "proc", *, kernel=None) -> int:
    """An O_PATH fd of the procfs at `path` under `root_fd` (no symlink
    followed), checked to be procfs. `kernel`: linux.syscalls.Kernel."""
    from pyrunc.linux import _libc

    kernel = _kernel(kernel)
    fd = kernel.openat2(root_fd, path, os.O_PATH | os.O_DIRECTORY,
                        _libc.RESOLVE_IN_ROOT | _libc.RESOLVE_NO_SYMLINKS | _libc.RESOLVE_NO_MAGICLINKS)
    if kernel.fstatfs_type(fd) != PROC_SUPER_MAGIC:
        kernel.close(fd)
        raise OSError(22, f"{path} is not a procfs")
    return fd


def write(proc_fd: int, key: str, value: str, *, kernel=None) -> None:
    """Write `value` to sysctl `key` through the procfs `proc_fd`; OSError
    (ValueError for a key parse refuses) on failure."""
    kernel = _kernel(kernel)
    parsed = parse(key)
    prefix = "sys/" + "/".join(parsed.components[:parsed.prefix_length])
    rest = "/".join(parsed.components[parsed.prefix_length:])
    subtree = kernel.openat2(proc_fd, prefix, os.O_PATH | os.O_DIRECTORY, _beneath())
    try:
        fd = kernel.openat2(subtree, rest, os.O_WRONLY, _beneath())
    finally:
        kernel.close(subtree)
    try:
        if kernel.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise OSError(22, "not a procfs file")
        kernel.write(fd, value.encode())
    finally:
        kernel.close(fd)


def _beneath() -> int:
    from pyrunc.linux import _libc

    return (_libc.RESOLVE_BENEATH | _libc.RESOLVE_NO_SYMLINKS | _libc.RESOLVE_NO_MAGICLINKS
            | _libc.RESOLVE_NO_XDEV)
