"""The exec trampoline (pyrunc.linux.trampoline): the ELF it builds, and, on
x86_64, the stub really exec'ing programs in forked children."""

from __future__ import annotations

import errno
import fcntl
import os
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


@on_x86_64
def test_execve_runs_program_with_argv0_and_env():
    code, output = _run_in_child(lambda: trampoline.execve(
        "/bin/sh", ["mysh", "-c", "echo $0 $X; exit 3"], ["X=1", "PATH=/bin:/usr/bin"]))
    assert code == 3
    assert output == "mysh 1\n"


@on_x86_64
def test_execve_environment_exact():
    code, output = _run_in_child(lambda: trampoline.execve(
        "/usr/bin/env", ["env"], ["A=1", "B=two words", "EMPTY="]))
    assert code == 0
    assert output.splitlines() == ["A=1", "B=two words", "EMPTY="]


@on_x86_64
def test_execve_many_arguments_passed():
    args = ["sh", "-c", 'printf "%s|" "$@"', "zero"] + [f"a{i}" for i in range(50)] + ["", "with space"]
    code, output = _run_in_child(lambda: trampoline.execve("/bin/sh", args, []))
    assert code == 0
    assert output == "|".join([f"a{i}" for i in range(50)] + ["", "with space"]) + "|"


@on_x86_64
def test_execve_proc_self_exe_is_program_after_exec():
    readlink = os.path.realpath("/usr/bin/readlink")
    code, output = _run_in_child(lambda: trampoline.execve(readlink, ["readlink", "/proc/self/exe"], []))
    assert code == 0
    assert output == readlink + "\n"


@on_x86_64
def test_execve_missing_program_127(tmp_path):
    code, output = _run_in_child(lambda: trampoline.execve(str(tmp_path / "absent"), ["absent"], []))
    assert code == 127
    assert output == ""


@on_x86_64
def test_execve_non_executable_file_126(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(script, 0o644)
    code, _ = _run_in_child(lambda: trampoline.execve(str(script), ["script"], []))
    assert code == 126


@on_x86_64
def test_execve_directory_126(tmp_path):
    code, _ = _run_in_child(lambda: trampoline.execve(str(tmp_path), ["dir"], []))
    assert code == 126


@on_x86_64
def test_stub_other_argv0_refuses_126():
    fd = trampoline.sealed_fd()
    code, output = _run_in_child(lambda: os.execve(fd, ["other", "/bin/true"], {}))
    assert code == 126
    assert output == ""


@on_x86_64
@pytest.mark.parametrize("argv0", ["pyrunc-exe", "pyrunc-execX", "pyrunc-exec ", "/proc/self/exe", "PYRUNC-EXEC"])
def test_stub_near_miss_argv0_refuses_126(argv0):
    fd = trampoline.sealed_fd()
    code, output = _run_in_child(lambda: os.execve(fd, [argv0, "/bin/sh", "sh", "-c", "echo ran"], {}))
    assert code == 126
    assert output == ""


@on_x86_64
def test_stub_without_path_126():
    fd = trampoline.sealed_fd()
    code, _ = _run_in_child(lambda: os.execve(fd, [trampoline.NAME], {}))
    assert code == 126


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
    machine, programs = trampoline._MACHINES["x86_64"]
    code = programs["exec"]
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


@pytest.mark.parametrize("kind, code", [("exec", trampoline.EXEC_X86_64), ("wait", trampoline.WAIT_X86_64)])
def test_stub_bytes_are_what_gnu_as_makes_of_the_source(tmp_path, kind, code):
    if not (shutil.which("as") and shutil.which("objcopy")):
        pytest.skip("needs GNU as and objcopy (binutils)")
    obj, raw = tmp_path / "stub.o", tmp_path / "stub.bin"
    subprocess.run(["as", "--64", "-o", str(obj), os.path.join(STUBS, f"{kind}_x86_64.S")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    assert raw.read_bytes() == code


# ---------------------------------------------------------------- the wait stub

def _run_wait_stub(write: bytes | None, signal_number: int | None = None) -> tuple[int, bytes]:
    """Fork a child that becomes the wait stub on a fresh fifo; feed it."""
    import tempfile
    import time

    directory = tempfile.mkdtemp()
    fifo = os.path.join(directory, "fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.set_inheritable(reader, True)
        trampoline.wait_then_execve(reader, "/bin/sh", ["sh", "-c", "echo started"], ["PATH=/bin"])
        os._exit(99)
    os.close(out_w)
    os.close(reader)
    time.sleep(0.2)
    if signal_number is not None:
        os.kill(pid, signal_number)
    elif write is not None:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(writer, write)
        os.close(writer)
    else:
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
    _, status = os.waitpid(pid, 0)
    output = os.read(out_r, 100)
    os.close(out_r)
    os.unlink(fifo)
    os.rmdir(directory)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.skipif(not trampoline.supported(), reason="no stubs for this architecture")
def test_wait_stub_execs_the_program_after_the_byte():
    assert _run_wait_stub(b"0") == (0, b"started\n")


@pytest.mark.skipif(not trampoline.supported(), reason="no stubs for this architecture")
def test_wait_stub_exits_1_when_start_leaves_without_a_byte():
    assert _run_wait_stub(None) == (1, b"")


@pytest.mark.skipif(not trampoline.supported(), reason="no stubs for this architecture")
def test_wait_stub_exits_128_plus_signal():
    assert _run_wait_stub(None, signal_number=15) == (143, b"")


@pytest.mark.skipif(not trampoline.supported(), reason="no stubs for this architecture")
def test_wait_stub_refuses_another_argv0():
    pid = os.fork()
    if pid == 0:
        fd = trampoline.sealed_fd("wait")
        os.execve(fd, ["/proc/self/exe", "3", "/bin/true", "true"], {})
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 126
