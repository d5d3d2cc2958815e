"""The compiled-filter cache (linux.seccomp.compile_profile_cached): keyed by
the whole profile, so even two profiles that land in the same file name
(a CRC-32 collision, forced here) each get their own filter."""

from __future__ import annotations

import binascii

from pyrunc.linux import seccomp

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
DENY_RMDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def test_cache_returns_the_same_filter_for_the_same_profile(tmp_path):
    first = seccomp.compile_profile_cached(DENY_MKDIR, str(tmp_path / "cache"))
    assert len(list((tmp_path / "cache").iterdir())) == 1
    again = seccomp.compile_profile_cached(DENY_MKDIR, str(tmp_path / "cache"))
    assert again.bpf == first.bpf == seccomp.compile_profile(DENY_MKDIR).bpf


def test_cache_never_gives_a_profile_another_profiles_filter_on_a_name_collision(tmp_path, monkeypatch):
    monkeypatch.setattr(binascii, "crc32", lambda data: 42)
    cache = str(tmp_path / "cache")
    mkdir_filter = seccomp.compile_profile_cached(DENY_MKDIR, cache)
    padded = dict(DENY_RMDIR, defaultAction="SCMP_ACT_ALLOW" + "")  # the same length as DENY_MKDIR's key
    rmdir_filter = seccomp.compile_profile_cached(padded, cache)
    assert rmdir_filter.bpf == seccomp.compile_profile(DENY_RMDIR).bpf != mkdir_filter.bpf
    assert seccomp.compile_profile_cached(DENY_MKDIR, cache).bpf == mkdir_filter.bpf


def test_cache_uses_no_private_cpython_module():
    import inspect

    source = inspect.getsource(seccomp)
    assert "import _sha" not in source
