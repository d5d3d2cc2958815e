"""cgroups.apply on tmp_path trees seeded with the kernel's file names (a
v1 layout like this host's, and a v2 cgroup): what gets written, in which
order, that nothing else is created, the errors, freeze/thaw, and the
`events --stats` data checked against runc's own output."""

from __future__ import annotations

import errno
import json
import os
import pathlib

import pytest

from pyrunc.errors import KernelError, PyruncError
from pyrunc.linux.cgroups import apply
from pyrunc.linux.cgroups.devices import container_device_rules

UNLIMITED = "9223372036854771712"
REFERENCE = pathlib.Path(__file__).parent / "configs" / "runc-events-stats.json"

# memory.stat of the container runc's reference output was taken from.
MEMORY_STAT = {
    "cache": 0, "rss": 57344, "rss_huge": 0, "shmem": 0, "mapped_file": 0, "dirty": 0, "writeback": 0, "swap": 0,
    "swapcached": 0, "pgpgin": 481, "pgpgout": 467, "pgfault": 782, "pgmajfault": 0, "inactive_anon": 53248,
    "active_anon": 4096, "inactive_file": 0, "active_file": 0, "unevictable": 0,
    "hierarchical_memory_limit": int(UNLIMITED), "hierarchical_memsw_limit": int(UNLIMITED),
    "total_cache": 0, "total_rss": 57344, "total_rss_huge": 0, "total_shmem": 0, "total_mapped_file": 0,
    "total_dirty": 0, "total_writeback": 0, "total_swap": 0, "total_swapcached": 0, "total_pgpgin": 481,
    "total_pgpgout": 467, "total_pgfault": 782, "total_pgmajfault": 0, "total_inactive_anon": 53248,
    "total_active_anon": 4096, "total_inactive_file": 0, "total_active_file": 0, "total_unevictable": 0,
    "workingset_refault_anon": 0, "workingset_refault_file": 0, "total_workingset_refault_anon": 0,
    "total_workingset_refault_file": 0,
}

V1_FILES = {
    "cpuset": {"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n", "cpuset.cpu_exclusive": "0\n",
               "cpuset.mem_hardwall": "0\n", "cpuset.mem_exclusive": "0\n", "cpuset.memory_migrate": "0\n",
               "cpuset.memory_spread_page": "0\n", "cpuset.memory_spread_slab": "0\n",
               "cpuset.memory_pressure": "0\n", "cpuset.sched_load_balance": "1\n",
               "cpuset.sched_relax_domain_level": "-1\n"},
    "cpu": {"cpu.shares": "1024\n", "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n",
            "cpu.cfs_burst_us": "0\n", "cpu.idle": "0\n", "cpu.rt_period_us": "1000000\n", "cpu.rt_runtime_us": "0\n",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuacct": {"cpuacct.stat": "user 0\nsystem 0\n", "cpuacct.usage": "7915651\n",
                "cpuacct.usage_percpu": "7836143 79508 \n",
                "cpuacct.usage_all": "cpu user system\n0 4000000 4000000\n1 0 0\n"},
    "memory": {"memory.limit_in_bytes": UNLIMITED + "\n", "memory.memsw.limit_in_bytes": UNLIMITED + "\n",
               "memory.soft_limit_in_bytes": UNLIMITED + "\n", "memory.swappiness": "60\n",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.use_hierarchy": "1\n",
               "memory.usage_in_bytes": "430080\n", "memory.max_usage_in_bytes": "2793472\n", "memory.failcnt": "0\n",
               "memory.memsw.usage_in_bytes": "430080\n", "memory.memsw.max_usage_in_bytes": "2793472\n",
               "memory.memsw.failcnt": "0\n", "memory.kmem.usage_in_bytes": "249856\n",
               "memory.kmem.max_usage_in_bytes": "524288\n", "memory.kmem.failcnt": "0\n",
               "memory.kmem.limit_in_bytes": UNLIMITED + "\n", "memory.kmem.tcp.usage_in_bytes": "0\n",
               "memory.kmem.tcp.max_usage_in_bytes": "0\n", "memory.kmem.tcp.failcnt": "0\n",
               "memory.kmem.tcp.limit_in_bytes": UNLIMITED + "\n",
               "memory.stat": "".join(f"{k} {v}\n" for k, v in MEMORY_STAT.items())},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED\n", "freezer.self_freezing": "0\n", "freezer.parent_freezing": "0\n"},
    "blkio": {"blkio.weight": "500\n", "blkio.leaf_weight": "500\n", "blkio.weight_device": "",
              "blkio.leaf_weight_device": "", "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
              "blkio.throttle.write_iops_device": "", "blkio.throttle.io_serviced": "Total 0\n",
              "blkio.throttle.io_service_bytes": "Total 0\n", "blkio.throttle.io_serviced_recursive": "Total 0\n",
              "blkio.throttle.io_service_bytes_recursive": "Total 0\n"},
    "pids": {"pids.max": "max\n", "pids.current": "1\n"},
}

V2_FILES = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids\n", "cgroup.procs": "", "cgroup.freeze": "0\n",
    "cgroup.events": "populated 1\nfrozen 0\n", "cgroup.subtree_control": "",
    "pids.max": "max\n", "pids.current": "3\n",
    "memory.max": "max\n", "memory.low": "0\n", "memory.high": "max\n", "memory.swap.max": "max\n",
    "memory.current": "1048576\n", "memory.peak": "2097152\n", "memory.swap.current": "4096\n",
    "memory.stat": "anon 524288\nfile 8192\nkernel 65536\n",
    "cpu.weight": "100\n", "cpu.max": "max 100000\n", "cpu.max.burst": "0\n", "cpu.idle": "0\n",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
    "cpuset.cpus": "", "cpuset.mems": "",
    "io.weight": "default 100\n", "io.max": "",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    "hugetlb.2MB.max": "max\n", "hugetlb.2MB.current": "2097152\n", "hugetlb.2MB.events": "max 3\n",
    "hugetlb.2MB.rsvd.max": "max\n", "hugetlb.2MB.rsvd.current": "0\n",
}


def seed(directory: pathlib.Path, files: dict[str, str]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content)
    return str(directory)


@pytest.fixture
def v1(tmp_path):
    """{hierarchy key: container dir} like CgroupDirs.paths on this host (hybrid)."""
    paths = {key: seed(tmp_path / key / "c1", files) for key, files in V1_FILES.items()}
    paths[""] = seed(tmp_path / "unified" / "c1", {"cgroup.procs": ""})
    return paths


@pytest.fixture
def v2(tmp_path):
    return seed(tmp_path / "c1", V2_FILES)


def snapshot(root) -> dict[str, str]:
    out = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            out[os.path.relpath(path, root)] = open(path).read()
    return out


def read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read()


@pytest.fixture
def recorder(monkeypatch):
    """Every write apply makes, as (file name, value), still performed."""
    writes = []
    real = apply._write_file

    def record(target, value):
        writes.append((os.path.basename(target), value))
        real(target, value)

    monkeypatch.setattr(apply, "_write_file", record)
    return writes


# ---------------------------------------------------------------- apply_v1


def test_apply_v1_podman_config_limits_written(v1, tmp_path):
    before = snapshot(tmp_path)
    warnings = apply.apply_v1(v1, {"memory": {"limit": 67108864, "swap": 134217728}, "pids": {"limit": 50}})
    assert warnings == []
    after = snapshot(tmp_path)
    assert set(after) == set(before)                       # nothing created
    changed = {k: v for k, v in after.items() if before[k] != v}
    assert changed == {"memory/c1/memory.limit_in_bytes": "67108864",
                       "memory/c1/memory.memsw.limit_in_bytes": "134217728",
                       "pids/c1/pids.max": "50"}


def test_apply_v1_full_config_every_file(v1, recorder):
    res = {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0", "mems": "0",
                   "idle": 1},
           "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swappiness": 0, "disableOOMKiller": True},
           "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
           "pids": {"limit": -1}}
    apply.apply_v1(v1, res)
    assert recorder == [
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("memory.limit_in_bytes", "1073741824"), ("memory.soft_limit_in_bytes", "536870912"),
        ("memory.oom_control", "1"), ("memory.swappiness", "0"),
        ("cpu.shares", "512"), ("cpu.cfs_period_us", "100000"), ("cpu.cfs_burst_us", "1000"),
        ("cpu.cfs_quota_us", "50000"), ("cpu.idle", "1"),
        ("pids.max", "max"),
        ("blkio.weight", "300"), ("blkio.throttle.read_bps_device", "8:0 1000"),
    ]
    assert read(v1["cpu"], "cpu.cfs_quota_us") == "50000"


def test_apply_v1_raise_memory_reads_current_limit_memsw_first(v1, recorder):
    with open(os.path.join(v1["memory"], "memory.limit_in_bytes"), "w") as f:
        f.write("67108864\n")
    apply.apply_v1(v1, {"memory": {"limit": 100663296, "swap": 201326592}})
    assert recorder == [("memory.memsw.limit_in_bytes", "201326592"), ("memory.limit_in_bytes", "100663296")]


def test_apply_v1_devices_after_cpuset_before_memory(v1, recorder):
    rules = container_device_rules([{"allow": False, "access": "rwm"}])
    apply.apply_v1(v1, {"cpu": {"cpus": "1"}, "memory": {"limit": 4096}}, device_rules=rules)
    names = [name for name, _ in recorder]
    assert names[0] == "cpuset.cpus"
    assert recorder[1] == ("devices.deny", "a *:* rwm")
    assert names[2:13] == ["devices.allow"] * 11
    assert recorder[13] == ("memory.limit_in_bytes", "4096")
    assert read(v1["devices"], "devices.list") == "a *:* rwm\n"


def test_apply_v1_devices_without_rules_untouched(v1, recorder):
    apply.apply_v1(v1, {"devices": [{"allow": False, "access": "rwm"}]})
    assert recorder == []


def test_apply_v1_devices_controller_missing_error(v1):
    del v1["devices"]
    with pytest.raises(PyruncError, match="linux.resources.devices: the devices cgroup controller is not available"):
        apply.apply_v1(v1, {}, device_rules=container_device_rules([]))


def test_apply_v1_hugetlb_not_mounted_error_nothing_written(v1, tmp_path):
    before = snapshot(tmp_path)
    res = {"memory": {"limit": 4096}, "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}
    with pytest.raises(PyruncError) as err:
        apply.apply_v1(v1, res)
    assert str(err.value) == ("linux.resources.hugepageLimits: the hugetlb cgroup controller is not available "
                              "on this host")
    assert snapshot(tmp_path) == before


def test_apply_v1_unmentioned_controller_missing_silent(v1):
    # net_cls, rdma, hugetlb are not mounted here: fine when the config does not ask.
    assert apply.apply_v1(v1, {"pids": {"limit": 5}}) == []
    assert read(v1["pids"], "pids.max") == "5"


def test_apply_v1_comounted_cpu_cpuacct_same_dir(tmp_path, recorder):
    files = {**V1_FILES["cpu"], **V1_FILES["cpuacct"]}
    paths = {"cpu,cpuacct": seed(tmp_path / "cpu,cpuacct" / "c1", files)}
    apply.apply_v1(paths, {"cpu": {"shares": 256}})
    assert recorder == [("cpu.shares", "256")]
    assert apply.stats(paths)["cpu"]["usage"]["total"] == 7915651


def test_apply_v1_period_einval_retried_after_quota(v1, monkeypatch):
    # A lower period can exceed the parent's quota until the quota follows:
    # the kernel says EINVAL, runc writes the quota and retries the period.
    real = apply._write_file
    log = []

    def einval_once(target, value):
        log.append((os.path.basename(target), value))
        if target.endswith("cpu.cfs_period_us") and len(log) == 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        real(target, value)

    monkeypatch.setattr(apply, "_write_file", einval_once)
    apply.apply_v1(v1, {"cpu": {"quota": 20000, "period": 50000}})
    assert log == [("cpu.cfs_period_us", "50000"), ("cpu.cfs_quota_us", "20000"), ("cpu.cfs_period_us", "50000")]
    assert read(v1["cpu"], "cpu.cfs_period_us") == "50000"


def test_apply_v1_period_einval_without_quota_error(v1, monkeypatch):
    def einval(target, value):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(apply, "_write_file", einval)
    with pytest.raises(KernelError) as err:
        apply.apply_v1(v1, {"cpu": {"period": 50000}})
    target = os.path.join(v1["cpu"], "cpu.cfs_period_us")
    assert str(err.value) == f'linux.resources.cpu.period: write "50000" to {target}: invalid argument'
    assert err.value.errno == errno.EINVAL


def test_apply_v1_memory_busy_error_shows_usage(v1, monkeypatch):
    def busy(target, value):
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(apply, "_write_file", busy)
    with pytest.raises(PyruncError, match=r"^linux.resources.memory.limit: unable to set memory limit to 4096 "
                                          r"\(current usage: 430080, peak usage: 2793472\)$"):
        apply.apply_v1(v1, {"memory": {"limit": 4096}})


def test_apply_v1_shares_clamped_by_kernel_error(v1, monkeypatch):
    real = apply._write_file
    monkeypatch.setattr(apply, "_write_file",
                        lambda target, value: real(target, "262144" if target.endswith("cpu.shares") else value))
    with pytest.raises(PyruncError, match="linux.resources.cpu.shares: 300000 is out of range: the maximum allowed "
                                          "cpu-shares is 262144"):
        apply.apply_v1(v1, {"cpu": {"shares": 300000}})


def test_apply_v1_missing_file_error_not_created(v1):
    os.unlink(os.path.join(v1["cpu"], "cpu.rt_runtime_us"))
    with pytest.raises(KernelError, match=r'linux.resources.cpu.realtimeRuntime: write "950000" to '
                                          r".*cpu.rt_runtime_us: no such file or directory "
                                          r"\(not supported by this kernel\)"):
        apply.apply_v1(v1, {"cpu": {"realtimeRuntime": 950000}})
    assert not os.path.exists(os.path.join(v1["cpu"], "cpu.rt_runtime_us"))


def test_apply_v1_unwritable_file_error_names_file_and_value(v1):
    target = os.path.join(v1["pids"], "pids.max")
    os.unlink(target)
    os.mkdir(target)
    with pytest.raises(KernelError) as err:
        apply.apply_v1(v1, {"pids": {"limit": 5}})
    assert str(err.value) == f'linux.resources.pids.limit: write "5" to {target}: is a directory'


def test_apply_v1_missing_cgroup_dir_error(v1):
    os.rename(v1["pids"], v1["pids"] + ".gone")
    with pytest.raises(PyruncError, match=r"cgroup .*pids/c1 does not exist"):
        apply.apply_v1(v1, {"pids": {"limit": 5}})


def test_apply_v1_unified_error(v1):
    with pytest.raises(PyruncError, match="linux.resources.unified: invalid configuration: cannot use unified on cgroup v1"):
        apply.apply_v1(v1, {"unified": {"pids.max": "5"}})


def test_apply_v1_warnings_returned(v1):
    assert apply.apply_v1(v1, {"memory": {"kernel": 1 << 20}}) == [
        "linux.resources.memory.kernel: ignored: kernel memory limits are not supported"]


# ---------------------------------------------------------------- apply_v2


def test_apply_v2_limits_written_nothing_created(v2, tmp_path, recorder):
    before = snapshot(tmp_path)
    res = {"memory": {"limit": 67108864, "swap": 134217728, "reservation": 1 << 20}, "pids": {"limit": 50},
           "cpu": {"shares": 1024, "quota": 50000, "cpus": "0-1"},
           "blockIO": {"weight": 1000, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}
    assert apply.apply_v2(v2, res) == []
    assert recorder == [
        ("pids.max", "50"), ("memory.swap.max", "67108864"), ("memory.max", "67108864"), ("memory.low", "1048576"),
        ("io.weight", "10000"), ("io.max", "8:0 rbps=100"), ("io.max", "8:0 wiops=10"),
        ("cpu.weight", "100"), ("cpu.max", "50000 100000"), ("cpuset.cpus", "0-1"),
        ("hugetlb.2MB.max", "4194304"), ("hugetlb.2MB.rsvd.max", "4194304"),
    ]
    after = snapshot(tmp_path)
    assert set(after) == set(before)
    assert after["c1/memory.max"] == "67108864"


def test_apply_v2_unified_written_last(v2, recorder):
    apply.apply_v2(v2, {"memory": {"limit": 1000}, "unified": {"memory.max": "2000", "memory.high": "1500"}})
    # swap unset with a real limit: memory.swap.max is left alone
    assert recorder == [("memory.max", "1000"), ("memory.max", "2000"), ("memory.high", "1500")]
    assert read(v2, "memory.max") == "2000"


def test_apply_v2_controller_not_enabled_error(v2, tmp_path):
    before = snapshot(tmp_path)
    with pytest.raises(PyruncError) as err:
        apply.apply_v2(v2, {"pids": {"limit": 5}, "rdma": {"mlx4_0": {"hcaHandles": 2}}})
    assert str(err.value) == "linux.resources.rdma: the rdma cgroup controller is not available on this host"
    assert snapshot(tmp_path) == before


def test_apply_v2_unified_controller_not_enabled_error(v2):
    with pytest.raises(PyruncError, match=r'linux.resources.unified\["misc.max"\]: cannot be set: the misc '
                                          r"controller is not available in this cgroup"):
        apply.apply_v2(v2, {"unified": {"misc.max": "res_a 1"}})


def test_apply_v2_available_controller_missing_file_error(v2):
    with pytest.raises(KernelError, match=r'write "1" to .*memory.zswap.max: no such file or directory'):
        apply.apply_v2(v2, {"unified": {"memory.zswap.max": "1"}})


def test_apply_v2_bfq_weights(v2, recorder):
    with open(os.path.join(v2, "io.bfq.weight"), "w") as f:
        f.write("default 100\n")
    apply.apply_v2(v2, {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}})
    assert recorder == [("io.bfq.weight", "300"), ("io.bfq.weight", "8:0 200")]


def test_apply_v2_check_before_update_reads_usage(v2):
    with pytest.raises(PyruncError, match="rejecting memory limit 4096 <= usage 1048576"):
        apply.apply_v2(v2, {"memory": {"limit": 4096, "checkBeforeUpdate": True}})


def test_apply_v2_warnings_returned(v2):
    assert apply.apply_v2(v2, {"cpu": {"realtimePeriod": 1000000}}) == [
        "linux.resources.cpu.realtimePeriod: ignored: cgroup v2 has no realtime CPU bandwidth"]


def test_apply_v2_device_filter_attached(v2, monkeypatch):
    from pyrunc.linux.cgroups import devices

    seen = []
    monkeypatch.setattr(devices, "attach_device_filter", lambda fd, program: seen.append((os.fstat(fd), program)))
    rules = container_device_rules([{"allow": False, "access": "rwm"}])
    apply.apply_v2(v2, {}, device_rules=rules)
    assert len(seen) == 1
    assert seen[0][0].st_ino == os.stat(v2).st_ino
    assert seen[0][1] == devices.build_device_filter(rules)


def test_apply_v2_device_filter_failure_allow_all_warning(v2, monkeypatch):
    from pyrunc.linux.cgroups import devices

    def fail(fd, program):
        raise KernelError("load device filter (bpf BPF_PROG_LOAD)", "", errno.EPERM)

    monkeypatch.setattr(devices, "attach_device_filter", fail)
    warnings = apply.apply_v2(v2, {}, device_rules=[{"allow": True, "access": "rwm"}])
    assert warnings == ["linux.resources.devices: not enforced: load device filter (bpf BPF_PROG_LOAD): "
                        "operation not permitted"]
    with pytest.raises(KernelError):
        apply.apply_v2(v2, {}, device_rules=container_device_rules([{"allow": False, "access": "rwm"}]))


def test_apply_resources_unified_paths_use_v2(v2, recorder):
    apply.apply_resources({"": v2}, {"pids": {"limit": 7}})
    assert read(v2, "pids.max") == "7"


def test_apply_resources_hybrid_paths_use_v1(v1):
    apply.apply_resources(v1, {"pids": {"limit": 7}})
    assert read(v1["pids"], "pids.max") == "7"


def test_is_unified_key_sets_answer():
    assert apply.is_unified({"": "/x"})
    assert not apply.is_unified({"": "/x", "memory": "/y"})
    assert not apply.is_unified({})


def test_controller_dirs_comounted_and_named():
    dirs = apply.find_controller_dirs({"cpu,cpuacct": "/a", "memory": "/b", "systemd": "/c", "": "/d"})
    assert dirs == {"cpu": "/a", "cpuacct": "/a", "memory": "/b", "systemd": "/c"}


# ---------------------------------------------------------------- enable_v2_controllers


def test_enable_v2_controllers_every_ancestor_not_leaf(tmp_path):
    mount = tmp_path / "cgroup"
    seed(mount, {"cgroup.controllers": "cpu memory pids\n", "cgroup.subtree_control": ""})
    for sub in ("a", "a/b", "a/b/c"):
        seed(mount / sub, {"cgroup.controllers": "", "cgroup.subtree_control": ""})
    apply.enable_v2_controllers(str(mount), str(mount / "a" / "b" / "c"))
    assert read(str(mount), "cgroup.subtree_control") == "+cpu +memory +pids"
    assert read(str(mount / "a"), "cgroup.subtree_control") == "+cpu +memory +pids"
    assert read(str(mount / "a" / "b"), "cgroup.subtree_control") == "+cpu +memory +pids"
    assert read(str(mount / "a" / "b" / "c"), "cgroup.subtree_control") == ""


def test_enable_v2_controllers_refused_batch_one_by_one(tmp_path, monkeypatch):
    mount = tmp_path / "cgroup"
    seed(mount, {"cgroup.controllers": "cpu memory\n", "cgroup.subtree_control": ""})
    seed(mount / "c", {})
    tried = []

    def picky(target, value):
        tried.append(value)
        if " " in value:
            raise OSError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(apply, "_write_file", picky)
    apply.enable_v2_controllers(str(mount), str(mount / "c"))
    assert tried == ["+cpu +memory", "+cpu", "+memory"]


@pytest.mark.parametrize("where", ["elsewhere/c", "m", "m/", "m/../elsewhere/c", "mx/c"])
def test_enable_v2_controllers_outside_mount_error(tmp_path, where):
    with pytest.raises(PyruncError, match="is not under the cgroup2 mount"):
        apply.enable_v2_controllers(str(tmp_path / "m"), f"{tmp_path}/{where}")


def test_enable_v2_controllers_under_a_mount_written_unnormalised(tmp_path):
    mount = tmp_path / "cgroup"
    seed(mount, {"cgroup.controllers": "pids\n", "cgroup.subtree_control": ""})
    seed(mount / "a", {"cgroup.controllers": "", "cgroup.subtree_control": ""})
    apply.enable_v2_controllers(f"{mount}//", f"{mount}/./a/b/../c")
    assert read(str(mount / "a"), "cgroup.subtree_control") == "+pids"


# ---------------------------------------------------------------- freezer


def test_freeze_v1_writes_frozen(v1):
    apply.freeze(v1)
    assert read(v1["freezer"], "freezer.state") == "FROZEN"


def test_is_frozen_v1_own_and_ancestor(v1):
    assert not apply.is_frozen(v1)
    apply.freeze(v1)
    # The kernel sets self_freezing for a cgroup frozen itself; here, by hand.
    with open(os.path.join(v1["freezer"], "freezer.self_freezing"), "w") as f:
        f.write("1\n")
    assert apply.is_frozen(v1)
    with open(os.path.join(v1["freezer"], "freezer.self_freezing"), "w") as f:
        f.write("0\n")
    assert not apply.is_frozen(v1)  # frozen through an ancestor only


def test_thaw_v1_writes_thawed(v1):
    apply.freeze(v1)
    apply.thaw(v1)
    assert read(v1["freezer"], "freezer.state") == "THAWED"
    assert not apply.is_frozen(v1)


def test_freeze_v1_stuck_freezing_error_thawed_back(v1, monkeypatch):
    real_read = apply._read_text
    monkeypatch.setattr(apply, "_read_text",
                        lambda path: "FREEZING\n" if path.endswith("freezer.state") else real_read(path))
    with pytest.raises(PyruncError, match="still FREEZING"):
        apply.freeze(v1, timeout=0.05)
    assert read(v1["freezer"], "freezer.state") == "THAWED"


def test_freeze_v2_waits_for_events(v2):
    with open(os.path.join(v2, "cgroup.events"), "w") as f:
        f.write("populated 1\nfrozen 1\n")
    apply.freeze({"": v2})
    assert read(v2, "cgroup.freeze") == "1"
    assert apply.is_frozen({"": v2})


def test_freeze_v2_never_frozen_error_unfrozen(v2):
    with pytest.raises(PyruncError, match='did not show "frozen 1"'):
        apply.freeze({"": v2}, timeout=0.05)
    assert read(v2, "cgroup.freeze") == "0"


def test_thaw_v2_writes_zero(v2):
    apply.thaw({"": v2})
    assert read(v2, "cgroup.freeze") == "0"
    assert not apply.is_frozen({"": v2})


def test_freeze_no_freezer_error(v1):
    del v1["freezer"]
    with pytest.raises(PyruncError, match="no freezer cgroup"):
        apply.freeze(v1)
    apply.thaw(v1)  # nothing to thaw: fine
    assert not apply.is_frozen(v1)


def test_freeze_v2_no_freeze_file_error(v2):
    os.unlink(os.path.join(v2, "cgroup.freeze"))
    with pytest.raises(PyruncError, match="no cgroup v2 freezer"):
        apply.freeze({"": v2})


# ---------------------------------------------------------------- stats


def test_stats_v1_tree_like_reference_matches_runc_output(v1):
    reference = json.loads(REFERENCE.read_text())["data"]
    assert apply.stats(v1) == reference
    # key order as runc prints it
    assert list(apply.stats(v1)) == list(reference)


def test_stats_v1_limits_and_throttling(v1):
    with open(os.path.join(v1["pids"], "pids.max"), "w") as f:
        f.write("64\n")
    with open(os.path.join(v1["cpu"], "cpu.stat"), "w") as f:
        f.write("nr_periods 10\nnr_throttled 3\nthrottled_time 12345\n")
    with open(os.path.join(v1["cpuacct"], "cpuacct.stat"), "w") as f:
        f.write("user 12\nsystem 3\n")
    data = apply.stats(v1)
    assert data["pids"] == {"current": 1, "limit": 64}
    assert data["cpu"]["throttling"] == {"periods": 10, "throttledPeriods": 3, "throttledTime": 12345}
    assert data["cpu"]["usage"]["user"] == 120000000       # 12 ticks of 10 ms
    assert data["cpu"]["usage"]["kernel"] == 30000000


def test_stats_v1_blkio_throttle_entries(v1):
    with open(os.path.join(v1["blkio"], "blkio.throttle.io_serviced_recursive"), "w") as f:
        f.write("8:0 Read 4\n8:0 Write 0\nTotal 4\n")
    with open(os.path.join(v1["blkio"], "blkio.throttle.io_service_bytes_recursive"), "w") as f:
        f.write("8:0 Read 16384\nTotal 16384\n")
    assert apply.stats(v1)["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 16384}],   # minor 0 omitted, as Go
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 4}, {"major": 8, "op": "Write"}],
    }


def test_stats_v1_hugetlb_sizes_from_files(tmp_path):
    files = {"hugetlb.2MB.usage_in_bytes": "0\n", "hugetlb.2MB.max_usage_in_bytes": "4194304\n",
             "hugetlb.2MB.failcnt": "1\n", "hugetlb.2MB.limit_in_bytes": UNLIMITED,
             "hugetlb.1GB.usage_in_bytes": "0\n", "hugetlb.1GB.max_usage_in_bytes": "0\n", "hugetlb.1GB.failcnt": "0\n",
             "hugetlb.1GB.rsvd.usage_in_bytes": "0\n"}
    paths = {"hugetlb": seed(tmp_path / "h", files)}
    assert apply.stats(paths)["hugetlb"] == {"1GB": {"failcnt": 0}, "2MB": {"max": 4194304, "failcnt": 1}}


def test_stats_v2_tree(v2):
    assert apply.stats({"": v2}) == {
        "cpu": {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                "throttling": {"periods": 7, "throttledPeriods": 2, "throttledTime": 30000}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                   "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 0,
                   "sched_relax_domain_level": 0},
        "memory": {"cache": 8192,
                   "usage": {"limit": (1 << 64) - 1, "usage": 1048576, "max": 2097152, "failcnt": 0},
                   "swap": {"limit": (1 << 64) - 1, "usage": 1052672, "failcnt": 0},
                   "kernel": {"limit": 0, "failcnt": 0},
                   "kernelTCP": {"limit": 0, "failcnt": 0},
                   "raw": {"anon": 524288, "file": 8192, "kernel": 65536}},
        "pids": {"current": 3},
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                                              {"major": 8, "op": "Write", "value": 8192}],
                  "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1},
                                          {"major": 8, "op": "Write", "value": 2}]},
        "hugetlb": {"2MB": {"usage": 2097152, "failcnt": 3}},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def test_stats_v2_swap_limit_adds_memory_limit(v2):
    with open(os.path.join(v2, "memory.max"), "w") as f:
        f.write("1000000\n")
    with open(os.path.join(v2, "memory.swap.max"), "w") as f:
        f.write("500000\n")
    memory = apply.stats({"": v2})["memory"]
    assert memory["usage"]["limit"] == 1000000
    assert memory["swap"]["limit"] == 1500000


def test_stats_v2_no_pids_controller_counts_procs(v2):
    os.unlink(os.path.join(v2, "pids.current"))
    with open(os.path.join(v2, "cgroup.procs"), "w") as f:
        f.write("1\n22\n")
    assert apply.stats({"": v2})["pids"] == {"current": 2}


def test_parse_cpu_list_ranges_values():
    assert apply.parse_cpu_list("0-3,7\n") == [0, 1, 2, 3, 7]
    assert apply.parse_cpu_list("") == []
