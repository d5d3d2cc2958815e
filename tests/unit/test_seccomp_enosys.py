"""The -ENOSYS prefix pyrunc puts before a seccomp filter (as runc's
patchbpf): run through a small classic-BPF interpreter, with a filter that
allows everything behind it."""

from __future__ import annotations

import struct

import pytest

from pyrunc.linux import seccomp

X86_64, I386, S390X, AARCH64 = 0xC000003E, 0x40000003, 0x80000016, 0xC00000B7
ALLOW, ENOSYS = 0x7FFF0000, 0x00050000 | 38
TAIL = struct.pack("=HBBI", seccomp.BPF_RET_K, 0, 0, ALLOW)  # the "filter": allow


def evaluate(program: bytes, arch: int, nr: int) -> int:
    """The return value of a classic BPF seccomp program for (arch, nr)."""
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("=iI", nr, arch) + bytes(56)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == seccomp.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == seccomp.BPF_JMP_JA:
            pc += k
        elif code == seccomp.BPF_JEQ_K:
            pc += jt if acc == k else jf
        elif code == seccomp.BPF_JGT_K:
            pc += jt if acc > k else jf
        elif code == seccomp.BPF_JSET_K:
            pc += jt if acc & k else jf
        elif code == seccomp.BPF_RET_K:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_no_architectures_no_prefix():
    assert seccomp.build_enosys_prefix({}) == b""


def test_above_the_highest_is_enosys_on_that_arch_only():
    program = seccomp.build_enosys_prefix({(X86_64, False): 439}) + TAIL
    assert evaluate(program, X86_64, 439) == ALLOW
    assert evaluate(program, X86_64, 440) == ENOSYS
    assert evaluate(program, X86_64, 1000) == ENOSYS
    assert evaluate(program, X86_64, 0) == ALLOW
    assert evaluate(program, I386, 1000) == ALLOW  # not listed: the filter decides
    # An x32 call (bit 30) without x32 in the profile: the filter decides.
    assert evaluate(program, X86_64, 0x40000000 + 1000) == ALLOW


def test_several_architectures_each_their_own_highest():
    program = seccomp.build_enosys_prefix({(X86_64, False): 439, (I386, False): 450, (AARCH64, False): 300}) + TAIL
    assert evaluate(program, X86_64, 445) == ENOSYS
    assert evaluate(program, I386, 445) == ALLOW
    assert evaluate(program, I386, 451) == ENOSYS
    assert evaluate(program, AARCH64, 301) == ENOSYS
    assert evaluate(program, AARCH64, 299) == ALLOW


@pytest.mark.parametrize("native", [None, 439])
def test_x32_numbers_compared_with_the_x32_highest(native):
    last = {(X86_64, True): 0x40000000 + 400}
    if native is not None:
        last[(X86_64, False)] = native
    program = seccomp.build_enosys_prefix(last) + TAIL
    assert evaluate(program, X86_64, 0x40000000 + 400) == ALLOW
    assert evaluate(program, X86_64, 0x40000000 + 401) == ENOSYS
    # Plain x86_64 numbers: compared with x86_64's highest, or left to the filter.
    assert evaluate(program, X86_64, 1000) == (ENOSYS if native else ALLOW)


def test_s390x_multiplexer_zero_is_enosys():
    program = seccomp.build_enosys_prefix({(S390X, False): 400}) + TAIL
    assert evaluate(program, S390X, 0) == ENOSYS
    assert evaluate(program, S390X, 1) == ALLOW


def test_compiled_profile_carries_the_prefix_unless_default_allows(monkeypatch):
    pytest.importorskip("pyseccomp")
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
               "syscalls": [{"names": ["read", "write", "faccessat2"], "action": "SCMP_ACT_ALLOW"},
                            {"names": ["getcpu", "no_such_call"], "action": "SCMP_ACT_ERRNO"}]}
    try:
        program = seccomp.compile_profile(profile)
    except seccomp.PyruncError as err:
        pytest.skip(str(err))
    # Every name counts, whatever its rule's action (as in runc); unknown ones do not.
    prefix = seccomp.build_enosys_prefix({(X86_64, False): 439, (X86_64, True): 0x40000000 + 439})
    assert program.bpf.startswith(prefix)
    asked = []
    monkeypatch.setattr(seccomp, "build_enosys_prefix", lambda last: asked.append(last) or b"")
    for default, errno_ret in (("SCMP_ACT_ALLOW", None), ("SCMP_ACT_LOG", None), ("SCMP_ACT_ERRNO", 38)):
        other = dict(profile, defaultAction=default, syscalls=[{"names": ["read"], "action": "SCMP_ACT_KILL"}])
        if errno_ret is not None:
            other["defaultErrnoRet"] = errno_ret
        seccomp.compile_profile(other)
    assert asked == []
