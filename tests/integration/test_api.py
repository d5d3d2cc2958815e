"""The Python API (pyrunc.Runtime) with real containers, through the public
names only; the `runtime` fixture gives the state root and checks that
nothing is left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import pytest

import pyrunc
from tests.integration.conftest import SYSTEMD, cgroup_of

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def rt(runtime):
    return pyrunc.Runtime(root=runtime.root, systemd_cgroup=SYSTEMD)


@pytest.fixture
def marker(bundle, tmp_path):
    """A host directory the container sees at /marker."""
    path = tmp_path / "marker"
    path.mkdir()
    bundle.config["mounts"].append({"destination": "/marker", "type": "bind", "source": str(path),
                                    "options": ["rbind"]})
    return path


def sh(bundle, script: str) -> None:
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()


def _subreaper() -> int:
    import prctl

    return prctl.get_child_subreaper()


def wait_for(rt, container_id: str, status: str, timeout: float = 10.0) -> pyrunc.ContainerState:
    deadline = time.monotonic() + timeout
    while True:
        state = rt.state(container_id)
        if state.status == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def test_create_start_state_kill_delete(rt, bundle, marker):
    sh(bundle, "touch /marker/ran; sleep 30")
    fds = open_fds()
    created = rt.create(bundle.id, bundle.path)
    assert created.status == "created" and created.id == bundle.id and created.bundle == bundle.path
    assert created.pid > 0 and os.path.exists(f"/proc/{created.pid}")
    assert not (marker / "ran").exists()  # the process waits for start
    assert [s.id for s in rt.list()] == [bundle.id]

    rt.start(bundle.id)
    deadline = time.monotonic() + 10
    while not (marker / "ran").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (marker / "ran").exists()
    state = rt.state(bundle.id)
    assert state.status == "running" and state.pid == created.pid
    assert state.to_dict()["status"] == "running" and state.to_dict()["id"] == bundle.id

    rt.kill(bundle.id, "KILL")
    assert wait_for(rt, bundle.id, "stopped").status == "stopped"
    assert rt.state(bundle.id).pid == 0
    rt.delete(bundle.id)
    assert rt.list() == []
    assert not os.path.exists(f"/proc/{created.pid}")  # reaped, not left a zombie of ours
    with pytest.raises(pyrunc.ContainerNotFound):
        rt.state(bundle.id)
    assert open_fds() == fds  # nothing of the container's left open in the caller


def test_exec_runs_in_the_container_and_returns_its_exit_code(rt, bundle, marker):
    sh(bundle, "sleep 30")
    rt.create(bundle.id, bundle.path)
    rt.start(bundle.id)
    code = rt.exec(bundle.id, ["sh", "-c", "echo $$ > /marker/pid; hostname > /marker/host; exit 3"])
    assert code == 3
    assert (marker / "host").read_text().strip() == bundle.config["hostname"]
    assert (marker / "pid").read_text().strip() not in ("", "1")  # not the init, in its pid namespace
    marker.chmod(0o777)  # for uid 65534
    process = dict(bundle.config["process"], args=["sh", "-c", "id -u > /marker/uid"], user={"uid": 65534, "gid": 65534})
    assert rt.exec(bundle.id, process) == 0
    assert (marker / "uid").read_text().strip() == "65534"
    assert _subreaper() == 0  # only while exec waited
    rt.delete(bundle.id, force=True)


def test_run_in_the_foreground_returns_the_exit_code_and_deletes(rt, bundle, capfd):
    sh(bundle, "echo hello from the container; exit 7")
    fds = open_fds()
    assert rt.run(bundle.id, bundle.path) == 7
    assert open_fds() == fds
    # No longer a subreaper: the caller must not go on adopting others' orphans.
    assert _subreaper() == 0
    assert "hello from the container" in capfd.readouterr().out
    assert rt.list() == []


def test_pause_resume_update_stats(rt, bundle):
    sh(bundle, "sleep 30")
    rt.run(bundle.id, bundle.path, detach=True)
    rt.pause(bundle.id)
    assert rt.state(bundle.id).status == "paused"
    with pytest.raises(pyrunc.InvalidStatus, match="already paused"):
        rt.pause(bundle.id)
    rt.resume(bundle.id)
    assert rt.state(bundle.id).status == "running"
    rt.update(bundle.id, {"pids": {"limit": 42}})
    v1 = f"/sys/fs/cgroup/pids{cgroup_of(bundle.id)}/pids.max"
    v2 = f"/sys/fs/cgroup{cgroup_of(bundle.id)}/pids.max"
    with open(v1 if os.path.exists(v1) else v2) as f:
        assert f.read().strip() == "42"
    assert rt.stats(bundle.id)["pids"]["limit"] == 42
    with pytest.raises(pyrunc.ConfigError) as err:
        rt.update(bundle.id, {"pids": {"limit": "many"}})
    assert err.value.problems[0][0].startswith("linux.resources.pids")
    rt.delete(bundle.id, force=True)


def test_events_yields_stats_until_the_container_stops(rt, bundle):
    sh(bundle, "sleep 1")
    rt.run(bundle.id, bundle.path, detach=True)
    records = list(rt.events(bundle.id, interval=0.2))
    assert records and all(r["type"] == "stats" and r["id"] == bundle.id for r in records)
    assert "pids" in records[0]["data"]
    assert rt.state(bundle.id).status == "stopped"
    rt.delete(bundle.id)


def test_events_of_a_stopped_container_is_refused_at_the_call(rt, bundle):
    sh(bundle, "true")
    rt.create(bundle.id, bundle.path)
    rt.start(bundle.id)
    assert wait_for(rt, bundle.id, "stopped").status == "stopped"
    with pytest.raises(pyrunc.InvalidStatus, match="container is not running"):
        rt.events(bundle.id)
    with pytest.raises(pyrunc.ContainerNotFound):
        rt.events("nothing-here")
    rt.delete(bundle.id)


def test_a_failed_run_leaves_no_fd_open(rt, bundle, tmp_path):
    fds = open_fds()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(pyrunc.ConfigError):
        rt.run("bad", str(tmp_path / "bad"))
    assert open_fds() == fds


def test_the_callers_socket_activation_fds_stay_out_of_the_container(rt, bundle, marker, monkeypatch):
    # LISTEN_FDS in a library caller's environment (a socket-activated
    # service) names the caller's own sockets: the command line passes them
    # on, as runc; the API must not.
    sh(bundle, "for f in /proc/self/fd/*; do echo ${f##*/}; done > /marker/fds")
    rt.run(bundle.id, bundle.path)
    alone = (marker / "fds").read_text()
    r, w = os.pipe()  # fds 3 and 4 for the caller to "listen" on, whatever they were
    try:
        monkeypatch.setenv("LISTEN_FDS", str(max(r, w) - 2))
        monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
        rt.run(bundle.id, bundle.path)
    finally:
        os.close(r)
        os.close(w)
    assert (marker / "fds").read_text() == alone


def test_errors_are_typed(rt, bundle, tmp_path):
    with pytest.raises(pyrunc.ContainerNotFound) as err:
        rt.start("nothing-here")
    assert isinstance(err.value, pyrunc.PyruncError) and err.value.container_id == "nothing-here"

    sh(bundle, "sleep 30")
    rt.create(bundle.id, bundle.path)
    with pytest.raises(pyrunc.ContainerExists):
        rt.create(bundle.id, bundle.path)
    rt.start(bundle.id)
    with pytest.raises(pyrunc.InvalidStatus, match="already running"):
        rt.start(bundle.id)
    with pytest.raises(pyrunc.InvalidStatus, match="not stopped"):
        rt.delete(bundle.id)
    rt.delete(bundle.id, force=True)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"ociVersion": "1.0.0", "root": {"path": "rootfs"}, "process": {"cwd": "/"}}')
    with pytest.raises(pyrunc.ConfigError) as err:
        rt.create("bad", str(bad))
    assert err.value.problems == [("process.args", "is required")]
    assert rt.list() == []


def test_a_kernel_error_keeps_its_errno(rt, bundle):
    sh(bundle, "sleep 30")
    rt.run(bundle.id, bundle.path, detach=True)
    with pytest.raises(pyrunc.KernelError) as err:
        rt.update(bundle.id, {"cpu": {"cpus": f"{os.cpu_count() + 64}"}})  # a cpu this host lacks
    assert err.value.errno in (errno.EINVAL, errno.ERANGE) and "cpuset.cpus" in str(err.value)
    rt.delete(bundle.id, force=True)


def test_create_with_threads_running_is_refused_and_leaves_nothing(rt, bundle):
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.raises(pyrunc.ThreadsRunning, match="refusing to fork with 2 threads"):
            rt.create(bundle.id, bundle.path)
    finally:
        stop.set()
        thread.join()
    assert rt.list() == []


def test_the_example_script_runs_a_container(runtime, bundle):
    sh(bundle, "echo hello from the example; exit 5")
    script = os.path.join(ROOT_DIR, "examples", "run_container.py")
    if SYSTEMD:
        pytest.skip("the example uses the cgroupfs driver")
    result = subprocess.run([sys.executable, script, bundle.path, "--id", bundle.id, "--root", runtime.root],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 5, result
    assert result.stdout == f"hello from the example\ncontainer {bundle.id} exited with 5\n"
    assert runtime.ids() == []


def test_exec_failures_carry_kind_and_errno(rt, bundle):
    """Issue 16, item 3: the program that cannot run ("exec": 127 for ENOENT,
    126 else) and a failed set-up step ("setup", its ENOENT no 127)."""
    sh(bundle, "sleep 60")
    rt.run(bundle.id, bundle.path, detach=True)
    try:
        cases = [(["no-such-command"], ("exec", errno.ENOENT, 127)),
                 (["/etc/passwd"], ("exec", errno.EACCES, 126)),
                 ({"args": ["true"], "cwd": "/nonexistent"}, ("setup", errno.ENOENT, 0))]
        for process, expected in cases:
            with pytest.raises(pyrunc.PyruncError) as info:
                rt.exec(bundle.id, process)
            assert (info.value.kind, info.value.errno, info.value.exit_code) == expected, info.value
    finally:
        rt.delete(bundle.id, force=True)
