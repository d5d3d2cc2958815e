"""The systemd cgroup driver (--systemd-cgroup) on a host whose PID 1 is
systemd (the VM lane's): the container in a transient scope of the slice
cgroupsPath names, its resources both as unit properties and in the
cgroup files (beside runc's, for the same config), update, pause, exec and
delete through it, and every bad input as one line with nothing left
behind: a cgroupsPath that is not "slice:prefix:name" or names no slice,
a unit name taken, a value systemd refuses; on a host without systemd, the
socket it could not reach.

Every container here is in this session's own slice (conftest.SLICE),
stopped when the session ends; the runtime fixture's checks (nothing left:
state, cgroups, scopes) hold for each test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests import cgroupfs
from tests.integration.conftest import SLICE, SYSTEMD
from tests.integration.test_run import sh

SYSTEMD_RUNNING = os.path.isdir("/run/systemd/system")
needs_systemd = pytest.mark.skipif(not SYSTEMD_RUNNING, reason="needs systemd as PID 1 (the VM lane's host)")
RUNC = shutil.which("runc")
# The systemd job's sessions give every command the flag already.
SD = () if SYSTEMD else ("--systemd-cgroup",)
V2 = cgroupfs.is_unified()


def scope(container_id: str) -> str:
    return f"pyrunc-{container_id}.scope"


def show(unit: str, *props: str) -> dict[str, str]:
    out = subprocess.run(["systemctl", "show", unit, *[f"--property={p}" for p in props]], capture_output=True,
                         text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit: str) -> bool:
    return show(unit, "LoadState").get("LoadState") == "not-found"


def cgroup_dir(unit: str, controller: str = "memory") -> str:
    return cgroupfs.directory(controller, f"/{SLICE}/{unit}")


@pytest.fixture
def sd_bundle(bundle):
    bundle.config["linux"]["cgroupsPath"] = f"{SLICE}:pyrunc:{bundle.id}"
    bundle.write()
    return bundle


def one_line_failure(result, *words):
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pyrunc: "), result
    for word in words:
        assert word in result.stderr, result


# ---------------------------------------------------------------- any host


@pytest.mark.parametrize("path, words", [
    ("/pyrunc/abs", ['"slice:prefix:name"']),
    ("a.slice:b", ['"slice:prefix:name"']),
    ("a.slice:b:c:d", ['"slice:prefix:name"']),
    ("system:pyrunc:x", ['"system" is not a systemd slice']),
    ("system.service:pyrunc:x", ['"system.service" is not a systemd slice']),
    ("a--b.slice:pyrunc:x", ['"a--b.slice" is not a systemd slice']),
    ("system.slice:pyrunc:", ["the name (the third field) is empty"]),
    ("system.slice:pyrunc:bad/name", ['"pyrunc-bad/name.scope" is not a valid systemd unit name']),
])
def test_cgroups_path_that_is_no_systemd_unit_is_one_line(runtime, bundle, path, words):
    bundle.config["linux"]["cgroupsPath"] = path
    sh(bundle, "echo ran")
    result = runtime("run", "--bundle", bundle.path, bundle.id, global_args=SD)
    one_line_failure(result, "linux.cgroupsPath", *words)
    assert runtime.ids() == []
    if RUNC and path != "system.slice:pyrunc:":  # runc refuses the same ones (its words differ), but
        # an empty name, which it takes for a unit "pyrunc-.scope"
        runc = subprocess.run([RUNC, "--root", runtime.root + "-runc", "--systemd-cgroup", "run", "--bundle",
                               bundle.path, bundle.id], capture_output=True, text=True)
        assert runc.returncode != 0, runc


@pytest.mark.skipif(SYSTEMD_RUNNING, reason="this host runs systemd")
def test_systemd_not_reachable_names_the_socket(runtime, sd_bundle):
    sh(sd_bundle, "echo ran")
    result = runtime("run", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    one_line_failure(result, "cannot reach systemd", "/run/systemd/private")
    assert runtime.ids() == []


# ---------------------------------------------------------------- a systemd host


@needs_systemd
def test_container_runs_in_a_transient_scope_of_its_slice(runtime, sd_bundle):
    sh(sd_bundle, "cat /proc/self/cgroup; sleep 60")
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    unit = scope(sd_bundle.id)
    pid = runtime.state(sd_bundle.id)["pid"]
    lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    assert lines and all(line.endswith(f":/{SLICE}/{unit}") for line in lines if not line.startswith("1:name=")), lines
    props = show(unit, "ActiveState", "Delegate", "Slice", "ControlGroup", "Description")
    assert props["ActiveState"] == "active" and props["Delegate"] == "yes", props
    assert props["Slice"] == SLICE and props["ControlGroup"] == f"/{SLICE}/{unit}", props
    assert props["Description"] == f"pyrunc container {sd_bundle.id}", props
    with open(os.path.join(runtime.root, sd_bundle.id, "state.json")) as f:
        record = json.load(f)["cgroups"]
    assert record["driver"] == "systemd" and record["unit"] == unit and record["slice"] == SLICE, record
    # Later verbs rebuild the same manager from that record: delete stops the unit.
    runtime.ok("delete", "--force", sd_bundle.id)
    assert unit_gone(unit)
    assert not os.path.exists(cgroup_dir(unit))


@needs_systemd
def test_default_cgroups_path_is_a_scope_in_system_slice(runtime, bundle):
    bundle.config["linux"]["cgroupsPath"] = ""
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id, global_args=SD)
    unit = scope(bundle.id)
    try:
        assert show(unit, "Slice", "ActiveState") == {"Slice": "system.slice", "ActiveState": "active"}
    finally:
        runtime.ok("delete", "--force", bundle.id)
    assert unit_gone(unit)


RESOURCES = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
    "cpu": {"shares": 2048, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 42},
    "blockIO": {"weight": 500},
}
# systemd's view (v2) and the files, for RESOURCES.
EXPECTED_PROPERTIES = {"MemoryMax": str(64 << 20), "MemoryLow": str(32 << 20), "MemorySwapMax": str(32 << 20),
                       "CPUQuotaPerSecUSec": "500ms", "CPUQuotaPeriodUSec": "50ms", "TasksMax": "42",
                       "AllowedCPUs": "0", "AllowedMemoryNodes": "0", "IOWeight": "4950"}
EXPECTED_FILES = {"memory.max": str(64 << 20), "memory.low": str(32 << 20), "memory.swap.max": str(32 << 20),
                  "cpu.max": "25000 50000", "pids.max": "42", "cpuset.cpus": "0", "cpuset.mems": "0",
                  "io.weight": "default 4950"}


def _read_files(directory: str) -> dict[str, str]:
    found = {}
    for name in EXPECTED_FILES:
        try:
            with open(os.path.join(directory, name)) as f:
                found[name] = f.read().strip()
        except OSError as err:
            found[name] = f"<{err.strerror}>"
    return found


@needs_systemd
def test_resources_are_unit_properties_and_cgroup_files_as_with_runc(runtime, sd_bundle, new_id, tmp_path):
    if not V2:
        pytest.skip("the properties checked are cgroup v2's (MemoryMax, IOWeight, ...)")
    if not os.path.exists("/sys/fs/cgroup/memory.swap.max") and not os.path.exists(
            f"/sys/fs/cgroup/{SLICE}/memory.swap.max"):
        RESOURCES["memory"].pop("swap", None)
    sd_bundle.config["linux"]["resources"].update(RESOURCES)
    sd_bundle.config["linux"]["resources"]["unified"] = {"memory.high": str(60 << 20)}
    sh(sd_bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    unit = scope(sd_bundle.id)
    props = show(unit, *EXPECTED_PROPERTIES, "MemoryHigh", "CPUWeight")
    files = _read_files(cgroup_dir(unit))
    for name, value in EXPECTED_PROPERTIES.items():
        assert props.get(name) == value, (name, props)
    assert props["MemoryHigh"] == str(60 << 20), props
    assert files == EXPECTED_FILES, files
    # cpu.weight from shares: runc >= 1.3.2's curve (runc 1.1.5 used a line).
    assert props["CPUWeight"] == "174" and open(os.path.join(cgroup_dir(unit), "cpu.weight")).read().strip() == "174"
    assert open(os.path.join(cgroup_dir(unit), "memory.high")).read().strip() == str(60 << 20)
    if not RUNC:
        return
    # runc 1.1.5, the same config in the same slice: the same properties and
    # files (but CPUWeight, see above, and IOWeight, which runc 1.1.5 writes
    # to io.weight only).
    other = new_id()
    config = dict(sd_bundle.config, linux=dict(sd_bundle.config["linux"], cgroupsPath=f"{SLICE}:runc:{other}"))
    with open(os.path.join(sd_bundle.path, "config.json"), "w") as f:
        json.dump(config, f)
    runc = [RUNC, "--root", str(tmp_path / "runc"), "--systemd-cgroup"]
    # (runc's container keeps the stdio it is given: not a pipe to wait on)
    started = subprocess.run([*runc, "run", "--detach", "--bundle", sd_bundle.path, other],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert started.returncode == 0, started
        runc_unit = f"runc-{other}.scope"
        compared = ["MemoryMax", "MemoryLow", "TasksMax", "CPUQuotaPerSecUSec"]
        runc_props = show(runc_unit, "ActiveState", *compared)
        assert runc_props.get("ActiveState") == "active", runc_props
        assert {k: runc_props.get(k) for k in compared} == {k: props.get(k) for k in compared}
        runc_files = _read_files(cgroup_dir(runc_unit))
        assert {k: v for k, v in runc_files.items() if k != "io.weight"} == {
            k: v for k, v in files.items() if k != "io.weight"}
    finally:
        subprocess.run([*runc, "delete", "--force", other], capture_output=True)


@needs_systemd
def test_update_goes_through_systemd_and_the_files(runtime, sd_bundle):
    sh(sd_bundle, "sleep 60")
    sd_bundle.config["linux"]["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 42}})
    sd_bundle.write()
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    runtime.ok("update", "--memory", "128m", "--pids-limit", "64", sd_bundle.id, global_args=SD)
    unit = scope(sd_bundle.id)
    memory_property = "MemoryMax" if V2 else "MemoryLimit"
    assert show(unit, memory_property, "TasksMax") == {memory_property: str(128 << 20), "TasksMax": "64"}
    memory_file = "memory.max" if V2 else "memory.limit_in_bytes"
    assert cgroupfs.read("memory", f"/{SLICE}/{unit}", memory_file) == str(128 << 20)
    assert cgroupfs.read("pids", f"/{SLICE}/{unit}", "pids.max") == "64"


@needs_systemd
def test_pause_resume_exec_and_kill_all_work_on_the_scope(runtime, sd_bundle, tmp_path):
    sh(sd_bundle, "sleep 60 & exec sleep 61")
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    unit = scope(sd_bundle.id)
    init = runtime.state(sd_bundle.id)["pid"]
    # exec joins the scope
    pid_file = str(tmp_path / "exec.pid")
    runtime.ok("exec", "--detach", "--pid-file", pid_file, sd_bundle.id, "sleep", "30", global_args=SD)
    exec_pid = int(open(pid_file).read())
    assert open(f"/proc/{exec_pid}/cgroup").read() == open(f"/proc/{init}/cgroup").read()
    ps = json.loads(runtime.ok("ps", "--format", "json", sd_bundle.id, global_args=SD).stdout)
    assert init in ps and exec_pid in ps and len(ps) == 3, ps
    runtime.ok("pause", sd_bundle.id, global_args=SD)
    assert runtime.state(sd_bundle.id)["status"] == "paused"
    runtime.ok("resume", sd_bundle.id, global_args=SD)
    assert runtime.state(sd_bundle.id)["status"] == "running"
    runtime.ok("kill", "--all", sd_bundle.id, "KILL", global_args=SD)
    for pid in (init, exec_pid):
        deadline_ok = _wait_gone(pid)
        assert deadline_ok, pid
    assert runtime.state(sd_bundle.id)["status"] == "stopped"
    runtime.ok("delete", sd_bundle.id, global_args=SD)
    assert unit_gone(unit)


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


@needs_systemd
def test_exec_into_a_sub_cgroup_of_the_scope(runtime, sd_bundle):
    if not V2:
        pytest.skip("the sub-cgroup form without a controller is cgroup v2's")
    sh(sd_bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    unit = scope(sd_bundle.id)
    os.mkdir(os.path.join(cgroup_dir(unit), "sub"))
    result = runtime.ok("exec", "--cgroup", "sub", sd_bundle.id, "cat", "/proc/self/cgroup", global_args=SD)
    assert result.stdout.strip().endswith("/sub"), result
    # delete removes the sub-cgroup along with the scope
    runtime.ok("delete", "--force", sd_bundle.id, global_args=SD)
    assert not os.path.exists(cgroup_dir(unit))


@needs_systemd
def test_a_value_systemd_refuses_is_one_line_naming_the_unit(runtime, sd_bundle):
    if not V2:
        pytest.skip("a cgroup v2 key")
    # A unit property systemd does not know (runc passes these annotations
    # on as pyrunc does): systemd's refusal, naming the unit.
    sd_bundle.config["annotations"] = {"org.systemd.property.NoSuchLimit": "uint64 5"}
    sh(sd_bundle, "echo ran")
    result = runtime("run", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    one_line_failure(result, f'systemd refused to start unit "{scope(sd_bundle.id)}"', "NoSuchLimit")
    assert result.stdout == "" and runtime.ids() == []
    assert unit_gone(scope(sd_bundle.id))


@needs_systemd
def test_a_unit_name_in_use_is_one_line_and_the_other_container_is_untouched(runtime, sd_bundle, new_id):
    sh(sd_bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", sd_bundle.path, sd_bundle.id, global_args=SD)
    other = new_id()
    result = runtime("run", "--detach", "--bundle", sd_bundle.path, other, global_args=SD)  # same cgroupsPath
    # runc's warning first (the scope has processes), then the one error line
    warning, _, error = result.stderr.partition("\n")
    assert warning == "pyrunc: warning: container's cgroup is not empty: 1 process(es) found", result
    result.stderr = error
    one_line_failure(result, f'"{scope(sd_bundle.id)}" already exists')
    assert runtime.ids() == [sd_bundle.id]
    assert runtime.state(sd_bundle.id)["status"] == "running"
    assert show(scope(sd_bundle.id), "ActiveState")["ActiveState"] == "active"


@needs_systemd
def test_debug_times_the_dbus_round_trip(runtime, sd_bundle):
    sh(sd_bundle, "true")
    result = runtime.ok("create", "--bundle", sd_bundle.path, sd_bundle.id, global_args=("--debug", *SD))
    for step in ("cgroups: connect to systemd", "cgroups: StartTransientUnit call", "cgroups: unit's start job"):
        assert step in result.stderr, result.stderr
    runtime.ok("delete", "--force", sd_bundle.id, global_args=SD)
