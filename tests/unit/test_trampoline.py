"""The stub (pyrunc.linux.trampoline, linux/stubs/stub_x86_64.S): the ELF it
builds, and, on x86_64, the stub itself in forked children: exec'ing
programs, forking and reporting the child, reaping it, waiting on a fifo,
taking a terminal, loading a seccomp filter, reporting a failed step. No
root needed."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import struct

import pytest

from pyrunc.linux import trampoline

on_x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the stub exists for x86_64 only")

ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
PT_LOAD = 1
PF_X, PF_W, PF_R = 1, 2, 4


def _parse(image: bytes):
    header = ELF_HEADER.unpack_from(image, 0)
    (ident, e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum,
     e_shentsize, e_shnum, e_shstrndx) = header
    phdrs = [PROGRAM_HEADER.unpack_from(image, e_phoff + i * e_phentsize) for i in range(e_phnum)]
    return dict(ident=ident, type=e_type, machine=e_machine, version=e_version, entry=e_entry, phoff=e_phoff,
                shoff=e_shoff, ehsize=e_ehsize, phentsize=e_phentsize, phnum=e_phnum, shnum=e_shnum), phdrs


def test_build_elf_header_valid():
    code = b"\x90" * 10
    image = trampoline.build_elf(62, code)
    header, _ = _parse(image)
    assert header["ident"][:4] == b"\x7fELF"
    assert header["ident"][4] == 2  # ELFCLASS64
    assert header["ident"][5] == 1  # little endian
    assert header["ident"][6] == 1  # EV_CURRENT
    assert header["ident"][7] == 0  # System V ABI
    assert header["type"] == 2  # ET_EXEC
    assert header["machine"] == 62  # EM_X86_64
    assert header["version"] == 1
    assert header["ehsize"] == 64
    assert header["phoff"] == 64
    assert header["phentsize"] == 56
    assert header["phnum"] == 1
    assert header["shnum"] == 0 and header["shoff"] == 0


def test_build_elf_one_load_segment_covers_code():
    code = bytes(range(40))
    image = trampoline.build_elf(62, code)
    header, phdrs = _parse(image)
    assert len(phdrs) == 1
    p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = phdrs[0]
    assert p_type == PT_LOAD
    assert p_flags == PF_R | PF_X  # never writable
    assert p_offset == 0
    assert p_filesz == p_memsz == len(image)
    assert p_vaddr % p_align == p_offset % p_align
    # The entry point is the first byte of the code, inside the segment.
    assert p_vaddr <= header["entry"] < p_vaddr + p_memsz
    assert image[header["entry"] - p_vaddr:] == code
    assert len(image) == 64 + 56 + len(code)


def test_build_elf_machine_field_passed_through():
    header, _ = _parse(trampoline.build_elf(183, b"\x00\x00\x00\x00"))  # EM_AARCH64
    assert header["machine"] == 183


@on_x86_64
def test_supported_on_x86_64():
    assert trampoline.supported()


# ---------------------------------------------------------------- running the stub

def _run_in_child(action):
    """Fork; in the child redirect stdout/stderr to a pipe and run `action`
    (which should exec). Returns (exit code, output)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            action()
        except BaseException:
            pass
        finally:
            os._exit(99)  # the exec did not happen
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


def run_stub(path, args, env=(), **kwargs):
    return lambda: trampoline.run(path, list(args), list(env), **kwargs)


@on_x86_64
def test_execve_runs_program_with_argv0_and_env():
    code, output = _run_in_child(run_stub("/bin/sh", ["mysh", "-c", "echo $0 $X; exit 3"], ["X=1", "PATH=/bin:/usr/bin"]))
    assert code == 3
    assert output == "mysh 1\n"


@on_x86_64
def test_execve_environment_exact():
    code, output = _run_in_child(run_stub("/usr/bin/env", ["env"], ["A=1", "B=two words", "EMPTY="]))
    assert code == 0
    assert output.splitlines() == ["A=1", "B=two words", "EMPTY="]


@on_x86_64
def test_execve_many_arguments_passed():
    args = ["sh", "-c", 'printf "%s|" "$@"', "zero"] + [f"a{i}" for i in range(50)] + ["", "with space"]
    code, output = _run_in_child(run_stub("/bin/sh", args))
    assert code == 0
    assert output == "|".join([f"a{i}" for i in range(50)] + ["", "with space"]) + "|"


@on_x86_64
def test_execve_proc_self_exe_is_program_after_exec():
    readlink = os.path.realpath("/usr/bin/readlink")
    code, output = _run_in_child(run_stub(readlink, ["readlink", "/proc/self/exe"]))
    assert code == 0
    assert output == readlink + "\n"


@on_x86_64
def test_execve_missing_program_127(tmp_path):
    code, output = _run_in_child(run_stub(str(tmp_path / "absent"), ["absent"]))
    assert code == 127
    assert output == ""


@on_x86_64
def test_execve_non_executable_file_126(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o644)
    code, _ = _run_in_child(run_stub(str(script), ["script"]))
    assert code == 126


@on_x86_64
def test_execve_directory_126(tmp_path):
    code, _ = _run_in_child(run_stub(str(tmp_path), ["dir"]))
    assert code == 126


@on_x86_64
def test_stub_other_argv0_refuses_126():
    fd = trampoline.sealed_fd()
    code, output = _run_in_child(lambda: os.execve(fd, ["other", "", "/bin/true"], {}))
    assert code == 126
    assert output == ""


@on_x86_64
@pytest.mark.parametrize("argv0", ["pyrunc-stu", "pyrunc-stubX", "pyrunc-stub ", "/proc/self/exe", "PYRUNC-STUB",
                                   "pyrunc-exec", "pyrunc-wait"])
def test_stub_near_miss_argv0_refuses_126(argv0):
    fd = trampoline.sealed_fd()
    code, output = _run_in_child(lambda: os.execve(fd, [argv0, "", "/bin/sh", "sh", "-c", "echo ran"], {}))
    assert code == 126
    assert output == ""


@on_x86_64
@pytest.mark.parametrize("control", ["", "1", ",,,,,,,", "a,,,,,,", "0,,,,,,x", "0;,,,,,", "1234567890,,,,,,",
                                     "0,,,,,, ", "-1,,,,,,"])
def test_stub_malformed_control_refuses_126(control):
    fd = trampoline.sealed_fd()
    code, output = _run_in_child(lambda: os.execve(fd, [trampoline.NAME, control, "/bin/sh", "sh", "-c", "echo ran"],
                                                   {}))
    assert code == 126 and output == "", control


@on_x86_64
def test_stub_without_path_126():
    fd = trampoline.sealed_fd()
    code, _ = _run_in_child(lambda: os.execve(fd, [trampoline.NAME, ",,,,,,"], {}))
    assert code == 126


@on_x86_64
def test_control_fields_in_order():
    assert trampoline.control() == "0,,,,,,"
    assert trampoline.control(5, 3, -1, 7, 8, -1, 9) == "5,3,,7,8,,9"


# ---------------------------------------------------------------- the sealed memfd

@on_x86_64
def test_sealed_fd_cached_and_cloexec():
    fd = trampoline.sealed_fd()
    assert trampoline.sealed_fd() == fd
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


@on_x86_64
def test_sealed_fd_seals_set():
    seals = fcntl.fcntl(trampoline.sealed_fd(), fcntl.F_GET_SEALS)
    for seal in (fcntl.F_SEAL_SEAL, fcntl.F_SEAL_SHRINK, fcntl.F_SEAL_GROW, fcntl.F_SEAL_WRITE):
        assert seals & seal, seal


@on_x86_64
def test_sealed_fd_content_is_the_stub():
    fd = trampoline.sealed_fd()
    machine, code = trampoline._MACHINES["x86_64"]
    expected = trampoline.build_elf(machine, code)
    assert os.pread(fd, len(expected) + 16, 0) == expected
    assert os.fstat(fd).st_mode & 0o777 == 0o555


@on_x86_64
def test_sealed_fd_not_writable():
    fd = trampoline.sealed_fd()
    with pytest.raises(OSError) as info:
        os.pwrite(fd, b"\xcc", 0)
    assert info.value.errno == errno.EPERM
    try:
        reopened = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
    except PermissionError:
        return  # mode 0555: only root gets this far, and the seal stops root too
    try:
        with pytest.raises(OSError) as info:
            os.write(reopened, b"\xcc")
        assert info.value.errno == errno.EPERM
    finally:
        os.close(reopened)


@on_x86_64
def test_sealed_fd_cannot_resize_or_unseal():
    fd = trampoline.sealed_fd()
    size = os.fstat(fd).st_size
    with pytest.raises(OSError):
        os.ftruncate(fd, 0)
    with pytest.raises(OSError):
        os.ftruncate(fd, size + 4096)
    with pytest.raises(OSError):
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)  # F_SEAL_SEAL: no more changes
    assert os.fstat(fd).st_size == size


def test_env_dict_splits_first_equals():
    assert trampoline._env_dict(["A=1", "B=x=y", "C=", "D"]) == {"A": "1", "B": "x=y", "C": "", "D": ""}


# ---------------------------------------------------------------- the bytes are the assembly

import shutil  # noqa: E402
import subprocess  # noqa: E402

STUBS = os.path.join(os.path.dirname(trampoline.__file__), "stubs")


def test_stub_bytes_are_what_gnu_as_makes_of_the_source(tmp_path):
    if not (shutil.which("as") and shutil.which("objcopy")):
        pytest.skip("needs GNU as and objcopy (binutils)")
    obj, raw = tmp_path / "stub.o", tmp_path / "stub.bin"
    subprocess.run(["as", "--64", "-o", str(obj), os.path.join(STUBS, "stub_x86_64.S")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    assert raw.read_bytes() == trampoline.STUB_X86_64


# ---------------------------------------------------------------- FORK, REAP, sync messages

def messages(sock: socket.socket) -> list[dict]:
    """Every message on the sync socket until EOF (fds closed as they come)."""
    found = []
    while True:
        data, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        if not data:
            return found
        message = json.loads(data)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                message["fds"] = list(struct.unpack(f"{len(payload) // 4}i", payload))
                for fd in message["fds"]:
                    os.close(fd)
        found.append(message)


def spawn(path, args, flags, env=("PATH=/bin:/usr/bin",), **fds):
    """Fork a child that becomes the stub with a sync socket; the child's
    output goes to a pipe. Returns (child pid, parent end of sync, output read end)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            os.close(out_r)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            trampoline.run(path, list(args), list(env), flags=flags, sync=child.fileno(), **fds)
        finally:
            os._exit(99)
    child.close()
    os.close(out_w)
    return pid, parent, out_r


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            os.close(fd)
            return b"".join(chunks)
        chunks.append(chunk)


@on_x86_64
def test_fork_reports_the_child_pid_and_the_child_runs_the_program():
    pid, sock, out = spawn("/bin/sh", ["sh", "-c", "echo $$ > /dev/stdout; exit 0"], trampoline.FORK)
    try:
        found = messages(sock)
    finally:
        sock.close()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the stub's parent half exits at once
    kinds = [m["type"] for m in found]
    assert sorted(kinds) == ["pid", "ready"], found
    child = next(m["pid"] for m in found if m["type"] == "pid")
    assert child != pid
    assert read_all(out).decode().strip() == str(child)


@on_x86_64
def test_fork_reap_waits_and_exits_with_the_childs_code():
    for script, expected in (("exit 7", 7), ("kill -TERM $$", 128 + 15)):
        pid, sock, out = spawn("/bin/sh", ["sh", "-c", script], trampoline.FORK | trampoline.REAP)
        messages(sock)
        sock.close()
        read_all(out)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == expected, script


@on_x86_64
def test_setsid_makes_the_child_a_session_leader():
    pid, sock, out = spawn("/bin/sh", ["sh", "-c", "ps -o sid= -p $$ 2>/dev/null || cut -d' ' -f6 /proc/$$/stat; "
                                       "echo $$"], trampoline.FORK | trampoline.SETSID)
    messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    sid, child = read_all(out).decode().split()[-2:]
    assert sid == child


@on_x86_64
def test_child_is_not_dumpable_until_it_execs():
    # A program that checks: after execve the kernel makes it dumpable again.
    pid, sock, out = spawn("/bin/sh", ["sh", "-c", "grep -c . /proc/self/environ >/dev/null && echo readable"],
                           trampoline.FORK)
    messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    assert read_all(out) == b"readable\n"


@on_x86_64
def test_a_failing_step_is_reported_with_its_errno():
    # /dev/null is no terminal: the terminal step fails with ENOTTY, the child exits 1.
    null = os.open("/dev/null", os.O_RDWR)
    pid, sock, out = spawn("/bin/true", ["true"], trampoline.FORK | trampoline.SETSID, tty=null)
    os.close(null)
    found = messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    read_all(out)
    error = {"type": "stub-error", "step": 3, "errno": errno.ENOTTY}
    assert error in found and "ready" not in [m["type"] for m in found], found
    from pyrunc.sync import describe_stub_error

    assert describe_stub_error(error) == \
        "container process: make the pty the controlling terminal: inappropriate ioctl for device"


@on_x86_64
def test_tty_becomes_the_controlling_terminal_and_stdio():
    master, slave = os.openpty()
    pid, sock, out = spawn("/bin/sh", ["sh", "-c", "tty; echo out-on-tty"], trampoline.FORK | trampoline.SETSID,
                           tty=slave)
    os.close(slave)
    messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    assert read_all(out) == b""
    data = b""
    while b"out-on-tty" not in data:
        data += os.read(master, 1024)
    os.close(master)
    assert b"/dev/pts/" in data


# ---------------------------------------------------------------- seccomp in the stub

def deny_mkdir_program(errno_value: int = errno.EPERM, notify: bool = False) -> tuple[bytes, int]:
    """A filter that fails mkdir/mkdirat (or notifies), as pyrunc compiles it."""
    from pyrunc.linux import seccomp

    action = "SCMP_ACT_NOTIFY" if notify else "SCMP_ACT_ERRNO"
    program = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": action, "errnoRet": errno_value}]})
    return program.bpf, program.flags


def needs_seccomp():
    try:
        deny_mkdir_program()
    except Exception as err:  # noqa: BLE001 - no libseccomp here
        pytest.skip(f"needs libseccomp: {err}")


@on_x86_64
def test_stub_loads_the_seccomp_filter_before_exec(tmp_path):
    needs_seccomp()
    bpf, flags = deny_mkdir_program(errno.EACCES)
    bpf_fd = trampoline.seccomp_fd(bpf, flags)
    pid, sock, out = spawn("/bin/sh", ["sh", "-c", f"mkdir {tmp_path}/x 2>&1; grep Seccomp: /proc/self/status"],
                           trampoline.FORK, bpf=bpf_fd, env=("PATH=/bin:/usr/bin",))
    os.close(bpf_fd)
    messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    output = read_all(out).decode()
    assert "Permission denied" in output and "Seccomp:\t2" in output, output
    assert not (tmp_path / "x").exists()


@on_x86_64
def test_stub_sends_the_notify_listener_before_ready():
    needs_seccomp()
    bpf, flags = deny_mkdir_program(notify=True)
    bpf_fd = trampoline.seccomp_fd(bpf, flags)
    pid, sock, out = spawn("/bin/true", ["true"], trampoline.FORK, bpf=bpf_fd)
    os.close(bpf_fd)
    found = messages(sock)
    sock.close()
    os.waitpid(pid, 0)
    read_all(out)
    kinds = [m["type"] for m in found if m["type"] != "pid"]
    assert kinds == ["seccomp-listener", "ready"], found
    assert len(next(m for m in found if m["type"] == "seccomp-listener")["fds"]) == 1


# ---------------------------------------------------------------- WAIT

def _run_wait_stub(write: bytes | None, signal_number: int | None = None, with_status: bool = False):
    """Fork a child that becomes the stub in WAIT mode on a fresh fifo (held
    read-write, as the init holds it); feed it. Returns (exit code, output,
    whether start.fifo saw its EOF only after the byte)."""
    import tempfile
    import time

    directory = tempfile.mkdtemp()
    fifo = os.path.join(directory, "fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    status_r, status_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.close(status_r)
        trampoline.run("/bin/sh", ["sh", "-c", "echo started"], ["PATH=/bin"], flags=trampoline.WAIT, fifo=reader,
                       status=status_w if with_status else -1)
        os._exit(99)
    os.close(out_w)
    os.close(reader)
    os.close(status_w)
    time.sleep(0.2)
    status_open_while_waiting = not _readable(status_r)
    if signal_number is not None:
        os.kill(pid, signal_number)
    elif write is not None:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(writer, write)
        os.close(writer)
    else:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        time.sleep(0.2)
        os.kill(pid, 9)  # a start that left without a byte does not end the wait: it still waits
    _, status = os.waitpid(pid, 0)
    output = os.read(out_r, 100)
    os.close(out_r)
    os.close(status_r)
    os.unlink(fifo)
    os.rmdir(directory)
    return os.waitstatus_to_exitcode(status), output, status_open_while_waiting


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.skipif(not trampoline.supported(), reason="no stub for this architecture")
def test_wait_stub_execs_the_program_after_the_byte():
    assert _run_wait_stub(b"0")[:2] == (0, b"started\n")


@pytest.mark.skipif(not trampoline.supported(), reason="no stub for this architecture")
def test_wait_stub_keeps_waiting_when_start_leaves_without_a_byte():
    # issue 13, item 4: an interrupted start must not end the container.
    assert _run_wait_stub(None)[:2] == (-9, b"")


@pytest.mark.skipif(not trampoline.supported(), reason="no stub for this architecture")
def test_wait_stub_exits_128_plus_signal():
    assert _run_wait_stub(None, signal_number=15)[:2] == (143, b"")


@pytest.mark.skipif(not trampoline.supported(), reason="no stub for this architecture")
def test_wait_stub_holds_the_start_status_fd_until_the_program_execs():
    code, output, open_while_waiting = _run_wait_stub(b"0", with_status=True)
    assert (code, output) == (0, b"started\n") and open_while_waiting


@on_x86_64
def test_mount_mode_reports_a_failed_mount():
    # MOUNT: the child makes one mount(2) and exits; here one that must fail
    # (no such target, or, without root, no permission).
    pid, sock, out = spawn("/nonexistent/pyrunc-target", ["proc", "proc", ""], trampoline.FORK | trampoline.REAP
                           | trampoline.MOUNT)
    found = messages(sock)
    sock.close()
    _, status = os.waitpid(pid, 0)
    read_all(out)
    assert os.waitstatus_to_exitcode(status) == 1
    errors = [m for m in found if m["type"] == "stub-error"]
    assert len(errors) == 1 and errors[0]["step"] == 7 and errors[0]["errno"] in (errno.ENOENT, errno.EPERM), found


@on_x86_64
def test_a_filter_that_forbids_execveat_gets_the_stub_through_plain_execve(tmp_path):
    """With a seccomp filter already loaded (no_new_privs off) that allows
    execve but not execveat, the stub is exec'd as "self/fd/N" from a procfs
    handle, and returns to the working directory it was handed."""
    needs_seccomp()
    from pyrunc.linux import _libc, seccomp

    program = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM}]})
    work = tmp_path / "work"
    work.mkdir()

    def action():
        proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
        os.chdir(work)
        _libc.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
        _libc.seccomp_set_mode_filter(program.flags, program.bpf)
        trampoline.run("/bin/sh", ["sh", "-c", "pwd; ls -l /proc/$$/fd"], ["PATH=/bin"], proc_fd=proc_fd)

    code, output = _run_in_child(action)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == str(work), output
    # Neither the cwd it was handed nor the procfs handle is left open.
    assert not [line for line in lines[1:] if f"-> {work}" in line or "-> /proc" in line], output
