"""The state root (issue 13, items 5, 6, 10): only pyrunc's own containers,
corrupt entries that do not break the others and can still be removed
completely, and a root pyrunc cannot change refused before anything is
killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.integration.conftest import Runtime, leftover_cgroups
from tests.integration.test_run import sh


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def one_line(result, code: int = 1) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    return lines[0]


@pytest.mark.skipif(not shutil.which("runc"), reason="needs runc")
def test_another_runtimes_root_is_refused_not_read_as_stopped_containers(runtime, bundle, tmp_path):
    runc_root = str(tmp_path / "runc-root")
    runc = ["runc", "--root", runc_root]
    sh(bundle, "sleep 60")
    subprocess.run([*runc, "run", "-d", "--bundle", bundle.path, bundle.id], check=True, timeout=30,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = json.loads(subprocess.run([*runc, "state", bundle.id], capture_output=True, text=True).stdout)["pid"]
        on_runc_root = Runtime(runc_root)
        listed = on_runc_root("list", "--format", "json")
        assert listed.returncode == 0 and listed.stdout.strip() == "null", listed
        assert "not a pyrunc container" in listed.stderr, listed
        for args in (("delete", "--force", bundle.id), ("state", bundle.id), ("kill", bundle.id, "9")):
            line = one_line(on_runc_root(*args))
            assert "not a pyrunc container" in line, line
        # runc's container is as it was: its process runs, its state is there.
        assert alive(pid)
        assert os.path.exists(os.path.join(runc_root, bundle.id, "state.json"))
    finally:
        subprocess.run([*runc, "delete", "--force", bundle.id], timeout=30, capture_output=True)


@pytest.mark.parametrize("corrupt", ["{}", "pid", "{} running"])
def test_corrupt_state_does_not_break_the_others_and_delete_force_removes_it(runtime, bundle, new_id, corrupt):
    sh(bundle, "sleep 60")
    other = new_id()
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    bundle.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"].replace(bundle.id, other)
    bundle.write()
    runtime.ok("create", "--bundle", bundle.path, other)
    if corrupt.endswith("running"):
        runtime.ok("start", bundle.id)  # no exec fifo left to find it by: init.json does
    pid = runtime.state(bundle.id)["pid"]
    path = os.path.join(runtime.root, bundle.id, "state.json")
    if corrupt.startswith("{}"):
        text = "{}"
    else:
        with open(path) as f:
            state = json.load(f)
        state["pid"] = "12x"
        text = json.dumps(state)
    with open(path, "w") as f:
        f.write(text)
    listed = runtime.ok("list", "--format", "json")
    assert [c["id"] for c in json.loads(listed.stdout)] == [other]
    assert f"{bundle.id}: corrupt state.json" in listed.stderr
    for args in (("state", bundle.id), ("delete", bundle.id), ("kill", bundle.id), ("start", bundle.id),
                 ("exec", bundle.id, "true")):
        # exec failing before its process runs exits 255, as runc's does
        assert "corrupt state.json" in one_line(runtime(*args), 255 if args[0] == "exec" else 1)
    assert alive(pid)
    result = runtime.ok("delete", "--force", bundle.id)
    assert "Traceback" not in result.stderr
    # Completely: the init is dead and its cgroups are gone (found from the
    # state's cgroups, or from the process holding the exec fifo).
    assert not alive(pid)
    assert os.listdir(runtime.root) == [other]
    assert runtime.state(other)["status"] == "created"
    runtime.ok("delete", "--force", other)
    assert leftover_cgroups() == []


def in_read_only_root(runtime) -> tuple:
    """A wrapper running pyrunc where its state root is a read-only bind."""
    root = runtime.root
    return ("unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount --bind "{root}" "{root}" && mount -o remount,bind,ro "{root}" && exec "$@"', "sh")


@pytest.mark.parametrize("verb", [("delete", "--force"), ("start",), ("kill", "--all")])
def test_read_only_root_is_refused_before_anything_changes(runtime, bundle, verb):
    sh(bundle, "sleep 60")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    pid = runtime.state(bundle.id)["pid"]
    result = runtime(*verb, bundle.id, wrapper=in_read_only_root(runtime))
    if verb[0] == "kill":
        # kill changes nothing in the root: it works.
        assert result.returncode == 0, result
        return
    assert "not writable" in one_line(result)
    assert alive(pid)
    assert runtime.state(bundle.id)["status"] == "created"


def test_root_holds_container_directories_only(runtime, bundle):
    """Tools that scan a state root read every directory in it as a
    container: pyrunc's seccomp cache lives elsewhere."""
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    sh(bundle, "sleep 60")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    assert os.listdir(runtime.root) == [bundle.id]
