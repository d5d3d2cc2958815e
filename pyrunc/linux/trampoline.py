"""The exec trampoline: the container never executes the host's interpreter.

pyrunc's container init is a forked Python process, so until it execs, its
/proc/self/exe is the host's interpreter binary. If the container's program
were `/proc/self/exe` (or a script with `#!/proc/self/exe`), the kernel would
resolve that link while the init is still Python and run the *host* interpreter
inside the container, where it could reopen its own binary for writing and
replace it on the host: CVE-2019-5736.

So the init never calls execve on the container's program itself. It execs a
tiny static ELF program from a sealed memfd, which then execs the program.
While that stub runs, /proc/self/exe is the sealed memfd: the only thing a
`/proc/self/exe` in the container can reach, and it cannot be written.

The stub takes argv = [NAME, path, arg0, arg1, ...] and calls
execve(path, &argv[2], envp); if that fails it exits 127 (ENOENT) or 126.
Called with any other argv[0] it exits 126 at once.
Imports: stdlib only.
"""

from __future__ import annotations

import fcntl
import os
import struct

NAME = "pyrunc-exec"

# x86_64 machine code, assembled by hand:
#   mov  rsi, [rsp+8]           ; argv[0]
#   test rsi, rsi
#   jz   fail
#   mov  rax, "pyrunc-e"        ; argv[0] must be exactly "pyrunc-exec": run any
#   cmp  [rsi], rax             ; other way (a container's `#!/proc/self/exe`
#   jne  fail                   ; script, or /proc/self/exe itself) the stub
#   cmp  dword [rsi+8], "xec\0" ; refuses, instead of looping on itself
#   jne  fail
#   mov  rdi, [rsp+16]          ; path = argv[1]
#   lea  rsi, [rsp+24]          ; argv = &argv[2]
#   mov  rax, [rsp]             ; argc
#   lea  rdx, [rsp+rax*8+16]    ; envp = &argv[argc+1]
#   mov  eax, 59                ; execve
#   syscall
#   mov  edi, 127
#   cmp  rax, -2                ; -ENOENT: 127, anything else: 126
#   je   exit
# fail:
#   mov  edi, 126
# exit:
#   mov  eax, 231               ; exit_group
#   syscall
_X86_64 = bytes.fromhex(
    "488b742408" "4885f6" "743d" "48b87079727563" "2d65" "483906" "752e" "817e0878656300" "7525"
    "488b7c2410" "488d742418" "488b0424" "488d54c410" "b83b000000" "0f05"
    "bf7f000000" "4883f8fe" "7405" "bf7e000000" "b8e7000000" "0f05"
)
_MACHINES = {"x86_64": (62, _X86_64)}
# Read once: after linux.personality LINUX32, uname reports i686.
MACHINE = os.uname().machine

_cached_fd: list[int] = []


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


def sealed_fd() -> int:
    """An fd of a sealed memfd holding the stub (made once per process)."""
    if _cached_fd:
        return _cached_fd[0]
    machine, code = _MACHINES[MACHINE]
    fd = os.memfd_create(NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, build_elf(machine, code))
    os.fchmod(fd, 0o555)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    _cached_fd.append(fd)
    return fd


def execve(path: str, args: list[str], env: list[str]) -> None:
    """Replace this process with `path`, going through the stub.

    The stub is executed through /proc/self/fd/N with plain execve, so a
    seccomp profile that allows execve but not execveat still works; without
    a /proc, fexecve (execveat) it is."""
    environment = _env_dict(env)
    if supported():
        fd = sealed_fd()
        try:
            os.execve(f"/proc/self/fd/{fd}", [NAME, path, *args], environment)
        except FileNotFoundError:
            os.execve(fd, [NAME, path, *args], environment)
    os.execve(path, args, environment)


def _env_dict(env: list[str]) -> dict[str, str]:
    result = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value
    return result
