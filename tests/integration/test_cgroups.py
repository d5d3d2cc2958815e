"""linux.resources on this host's cgroups: limits visible and in effect,
update, pause/resume, ps, events, and clean removal. On a cgroup v1 (or
hybrid) host and on a pure v2 one (the VM lane's): each test reads the files
of the host it runs on."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests import cgroupfs
from tests.integration.conftest import CGROUP_PARENT, cgroup_of, needs_cgroupfs_driver
from tests.integration.test_run import sh

V2 = cgroupfs.is_unified()


def read(controller: str, container_id: str, name: str) -> str:
    return cgroupfs.read(controller, cgroup_of(container_id), name)


def needs(controller: str):
    if not cgroupfs.has_controller(controller):
        pytest.skip(f"no {controller} cgroup controller on this host")


def test_limits_visible_in_cgroup_files_and_inside(runtime, bundle):
    for c in ("memory", "pids", "cpu"):
        needs(c)
    bundle.config["linux"]["resources"].update({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20},
        "pids": {"limit": 42},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000},
    })
    if V2:
        sh(bundle, "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; sleep 30")
        runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
        assert read("memory", bundle.id, "memory.max") == str(64 << 20)
        assert read("memory", bundle.id, "memory.low") == str(32 << 20)
        assert read("pids", bundle.id, "pids.max") == "42"
        assert read("cpu", bundle.id, "cpu.weight") == "59"  # runc 1.3.2+'s shares-to-weight curve
        assert read("cpu", bundle.id, "cpu.max") == "20000 100000"
        return
    sh(bundle, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    assert read("memory", bundle.id, "memory.limit_in_bytes") == str(64 << 20)
    assert read("memory", bundle.id, "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read("pids", bundle.id, "pids.max") == "42"
    assert read("cpu", bundle.id, "cpu.shares") == "512"
    assert read("cpu", bundle.id, "cpu.cfs_quota_us") == "20000"


def test_pids_limit_stops_forks(runtime, bundle):
    needs("pids")
    bundle.config["linux"]["resources"]["pids"] = {"limit": 5}
    # A subshell forks until the kernel refuses (and then gives up); the
    # init stays, having exec'd sleep.
    sh(bundle, "(for i in 1 2 3 4 5 6 7 8; do sleep 30 & done) 2>/dev/null; exec sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    time.sleep(0.5)
    assert 1 < int(read("pids", bundle.id, "pids.current")) <= 5
    # the kernel counted the forks it refused
    assert int(read("pids", bundle.id, "pids.events").split()[1]) >= 1


def _oom_events(runtime, bundle, script: str) -> list[dict]:
    """Run `script` under a 16 MiB limit once `events` has read its starting
    OOM count (its first stats record), and return the records `events`
    printed until it reported an OOM kill, ended, or 20 s passed. The script
    waits for /go, which the test makes in the rootfs."""
    bundle.config["linux"]["resources"]["memory"] = {"limit": 16 << 20, "swap": 16 << 20}
    sh(bundle, "until [ -e /go ]; do sleep 0.05; done; " + script)
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    events = subprocess.Popen(runtime.cmd + ["events", "--interval", "1s", bundle.id], stdout=subprocess.PIPE,
                              text=True)
    try:
        records = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(r["type"] == "oom" for r in records):
            line = events.stdout.readline()
            if not line:
                break
            records.append(json.loads(line))
            if len(records) == 1:
                open(os.path.join(bundle.rootfs, "go"), "w").close()
        return records
    finally:
        events.kill()
        events.wait()


# The hog: a shell that reads 64 MiB into a variable.
HOG = 'x=$(head -c 67108864 /dev/zero | tr "\\0" a)'


def test_memory_hog_is_oom_killed_and_events_reports_it(runtime, bundle):
    needs("memory")
    records = _oom_events(runtime, bundle, f"sh -c '{HOG}'; echo survived; sleep 30")
    assert any(r["type"] == "oom" and r["id"] == bundle.id for r in records), records
    assert records[0]["type"] == "stats"


def test_events_reports_the_oom_kill_that_stops_the_container(runtime, bundle):
    # The init itself is the hog: the container stops from the kill, and
    # under the systemd driver its scope's cgroup (with memory.events) goes
    # moments later. events wakes at the kill (POLLPRI on memory.events) and
    # reports it before it sees the container stopped.
    needs("memory")
    records = _oom_events(runtime, bundle, HOG + "; echo survived; sleep 30")
    assert any(r["type"] == "oom" and r["id"] == bundle.id for r in records), records


def test_update_changes_limits_live(runtime, bundle):
    for c in ("memory", "pids", "cpu"):
        needs(c)
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    runtime.ok("update", "--memory", "96m", "--pids-limit", "33", "--cpu-share", "300", bundle.id)
    memory_file = "memory.max" if V2 else "memory.limit_in_bytes"
    assert read("memory", bundle.id, memory_file) == str(96 << 20)
    assert read("pids", bundle.id, "pids.max") == "33"
    assert read("cpu", bundle.id, "cpu.weight" if V2 else "cpu.shares") == ("39" if V2 else "300")
    # The JSON engines send on stdin (docker update, CRI UpdateContainerResources).
    update = {"memory": {"limit": 128 << 20}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 44},
              "devices": [{"allow": False, "access": "rwm"}]}
    runtime.ok("update", "--resources", "-", bundle.id, input=json.dumps(update))
    assert read("memory", bundle.id, memory_file) == str(128 << 20)
    if V2:
        assert read("cpu", bundle.id, "cpu.max") == "50000 100000"
    else:
        assert read("cpu", bundle.id, "cpu.cfs_quota_us") == "50000"
    assert read("pids", bundle.id, "pids.max") == "44"
    # devices are not touched by update: /dev/null still works
    assert runtime.ok("exec", bundle.id, "sh", "-c", "echo x > /dev/null && echo ok").stdout == "ok\n"


def test_update_rejects_bad_values_naming_them(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("update", "--resources", "-", bundle.id, input=json.dumps({"memory": {"limit": "lots"}}))
    assert result.returncode == 1 and "linux.resources.memory.limit" in result.stderr
    result = runtime("update", "--memory", "lots", bundle.id)
    assert result.returncode == 1 and "--memory" in result.stderr


def test_update_tolerates_device_rules_as_runc_and_refuses_unified_on_v1(runtime, bundle):
    """runc 1.1's `update -r` reads device rules and leaves the container's
    as they are, whatever their access strings (issue 15, item 12); a
    `unified` map is cgroup v2's: refused on a v1 or hybrid host, set on v2."""
    needs("pids")
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    for access in ("rrw", "", "wr", "m"):
        update = {"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": access}]}
        runtime.ok("update", "--resources", "-", bundle.id, input=json.dumps(update))
    update = {"pids": {"limit": 50}, "unified": {"pids.max": "40"}}
    result = runtime("update", "--resources", "-", bundle.id, input=json.dumps(update))
    if V2:
        assert result.returncode == 0 and read("pids", bundle.id, "pids.max") == "40", result
    else:
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result
        assert "linux.resources.unified: invalid configuration: cannot use unified on cgroup v1" in result.stderr, result
        assert read("pids", bundle.id, "pids.max") != "50"  # nothing written
    assert runtime.ok("exec", bundle.id, "sh", "-c", "echo x > /dev/null && echo ok").stdout == "ok\n"


def test_pause_freezes_and_resume_thaws(runtime, bundle, tmp_path):
    needs("freezer")
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    sh(bundle, "i=0; while :; do i=$((i+1)); echo $i > /out/count; sleep 0.01; done")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    time.sleep(0.3)
    runtime.ok("pause", bundle.id)
    assert runtime.state(bundle.id)["status"] == "paused"
    frozen_at = (out / "count").read_text()
    time.sleep(0.3)
    assert (out / "count").read_text() == frozen_at, "the container made progress while paused"
    result = runtime("pause", bundle.id)
    assert result.returncode == 1
    runtime.ok("resume", bundle.id)
    assert runtime.state(bundle.id)["status"] == "running"
    time.sleep(0.3)
    assert (out / "count").read_text() != frozen_at
    assert runtime("resume", bundle.id).returncode == 1  # not paused


def test_ps_lists_the_containers_processes(runtime, bundle):
    sh(bundle, "sleep 30 & sleep 31 & exec sleep 32")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    time.sleep(0.3)
    pids = json.loads(runtime.ok("ps", "--format", "json", bundle.id).stdout)
    assert len(pids) == 3 and runtime.state(bundle.id)["pid"] in pids
    table = runtime.ok("ps", bundle.id).stdout.splitlines()
    assert "PID" in table[0].split() and len(table) == 4
    assert sorted(line.split()[-1] for line in table[1:]) == ["30", "31", "32"]


def test_events_stats_once(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    record = json.loads(runtime.ok("events", "--stats", bundle.id).stdout)
    assert record["type"] == "stats" and record["id"] == bundle.id
    assert record["data"]["pids"]["current"] >= 1
    assert "memory" in record["data"] and "cpu" in record["data"]


def test_device_rules_deny_and_allow(runtime, bundle):
    needs("devices")
    bundle.config["process"]["capabilities"] = {k: ["CAP_MKNOD", "CAP_DAC_OVERRIDE"] for k in
                                                ("bounding", "effective", "permitted")}
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"},
                                                      {"allow": True, "type": "c", "major": 1, "minor": 7,
                                                       "access": "rw"}]
    sh(bundle, "mknod /tmp/mem c 1 1 2>/dev/null; cat /tmp/mem >/dev/null 2>&1 && echo mem-open || echo mem-denied; "
               "(echo x > /dev/full) 2>&1 | grep -q 'No space' && echo full-ok; echo x > /dev/null && echo null-ok")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["mem-denied", "full-ok", "null-ok"], result


def test_device_rules_hold_for_root_given_rootless_true(runtime, bundle):
    # --rootless=true by the host's root, outside any user namespace: runc
    # still applies the device rules (its rootless manager only ignores
    # their errors); dropping them let the container open any device it
    # could make. /dev/kmsg's numbers (no default rule allows them), opened
    # for writing (nothing is written).
    needs("devices")
    bundle.config["process"]["capabilities"] = {k: ["CAP_MKNOD", "CAP_DAC_OVERRIDE"] for k in
                                                ("bounding", "effective", "permitted")}
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
    sh(bundle, "rm -f /tmp/kmsg; mknod /tmp/kmsg c 1 11 && (: > /tmp/kmsg) 2>/dev/null && echo open || echo denied")
    result = runtime("run", "--bundle", bundle.path, bundle.id, global_args=("--rootless", "true"))
    assert result.returncode == 0, result
    assert result.stdout.split() == ["denied"], result


def test_missing_controller_limit_is_a_clear_error(runtime, bundle):
    if cgroupfs.has_controller("hugetlb"):
        pytest.skip("this host has the hugetlb controller")
    bundle.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 1 << 21}]
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and "hugepageLimits" in result.stderr and "not available" in result.stderr
    assert runtime.ids() == []


def test_delete_removes_created_cgroups_only(runtime, bundle):
    needs_cgroupfs_driver()
    parent = cgroupfs.directory("pids", f"/{CGROUP_PARENT}/preexisting")
    os.makedirs(parent, exist_ok=True)
    try:
        bundle.config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/preexisting/{bundle.id}"
        sh(bundle, "true")
        runtime.ok("run", "--bundle", bundle.path, bundle.id)
        assert os.path.isdir(parent), "delete removed a cgroup it did not create"
        assert not os.path.exists(os.path.join(parent, bundle.id))
        if not V2:  # the other hierarchies' "preexisting" is pyrunc's, and gone
            assert not os.path.exists(f"/sys/fs/cgroup/memory/{CGROUP_PARENT}/preexisting")
    finally:
        os.rmdir(parent)


@pytest.mark.parametrize("how", ["v1 freezer", "v2 cgroup.freeze", "frozen parent"])
def test_run_in_a_frozen_cgroup_is_refused_at_once(runtime, bundle, how):
    """A cgroup frozen beforehand (issue 13, item 7) would freeze the init
    mid-set-up and `run -d` would wait forever: refused in one line."""
    needs_cgroupfs_driver()
    v2_base = next((b for b in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                    if os.path.exists(f"{b}/cgroup.controllers")), None)
    if how == "v2 cgroup.freeze" and not v2_base:
        pytest.skip("no cgroup v2 hierarchy")
    if how != "v2 cgroup.freeze" and not os.path.isdir("/sys/fs/cgroup/freezer"):
        pytest.skip("no cgroup v1 freezer hierarchy (pure cgroup v2 host)")
    base = v2_base if how.startswith("v2") else "/sys/fs/cgroup/freezer"
    frozen = f"{base}/{CGROUP_PARENT}/{bundle.id}-frozen"
    target = frozen + ("/inner" if how == "frozen parent" else "")
    bundle.config["linux"]["cgroupsPath"] = target[len(base):]
    sh(bundle, "echo ran")
    os.makedirs(frozen)
    try:
        with open(os.path.join(frozen, "cgroup.freeze" if how.startswith("v2") else "freezer.state"), "w") as f:
            f.write("1" if how.startswith("v2") else "FROZEN")
        result = runtime("run", "--detach", "--bundle", bundle.path, bundle.id, timeout=20)
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "is frozen" in result.stderr, result
        assert runtime.ids() == []
        assert not os.path.exists(os.path.join(frozen, "inner"))
    finally:
        for directory in (os.path.join(frozen, "inner"), frozen):
            if os.path.isdir(directory):
                for name in ("cgroup.freeze", "freezer.state"):
                    if os.path.exists(os.path.join(directory, name)):
                        with open(os.path.join(directory, name), "w") as f:
                            f.write("0" if name == "cgroup.freeze" else "THAWED")
        time.sleep(0.1)
        for directory in (os.path.join(frozen, "inner"), frozen):
            if os.path.isdir(directory):
                os.rmdir(directory)
