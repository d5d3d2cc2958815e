"""pyrunc.hooks without a container: host programs as hooks, their state on
stdin, their output in the error, and a timeout that is about the hook
process (not about its output pipe)."""

from __future__ import annotations

import os

import pytest

from pyrunc import hooks
from pyrunc.spec.model import Hook


def shell_hook(script: str, timeout: int | None = None) -> Hook:
    data = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if timeout is not None:
        data["timeout"] = timeout
    return Hook(data)


def test_hook_gets_state_on_stdin_and_its_failure_quotes_output():
    with pytest.raises(hooks.HookError) as info:
        hooks.run_hook(shell_hook("cat; echo; exit 3"), b'{"id": "x"}', "hooks.prestart[0]")
    assert str(info.value) == 'hooks.prestart[0]: "/bin/sh" exited with status 3; output: {"id": "x"}'


def test_hook_that_closes_its_output_and_runs_on_still_times_out():
    # The timeout is about the hook process: closing stdout/stderr early
    # must not make pyrunc wait for it without a limit.
    with pytest.raises(hooks.HookError) as info:
        hooks.run_hook(shell_hook("exec >/dev/null 2>&1; sleep 4", timeout=1), b"{}", "hooks.createRuntime[0]")
    assert "ran past its timeout of 1s" in str(info.value)


def test_hook_that_exits_while_a_child_holds_its_output_succeeds(tmp_path):
    # The hook itself exits 0 at once; the child it leaves keeps the output
    # pipe open for longer than the timeout. That is not a timeout.
    marker = tmp_path / "child"
    hooks.run_hook(shell_hook(f"(sleep 3; touch {marker}) & echo started; exit 0", timeout=1), b"{}",
                   "hooks.poststart[0]")
    assert not marker.exists()


def test_hook_that_fails_while_a_child_holds_its_output_reports_its_output():
    with pytest.raises(hooks.HookError) as info:
        hooks.run_hook(shell_hook("(sleep 3) & echo bad thing; exit 2", timeout=2), b"{}", "hooks.prestart[0]")
    assert str(info.value).endswith("exited with status 2; output: bad thing")


def test_hook_killed_at_the_timeout_leaves_no_zombie():
    with pytest.raises(hooks.HookError):
        hooks.run_hook(shell_hook("sleep 30", timeout=1), b"{}", "hooks.prestart[0]")
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_state_document_is_the_runtime_spec_state_in_its_order():
    from pyrunc import hooks as hooks_mod

    doc = hooks_mod.state_document("1.2.0", "c1", "created", 42, "/b", None)
    assert list(doc) == ["ociVersion", "id", "status", "pid", "bundle", "annotations"]
    assert doc["annotations"] == {} and doc["pid"] == 42
