"""Crashes at every step (pyrunc/faults.py), a full disk, a read-only root.

For every fault point the command runs with PYRUNC_FAULT set and dies there
by SIGKILL (a point in the container init kills the init instead). Then:
`state` tells the truth (or says the container does not exist), `list`
still parses, `delete --force` removes everything (state dir, cgroups,
mounts, processes), and the `runtime` fixture checks nothing was left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time

import pytest

from tests import leaks
from tests.integration.conftest import CGROUP_PARENT, leftover_cgroups

# create: the CLI dies before the container's state is saved
CREATE_EARLY = ["create:after-state-dir", "create:after-cgroups", "create:after-resources", "create:after-fork",
                "create:after-pid", "create:before-hooks", "create:after-hooks",
                "create:after-ready", "create:after-launch", "create:before-state-save"]
# create: ... and after
CREATE_LATE = ["create:after-state-save", "create:before-pid-file"]
INIT = ["init:after-cgroup-join", "init:after-namespaces", "init:after-mounts", "init:before-pivot", "init:after-pivot",
        "init:after-user-caps", "init:before-ready"]
START = ["start:before-fifo-write", "start:after-fifo-write"]
EXEC = ["exec:after-namespaces-open", "exec:after-fork", "exec:after-pid", "exec:after-ready"]
DELETE = ["delete:before-kill", "delete:after-kill", "delete:after-cgroup-removal", "delete:before-state-removal"]
ALL_POINTS = CREATE_EARLY + CREATE_LATE + INIT + START + EXEC + DELETE

# The package under test, wherever it is installed (the VM lane tests a wheel, not this tree).
PYRUNC_DIR = os.path.dirname(importlib.util.find_spec("pyrunc").origin)


@pytest.fixture(autouse=True)
def _no_cascade():
    """After the `runtime` fixture's checks: kill and remove what a failed
    test left in this session's cgroups, so the next test starts clean."""
    yield
    for pid in leaks.processes_in_cgroup(CGROUP_PARENT):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while leaks.processes_in_cgroup(CGROUP_PARENT) and time.monotonic() < deadline:
        time.sleep(0.01)
    for directory in reversed(leftover_cgroups()):
        try:
            os.rmdir(directory)
        except OSError:
            pass


def test_every_fault_point_is_in_the_code_once_and_documented():
    """No point is misspelt or missing: each is called exactly once, and
    faults.py documents each one that the code calls."""
    calls = []
    for directory, _, files in os.walk(PYRUNC_DIR):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name)) as f:
                    calls += re.findall(r'faults\.point\("([^"]+)"\)', f.read())
    assert sorted(calls) == sorted(ALL_POINTS)
    with open(os.path.join(PYRUNC_DIR, "faults.py")) as f:
        doc = f.read()
    for point in ALL_POINTS:
        assert re.search(rf"^\s+{re.escape(point)}\s", doc, re.M), point


def with_fault(point: str) -> dict:
    return {"env": {**os.environ, "PYRUNC_FAULT": point}}


def fault_bundle(bundle, pid_file=None):
    """sleep as the process, and a createRuntime hook so the hook points run."""
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}
    bundle.write()
    return bundle


def one_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result
    return lines[0]


def container_processes(bundle) -> list[int]:
    """Processes in the test's cgroups, or with root or cwd in the bundle."""
    return sorted(set(leaks.processes_in(bundle.path)) | set(leaks.processes_in_cgroup(CGROUP_PARENT)))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def observed_status(runtime, container_id: str) -> str | None:
    """The status `state` reports, checked against the kernel; None when the
    container does not exist."""
    result = runtime("state", container_id)
    if result.returncode != 0:
        assert result.returncode == 1, result
        assert "container does not exist" in one_line(result), result
        return None
    state = json.loads(result.stdout)
    assert state["id"] == container_id
    if state["status"] in ("created", "running"):
        assert alive(state["pid"]), state
    else:
        assert state["status"] == "stopped", state
        assert state["pid"] == 0, state
    return state["status"]


def assert_list_parses(runtime, container_id: str, status: str | None) -> None:
    result = runtime("list", "--format", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    entries = json.loads(result.stdout) or []
    listed = {e["id"]: e["status"] for e in entries}
    if status is not None:
        assert listed.get(container_id) == status, (listed, status)


def force_delete_removes_everything(runtime, bundle, container_id: str) -> None:
    result = runtime("delete", "--force", container_id)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr, result
    result = runtime("state", container_id)
    assert result.returncode == 1 and "container does not exist" in result.stderr, result
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    assert leaks.mounts_mentioning(bundle.path) == []
    deadline = time.monotonic() + 5
    while container_processes(bundle) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert container_processes(bundle) == []


@pytest.mark.parametrize("point", CREATE_EARLY + CREATE_LATE)
def test_create_killed_at(runtime, bundle, tmp_path, point):
    fault_bundle(bundle)
    pid_file = str(tmp_path / "pid")
    result = runtime("create", "--bundle", bundle.path, "--pid-file", pid_file, bundle.id, **with_fault(point))
    assert result.returncode == -9, result  # it reached the point and died there
    status = observed_status(runtime, bundle.id)
    if point in CREATE_LATE:
        assert status == "created"
    else:
        # Never finished: nothing to start. Stopped (the half-made container
        # can be deleted) or, before its state exists, no container at all.
        assert status in (None, "stopped"), status
        result = runtime("start", bundle.id)
        assert result.returncode == 1
        one_line(result)
    assert_list_parses(runtime, bundle.id, status)
    force_delete_removes_everything(runtime, bundle, bundle.id)


@pytest.mark.parametrize("point", CREATE_EARLY)
def test_plain_delete_cleans_a_create_that_died(runtime, bundle, point):
    """Without --force too: a half-made container is a stopped one."""
    fault_bundle(bundle)
    assert runtime("create", "--bundle", bundle.path, bundle.id, **with_fault(point)).returncode == -9
    result = runtime("delete", bundle.id)
    assert result.returncode in (0, 1), result
    if result.returncode:
        assert "container does not exist" in one_line(result)
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    deadline = time.monotonic() + 5
    while container_processes(bundle) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert container_processes(bundle) == []


@pytest.mark.parametrize("point", INIT)
def test_init_killed_at(runtime, bundle, point):
    """The init dies: create reports it in one line and undoes everything."""
    fault_bundle(bundle)
    result = runtime("create", "--bundle", bundle.path, bundle.id, **with_fault(point))
    assert result.returncode == 1, result
    line = one_line(result)
    assert "exited" in line or "failed before the init process started" in line, line
    assert observed_status(runtime, bundle.id) is None
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    force_delete_removes_everything(runtime, bundle, bundle.id)


@pytest.mark.parametrize("point", START)
def test_start_killed_at_can_be_repeated(runtime, bundle, point):
    """start is safe to repeat after any interruption (issue 13, item 4): as
    runc, a start killed before its byte leaves the container created, and
    a second start runs it; one killed after it leaves it running."""
    fault_bundle(bundle)
    bundle.config["process"]["args"] = ["sh", "-c", "echo ran > /tmp/ran; sleep 100"]
    bundle.config["root"]["readonly"] = False
    bundle.write()
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    result = runtime("start", bundle.id, **with_fault(point))
    assert result.returncode == -9, result
    ran = os.path.join(bundle.rootfs, "tmp", "ran")
    if point == "start:after-fifo-write":
        assert observed_status(runtime, bundle.id) == "running"
        result = runtime("start", bundle.id)
        assert "cannot start an already running container" in one_line(result)
    else:
        time.sleep(0.2)  # the init would have had time to give up, as it did once
        assert observed_status(runtime, bundle.id) == "created"
        assert not os.path.exists(ran)
        runtime.ok("start", bundle.id)
        assert observed_status(runtime, bundle.id) == "running"
    deadline = time.monotonic() + 5
    while not os.path.exists(ran) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.path.exists(ran)
    assert_list_parses(runtime, bundle.id, "running")
    force_delete_removes_everything(runtime, bundle, bundle.id)


@pytest.mark.parametrize("point", EXEC)
def test_exec_killed_at(runtime, bundle, point):
    fault_bundle(bundle)
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    runtime.ok("start", bundle.id)
    result = runtime("exec", "--detach", bundle.id, "sleep", "100", **with_fault(point))
    assert result.returncode == -9, result
    assert observed_status(runtime, bundle.id) == "running"
    # The container still works.
    assert runtime("exec", bundle.id, "true").returncode == 0
    force_delete_removes_everything(runtime, bundle, bundle.id)


@pytest.mark.parametrize("point", DELETE)
def test_delete_killed_at(runtime, bundle, point):
    fault_bundle(bundle)
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    runtime.ok("start", bundle.id)
    result = runtime("delete", "--force", bundle.id, **with_fault(point))
    assert result.returncode == -9, result
    status = observed_status(runtime, bundle.id)
    assert status == ("running" if point == "delete:before-kill" else "stopped"), status
    assert_list_parses(runtime, bundle.id, status)
    force_delete_removes_everything(runtime, bundle, bundle.id)


def test_created_container_whose_init_died_is_stopped(runtime, bundle):
    fault_bundle(bundle)
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    pid = runtime.state(bundle.id)["pid"]
    os.kill(pid, 9)
    deadline = time.monotonic() + 5
    while observed_status(runtime, bundle.id) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert observed_status(runtime, bundle.id) == "stopped"
    result = runtime("start", bundle.id)
    assert result.returncode == 1 and "stopped" in one_line(result)
    runtime.ok("delete", bundle.id)
    force_delete_removes_everything(runtime, bundle, bundle.id)


def test_state_dir_without_state_file_is_deleted_cleanly(runtime, bundle):
    """What a create killed between mkdir and its first write leaves."""
    os.makedirs(os.path.join(runtime.root, bundle.id))
    assert observed_status(runtime, bundle.id) is None
    assert_list_parses(runtime, bundle.id, None)
    force_delete_removes_everything(runtime, bundle, bundle.id)


# ---- the state root on a full or read-only filesystem


@pytest.fixture
def small_tmpfs(tmp_path):
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    mounted = []

    def mount(options: str) -> str:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "pyrunc-test", str(mount_point)], check=True)
        mounted.append(str(mount_point))
        return str(mount_point)

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)


def fill(directory: str) -> None:
    """Fill the filesystem: blocks, then inodes."""
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    for i in range(100000):
        try:
            os.mkdir(os.path.join(directory, f"d{i}"))
        except OSError:
            break


SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}


@pytest.mark.parametrize("seccomp", [False, True], ids=["plain", "seccomp"])
@pytest.mark.parametrize("fill_inodes", [False, True], ids=["blocks", "inodes"])
def test_full_state_root_is_one_clear_error(runtime, bundle, small_tmpfs, fill_inodes, seccomp):
    root = small_tmpfs("size=64k,nr_inodes=64")
    os.mkdir(os.path.join(root, "state"))
    if fill_inodes:
        # Room for data, none for another directory.
        for i in range(1000):
            try:
                os.mkdir(os.path.join(root, f"d{i}"))
            except OSError:
                break
    else:
        fill(os.path.join(root, "state"))
        # Leave inodes, so the state dir itself can be made.
        for name in os.listdir(os.path.join(root, "state")):
            if name.startswith("d"):
                os.rmdir(os.path.join(root, "state", name))
    fault_bundle(bundle)
    if seccomp:
        # Its compiled filter is saved beside state.json.
        bundle.config["linux"]["seccomp"] = SECCOMP
        bundle.write()
    state_root = os.path.join(root, "state")
    cmd = [*runtime.cmd[:3], "--root", state_root]
    result = subprocess.run([*cmd, "create", "--bundle", bundle.path, bundle.id], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result
    line = one_line(result)
    assert "no space left on device" in line, line
    # Nothing but the filler.
    assert sorted(n for n in os.listdir(state_root) if n != "filler") == []
    assert leftover_cgroups() == []
    assert container_processes(bundle) == []
    assert leaks.mounts_mentioning(bundle.path) == []


@pytest.mark.parametrize("root_exists", [True, False], ids=["root-exists", "no-root"])
def test_read_only_state_root_is_one_clear_error(runtime, bundle, small_tmpfs, root_exists):
    root = small_tmpfs("size=1m")
    if root_exists:
        os.mkdir(os.path.join(root, "state"))
    subprocess.run(["mount", "-o", "remount,ro", root], check=True)
    fault_bundle(bundle)
    state_root = os.path.join(root, "state")
    cmd = [*runtime.cmd[:3], "--root", state_root]
    result = subprocess.run([*cmd, "create", "--bundle", bundle.path, bundle.id], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result
    assert "read-only file system" in one_line(result)
    assert os.listdir(root) == (["state"] if root_exists else [])
    assert not root_exists or os.listdir(state_root) == []
    assert leftover_cgroups() == []
    assert container_processes(bundle) == []
    # The read-only commands still answer.
    for args in (["list", "--format", "json"], ["state", bundle.id], ["delete", "--force", bundle.id]):
        result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result


def test_pid_file_in_a_missing_directory_is_one_clear_error(runtime, bundle, tmp_path):
    """The container is made before the pid file is written: a pid file that
    cannot be written undoes it all."""
    fault_bundle(bundle)
    pid_file = str(tmp_path / "missing" / "pid")
    result = runtime("create", "--bundle", bundle.path, "--pid-file", pid_file, bundle.id)
    assert result.returncode == 1, result
    assert one_line(result) == f"pyrunc: --pid-file: cannot write {pid_file}: no such file or directory"
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    assert container_processes(bundle) == []
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", "--detach", "--pid-file", pid_file, bundle.id, "true")
    assert result.returncode == 255, result  # runc's code for an exec that fails before its process runs
    assert one_line(result) == f"pyrunc: --pid-file: cannot write {pid_file}: no such file or directory"
