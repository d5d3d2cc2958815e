"""The sync socket's error frames (issue 16, item 3): typed {kind, errno,
msg}, the exit codes 127/126 from kind and errno only; warnings reach the
caller's log. Over a real SEQPACKET socketpair, no root needed."""

from __future__ import annotations

import errno

import pytest

from pyrunc import sync
from pyrunc.errors import InitError, KernelError, ProgramError, PyruncError, SetupError, program_exit_code
from pyrunc.init.context import error_message


@pytest.fixture
def pair():
    parent, child = sync.socketpair()
    yield parent, child
    parent.close()
    child.close()


def _round_trip(pair, err: BaseException) -> InitError:
    parent, child = pair
    sync.send(child, "error", **error_message(err))
    with pytest.raises(InitError) as info:
        sync.expect(parent, "ready")
    return info.value


@pytest.mark.parametrize("err, kind, number, code", [
    (ProgramError('exec: "x": executable file not found in $PATH', errno.ENOENT), "exec", errno.ENOENT, 127),
    (ProgramError('exec: "/etc/passwd": permission denied', errno.EACCES), "exec", errno.EACCES, 126),
    (ProgramError('exec: "/a/b": stat /a/b: not a directory', errno.ENOTDIR), "exec", errno.ENOTDIR, 126),
    # ENOENT from the set-up is no "command not found", whatever its words say.
    (SetupError('process.cwd: chdir to "/x": no such file or directory', errno.ENOENT), "setup", errno.ENOENT, 0),
    (KernelError("join cgroup", "/sys/fs/cgroup/pids/gone", errno.ENOENT), "setup", errno.ENOENT, 0),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), "setup", errno.ENOENT, 0),
    (PyruncError("executable file not found in $PATH"), "setup", 0, 0),
    (ValueError("boom"), "setup", 0, 0),
])
def test_error_frame_round_trip(pair, err, kind, number, code):
    received = _round_trip(pair, err)
    assert (received.kind, received.errno, received.exit_code) == (kind, number, code)
    if isinstance(err, PyruncError):
        assert str(received) == str(err)


def test_error_frame_fields_are_typed():
    assert sync.error_frame("exec", errno.ENOENT, "m") == {"kind": "exec", "errno": 2, "msg": "m"}
    # Anything but the two kinds is a setup failure; an errno out of range is none.
    assert sync.error_frame("other", -1, "m") == {"kind": "setup", "errno": 0, "msg": "m"}
    assert sync.error_frame("setup", 5000, "m")["errno"] == 0


@pytest.mark.parametrize("message", [
    {"type": "error"},
    {"type": "error", "kind": 1, "errno": "2", "msg": 3},
    {"type": "error", "kind": "exec?", "errno": True, "msg": ""},
    {"type": "error", "exit": 127, "msg": "exec: no such file or directory"},  # the old untyped frame
])
def test_malformed_error_frames_are_setup_failures_without_errno(message):
    err = sync.error_from_frame(message)
    assert (err.kind, err.errno, err.exit_code) == ("setup", 0, 0)
    assert str(err)


def test_stub_error_keeps_its_errno_as_a_setup_failure(pair):
    parent, child = pair
    sync.send(child, "stub-error", step=6, errno=errno.ENOENT)
    with pytest.raises(InitError) as info:
        sync.expect(parent, "ready")
    assert (info.value.kind, info.value.errno, info.value.exit_code) == ("setup", errno.ENOENT, 0)
    assert str(info.value) == "container process: return to the working directory: no such file or directory"


def test_program_exit_code_only_from_kind_and_errno():
    assert program_exit_code("exec", errno.ENOENT) == 127
    assert program_exit_code("exec", errno.ENOEXEC) == 126
    assert program_exit_code("exec", 0) == 126
    assert program_exit_code("setup", errno.ENOENT) == 0


def test_warnings_go_to_the_callback_and_the_wanted_message_follows(pair):
    parent, child = pair
    sync.send_warning(child, "first")
    sync.send_warning(child, "second")
    sync.send(child, "ready")
    seen = []
    assert sync.expect(parent, "ready", on_warning=seen.append)["type"] == "ready"
    assert seen == ["first", "second"]


def test_a_warning_nobody_listens_for_is_unexpected_not_dropped(pair):
    parent, child = pair
    sync.send_warning(child, "lost?")
    with pytest.raises(InitError, match="got 'warning'"):
        sync.expect(parent, "ready")


def test_send_warning_on_a_closed_peer_is_not_fatal(pair):
    parent, child = pair
    parent.close()
    sync.send_warning(child, "nobody there")
