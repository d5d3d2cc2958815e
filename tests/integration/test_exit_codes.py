"""Exit codes and messages where engines and scripts look, side by side with
runc (Debian's runc 1.1.5, when installed): an unknown verb, an unknown id
for every verb, not root, a state root that cannot be written. Each failure
is one line naming the cause, with no exception class name."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNC = shutil.which("runc")
# The verbs that take a container id, with what makes the rest of the line valid.
ID_VERBS = {
    "start": [], "state": [], "kill": [], "delete": [], "pause": [], "resume": [], "ps": [],
    "events": ["--stats"], "update": ["--memory", "1m"], "exec": [],
}
EXPECTED_UNKNOWN_ID = {verb: 255 if verb == "exec" else 1 for verb in ID_VERBS}


def _pyrunc() -> list[str]:
    """The command as installed in this venv (bin/pyrunc), else python -m pyrunc."""
    launcher = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    return [launcher] if os.access(launcher, os.X_OK) else [sys.executable, "-m", "pyrunc"]


def _args(verb: str, container_id: str) -> list[str]:
    extra = ID_VERBS[verb]
    return [verb, *extra, container_id] + (["true"] if verb == "exec" else [])


def _run(cmd, user: str | None = None, cwd: str = "/") -> subprocess.CompletedProcess:
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=cwd,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def _assert_one_clean_line(result):
    lines = result.stderr.split("\n")
    assert len(lines) == 2 and lines[1] == "", result.stderr
    assert lines[0].startswith("pyrunc: ")
    for word in ("internal error", "Error:", "Traceback", "Exception"):
        assert word not in result.stderr


def test_unknown_verb_exits_3(tmp_path):
    result = _run([*_pyrunc(), "--root", str(tmp_path), "frobnicate"])
    assert result.returncode == 3
    _assert_one_clean_line(result)
    if RUNC:
        assert _run([RUNC, "--root", str(tmp_path), "frobnicate"]).returncode == 3


@pytest.mark.parametrize("verb", sorted(ID_VERBS))
def test_unknown_id_exit_code_of_every_verb(verb, tmp_path):
    result = _run([*_pyrunc(), "--root", str(tmp_path), *_args(verb, "nosuch")])
    assert result.returncode == EXPECTED_UNKNOWN_ID[verb], result
    _assert_one_clean_line(result)
    assert "nosuch: container does not exist" in result.stderr  # what containerd and podman match
    if RUNC:
        runc = _run([RUNC, "--root", str(tmp_path / "runc"), *_args(verb, "nosuch")])
        assert runc.returncode == result.returncode, runc
        assert "container does not exist" in runc.stderr


@pytest.fixture
def user():
    """A temporary unprivileged user (removed afterwards)."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv")
    name = f"pyrunc-t{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)


@pytest.fixture
def open_tmp():
    """A directory every user can reach (pytest's tmp_path is under a 0700
    directory, which would make every test here fail for the wrong reason)."""
    import pathlib
    import tempfile

    path = tempfile.mkdtemp(prefix="pyrunc-exit-codes-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield pathlib.Path(path)
    finally:
        shutil.rmtree(path)


@pytest.fixture
def root_only_state(open_tmp):
    """A state root as root keeps it (0700), with one container directory in it."""
    root = open_tmp / "state"
    (root / "c1").mkdir(parents=True)
    root.chmod(0o700)
    return str(root)


@pytest.mark.parametrize("verb", ["list", *sorted(ID_VERBS)])
def test_not_root_is_one_line_permission_denied(verb, user, root_only_state):
    args = ["list"] if verb == "list" else _args(verb, "c1")
    result = _run([*_pyrunc(), "--root", root_only_state, *args], user=user)
    assert result.returncode == (255 if verb == "exec" else 1), result
    _assert_one_clean_line(result)
    assert result.stderr.endswith(": permission denied\n")
    assert root_only_state in result.stderr or "c1: cannot read state.json" in result.stderr
    if RUNC:
        runc = _run([RUNC, "--root", root_only_state, *args], user=user)
        assert runc.returncode == result.returncode, runc
        assert "permission denied" in runc.stderr


def test_state_root_not_writable_create_fails_in_one_line(user, open_tmp):
    tmp_path = open_tmp
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    # --rootless: a user other than root must have a user namespace, or
    # create stops before the state root (as runc does).
    result = _run([*_pyrunc(), "spec", "--rootless", "--bundle", str(bundle)])
    assert result.returncode == 0, result
    import json

    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    root = tmp_path / "state"
    root.mkdir(mode=0o555)
    shutil.chown(root, user=user)
    for runtime, name in ((_pyrunc(), "pyrunc"), ([RUNC] if RUNC else None, "runc")):
        if runtime is None:
            continue
        result = _run([*runtime, "--root", str(root), "create", "--bundle", str(bundle), "c1"], user=user)
        assert result.returncode == 1, (name, result)
        if name == "pyrunc":
            _assert_one_clean_line(result)
            assert f"cannot create state directory {root}/c1: permission denied" in result.stderr
    assert os.listdir(root) == []


def _bundle(directory) -> str:
    import json

    bundle = directory / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    assert _run([*_pyrunc(), "spec", "--bundle", str(bundle)]).returncode == 0
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    return str(bundle)


def test_state_root_on_a_read_only_filesystem_create_fails_in_one_line(open_tmp):
    """As root (who may write any directory), on a read-only mount: a tmpfs
    mounted read-only in a private mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    bundle = _bundle(open_tmp)
    root = open_tmp / "state"
    root.mkdir()
    for runtime in (_pyrunc(), [RUNC] if RUNC else None):
        if runtime is None:
            continue
        script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
        result = _run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(root), *runtime,
                       "--root", str(root), "create", "--bundle", bundle, "c1"])
        assert result.returncode == 1, (runtime, result)
        assert "read-only file system" in result.stderr, result
        if runtime == _pyrunc():
            _assert_one_clean_line(result)
            assert f"cannot create state directory {root}/c1: read-only file system" in result.stderr
    assert os.listdir(root) == []
