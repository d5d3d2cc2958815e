"""create / start / state / kill / delete as the OCI lifecycle defines them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.integration.test_run import sh


def wait_for_status(runtime, container_id: str, status: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = runtime.state(container_id)
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_create_leaves_init_waiting_and_process_not_run(runtime, bundle, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    bundle.config["mounts"].append({"destination": "/marker", "type": "bind", "source": str(marker),
                                    "options": ["rbind"]})
    sh(bundle, "touch /marker/ran; sleep 30")
    pid_file = tmp_path / "pid"
    result = runtime("create", "--bundle", bundle.path, "--pid-file", str(pid_file), bundle.id)
    assert result.returncode == 0, result
    assert result.stdout == "" and result.stderr == ""
    state = runtime.state(bundle.id)
    assert state["status"] == "created"
    assert state["id"] == bundle.id
    assert state["bundle"] == bundle.path
    assert pid_file.read_bytes() == str(state["pid"]).encode()  # no trailing newline
    assert os.path.exists(f"/proc/{state['pid']}")
    time.sleep(0.2)
    assert not (marker / "ran").exists(), "process.args ran before start"
    runtime.ok("start", bundle.id)
    deadline = time.monotonic() + 5
    while not (marker / "ran").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (marker / "ran").exists()
    assert runtime.state(bundle.id)["status"] == "running"
    runtime.ok("kill", bundle.id, "KILL")
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"
    assert runtime.state(bundle.id)["pid"] == 0
    runtime.ok("delete", bundle.id)
    assert runtime("state", bundle.id).returncode == 1


def test_state_validates_against_our_state_schema(runtime, bundle):
    from pyrunc.spec.schema import validate

    sh(bundle, "sleep 30")
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.write()
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    for expected in ("created", "running", "stopped"):
        state = runtime.state(bundle.id)
        assert state["status"] == expected
        assert validate(state, schema="state-schema.json") == []
        assert state["annotations"] == {"org.example.key": "value"}
        if expected == "created":
            runtime.ok("start", bundle.id)
        elif expected == "running":
            runtime.ok("kill", bundle.id, "9")
            wait_for_status(runtime, bundle.id, "stopped")
    runtime.ok("delete", bundle.id)


@pytest.mark.parametrize("signal", ["USR1", "SIGUSR1", "usr1", "10"])
def test_kill_accepts_names_and_numbers(runtime, bundle, signal, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    sh(bundle, "trap 'echo got-usr1 > /out/result; exit 0' USR1; echo ready > /out/ready; "
               "while :; do sleep 0.05; done")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    deadline = time.monotonic() + 5
    while not (out / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    runtime.ok("kill", bundle.id, signal)
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"
    assert (out / "result").read_text() == "got-usr1\n"
    runtime.ok("delete", bundle.id)


def test_kill_default_signal_is_term(runtime, bundle):
    sh(bundle, "trap 'exit 0' TERM; while :; do sleep 0.05; done")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    time.sleep(0.2)
    runtime.ok("kill", bundle.id)
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"


def test_kill_invalid_signal_is_an_error(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    for bad in ("NOPE", "99"):  # 0 is a liveness probe (test_runc_compat)
        result = runtime("kill", bundle.id, bad)
        assert result.returncode == 1
        assert "invalid signal" in result.stderr
    assert runtime.state(bundle.id)["status"] == "created"


def test_kill_of_created_container_stops_it(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    runtime.ok("kill", bundle.id, "TERM")
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"


def test_kill_of_stopped_container_fails_with_runc_wording(runtime, bundle):
    sh(bundle, "true")
    runtime.ok("run", "--keep", "--bundle", bundle.path, bundle.id)
    result = runtime("kill", bundle.id, "KILL")
    assert result.returncode == 1
    assert "container not running" in result.stderr


def test_kill_all_signals_every_process(runtime, bundle):
    sh(bundle, "sleep 30 & sleep 30 & wait")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    time.sleep(0.3)
    runtime.ok("kill", "--all", bundle.id, "KILL")
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"


def test_start_twice_fails(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    runtime.ok("start", bundle.id)
    result = runtime("start", bundle.id)
    assert result.returncode == 1
    assert "cannot start an already running container" in result.stderr


def test_start_of_stopped_container_fails(runtime, bundle):
    sh(bundle, "true")
    runtime.ok("run", "--keep", "--bundle", bundle.path, bundle.id)
    result = runtime("start", bundle.id)
    assert result.returncode == 1
    assert "cannot start a container that has stopped" in result.stderr


def test_start_after_init_died_reports_clearly(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    os.kill(runtime.state(bundle.id)["pid"], 9)
    wait_for_status(runtime, bundle.id, "stopped")
    result = runtime("start", bundle.id)
    assert result.returncode == 1
    assert "stopped" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_delete_running_needs_force(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("delete", bundle.id)
    assert result.returncode == 1
    assert "that is not stopped: running" in result.stderr
    assert runtime.state(bundle.id)["status"] == "running"
    pid = runtime.state(bundle.id)["pid"]
    runtime.ok("delete", "--force", bundle.id)
    assert not os.path.exists(f"/proc/{pid}/cgroup") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert runtime.ids() == []


def test_delete_of_created_container_kills_it(runtime, bundle):
    # As runc does (and containerd relies on): no --force needed.
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    runtime.ok("delete", bundle.id)
    assert runtime.ids() == []


def test_delete_force_of_missing_container_exits_zero(runtime):
    assert runtime("delete", "--force", "never-existed").returncode == 0
    result = runtime("delete", "never-existed")
    assert result.returncode == 1
    assert "container does not exist" in result.stderr


def test_unknown_id_errors(runtime):
    for args in (("state", "nope"), ("start", "nope"), ("kill", "nope", "KILL")):
        result = runtime(*args)
        assert result.returncode == 1
        assert result.stderr == "pyrunc: nope: container does not exist\n"


def test_duplicate_id_fails_and_keeps_first(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    first = runtime.state(bundle.id)
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert runtime.state(bundle.id) == first


def test_config_edits_after_create_do_not_affect_container(runtime, bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    sh(bundle, "echo original > /out/result")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    sh(bundle, "echo edited > /out/result")
    runtime.ok("start", bundle.id)
    wait_for_status(runtime, bundle.id, "stopped")
    assert (out / "result").read_text() == "original\n"


def test_list_shows_containers_in_all_formats(runtime, bundle, new_id):
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    table = runtime.ok("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == bundle.id and table[1].split()[2] == "created"
    assert runtime.ok("list", "-q").stdout == bundle.id + "\n"
    entries = json.loads(runtime.ok("list", "--format", "json").stdout)
    assert [e["id"] for e in entries] == [bundle.id]
    assert entries[0]["owner"] == "root"


def test_list_empty_root(runtime):
    assert runtime.ok("list", "--format=json").stdout == "null\n"
    assert runtime.ok("list").stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_init_is_child_of_callers_subreaper(runtime, bundle, tmp_path):
    # Engines (conmon, containerd's shim) are subreapers and reap the pid from
    # the pid file: no pyrunc process may sit between them and the init.
    sh(bundle, "sleep 30")
    pid_file = tmp_path / "pid"
    script = f"""
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.run({runtime.cmd!r} + ["create", "--bundle", {bundle.path!r}, "--pid-file", {str(pid_file)!r}, {bundle.id!r}],
               check=True, stdout=subprocess.DEVNULL)
pid = int(open({str(pid_file)!r}).read())
ppid = int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])
print(ppid == os.getpid())
subprocess.run({runtime.cmd!r} + ["delete", "--force", {bundle.id!r}], check=True)
os.waitpid(pid, 0)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout == "True\n", result


def test_preserve_fds_passes_extra_fds_only(runtime, bundle, tmp_path):
    sh(bundle, "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; cat <&3")
    data = tmp_path / "data"
    data.write_text("through fd 3\n")
    command = " ".join(f"'{a}'" for a in runtime.cmd + ["run", "--preserve-fds", "1", "--bundle", bundle.path, bundle.id])
    result = subprocess.run(["sh", "-c", f"exec 3<'{data}'; exec {command}"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    # 0-2, the preserved 3, and ls's own directory fd
    assert lines[0].split()[:4] == ["0", "1", "2", "3"] and len(lines[0].split()) == 5, lines
    assert lines[1] == "through fd 3"


def test_no_fds_leak_into_container(runtime, bundle):
    sh(bundle, "ls /proc/self/fd | wc -l")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.strip() == "4"  # 0, 1, 2 and ls's directory fd


def test_waiting_init_is_the_tiny_stub(runtime, bundle):
    """A created container holds a few kilobytes, not a Python process, and
    its /proc/<init>/exe is a sealed memfd, never the host's interpreter."""
    from pyrunc.linux import trampoline

    if not trampoline.supported():
        pytest.skip("no stub for this architecture")
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    pid = runtime.state(bundle.id)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-stub")
    rss_kib = int(next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:")))
    assert rss_kib < 1024, rss_kib
    runtime.ok("start", bundle.id)
    time.sleep(0.2)
    assert os.readlink(f"/proc/{pid}/exe").endswith("busybox")


def _alive_in(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def test_kill_all_after_init_exit_ends_what_it_left(runtime, bundle, tmp_path):
    # No pid namespace of its own: the init's children outlive it. containerd's
    # shim then runs `kill --all ID 9` on the stopped container (runc: exit 0).
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    sh(bundle, "sleep 30 & echo $! > /out/child; exit 0")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"
    deadline = time.monotonic() + 5
    while not (out / "child").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int((out / "child").read_text())  # a host pid: no pid namespace
    assert _alive_in([child]) == [child]
    runtime.ok("kill", "--all", bundle.id, "9")
    deadline = time.monotonic() + 5
    while _alive_in([child]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive_in([child]) == []
    runtime.ok("kill", "--all", bundle.id, "9")  # nothing left: still not an error
    runtime.ok("delete", bundle.id)


def test_sigkill_of_paused_container_stops_it(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    runtime.ok("pause", bundle.id)
    runtime.ok("kill", bundle.id, "KILL")
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"
    runtime.ok("delete", bundle.id)


def test_kill_all_of_paused_container_stops_it(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    runtime.ok("pause", bundle.id)
    runtime.ok("kill", "--all", bundle.id, "KILL")
    assert wait_for_status(runtime, bundle.id, "stopped")["status"] == "stopped"
    runtime.ok("delete", bundle.id)


def test_delete_force_of_paused_container(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    runtime.ok("pause", bundle.id)
    started = time.monotonic()
    runtime.ok("delete", "--force", bundle.id)
    assert time.monotonic() - started < 5
    assert runtime("state", bundle.id).returncode == 1


def test_ps_of_stopped_container_lists_nothing(runtime, bundle):
    # runc: `ps --format json` of a stopped container prints an empty list, exit 0
    sh(bundle, "true")
    runtime.ok("run", "--keep", "--bundle", bundle.path, bundle.id)
    assert json.loads(runtime.ok("ps", "--format", "json", bundle.id).stdout) in ([], None)
    assert len(runtime.ok("ps", bundle.id).stdout.splitlines()) == 1  # the header
    runtime.ok("delete", bundle.id)


@pytest.mark.parametrize("verb", ["run", "create", "exec"])
@pytest.mark.parametrize("count", [1, 5, 100000])
def test_preserve_fds_beyond_what_the_caller_passed_is_refused(runtime, bundle, tmp_path, verb, count):
    """issue 13, item 3: --preserve-fds N counted pyrunc's own fds (the --log
    file, the sync socket, the stubs' memfds) when the caller passed fewer:
    refused in one line, nothing made."""
    if verb == "exec":
        sh(bundle, "sleep 60")
        runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
        args = ["exec", "--preserve-fds", str(count), bundle.id, "ls", "-l", "/proc/self/fd"]
    else:
        sh(bundle, "ls -l /proc/self/fd")
        args = [verb, "--preserve-fds", str(count), "--bundle", bundle.path, bundle.id + "x"]
    log = tmp_path / "log"
    # The caller passes one extra fd (3); the log file is pyrunc's own.
    command = " ".join(f"'{a}'" for a in runtime.cmd[:3] + ["--log", str(log), "--debug"] + runtime.cmd[3:] + args)
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        code = subprocess.run(["sh", "-c", f"exec 3</dev/null; exec {command}"], stdout=out, stderr=err,
                              timeout=60).returncode
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if count == 1:
        assert code == 0, (stdout, stderr)
        if verb != "create":
            assert "/dev/null" in stdout and str(log) not in stdout, stdout
            assert "socket" not in stdout and "memfd" not in stdout and "pipe" not in stdout, stdout
        return
    assert code == (255 if verb == "exec" else 1), (stdout, stderr)  # runc's codes
    assert stderr.splitlines() == ["pyrunc: --preserve-fds: fd 4 (of %d from fd 3) was not passed to pyrunc; "
                                   "only fds the caller keeps open can be preserved" % count], stderr
    assert runtime.ids() == ([bundle.id] if verb == "exec" else [])
