"""Seccomp: compile an OCI profile to BPF (in `create`), load it (in the init).

Compiling uses pyseccomp (libseccomp) and happens in the parent, before
anything is created, so a bad profile is a clean create-time error; the init
only hands the finished program to seccomp(2). pyseccomp is imported lazily,
and with `ctypes.util.find_library` answered from a table: that function
spawns ldconfig (and gcc) on every call, tens of milliseconds.
Imports: errors, linux._libc (loading only; compiling needs no ctypes of ours).
"""

from __future__ import annotations

import errno

from pyrunc import oslite as os
from pyrunc.errors import PyruncError

EPERM = errno.EPERM
_MACHINE = os.uname().machine  # before linux.personality can change what uname says

# seccomp(2)
SECCOMP_SET_MODE_FILTER = 1
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8

ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32", "SCMP_ARCH_ARM": "ARM",
    "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS", "SCMP_ARCH_MIPS64": "MIPS64",
    "SCMP_ARCH_MIPS64N32": "MIPS64N32", "SCMP_ARCH_MIPSEL": "MIPSEL", "SCMP_ARCH_MIPSEL64": "MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64",
    "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X",
    "SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64", "SCMP_ARCH_RISCV64": "RISCV64",
}
OPERATORS = {
    "SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
    "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ",
}
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")

_LIBRARIES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}
_module: list = []


def pyseccomp():
    """The pyseccomp module, imported without its find_library cost."""
    if _module:
        return _module[0]
    import ctypes.util

    real = ctypes.util.find_library
    ctypes.util.find_library = lambda name: _LIBRARIES.get(name) or real(name)
    try:
        import pyseccomp as module
    except (ImportError, RuntimeError, OSError) as err:
        raise PyruncError(f"linux.seccomp: libseccomp is not usable on this host: {err}") from None
    finally:
        ctypes.util.find_library = real
    _module.append(module)
    return module


_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib",
                 "/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu")


def libseccomp_version() -> str:
    """The host's libseccomp version ("2.5.4"), or "" without one. Read from
    the library's file name (libseccomp.so.2 → libseccomp.so.2.5.4) when it
    has one, which needs no ctypes; else asked of the library itself."""
    for directory in _LIBRARY_DIRS:
        path = os.path.join(directory, "libseccomp.so.2")
        if os.path.exists(path):
            # The name its chain of symlinks ends at (os.path.realpath would import os).
            for _ in range(40):
                try:
                    path = os.path.join(os.path.dirname(path), os.readlink(path))
                except OSError:
                    break
            name = os.path.basename(path)
            version = name.removeprefix("libseccomp.so.")
            if version.count(".") == 2 and version.replace(".", "").isdigit():
                return version
            break
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
        major, minor, micro = lib.seccomp_version().contents
        return f"{major}.{minor}.{micro}"
    except (OSError, AttributeError):
        return ""


class Program:
    """A compiled filter: the BPF bytes and the seccomp(2) flags to load it with."""

    __slots__ = ("bpf", "flags", "uses_notify", "warnings")

    def __init__(self, bpf: bytes, flags: int, uses_notify: bool, warnings: list[str]):
        self.bpf = bpf
        self.flags = flags
        self.uses_notify = uses_notify
        self.warnings = warnings


# Syscalls the runtime makes between loading a filter and the agent having
# its listener, so a notify rule on them could never be answered: sendmsg
# hands the listener over; write is runc's refusal, kept for its users.
RUNTIME_NEEDS = ("write", "sendmsg")


def _action(sc, name: str, errno_ret: int | None, path: str) -> int:
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return sc.KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return sc.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return sc.TRAP
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return sc.TRACE(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_ALLOW":
        return sc.ALLOW
    if name == "SCMP_ACT_LOG":
        return sc.LOG
    if name == "SCMP_ACT_NOTIFY":
        return sc.NOTIFY
    raise PyruncError(f"{path}: unknown seccomp action {name!r}")


def compile_profile(profile: dict) -> Program:
    """Compile `linux.seccomp` to BPF, as runc does with libseccomp.

    Syscall names this libseccomp does not know are skipped with a warning
    (profiles list syscalls of newer kernels); rules whose action equals the
    default are dropped (libseccomp refuses them). Conditions on distinct
    arguments form one rule (AND); several on the same argument become one
    rule each, as in runc.
    """
    sc = pyseccomp()
    warnings: list[str] = []
    default_name = profile["defaultAction"]
    if default_name == "SCMP_ACT_NOTIFY":
        raise PyruncError("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    default = _action(sc, default_name, profile.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    try:
        filt = sc.SyscallFilter(default)
        # pyrunc sets no_new_privs itself when the config asks; libseccomp
        # would otherwise set it whenever the filter is loaded.
        filt.set_attr(sc.Attr.CTL_NNP, 0)
    except OSError as err:
        raise PyruncError(f"linux.seccomp: cannot create a filter: {err.strerror.lower()}") from None
    for i, arch in enumerate(profile.get("architectures") or ()):
        try:
            filt.add_arch(getattr(sc.Arch, ARCHES[arch]))
        except KeyError:
            raise PyruncError(f"linux.seccomp.architectures[{i}]: unknown architecture {arch!r}") from None
        except OSError as err:
            if err.errno != errno.EEXIST:  # the native one is always there
                raise PyruncError(f"linux.seccomp.architectures[{i}]: {arch}: {err.strerror.lower()}") from None
    uses_notify = False
    for i, rule in enumerate(profile.get("syscalls") or ()):
        path = f"linux.seccomp.syscalls[{i}]"
        action = _action(sc, rule["action"], rule.get("errnoRet"), path + ".action")
        if action == default:
            continue
        if rule["action"] == "SCMP_ACT_NOTIFY":
            uses_notify = True
            for needed in RUNTIME_NEEDS:
                if needed in rule["names"]:
                    raise PyruncError(f"{path}.names: SCMP_ACT_NOTIFY cannot be used for the {needed} syscall"
                                      " (the runtime needs it after the filter is loaded)")
        conditions = _conditions(sc, rule.get("args") or (), path)
        for name in rule["names"]:
            number = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if number == -1:
                warnings.append(f"{path}.names: unknown syscall {name!r} for this libseccomp; skipped")
                continue
            try:
                for group in conditions:
                    filt.add_rule(action, number, *group)
            except OSError as err:
                raise PyruncError(f"{path}: cannot add a rule for {name!r}: {err.strerror.lower()}") from None
    flags = 0
    for i, name in enumerate(profile.get("flags") or ()):
        if name not in FLAGS:
            raise PyruncError(f"linux.seccomp.flags[{i}]: unknown flag {name!r}")
        flags |= FLAGS[name]
    if uses_notify:
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER
    bpf = _export(filt)
    if default_name not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE") and \
            profile.get("defaultErrnoRet") != errno.ENOSYS:
        bpf = build_enosys_prefix(_last_syscalls(sc, profile)) + bpf
    return Program(bpf, flags, uses_notify, warnings)


# ---------------------------------------------------------------- -ENOSYS for syscalls newer than the profile
#
# A profile lists the syscalls it knew of; a newer one (clone3 for an old
# profile, anything a future kernel adds) would get the default action,
# EPERM, and libc takes EPERM as "forbidden", not "fall back to the old
# call". runc (patchbpf) therefore answers -ENOSYS, "this kernel has no such
# call", for every number above the highest the profile names for that
# architecture; pyrunc prepends the same test to the filter.

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
S390_ARCHES = (0x00000016, 0x80000016)  # their unknown syscalls all arrive as number 0
RET_ERRNO_ENOSYS = 0x00050000 | errno.ENOSYS
# classic BPF opcodes
BPF_LD_W_ABS, BPF_JMP_JA, BPF_JEQ_K, BPF_JGT_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
# struct seccomp_data
OFFSET_NR, OFFSET_ARCH = 0, 4


def _last_syscalls(sc, profile: dict) -> dict[tuple[int, bool], int]:
    """{(AUDIT_ARCH_*, is x32): the highest syscall number any rule names},
    for each architecture the profile lists (none listed: no prefix, as in
    runc). Names unknown to an architecture are left out."""
    names = {name for rule in profile.get("syscalls") or () for name in rule["names"]}
    last: dict[tuple[int, bool], int] = {}
    for arch_name in profile.get("architectures") or ():
        arch = getattr(sc.Arch, ARCHES[arch_name])
        is_x32 = arch_name == "SCMP_ARCH_X32"
        highest = max((sc.resolve_syscall(arch, name) for name in names), default=-1)
        if highest > 0:
            last[(AUDIT_ARCH_X86_64 if is_x32 else int(arch), is_x32)] = highest
    return last


def build_enosys_prefix(last: dict[tuple[int, bool], int]) -> bytes:
    """BPF to put before a filter: for the architectures in `last` (see
    _last_syscalls), a syscall number above the highest named returns
    -ENOSYS; everything else falls through to the filter. On x86_64 an x32
    call (bit 30 set) is compared with the x32 maximum, and goes to the
    filter when the profile has no x32 (and the other way round)."""
    import struct

    arches = sorted({audit for audit, _ in last})
    if not arches:
        return b""
    # (code, jump if true, jump if false, k): a jump is a number of
    # instructions to skip, or a label resolved below.
    program: list[tuple] = [(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH)]
    labels: dict[str, int] = {}
    for n, audit in enumerate(arches):
        native, x32 = last.get((audit, False)), last.get((audit, True))
        labels[f"arch{n}"] = len(program)
        program.append((BPF_JEQ_K, 0, f"arch{n + 1}", audit))
        program.append((BPF_LD_W_ABS, 0, 0, OFFSET_NR))
        if audit in S390_ARCHES:
            program.append((BPF_JEQ_K, "enosys", 0, 0))
        if audit == AUDIT_ARCH_X86_64:
            if native is not None and x32 is not None:
                program.append((BPF_JSET_K, 1, 0, X32_SYSCALL_BIT))
            elif native is not None:
                program.append((BPF_JSET_K, "filter", 0, X32_SYSCALL_BIT))
            else:
                program.append((BPF_JSET_K, 0, "filter", X32_SYSCALL_BIT))
        for highest in (native, x32):
            if highest is not None:
                program.append((BPF_JGT_K, "enosys", "filter", highest))
    labels[f"arch{len(arches)}"] = len(program)
    program.append((BPF_JMP_JA, 0, 0, 1))  # an architecture not listed: to the filter
    labels["enosys"] = len(program)
    program.append((BPF_RET_K, 0, 0, RET_ERRNO_ENOSYS))
    labels["filter"] = len(program)
    out = []
    for i, (code, jt, jf, k) in enumerate(program):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        # At most 19 architectures of at most 6 instructions: every jump fits in 8 bits.
        assert 0 <= jt <= 255 and 0 <= jf <= 255
        out.append(struct.pack("=HBBI", code, jt, jf, k))
    return b"".join(out)


# Not in a state root: a root holds container directories only (tools that
# scan one read every directory in it as a container).
CACHE_DIR = "/run/pyrunc-cache/seccomp"
CACHE_LIMIT = 64


def cache_key(profile: dict) -> str:
    """The cache file name of `profile` (a bucket: see compile_profile_cached)."""
    return _bucket(_full_key(profile))


# Changes when compile_profile makes different BPF of the same profile, or refuses
# what it accepted (2: the -ENOSYS prefix; 3: notify on sendmsg refused).
CACHE_FORMAT = 3


def _full_key(profile: dict) -> bytes:
    from pyrunc.jsonlite import dumps

    return f"{CACHE_FORMAT}\0{libseccomp_version()}\0{_MACHINE}\0{dumps(profile)}".encode()


def _bucket(key: bytes) -> str:
    import binascii

    return f"{binascii.crc32(key):08x}-{len(key)}"


def compile_profile_cached(profile: dict, cache_dir: str = CACHE_DIR) -> Program:
    """compile_profile, remembered: engines send the same profile for every
    container, and compiling it (with pyseccomp's import) costs ~20 ms.

    Keyed by the profile as given, this libseccomp's version and the
    architecture; each entry stores its whole key and is used only when the
    key is equal, so a different profile can never get another's filter. The
    file name (cache_key) is only a bucket: a CRC-32 of the key (binascii,
    0.05 ms to import, where hashlib loads OpenSSL: 3 ms; CPython's private
    _sha256 is gone in 3.12). A collision costs a recompile, never a wrong
    filter. The directory must be ours and private (0700), or it is not used.
    """
    from pyrunc.jsonlite import dumps, loads

    key = _full_key(profile)
    # The key as stored: JSON-escaped, so it holds no newline.
    stored_key = dumps(key.decode()).encode()
    path = os.path.join(cache_dir, _bucket(key))
    try:
        if not _private_dir(cache_dir):
            raise OSError("not a private directory")
        with open(path, "rb") as f:
            data = f.read()
        header, _, rest = data.partition(b"\n")
        entry_key, _, bpf = rest.partition(b"\n")
        if entry_key == stored_key:
            meta = loads(header)
            return Program(bpf, meta["flags"], meta["notify"], meta["warnings"])
    except (OSError, ValueError, KeyError):
        pass
    program = compile_profile(profile)
    header = dumps({"flags": program.flags, "notify": program.uses_notify, "warnings": program.warnings})
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        if not _private_dir(cache_dir):
            return program
        _prune(cache_dir)
        with open(tmp, "wb") as f:
            f.write(header.encode() + b"\n" + stored_key + b"\n" + program.bpf)
        os.rename(tmp, path)
    except OSError:  # a cache that cannot be written only costs time
        try:
            os.unlink(tmp)  # half-written on a full filesystem
        except OSError:
            pass
    return program


def _private_dir(path: str) -> bool:
    import stat

    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def _prune(cache_dir: str) -> None:
    entries = [e for e in os.scandir(cache_dir) if e.is_file(follow_symlinks=False)]
    if len(entries) < CACHE_LIMIT:
        return
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime)
    for entry in entries[: len(entries) - CACHE_LIMIT + 1]:
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def _conditions(sc, args, path: str) -> list[tuple]:
    """Argument conditions as groups: one rule per group."""
    if not args:
        return [()]
    made = []
    indexes = []
    for j, arg in enumerate(args):
        op = OPERATORS.get(arg["op"])
        if op is None:
            raise PyruncError(f"{path}.args[{j}].op: unknown operator {arg['op']!r}")
        made.append(sc.Arg(arg["index"], getattr(sc, op), arg["value"], arg.get("valueTwo", 0)))
        indexes.append(arg["index"])
    if len(set(indexes)) == len(indexes):
        return [tuple(made)]
    return [(cond,) for cond in made]


class _FdFile:
    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def _export(filt) -> bytes:
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        filt.export_bpf(_FdFile(fd))
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    except OSError as err:
        raise PyruncError(f"linux.seccomp: cannot export the filter: {err.strerror.lower()}") from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- loading (in the init)

def load(program: Program) -> int | None:
    """Install the filter on this process (seccomp(2)); return the notify
    listener fd when the profile uses SCMP_ACT_NOTIFY."""
    from pyrunc.errors import KernelError
    from pyrunc.linux import _libc

    try:
        result = _libc.seccomp_set_mode_filter(program.flags, program.bpf)
    except OSError as err:
        raise KernelError("load seccomp filter", "", err.errno) from None
    return result if program.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER else None


def send_to_listener(path: str, metadata: str, pid: int, fd: int, state: dict) -> None:
    """Hand the notify fd to the seccomp agent at listenerPath, with the
    container process state the runtime-spec defines (config-linux.md)."""
    import _socket
    import struct

    from pyrunc import OCI_VERSION
    from pyrunc.jsonlite import dumps

    message = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid, "metadata": metadata, "state": state}
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
        sock.sendmsg([dumps(message).encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    except OSError as err:
        raise PyruncError(f'linux.seccomp.listenerPath: failed to connect with seccomp agent at "{path}": '
                          f'{err.strerror.lower()}') from None
    finally:
        sock.close()
