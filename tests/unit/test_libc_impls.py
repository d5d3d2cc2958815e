"""The two implementations of pyrunc.linux._libc's system calls: the C module
_sys (built at install) and its pure-Python fallback _libc_ctypes give the
same results and the same errors, so an install without the C module behaves
the same. Calls that need no privilege run for real; the rest are held to the
same error (errno and target) on a target that cannot exist."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from pyrunc.linux import _libc, _libc_ctypes

try:
    from pyrunc.linux import _sys
except ImportError:  # not built here: the fallback is still tested
    _sys = None

IMPLS = [pytest.param(_libc_ctypes, id="ctypes"),
         pytest.param(_sys, id="c", marks=pytest.mark.skipif(_sys is None, reason="C module not built"))]

PR_GET_DUMPABLE = 3
PROC_SUPER_MAGIC = 0x9FA0


def test_libc_uses_the_c_module_when_built_and_ctypes_otherwise():
    assert _libc.IMPLEMENTATION == ("ctypes" if _sys is None else "c")
    code = ("import sys; sys.modules['pyrunc.linux._sys'] = None\n"
            "from pyrunc.linux import _libc\n"
            "print(_libc.IMPLEMENTATION, 'ctypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ctypes", "True"]


@pytest.mark.skipif(_sys is None, reason="C module not built")
def test_the_c_module_spares_the_ctypes_import():
    code = "from pyrunc.linux import _libc; import sys; print('ctypes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("impl", IMPLS)
def test_plain_calls(impl, tmp_path):
    assert impl.prctl(PR_GET_DUMPABLE) == 1
    fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert impl.fstatfs_type(fd) == PROC_SUPER_MAGIC
    finally:
        os.close(fd)
    (tmp_path / "file").write_text("x")
    dir_fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = impl.openat2(dir_fd, "file", os.O_RDONLY, _libc.RESOLVE_BENEATH)
        try:
            assert os.read(fd, 1) == b"x"
            assert os.get_inheritable(fd) is False  # O_CLOEXEC, always
        finally:
            os.close(fd)
        with pytest.raises(OSError) as err:
            impl.openat2(dir_fd, "../file", os.O_RDONLY, _libc.RESOLVE_BENEATH)
        assert (err.value.errno, err.value.filename) == (18, "../file")  # EXDEV: escapes the directory
    finally:
        os.close(dir_fd)
    first = os.open("/dev/null", os.O_RDONLY)
    second = os.dup(first)
    impl.close_range(first, second)
    with pytest.raises(OSError):
        os.fstat(first)
    with pytest.raises(OSError):
        os.fstat(second)


@pytest.mark.parametrize("impl", IMPLS)
def test_errors_name_their_target(impl):
    target = "/nonexistent-pyrunc-test/x"
    for call, args, filename in (
        (impl.mount, (None, target, None, _libc.MS_BIND), target),
        (impl.umount2, (target,), target),
        (impl.pivot_root, (target, target), target),
        (impl.mount_setattr, (-100, target, 0, _libc.MOUNT_ATTR_RDONLY), target),
    ):
        with pytest.raises(OSError) as err:
            call(*args)
        assert err.value.filename == filename
        assert err.value.errno in (2, 1), (call, err.value)  # ENOENT, or EPERM without privilege
    with pytest.raises(OSError) as err:
        impl.setns(-1)
    assert (err.value.errno, err.value.filename) == (9, None)


def test_both_give_the_same_errors():
    if _sys is None:
        pytest.skip("C module not built")
    target = "/nonexistent-pyrunc-test/x"
    for name, args in (("mount", (None, target, None, _libc.MS_BIND)), ("umount2", (target,)),
                       ("pivot_root", (target, target)), ("setns", (-1,)), ("unshare", (-1,)),
                       ("openat2", (-1, "x", 0, 0)), ("close_range", (5, 4)), ("personality", (-1,))):
        errors = []
        for impl in (_libc_ctypes, _sys):
            try:
                getattr(impl, name)(*args)
                errors.append(None)
            except OSError as err:
                errors.append((err.errno, err.strerror, err.filename))
        assert errors[0] == errors[1], name


@pytest.mark.parametrize("impl", IMPLS)
def test_clone3_forks_with_the_child_libc_knowing_its_tid(impl):
    """The child must be a sound process: its C library's cached tid is its
    own (glibc's fork() makes sure of that; clone3 has the kernel write it)."""
    import ctypes

    r, w = os.pipe()
    pid = impl.clone3_fork(0, -1)
    if pid == 0:
        try:
            address = _libc_ctypes._own_tid_address()
            libc_tid = ctypes.c_int32.from_address(address).value
            os.write(w, f"{libc_tid == os.getpid()}".encode())
        finally:
            os._exit(7)
    os.close(w)
    with os.fdopen(r) as f:
        report = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    assert report == "True"


def _cap_masks() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in (line.split(":") for line in f) if k in ("CapInh", "CapPrm", "CapEff")}


@pytest.mark.parametrize("impl", IMPLS)
def test_capset_sets_the_three_masks_exactly(impl):
    """In a child (the test process keeps its capabilities): the sets become
    the masks given, the highest permitted capability dropped from all three
    (root: CAP_CHECKPOINT_RESTORE, a bit of the upper 32); an effective set
    beyond the permitted one is EPERM, in both implementations."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            before = _cap_masks()
            keep = before["CapPrm"] & ~(1 << (before["CapPrm"].bit_length() - 1)) if before["CapPrm"] else 0
            impl.capset(before["CapEff"] & keep, keep, before["CapInh"] & keep)
            after = _cap_masks()
            try:
                impl.capset(after["CapPrm"] | (1 << 2), after["CapPrm"] & ~(1 << 2), 0)
                refused = "none"
            except OSError as err:
                refused = str(err.errno)
            expected = {"CapEff": before["CapEff"] & keep, "CapPrm": keep, "CapInh": before["CapInh"] & keep}
            os.write(w, f"{after == expected} {refused}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        report = f.read()
    os.waitpid(pid, 0)
    assert report == "True 1"  # EPERM


@pytest.mark.parametrize("impl", IMPLS)
def test_the_new_mount_api_errors_alike(impl, tmp_path):
    # open_tree, move_mount and mount_setattr's userns_fd (idmapped mounts):
    # the same refusal from both, naming the path given.
    missing = str(tmp_path / "missing")
    with pytest.raises(OSError) as err:
        impl.open_tree(-1, "relative", 0)
    assert err.value.errno == 9 and err.value.filename == "relative"
    with pytest.raises(OSError) as err:
        impl.move_mount(-1, "", -1, missing, 0)
    assert err.value.errno in (9, 2) and err.value.filename == missing
    with pytest.raises(OSError) as err:
        impl.mount_setattr(-1, "", 0x1000, 0x100000, 0, 0, 7)  # AT_EMPTY_PATH, MOUNT_ATTR_IDMAP
    assert err.value.errno in (9, 22)


# bpf(2): BPF_PROG_LOAD of a cgroup device program the verifier refuses (it
# returns nothing set in r0), its log buffer passed by pointer.
_BPF_PROG_LOAD, _BPF_PROG_QUERY = 5, 16
_EXIT_ONLY = bytes((0x95, 0, 0, 0, 0, 0, 0, 0))  # BPF_JMP | BPF_EXIT


def _load_attr(program: bytearray, license: bytearray, log: bytearray) -> tuple[bytearray, list]:
    attr = bytearray(72)
    attr[0:8] = (15).to_bytes(4, "little") + (len(program) // 8).to_bytes(4, "little")  # CGROUP_DEVICE
    attr[24:32] = (1).to_bytes(4, "little") + len(log).to_bytes(4, "little")  # log_level, log_size
    return attr, [(8, program), (16, license), (32, log)]


@pytest.mark.skipif(os.geteuid() != 0, reason="loading a device program needs root")
@pytest.mark.parametrize("impl", IMPLS)
def test_bpf_passes_its_buffers_by_pointer(impl):
    log = bytearray(4096)
    attr, pointers = _load_attr(bytearray(_EXIT_ONLY), bytearray(b"Apache\0"), log)
    with pytest.raises(OSError) as caught:
        impl.bpf(_BPF_PROG_LOAD, attr, pointers)
    assert caught.value.errno == errno.EACCES
    # the kernel wrote the verifier's reason through the log pointer
    assert b"R0 !read_ok" in log, log.rstrip(b"\0")


@pytest.mark.parametrize("impl", IMPLS)
def test_bpf_refuses_what_it_cannot_pass(impl):
    attr = bytearray(32)
    with pytest.raises(ValueError):
        impl.bpf(_BPF_PROG_QUERY, attr, [(28, bytearray(4))])  # the address would not fit in attr
    with pytest.raises((TypeError, BufferError)):
        impl.bpf(_BPF_PROG_QUERY, attr, [(16, b"read-only")])  # the kernel would write into it
    with pytest.raises(ValueError):
        impl.bpf(_BPF_PROG_QUERY, attr, [(0, bytearray(4))] * 5)


def test_bpf_errors_alike():
    """A query of a descriptor that is no cgroup: EBADF as root, EPERM
    without CAP_NET_ADMIN; the same from both."""
    if _sys is None:
        pytest.skip("C module not built")
    errors = []
    for impl in (_sys, _libc_ctypes):
        attr = bytearray(32)
        attr[0:8] = (0xFFFFFFFF).to_bytes(4, "little") + (6).to_bytes(4, "little")
        with pytest.raises(OSError) as caught:
            impl.bpf(_BPF_PROG_QUERY, attr, [(16, bytearray(64 * 4))])
        errors.append(caught.value.errno)
    assert errors[0] == errors[1] and errors[0] in (errno.EBADF, errno.EPERM)
