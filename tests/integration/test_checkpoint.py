"""checkpoint/restore where CRIU cannot run: one line naming the cause,
exit 1, nothing changed (the container runs on, no image directory, no
restored container). Where CRIU works the VM lane's `criu` job checks the
real thing (tests/vm/jobs/criu.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration.test_run import sh


def _criu_state() -> str:
    """"missing", "fails" (`criu check` refuses this kernel) or "works"."""
    if not shutil.which("criu"):
        return "missing"
    check = subprocess.run(["criu", "check"], capture_output=True)
    return "works" if check.returncode == 0 else "fails"


def _one_error_line(result, words: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result
    assert words in result.stderr, result


@pytest.fixture
def running(runtime, bundle):
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    yield bundle
    runtime.ok("delete", "--force", bundle.id)


def test_checkpoint_with_a_missing_criu_changes_nothing(runtime, running, tmp_path):
    images = tmp_path / "images"
    result = runtime("checkpoint", "--image-path", str(images), running.id,
                     global_args=("--criu", str(tmp_path / "no-such-criu")))
    _one_error_line(result, "criu not found")
    assert runtime.state(running.id)["status"] == "running"
    assert not images.exists()


def test_checkpoint_on_this_host_says_why_criu_cannot(runtime, running, tmp_path):
    state = _criu_state()
    if state == "works":
        pytest.skip("CRIU works on this host: the VM lane's criu job checks checkpoints")
    result = runtime("checkpoint", running.id, cwd=str(tmp_path))
    _one_error_line(result, "criu not found" if state == "missing" else "criu check failed")
    assert runtime.state(running.id)["status"] == "running"
    assert not (tmp_path / "checkpoint").exists()  # runc's default --image-path


def test_a_criu_that_does_not_answer_is_one_line_and_changes_nothing(runtime, running, tmp_path):
    # /bin/true passes `criu check` but exits at once as `criu swrk`: the
    # request meets a closed socket (EPIPE), which is not the CLI's quiet
    # "stdout closed" exit.
    images = tmp_path / "images"
    result = runtime("checkpoint", "--image-path", str(images), running.id, global_args=("--criu", "/bin/true"))
    _one_error_line(result, "criu (pid ")
    assert runtime.state(running.id)["status"] == "running"


def test_checkpoint_of_a_created_container_is_refused_in_runcs_words(runtime, bundle, tmp_path):
    sh(bundle, "sleep 60")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    try:
        result = runtime("checkpoint", "--image-path", str(tmp_path / "images"), bundle.id)
        _one_error_line(result, "Container cannot be checkpointed in created state")
        assert runtime.state(bundle.id)["status"] == "created"
        assert not (tmp_path / "images").exists()
    finally:
        runtime.ok("delete", "--force", bundle.id)


def test_restore_with_a_missing_criu_leaves_nothing(runtime, bundle, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "inventory.img").write_bytes(b"")
    result = runtime("restore", "--detach", "--bundle", bundle.path, "--image-path", str(images), bundle.id,
                     global_args=("--criu", str(tmp_path / "no-such-criu")))
    _one_error_line(result, "criu not found")
    assert runtime.ids() == []


def test_restore_without_images_leaves_nothing(runtime, bundle, tmp_path):
    result = runtime("restore", "--detach", "--bundle", bundle.path, "--image-path", str(tmp_path / "none"),
                     bundle.id)
    _one_error_line(result, "no checkpoint there")
    assert runtime.ids() == []
