"""The pure cgroup resource layer: OCI linux.resources → cgroup v1 / v2
writes (cgroups.resources) and device rules → devices.allow/deny writes and
eBPF device programs (cgroups.devices). No I/O: every expected value here is
worked out by hand from runc's rules, documented next to each case."""

from __future__ import annotations

import copy
import json
import pathlib
import struct

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux.cgroups import devices, resources
from pyrunc.linux.cgroups.devices import build_device_filter, container_device_rules, encode_insn, v1_device_writes
from pyrunc.linux.cgroups.resources import (convert_blkio_weight_to_io_weight, convert_cpu_shares_to_weight,
                                            convert_cpu_shares_to_weight_linear, convert_memory_swap_to_v2,
                                            format_cpu_max, format_pids_limit, format_v2_limit,
                                            order_memory_writes, v1_writes, v2_writes)

GOOD = pathlib.Path(__file__).parent / "configs" / "good"
UNLIMITED = "9223372036854771712"
MiB = 1 << 20


def describe_filter(program: bytes) -> list[tuple[int, int, int, int, int]]:
    """The eBPF program as (code, dst, src, off, imm) tuples."""
    out = []
    for i in range(0, len(program), 8):
        code, regs, off, imm = struct.unpack_from("<BBhi", program, i)
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def good_resources(name: str) -> dict:
    return json.loads((GOOD / name).read_text())["linux"]["resources"]


# ---------------------------------------------------------------- conversions


@pytest.mark.parametrize("shares, weight", [
    (0, 0),            # unset stays unset
    (1, 1), (2, 1),    # the v1 minimum → the v2 minimum
    (1024, 100),       # the defaults map onto each other: exponent (100 + 1250)/612 - 7/34 = 2
    (262144, 10000),   # the maximums
    (500000, 10000),   # above the v1 maximum: clamped
    (3, 2),            # l = log2 3: 10 ** 0.12195 = 1.32 → 2
    (512, 59),         # l = 9: exponent 1.76471, 10 ** that = 58.17 → 59
    (2048, 174),       # l = 11: exponent 2.23856 → 173.2 → 174
    (4096, 303),       # l = 12: exponent 2.48039 → 302.3 → 303
])
def test_convert_cpu_shares_to_weight_quadratic_values(shares, weight):
    assert convert_cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize("shares, weight", [
    (0, 0), (2, 1), (262144, 10000),
    (1024, 39),   # 1 + 1022 * 9999 // 262142 = 1 + 38
    (100, 4),     # 1 + 98 * 9999 // 262142 = 1 + 3
])
def test_convert_cpu_shares_to_weight_linear_runc_1_1_values(shares, weight):
    assert convert_cpu_shares_to_weight_linear(shares) == weight


@pytest.mark.parametrize("weight, io_weight", [
    (0, 0),        # unset
    (10, 1),       # v1 minimum → v2 minimum
    (1000, 10000), # v1 maximum → v2 maximum
    (500, 4950),   # 1 + 490 * 9999 // 990 = 1 + 4949
    (100, 910),    # 1 + 90 * 9999 // 990 = 1 + 909
])
def test_convert_blkio_weight_to_io_weight_linear_values(weight, io_weight):
    assert convert_blkio_weight_to_io_weight(weight) == io_weight


@pytest.mark.parametrize("swap, limit, swap_max", [
    (0, -1, -1),             # memory unlimited, swap unset: swap unlimited too
    (-1, 100, -1),           # "max"
    (0, 100, 0),             # unset
    (300, 100, 200),         # memory+swap 300 = memory 100 + swap 200
    (100, 100, 0),           # equal: no swap
    (500, -1, 500),          # memory unlimited: swap as is
])
def test_convert_memory_swap_to_v2_cases_value(swap, limit, swap_max):
    assert convert_memory_swap_to_v2(swap, limit) == swap_max


@pytest.mark.parametrize("swap, limit, message", [
    (200, 0, "linux.resources.memory.swap: cannot set a swap limit without a memory limit"),
    (50, 100, "linux.resources.memory.swap: memory+swap limit 50 is below the memory limit 100"),
    (200, -5, "linux.resources.memory.limit: invalid memory limit -5"),
])
def test_convert_memory_swap_to_v2_bad_values_error(swap, limit, message):
    with pytest.raises(PyruncError, match=message.replace("+", r"\+")):
        convert_memory_swap_to_v2(swap, limit)


@pytest.mark.parametrize("value, text", [(0, ""), (-1, "max"), (4096, "4096")])
def test_format_v2_limit_values_text(value, text):
    assert format_v2_limit(value) == text


@pytest.mark.parametrize("limit, text", [(None, ""), (0, ""), (-1, "max"), (-7, "max"), (1, "1"), (32771, "32771")])
def test_format_pids_limit_values_text(limit, text):
    assert format_pids_limit(limit) == text


@pytest.mark.parametrize("quota, period, text", [
    (50000, 100000, "50000 100000"), (50000, 0, "50000 100000"), (-1, 0, "max 100000"), (0, 250000, "max 250000"),
])
def test_format_cpu_max_values_text(quota, period, text):
    assert format_cpu_max(quota, period) == text


@pytest.mark.parametrize("size", ["2MB", "1GB", "64KB", "16GB"])
def test_check_page_size_valid_accepted(size):
    assert resources.check_page_size(size, "x") == size


@pytest.mark.parametrize("size", ["2M", "2mb", "MB", "2 MB", "2048kB", "", None, "x2MB", "٢MB"])
def test_check_page_size_invalid_error(size):
    with pytest.raises(PyruncError, match="invalid hugepage size"):
        resources.check_page_size(size, "linux.resources.hugepageLimits[0].pageSize")


# ---------------------------------------------------------------- v1 memory and swap order


MEM = ("memory.limit_in_bytes",)
SW = ("memory.memsw.limit_in_bytes",)


@pytest.mark.parametrize("limit, swap, current, accounting, expected", [
    # raising both above the current limit: memsw first makes room
    (200 * MiB, 400 * MiB, 100 * MiB, True, [SW + (str(400 * MiB),), MEM + (str(200 * MiB),)]),
    # lowering both: the current limit (400M) is not below the new swap (200M): limit first
    (100 * MiB, 200 * MiB, 400 * MiB, True, [MEM + (str(100 * MiB),), SW + (str(200 * MiB),)]),
    # swap -1: memsw first whatever the current limit
    (100 * MiB, -1, 50 * MiB, True, [SW + ("-1",), MEM + (str(100 * MiB),)]),
    # a fresh cgroup (current unknown = unlimited): limit first
    (100 * MiB, 200 * MiB, None, True, [MEM + (str(100 * MiB),), SW + (str(200 * MiB),)]),
    # memory -1 and swap unset: swap -1 too, when the kernel accounts swap
    (-1, 0, None, True, [SW + ("-1",), MEM + ("-1",)]),
    (-1, 0, None, False, [MEM + ("-1",)]),
    # one of them only
    (100, 0, 5, True, [MEM + ("100",)]),
    (0, 300, 5, True, [SW + ("300",)]),
    (0, 0, 5, True, []),
])
def test_order_memory_writes_cases_runc_order(limit, swap, current, accounting, expected):
    assert order_memory_writes(limit, swap, current, accounting) == expected


# ---------------------------------------------------------------- v1 writes


def test_v1_writes_docker_config_exact():
    # docker: cpu.shares 0 and blockIO.weight 0 mean unset; disableOOMKiller false writes nothing.
    writes, warnings = v1_writes(good_resources("docker-config.json"))
    assert writes == [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.memsw.limit_in_bytes", "134217728"),
        ("pids", "pids.max", "50"),
    ]
    assert warnings == []


def test_v1_writes_maximal_config_exact():
    res = good_resources("maximal.json")
    del res["unified"]
    writes, warnings = v1_writes(res)
    assert writes == [
        ("cpuset", "cpuset.cpus", "0-3,7"),
        ("cpuset", "cpuset.mems", "0"),
        ("memory", "memory.use_hierarchy", "1"),
        ("memory", "memory.limit_in_bytes", "536870912"),
        ("memory", "memory.memsw.limit_in_bytes", "1073741824"),
        ("memory", "memory.soft_limit_in_bytes", "268435456"),
        ("memory", "memory.swappiness", "10"),
        ("cpu", "cpu.shares", "1024"),
        ("cpu", "cpu.cfs_period_us", "100000"),   # period before quota, as runc
        ("cpu", "cpu.cfs_burst_us", "10000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.idle", "0"),
        ("cpu", "cpu.rt_period_us", "1000000"),   # realtimeRuntime 0: unset
        ("pids", "pids.max", "1024"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "202:0 700"),
        ("blkio", "blkio.leaf_weight_device", "202:0 300"),
        ("blkio", "blkio.leaf_weight_device", "202:16 100"),
        ("blkio", "blkio.throttle.read_bps_device", "202:0 104857600"),
        ("blkio", "blkio.throttle.write_bps_device", "202:0 52428800"),
        ("blkio", "blkio.throttle.read_iops_device", "202:0 1000"),
        ("blkio", "blkio.throttle.write_iops_device", "202:0 500"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "209715200"),
        ("hugetlb", "hugetlb.1GB.limit_in_bytes", "0"),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 500"),
        ("net_prio", "net_prio.ifpriomap", "eth1 1000"),
        ("rdma", "rdma.max", "mlx4_0 hca_object=1000"),   # devices sorted by name
        ("rdma", "rdma.max", "mlx5_0 hca_handle=3 hca_object=10000"),
    ]
    assert warnings == ["linux.resources.memory.kernel: ignored: kernel memory limits are not supported",
                        "linux.resources.memory.kernelTCP: ignored: kernel memory limits are not supported"]


def test_v1_writes_devices_key_ignored():
    writes, _ = v1_writes({"devices": [{"allow": False, "access": "rwm"}]})
    assert writes == []


def test_v1_writes_empty_resources_nothing():
    assert v1_writes({}) == ([], [])
    assert v1_writes(None) == ([], [])


def test_v1_writes_update_zeros_nothing():
    # docker update's JSON: zeros mean "unchanged".
    res = {"memory": {"limit": 100663296, "reservation": 0, "kernel": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0},
           "pids": {"limit": 60}, "blockIO": {"weight": 0}}
    assert v1_writes(res) == ([("memory", "memory.limit_in_bytes", "100663296"), ("pids", "pids.max", "60")], [])


def test_v1_writes_raise_limit_with_current_memsw_first():
    # podman update: limit 96M, memory+swap 192M on a cgroup limited to 64M now.
    res = {"memory": {"limit": 100663296, "swap": 201326592}}
    writes, _ = v1_writes(res, current={"memory.limit_in_bytes": "67108864\n"})
    assert writes == [("memory", "memory.memsw.limit_in_bytes", "201326592"),
                      ("memory", "memory.limit_in_bytes", "100663296")]


def test_v1_writes_unlimited_memory_no_memsw_file_no_swap_write():
    existing = {"memory.limit_in_bytes"}
    writes, _ = v1_writes({"memory": {"limit": -1}}, existing=existing)
    assert writes == [("memory", "memory.limit_in_bytes", "-1")]


def test_v1_writes_swap_without_accounting_error():
    with pytest.raises(PyruncError, match=r"linux.resources.memory.swap: this kernel has no swap accounting"):
        v1_writes({"memory": {"limit": 100, "swap": 200}}, existing={"memory.limit_in_bytes"})


def test_v1_writes_swap_below_limit_error_names_swap():
    with pytest.raises(PyruncError, match=r"^linux.resources.memory.swap: memory\+swap limit 100 is below"):
        v1_writes({"memory": {"limit": 200, "swap": 100}})


def test_v1_writes_swap_minus_one_below_limit_accepted():
    writes, _ = v1_writes({"memory": {"limit": 200, "swap": -1}})
    assert writes[0] == ("memory", "memory.memsw.limit_in_bytes", "-1")


@pytest.mark.parametrize("value, expected", [(None, None), (-1, None), ((1 << 64) - 1, None), (0, "0"), (100, "100")])
def test_v1_writes_swappiness_values_write(value, expected):
    writes, _ = v1_writes({"memory": {"swappiness": value}})
    assert writes == ([] if expected is None else [("memory", "memory.swappiness", expected)])


def test_v1_writes_swappiness_over_100_error():
    with pytest.raises(PyruncError,
                       match=r"linux.resources.memory.swappiness: invalid value 101 \(valid range is 0-100\)"):
        v1_writes({"memory": {"swappiness": 101}})


def test_v1_writes_oom_killer_disabled_writes_oom_control():
    assert v1_writes({"memory": {"disableOOMKiller": True}})[0] == [("memory", "memory.oom_control", "1")]


def test_v1_writes_use_hierarchy_false_writes_zero():
    assert v1_writes({"memory": {"useHierarchy": False}})[0] == [("memory", "memory.use_hierarchy", "0")]


def test_v1_writes_unified_error():
    with pytest.raises(PyruncError, match="linux.resources.unified: invalid configuration: cannot use unified on cgroup v1"):
        v1_writes({"unified": {"memory.high": "1"}})


def test_v1_writes_bfq_only_kernel_uses_bfq_files():
    existing = {"blkio.bfq.weight", "blkio.bfq.weight_device"}
    res = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}}
    assert v1_writes(res, existing=existing)[0] == [("blkio", "blkio.bfq.weight", "300"),
                                                    ("blkio", "blkio.bfq.weight_device", "8:0 200")]


def test_v1_writes_burst_missing_file_skipped_warning():
    writes, warnings = v1_writes({"cpu": {"burst": 5000, "quota": 20000}}, existing={"cpu.cfs_quota_us"})
    assert writes == [("cpu", "cpu.cfs_quota_us", "20000")]
    assert warnings == ["linux.resources.cpu.burst: ignored: this kernel has no cpu.cfs_burst_us"]


def test_v1_writes_hugetlb_reservation_file_present_written_too():
    existing = {"hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes"}
    writes, _ = v1_writes({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]}, existing=existing)
    assert writes == [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
                      ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "4194304")]


def test_v1_writes_bad_page_size_error_names_entry():
    with pytest.raises(PyruncError,
                       match=r"linux.resources.hugepageLimits\[1\].pageSize: invalid hugepage size \"2Mb\""):
        v1_writes({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "2Mb", "limit": 1}]})


def test_v1_writes_rdma_without_limits_error():
    with pytest.raises(PyruncError, match=r'linux.resources.rdma\["mlx4_0"\]: must set hcaHandles or hcaObjects'):
        v1_writes({"rdma": {"mlx4_0": {}}})


def test_v1_plan_paths_name_each_write():
    plan, _ = resources.v1_plan({"memory": {"limit": 5}, "blockIO": {"throttleReadBpsDevice": [
        {"major": 8, "minor": 0, "rate": 1}]}})
    assert [p[0] for p in plan] == ["linux.resources.memory.limit", "linux.resources.blockIO.throttleReadBpsDevice[0]"]


# ---------------------------------------------------------------- v2 writes


def test_v2_writes_docker_config_exact():
    writes, warnings = v2_writes(good_resources("docker-config.json"))
    # swap: memory+swap 128M - memory 64M = 64M of swap
    assert writes == [("pids.max", "50"), ("memory.swap.max", "67108864"), ("memory.max", "67108864")]
    assert warnings == []


def test_v2_writes_cri_config_swap_equal_limit_zero_swap():
    writes, _ = v2_writes(good_resources("containerd-cri-container-config.json"))
    assert writes == [("memory.swap.max", "0"), ("memory.max", "67108864")]


def test_v2_writes_maximal_config_exact():
    writes, warnings = v2_writes(good_resources("maximal.json"))
    assert writes == [
        ("pids.max", "1024"),
        ("memory.swap.max", "536870912"),
        ("memory.max", "536870912"),
        ("memory.low", "268435456"),
        ("io.weight", "4950"),
        ("io.max", "202:0 rbps=104857600"),
        ("io.max", "202:0 wbps=52428800"),
        ("io.max", "202:0 riops=1000"),
        ("io.max", "202:0 wiops=500"),
        ("cpu.idle", "0"),
        ("cpu.weight", "100"),
        ("cpu.max.burst", "10000"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-3,7"),
        ("cpuset.mems", "0"),
        ("hugetlb.2MB.max", "209715200"),
        ("hugetlb.1GB.max", "0"),
        ("rdma.max", "mlx4_0 hca_object=1000"),
        ("rdma.max", "mlx5_0 hca_handle=3 hca_object=10000"),
        ("memory.high", "483183820"),                          # unified, last
        ("io.max", "202:0 rbps=104857600 wiops=500"),
    ]
    assert warnings == [
        "linux.resources.memory.kernel: ignored: kernel memory limits are not supported",
        "linux.resources.memory.kernelTCP: ignored: kernel memory limits are not supported",
        "linux.resources.memory.swappiness: ignored: cgroup v2 has no per-cgroup swappiness",
        "linux.resources.blockIO.leafWeight: ignored: cgroup v2 has no leaf weights",
        "linux.resources.blockIO.weightDevice[0].leafWeight: ignored: cgroup v2 has no leaf weights",
        "linux.resources.blockIO.weightDevice[0]: ignored: per-device weights need the BFQ I/O scheduler "
        "(io.bfq.weight, kernel 5.4+)",
        "linux.resources.blockIO.weightDevice[1].leafWeight: ignored: cgroup v2 has no leaf weights",
        "linux.resources.cpu.realtimePeriod: ignored: cgroup v2 has no realtime CPU bandwidth",
        "linux.resources.network: ignored: cgroup v2 has no net_cls or net_prio controller",
    ]


def test_v2_writes_unified_conflict_written_after_converted():
    writes, _ = v2_writes({"memory": {"limit": 1000}, "unified": {"memory.max": "2000"}})
    assert writes == [("memory.max", "1000"), ("memory.max", "2000")]


def test_v2_writes_unified_multiline_one_write_per_line():
    writes, _ = v2_writes({"unified": {"io.max": "8:0 rbps=1\n8:16 wiops=2\n"}})
    assert writes == [("io.max", "8:0 rbps=1"), ("io.max", "8:16 wiops=2")]


@pytest.mark.parametrize("key, message", [
    ("../memory.max", "must be a file name"), ("a/b", "must be a file name"), ("..", "must be a file name"),
    ("memorymax", "must be in the form CONTROLLER.PARAMETER"), (".max", "CONTROLLER.PARAMETER"),
])
def test_v2_writes_unified_bad_key_error(key, message):
    with pytest.raises(PyruncError, match=message):
        v2_writes({"unified": {key: "1"}})


def test_v2_writes_swap_without_limit_error():
    with pytest.raises(PyruncError,
                       match="linux.resources.memory.swap: cannot set a swap limit without a memory limit"):
        v2_writes({"memory": {"swap": 1000}})


def test_v2_writes_unlimited_memory_swap_max():
    assert v2_writes({"memory": {"limit": -1}})[0] == [("memory.swap.max", "max"), ("memory.max", "max")]


def test_v2_writes_no_swap_accounting_max_skipped():
    writes, _ = v2_writes({"memory": {"limit": -1}}, existing={"memory.max"})
    assert writes == [("memory.max", "max")]


def test_v2_writes_no_swap_accounting_real_swap_error():
    with pytest.raises(PyruncError, match="linux.resources.memory.swap: this kernel has no swap accounting"):
        v2_writes({"memory": {"limit": 100, "swap": 300}}, existing={"memory.max"})


def test_v2_writes_check_before_update_below_usage_error():
    res = {"memory": {"limit": 4096, "checkBeforeUpdate": True}}
    with pytest.raises(PyruncError, match="linux.resources.memory.limit: rejecting memory limit 4096 <= usage 8192"):
        v2_writes(res, current={"memory.current": "8192\n"})
    assert v2_writes(res, current={"memory.current": "1024\n"})[0] == [("memory.max", "4096")]


def test_v2_writes_quota_only_default_period():
    assert v2_writes({"cpu": {"quota": 25000}})[0] == [("cpu.max", "25000 100000")]


def test_v2_writes_period_only_max_quota():
    assert v2_writes({"cpu": {"period": 50000}})[0] == [("cpu.max", "max 50000")]


def test_v2_writes_bfq_kernel_weight_raw():
    existing = {"io.bfq.weight"}
    res = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}}
    writes, warnings = v2_writes(res, current={"io.bfq.weight": "default 100\n"}, existing=existing)
    assert writes == [("io.bfq.weight", "300"), ("io.bfq.weight", "8:0 200")]
    assert warnings == []


def test_v2_writes_old_bfq_no_per_device_warning():
    existing = {"io.bfq.weight"}
    res = {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}}
    writes, warnings = v2_writes(res, current={"io.bfq.weight": "100\n"}, existing=existing)
    assert writes == []
    assert warnings and "per-device weights need the BFQ" in warnings[0]


def test_v2_writes_io_weight_out_of_range_error():
    with pytest.raises(PyruncError, match=r"linux.resources.blockIO.weight: 5 is out of range \[10, 1000\]"):
        v2_writes({"blockIO": {"weight": 5}})


def test_v2_writes_v1_only_settings_warnings_no_writes():
    res = {"memory": {"disableOOMKiller": True, "useHierarchy": False, "swappiness": 0},
           "cpu": {"realtimeRuntime": 950000}, "network": {"classID": 1}}
    writes, warnings = v2_writes(res)
    assert writes == []
    assert [w.split(":")[0] for w in warnings] == [
        "linux.resources.memory.swappiness", "linux.resources.memory.disableOOMKiller",
        "linux.resources.memory.useHierarchy", "linux.resources.cpu.realtimeRuntime", "linux.resources.network"]


def test_v2_writes_hugetlb_reservation_when_present():
    existing = {"hugetlb.1GB.max", "hugetlb.1GB.rsvd.max"}
    writes, _ = v2_writes({"hugepageLimits": [{"pageSize": "1GB", "limit": 1 << 30}]}, existing=existing)
    assert writes == [("hugetlb.1GB.max", "1073741824"), ("hugetlb.1GB.rsvd.max", "1073741824")]


def test_v2_writes_input_not_modified():
    res = good_resources("maximal.json")
    before = copy.deepcopy(res)
    v2_writes(res)
    v1_writes({k: v for k, v in res.items() if k != "unified"})
    assert res == before


# ---------------------------------------------------------------- device rules


DENY_ALL = {"allow": False, "access": "rwm"}


def test_container_device_rules_config_first_defaults_after():
    rules = container_device_rules([DENY_ALL])
    assert rules[0] == DENY_ALL
    assert rules[1:] == [rule for _, rule in devices.DEFAULT_DEVICES]
    assert len(rules) == 12


def test_container_device_rules_listed_device_path_drops_default():
    rules = container_device_rules([DENY_ALL], device_paths=["/dev/null", "/dev/fuse"])
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} not in rules
    assert len(rules) == 11


def test_container_device_rules_returns_copies():
    rules = container_device_rules([DENY_ALL])
    rules[1]["access"] = "r"
    assert devices.DEFAULT_DEVICES[0][1]["access"] == "m"


def test_v1_device_writes_runc_default_spec_fresh_cgroup():
    # runc's `spec`: deny everything; the defaults follow: deny all, then every
    # allowed device in the order the rules list them (config-linux.md).
    assert v1_device_writes(container_device_rules([DENY_ALL])) == [
        ("devices.deny", "a *:* rwm"),
        ("devices.allow", "c *:* m"),
        ("devices.allow", "b *:* m"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 1:8 rwm"),
        ("devices.allow", "c 1:7 rwm"),
        ("devices.allow", "c 5:0 rwm"),
        ("devices.allow", "c 1:5 rwm"),
        ("devices.allow", "c 1:9 rwm"),
        ("devices.allow", "c 136:* rwm"),
        ("devices.allow", "c 5:2 rwm"),
        ("devices.allow", "c 10:200 rwm"),
    ]


def test_v1_device_writes_config_rules_first_in_listed_order():
    # runtime-tools linux_cgroups_devices reads devices.list back in this order.
    rules = container_device_rules([DENY_ALL, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
                                    {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "rw"}])
    assert v1_device_writes(rules)[:4] == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 10:229 rwm"),
                                           ("devices.allow", "b 8:0 rw"), ("devices.allow", "c *:* m")]


def test_v1_device_writes_docker_config_console_kept_fuse_deny_noop():
    rules = container_device_rules(good_resources("docker-config.json")["devices"])
    writes = v1_device_writes(rules)
    assert ("devices.allow", "c 5:1 rwm") in writes      # docker's /dev/console rule
    assert not any("10:229" in line for _, line in writes)  # a deny in deny-all mode changes nothing
    assert writes[0] == ("devices.deny", "a *:* rwm")
    assert len(writes) == 13


def test_v1_device_writes_allow_list_merges_access():
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mw"}]
    assert v1_device_writes(rules) == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 1:3 rwm")]


def test_v1_device_writes_later_deny_removes_access():
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]
    assert v1_device_writes(rules) == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 1:3 rm")]


def test_v1_device_writes_type_a_rule_resets_earlier_rules():
    rules = [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}, DENY_ALL]
    assert v1_device_writes(rules) == [("devices.deny", "a *:* rwm")]


def test_v1_device_writes_deny_list_target_allow_all_then_denies():
    rules = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "major": 8, "access": "w"}]
    assert v1_device_writes(rules) == [("devices.allow", "a *:* rwm"), ("devices.deny", "b 8:* w")]


def test_v1_device_writes_no_rules_denies_everything():
    # An empty list folds to "nothing allowed", as runc's emulator starts.
    assert v1_device_writes([]) == [("devices.deny", "a *:* rwm")]


def test_v1_device_writes_update_only_differences():
    current = "c 1:3 rwm\nc 1:5 rwm\nc 10:200 rw\n"
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
             {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"}]
    # Losses first (1:5 goes), then gains in the rules' order (10:200 gains m,
    # 8:0 is new); 1:3 is untouched.
    assert v1_device_writes(rules, current) == [
        ("devices.deny", "c 1:5 rwm"),
        ("devices.allow", "c 10:200 m"),
        ("devices.allow", "b 8:0 r"),
    ]


def test_v1_device_writes_same_state_nothing():
    current = "c 1:3 rwm\n"
    assert v1_device_writes([DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                            current) == []


def test_v1_device_writes_hole_in_wildcard_error():
    rules = [DENY_ALL, {"allow": True, "type": "c", "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]
    with pytest.raises(PyruncError, match=r'linux.resources.devices\[2\]: the rule "c 1:3 w" cannot take access '
                                          r'away from the wildcard rule "c \*:\* rwm"'):
        v1_device_writes(rules)


@pytest.mark.parametrize("rule, message", [
    ({"allow": False, "type": "a"}, r"linux.resources.devices\[0\].access: must not be empty"),
    ({"allow": True, "type": "p", "access": "rwm"}, r'invalid cgroup device type "p"'),
    ({"allow": True, "type": "c", "access": "rwx"}, r'invalid access "rwx"'),
])
def test_v1_device_writes_bad_rule_error(rule, message):
    with pytest.raises(PyruncError, match=message):
        v1_device_writes([rule])


def test_parse_devices_list_allow_all_is_deny_list():
    state = devices.parse_devices_list("a *:* rwm\n")
    assert state.default_allow and state.exceptions == {}


def test_parse_devices_list_malformed_error():
    with pytest.raises(PyruncError, match="malformed"):
        devices.parse_devices_list("c 1:3\n")


# ---------------------------------------------------------------- eBPF device filter

LDXW, AND32, RSH32, MOV32, MOV32X, JNE, JNEX, EXIT = 0x61, 0x54, 0x74, 0xb4, 0xbc, 0x55, 0x5d, 0x95
# (code, dst, src, off, imm): r2 = type, r3 = access, r4 = major, r5 = minor
PROLOGUE = [
    (LDXW, 2, 1, 0, 0), (AND32, 2, 0, 0, 0xFFFF),
    (LDXW, 3, 1, 0, 0), (RSH32, 3, 0, 0, 16),
    (LDXW, 4, 1, 4, 0),
    (LDXW, 5, 1, 8, 0),
]


def test_encode_insn_layout_bytes():
    # code, dst in the low nibble and src in the high one, s16 off, s32 imm, little-endian
    assert encode_insn(LDXW, dst=2, src=1, off=4) == bytes([0x61, 0x12, 4, 0, 0, 0, 0, 0])
    assert encode_insn(AND32, dst=2, imm=0xFFFF) == bytes([0x54, 0x02, 0, 0, 0xFF, 0xFF, 0, 0])
    assert encode_insn(JNE, dst=4, off=-1, imm=-2) == bytes([0x55, 0x04, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF])


def test_build_device_filter_prologue_bytes():
    program = build_device_filter([DENY_ALL])
    assert program[:48].hex() == ("6112000000000000" "54020000ffff0000" "6113000000000000"
                                  "7403000010000000" "6114040000000000" "6115080000000000")


def test_build_device_filter_deny_all_returns_zero():
    assert describe_filter(build_device_filter([DENY_ALL])) == PROLOGUE + [(MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0)]


def test_build_device_filter_allow_all_returns_one():
    rules = [{"allow": True, "access": "rwm"}]
    assert describe_filter(build_device_filter(rules)) == PROLOGUE + [(MOV32, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0)]


def test_build_device_filter_one_char_device_block():
    # Block of 5: type, major, minor tests jump past it (offsets 4, 3, 2) to the final "return 0".
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert describe_filter(build_device_filter(rules)) == PROLOGUE + [
        (JNE, 2, 0, 4, 2),        # type != char
        (JNE, 4, 0, 3, 1),        # major != 1
        (JNE, 5, 0, 2, 3),        # minor != 3
        (MOV32, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0),
        (MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0),
    ]


def test_build_device_filter_partial_access_and_wildcard_minor():
    # b 8:* r: access test (r1 = r3; r1 &= READ(2); r1 != r3 → next), no minor test.
    rules = [DENY_ALL, {"allow": True, "type": "b", "major": 8, "access": "r"}]
    assert describe_filter(build_device_filter(rules)) == PROLOGUE + [
        (JNE, 2, 0, 6, 1),        # type != block
        (MOV32X, 1, 3, 0, 0),
        (AND32, 1, 0, 0, 2),
        (JNEX, 1, 3, 3, 0),       # asks for more than read
        (JNE, 4, 0, 2, 8),        # major != 8
        (MOV32, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0),
        (MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0),
    ]


def test_build_device_filter_deny_list_sorted_blocks():
    # Deny-list: allow everything, except c 1:5 w and c 1:3 rwm; blocks in
    # major:minor order return 0, the end returns 1.
    rules = [{"allow": True, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert describe_filter(build_device_filter(rules)) == PROLOGUE + [
        (JNE, 2, 0, 4, 2), (JNE, 4, 0, 3, 1), (JNE, 5, 0, 2, 3),
        (MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0),
        (JNE, 2, 0, 7, 2),
        (MOV32X, 1, 3, 0, 0), (AND32, 1, 0, 0, 4), (JNEX, 1, 3, 4, 0),   # WRITE is 4
        (JNE, 4, 0, 3, 1), (JNE, 5, 0, 2, 5),
        (MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0),
        (MOV32, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0),
    ]


def test_build_device_filter_mknod_wildcards_access_only():
    # c *:* m: type and access tests only (MKNOD is 1).
    rules = [DENY_ALL, {"allow": True, "type": "c", "access": "m"}]
    assert describe_filter(build_device_filter(rules)) == PROLOGUE + [
        (JNE, 2, 0, 5, 2), (MOV32X, 1, 3, 0, 0), (AND32, 1, 0, 0, 1), (JNEX, 1, 3, 2, 0),
        (MOV32, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0),
        (MOV32, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0),
    ]


def test_build_device_filter_container_defaults_block_count():
    program = describe_filter(build_device_filter(container_device_rules([DENY_ALL])))
    exits = [i for i, insn in enumerate(program) if insn[0] == EXIT]
    assert len(exits) == 12                   # 11 default exceptions + the default verdict
    # every jump lands inside the program, on the first instruction of a block or the end
    starts = {0} | {i + 1 for i in exits}
    for i, (code, _, _, off, _) in enumerate(program):
        if code in (JNE, JNEX):
            assert i + 1 + off in starts


def test_build_device_filter_huge_major_wraps_like_runc():
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 0xFFFFFFF0, "minor": 1, "access": "rwm"}]
    assert describe_filter(build_device_filter(rules))[7] == (JNE, 4, 0, 3, -16)


def test_build_device_filter_allow_order_irrelevant_same_bytes():
    defaults = [rule for _, rule in devices.DEFAULT_DEVICES]
    forward = build_device_filter([DENY_ALL] + defaults)
    assert forward == build_device_filter([DENY_ALL] + defaults[::-1])
    assert len(forward) % 8 == 0
