"""Two tiny static programs the container init becomes, so the container
never runs (or reaches) the host's Python interpreter.

pyrunc's container init is a forked Python process, so until it execs, its
/proc/self/exe is the host's interpreter binary. If the container's program
were `/proc/self/exe` (or a script with `#!/proc/self/exe`), the kernel would
resolve that link while the init is still Python and run the *host*
interpreter inside the container, where it could reopen its own binary for
writing and replace it on the host: CVE-2019-5736.

So the init execs one of these instead, from a sealed memfd; while they run,
/proc/self/exe is that memfd, which cannot be written:
  * the exec stub: execve(argv[1], &argv[2], envp). Used by `exec`, and by
    an init that must stay Python until `start` (startContainer hooks);
  * the wait stub: the init while it waits for `start` (non-dumpable, fifo
    fd given in argv, signals handled as a waiting init must), then the
    same execve. It also
    makes a created container cost a few kilobytes of memory, not a Python
    process's ten megabytes.
Both take argv = [NAME, path, arg0, ...] and exit 127 (ENOENT) or 126 when
the execve fails. Their assembly is in pyrunc/linux/stubs/*.S; the bytes
below are what GNU as makes of it (tests/unit/test_trampoline.py checks).
Imports: stdlib only.
"""

from __future__ import annotations

import fcntl
import os
import struct

NAME = "pyrunc-exec"
WAIT_NAME = "pyrunc-wait"

EXEC_X86_64 = bytes.fromhex(
    "488b7424084885f6743d48b8707972756e632d65483906752e817e0878656300"
    "7525488b7c2410488d742418488b0424488d54c410b83b0000000f05bf7f0000"
    "004883f8fe7405bf7e000000b8e70000000f05"
)
WAIT_X86_64 = bytes.fromhex(
    "488b7424084885f60f841601000048b8707972756e632d774839060f85030100"
    "00817e08616974000f85f6000000bf0400000031f6b89d0000000f05488b7424"
    "104531e40fb60685c0740f83e830456be40a4101c448ffc6ebea4883ec40488d"
    "05d20000004889042448c744240800000004488944241048c744241800000000"
    "488d1dbd0000000fb63b85ff74174889e631d241ba08000000b80d0000000f05"
    "48ffc3ebe24489642420c744242401000000488d7c2420be01000000baffffff"
    "ffb8070000000f054883f8007ee44489e7488d742428ba0100000031c00f0548"
    "83f8f574cd4883f8fc74c74883f801753a4489e7b8030000000f054883c44048"
    "8b7c2418488d742420488b0424488d54c410b83b0000000f05bf7f0000004883"
    "f8fe740cbf7e000000eb05bf01000000b8e70000000f0581c780000000b8e700"
    "00000f0501020304050607080a0b0c0d0e0f1018191a1b1d1e1f00"
)
_MACHINES = {"x86_64": (62, {"exec": EXEC_X86_64, "wait": WAIT_X86_64})}
# Read once: after linux.personality LINUX32, uname reports i686.
MACHINE = os.uname().machine

_cached: dict[str, int] = {}


def build_elf(machine: int, code: bytes) -> bytes:
    """A minimal ELF64 executable: one PT_LOAD segment (R+X) holding `code`."""
    base = 0x400000
    header_size, phdr_size = 64, 56
    entry = base + header_size + phdr_size
    total = header_size + phdr_size + len(code)
    ident = b"\x7fELF" + bytes((2, 1, 1, 0)) + bytes(8)  # 64-bit, little endian, SysV
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, header_size, 0, 0,
                                 header_size, phdr_size, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return header + phdr + code


def supported() -> bool:
    return MACHINE in _MACHINES


def sealed_fd(kind: str = "exec") -> int:
    """An fd of a sealed memfd holding the `kind` stub (made once per process)."""
    fd = _cached.get(kind)
    if fd is not None:
        return fd
    machine, programs = _MACHINES[MACHINE]
    fd = os.memfd_create(WAIT_NAME if kind == "wait" else NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, build_elf(machine, programs[kind]))
    os.fchmod(fd, 0o555)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    _cached[kind] = fd
    return fd


def execve(path: str, args: list[str], env: list[str]) -> None:
    """Replace this process with `path`, going through the exec stub."""
    _run_stub("exec", NAME, path, args, env)
    os.execve(path, args, _env_dict(env))


def wait_then_execve(fifo_fd: int, path: str, args: list[str], env: list[str]) -> None:
    """Become the wait stub: it waits on `fifo_fd` (which must not be
    close-on-exec) for `start`, then execs `path`. Returns only if this
    machine has no wait stub."""
    _run_stub("wait", WAIT_NAME, path, args, env, extra=(str(fifo_fd),))


def _run_stub(kind: str, name: str, path: str, args: list[str], env: list[str], extra: tuple = ()) -> None:
    """Exec the stub through /proc/self/fd/N with plain execve, so a seccomp
    profile that allows execve but not execveat still works; without a
    /proc, fexecve (execveat) it is."""
    if not supported():
        return
    fd = sealed_fd(kind)
    environment = _env_dict(env)
    argv = [name, *extra, path, *args]
    try:
        os.execve(f"/proc/self/fd/{fd}", argv, environment)
    except FileNotFoundError:
        os.execve(fd, argv, environment)


def _env_dict(env: list[str]) -> dict[str, str]:
    result = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value
    return result
