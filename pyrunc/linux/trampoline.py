"""The stub: a tiny static program that every container process is
between pyrunc's Python and the container's program, so that no process in
the container's pid namespace ever has the host's interpreter (or any host
file) as its /proc/N/exe: CVE-2019-5736 class.

Why: a forked Python process's /proc/N/exe is the host's interpreter until
it execs. A container process that can see it (same pid namespace) and
holds CAP_SYS_PTRACE (non-dumpable does not stop that) can keep an O_PATH
fd of it and later reopen it for writing: the host's Python, replaced. So
pyrunc does its set-up in Python where the container cannot see it, then
execs this stub from a sealed memfd (its /proc/self/exe cannot be written):
  * `exec`, and an init joining a pid namespace by path, set up in the
    host's pid namespace, having only set the container's for their
    children (setns(CLONE_NEWPID) does that, and it survives execve); the
    stub forks (FORK) into the container's, reports the child's pid and
    exits: the child is the first thing of pyrunc's there, and it is the
    stub;
  * an init cloned into a new pid namespace is alone in it while it is
    Python (nothing can join before it is created); it becomes the stub in
    place, which waits for `start` (WAIT) and holds 12 KiB, not a Python
    process's 10 MiB.
The stub then makes itself non-dumpable, takes the terminal, loads the
seccomp filter when no_new_privs is on (as late as possible, after its
fork: a profile that forbids every kind of clone still works), says
"ready", waits for `start` if asked, and execs the program. With
no_new_privs off the filter must be loaded while pyrunc still has
CAP_SYS_ADMIN, before the user switch, so in Python; the stub's fork then
comes after it: a plain clone(SIGCHLD), which profiles that restrict
clone's flags (Docker's) allow. Its assembly is pyrunc/linux/stubs/stub_x86_64.S (the ABI is
documented there); STUB_X86_64 is what GNU as makes of it
(tests/unit/test_trampoline.py checks). Without a stub for this machine,
_run_in_python does the same steps in Python, and the guarantee above does
not hold: the forked child is Python until it execs.
Imports: stdlib, errors, linux._libc (for fstatfs), jsonlite.
"""

from __future__ import annotations

import fcntl
import struct

from pyrunc import oslite as os
from pyrunc.errors import program_exit_code

NAME = "pyrunc-stub"

# CONTROL flags (stub_x86_64.S)
FORK, WAIT, SETSID, REAP, MOUNT = 1, 2, 4, 8, 16

STUB_X86_64 = bytes.fromhex(
    "4889e54881ec800100004989e7488b75084885f60f84e004000048b870797275"
    "6e632d734839060f85cd040000817e08747562000f85c004000048837d18000f"
    "84b5040000488b75104885f60f84a804000031c931c031d2440fb6064183e830"
    "4183f8097717486bc00a4c01c0ffc248ffc683fa090f877f040000ebdb85d275"
    "0748c7c0ffffffff498904cfffc183f907740e803e2c0f855e04000048ffc6eb"
    "b3803e000f855004000049833fff750749c70700000000498b7f304885ff7820"
    "b8510000000f05be060000004885c00f8831040000498b7f30b8030000000f05"
    "41f607010f84cb000000bf1100000031f631d24531d24531c0b8380000000f05"
    "be010000004885c00f88f80300000f84a10000004989c4498d7f40488d35a904"
    "0000e82d0400004c89e0e836040000c6077d48ffc7e85d04000048c7c3080000"
    "00498b3c1f4885ff7807b8030000000f054883c3084883fb3072e631ff41f607"
    "080f84980300004c89e7498db76001000031d24531d2b83d0000000f054883f8"
    "fc74e4bf010000004885c00f886e030000418b876001000089c783e77f740b81"
    "c780000000e955030000c1e8080fb6f8e94a030000bf0400000031f6b89d0000"
    "000f0541f607107430488b7d20488b7518488b55284d8b57284c8b4530b8a500"
    "00000f05be070000004885c00f881403000031ffe90603000041f607047415b8"
    "700000000f05be020000004885c00f88f2020000498b7f104885ff7851be0e54"
    "000031d2b8100000000f05be030000004885c00f88cd02000031db498b7f1089"
    "deb8210000000f05be030000004885c00f88b0020000ffc383fb0372de498b7f"
    "104883ff027607b8030000000f0541f607027454488d0543030000498987c000"
    "000049c787c800000000000004498987d000000049c787d80000000000000048"
    "8d1d8d0300000fb63b85ff741b498db7c000000031d241ba08000000b80d0000"
    "000f0548ffc3ebde4d8b47184d85c00f884b01000031ffbe00900000ba010000"
    "0041ba020000004531c9b8090000000f05be04000000483d00f0ffff0f870402"
    "00004989c5418b450466418987f0000000498d4508498987f8000000bf010000"
    "00418b7500498d97f0000000b83d0100000f05be040000004885c00f88c50100"
    "004989c641f74500080000000f84c3000000488d05bf02000049898700010000"
    "49c787080100001b00000049c787100100000000000049c78718010000000000"
    "00498d87000100004989872001000049c7872801000001000000498d87480100"
    "004989873001000049c787380100001800000049c787400100000000000049c7"
    "87480100001400000041c787500100000100000041c787540100000100000045"
    "89b758010000498b7f08498db710010000ba00400000b82e0000000f05be0500"
    "00004885c00f88fb0000004c89f7b8030000000f05498b7f18b8030000000f05"
    "498b7f084885ff7820498d7f40488d35ac010000e81b010000e859010000498b"
    "7f08b8030000000f0541f607020f8484000000418b4720418987e000000041c7"
    "87e400000001000000498dbfe0000000be01000000baffffffffb8070000000f"
    "054883f8007ee2498b7f20498db7e8000000ba0100000031c00f054883f8f574"
    "c84883f8fc74c2bf010000004883f801754d498b7f284885ff7811be02000000"
    "ba01000000b8480000000f05498b7f20b8030000000f05488b7d18488d752048"
    "8b4500488d54c510b83b0000000f05bf7f0000004883f8fe7405bf7e000000b8"
    "e70000000f0548f7d84989c489f3498b47084885c07836498d7f40488d35cf00"
    "0000e82d00000089d8e837000000488d35d9000000e81a0000004c89e0e82300"
    "0000c6077d48ffc7e84a000000bf01000000ebab8a0684c0740a880748ffc748"
    "ffc6ebf0c3498d8f7f0100004989c941ba0a00000031d249f7f280c230881148"
    "ffc94885c075ee48ffc18a11881748ffc74c39c975f1c3498d77404889fa4829"
    "f2498b7f084885ff781341ba004000004531c04531c9b82c0000000f05c381c7"
    "80000000b8e70000000f057b2274797065223a22706964222c22706964223a00"
    "7b2274797065223a227265616479227d007b2274797065223a22737475622d65"
    "72726f72222c2273746570223a002c226572726e6f223a007b2274797065223a"
    "22736563636f6d702d6c697374656e6572227d01020304050607080a0b0c0d0e"
    "0f1018191a1b1d1e1f00"
)
_MACHINES = {"x86_64": (62, STUB_X86_64)}
# Read once: after linux.personality LINUX32, uname reports i686.
MACHINE = os.uname().machine

_cached: list[int] = []


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
    """An fd of a sealed memfd holding the stub (made once per process,
    close-on-exec: execve of the stub itself does not need it open)."""
    if _cached:
        return _cached[0]
    machine, code = _MACHINES[MACHINE]
    fd = os.memfd_create(NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, build_elf(machine, code))
    os.fchmod(fd, 0o555)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    _cached.append(fd)
    return fd


def seccomp_fd(bpf: bytes, flags: int) -> int:
    """The memfd the stub loads a filter from: [u32 flags][u32 count][BPF]."""
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, struct.pack("<II", flags, len(bpf) // 8) + bpf)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def control(flags: int = 0, sync: int = -1, tty: int = -1, bpf: int = -1, fifo: int = -1, status: int = -1,
            cwd: int = -1) -> str:
    """The stub's CONTROL argument."""
    return ",".join("" if v < 0 else str(v) for v in (flags, sync, tty, bpf, fifo, status, cwd))


def run(path: str, args: list[str], env: list[str], *, flags: int = 0, sync: int = -1, tty: int = -1,
        bpf: int = -1, fifo: int = -1, status: int = -1, proc_fd: int = -1, mount_flags: int = 0) -> None:
    """Become the stub with these steps (stub_x86_64.S); never returns
    normally: OSError if the stub could not be executed.

    The fds given are made inheritable (the stub closes them before the
    program runs). execveat of the memfd first; where a seccomp filter
    already loaded forbids it, plain execve of "self/fd/N" relative to
    `proc_fd`, a procfs in which this process is "self" (never the
    container's own /proc, which the container may have replaced), the
    stub then returning to the cwd it is handed. MOUNT takes `mount_flags`
    in the status field."""
    if not supported():
        _run_in_python(path, args, env, flags, sync, tty, bpf, fifo, status, mount_flags)
    fd = sealed_fd()
    for inherited in (sync, tty, bpf, fifo, status):
        if inherited >= 0:
            os.set_inheritable(inherited, True)
    if flags & MOUNT:
        status = mount_flags
    environment = _env_dict(env)
    try:
        os.execve(fd, [NAME, control(flags, sync, tty, bpf, fifo, status), path, *args], environment)
    except OSError as err:
        if proc_fd < 0 or err.errno not in (1, 13, 38):  # EPERM, EACCES, ENOSYS: a filter's answer
            raise
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY)
    os.set_inheritable(cwd, True)  # for the stub, which goes back there and closes it
    os.fchdir(proc_fd)
    try:
        os.execve(f"self/fd/{fd}", [NAME, control(flags, sync, tty, bpf, fifo, status, cwd), path, *args],
                  environment)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def _env_dict(env: list[str]) -> dict[str, str]:
    result = {}
    for entry in env:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def _run_in_python(path, args, env, flags, sync, tty, bpf, fifo, status, mount_flags) -> None:
    """The stub's steps, in Python, for machines without a stub: the same
    behaviour, without the guarantee (a forked child is Python until it
    execs). Never returns."""
    import _signal
    import _socket
    import select

    from pyrunc import jsonlite

    def send(fields: dict, fds=()) -> None:
        if sync >= 0:
            sock = _socket.socket(fileno=sync)
            try:
                rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
                sock.sendmsg([jsonlite.dumps(fields).encode()], rights)
            except OSError:
                pass
            finally:
                sock.detach()

    def fail(step: int, err: OSError) -> None:
        send({"type": "stub-error", "step": step, "errno": err.errno or 0})
        os._exit(1)

    try:
        if flags & FORK:
            try:
                pid = os.fork()
            except OSError as err:
                fail(1, err)
            if pid:
                send({"type": "pid", "pid": pid})
                for fd in (sync, tty, bpf, fifo, status):
                    if fd >= 0:
                        os.close(fd)
                if not flags & REAP:
                    os._exit(0)
                os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) % 256 or 0)
        from pyrunc.linux import _libc

        _libc.prctl(_libc.PR_SET_DUMPABLE, 0)
        if flags & MOUNT:
            try:
                _libc.mount(args[0], path, args[1], mount_flags, args[2])
            except OSError as err:
                fail(7, err)
            os._exit(0)
        if flags & SETSID:
            try:
                os.setsid()
            except OSError as err:
                fail(2, err)
        if tty >= 0:
            try:
                fcntl.ioctl(tty, 0x540E, 0)
                for target in (0, 1, 2):
                    os.dup2(tty, target)
            except OSError as err:
                fail(3, err)
            if tty > 2:
                os.close(tty)
        if flags & WAIT:
            for number in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31):
                _signal.signal(number, lambda signo, frame: os._exit(128 + signo))
        if bpf >= 0:
            header = os.pread(bpf, 8, 0)
            seccomp_flags, count = struct.unpack("<II", header)
            try:
                listener = _libc.seccomp_set_mode_filter(seccomp_flags, os.pread(bpf, count * 8, 8))
            except OSError as err:
                fail(4, err)
            if seccomp_flags & 8:  # the listener to the agent before any other syscall (the stub's order)
                send({"type": "seccomp-listener"}, [listener])
                os.close(listener)
            os.close(bpf)
        send({"type": "ready"})
        if sync >= 0:
            os.close(sync)
        if flags & WAIT:
            poller = select.poll()
            poller.register(fifo, select.POLLIN)
            while True:
                poller.poll()
                try:
                    if os.read(fifo, 1):
                        break
                    os._exit(1)
                except (BlockingIOError, InterruptedError):
                    continue
            if status >= 0:
                os.set_inheritable(status, False)
            os.close(fifo)
        for number in (13, 25):  # Python ignores SIGPIPE and SIGXFSZ; the program starts with the defaults
            _signal.signal(number, _signal.SIG_DFL)
        try:
            os.execve(path, args, _env_dict(env))
        except OSError as err:
            os._exit(program_exit_code("exec", err.errno))
    finally:
        os._exit(1)
