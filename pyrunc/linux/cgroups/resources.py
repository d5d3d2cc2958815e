"""Cgroup resource limits: OCI `linux.resources` → the cgroup files to write.

Pure functions, no I/O: the caller (cgroups.apply) lists the cgroup
directories and reads the few files whose current value decides a write
(`CURRENT_FILES_V1`, `CURRENT_FILES_V2`), and passes them in.

* `v1_writes(resources, current, existing)` → ([(controller, file, value)], warnings)
* `v2_writes(resources, current, existing)` → ([(file, value)], warnings)
* `v1_plan` / `v2_plan`: the same writes, each with the JSON path it comes
  from (for error messages).

`existing` is the set of file names present in the container's cgroup
directories (None: assume a current kernel with every optional file);
`current` maps a file name to its current content.

Order and values follow runc's fs (v1) and fs2 (v2) drivers: controllers in
runc's order, a zero value means "unset" (runc's Resources use 0 for "leave
as is", which `update` relies on), and runc's conversions to cgroup v2 (see
each convert_* function). Devices are not here: see cgroups.devices.
`linux.resources.devices` is ignored by these functions.
Imports: errors (math lazily).
"""

from __future__ import annotations

from pyrunc.errors import PyruncError

R = "linux.resources"

# memory.limit_in_bytes of an unlimited v1 memory cgroup (PAGE_COUNTER_MAX
# pages of 4 KiB, rounded down): what the kernel shows for "-1".
V1_UNLIMITED = 9223372036854771712
MAX_UINT64 = (1 << 64) - 1

# Files whose current content the conversions need, when they exist.
CURRENT_FILES_V1 = ("memory.limit_in_bytes",)
CURRENT_FILES_V2 = ("io.bfq.weight", "memory.current")

# When the kernel rejects a write to the first file with EINVAL and a write to
# the second one follows, runc writes the second one, then retries the first
# (a new period below the current one can exceed the parent's quota until the
# quota is lowered too). cgroups.apply implements the retry.
RETRY_AFTER = {
    "cpu.cfs_period_us": "cpu.cfs_quota_us",
    "cpu.cfs_burst_us": "cpu.cfs_quota_us",
    "cpu.rt_period_us": "cpu.rt_runtime_us",
    "cpu.max.burst": "cpu.max",
}

# The cpu.max period when the config gives a quota only: the kernel's default
# (Documentation/admin-guide/cgroup-v2.rst, "cpu.max"; runc fs2/cpu.go).
DEFAULT_CPU_PERIOD = 100000


# ---------------------------------------------------------------- conversions


def convert_cpu_shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] → cgroup v2 cpu.weight [1, 10000].

    A quadratic in log2(shares) through the three points that matter: the
    minimums (2 → 1), the defaults (1024 → 100) and the maximums
    (262144 → 10000):
        l = log2(shares);  weight = ceil(10 ** ((l*l + 125*l) / 612 - 7/34))
    0 stays 0 (unset). Source: runc ≥ 1.3.2 and opencontainers/cgroups
    utils.go ConvertCPUSharesToCgroupV2Value, the same formula as crun ≥ 1.23.
    runc ≤ 1.3.1 (and 1.1.5) used `convert_cpu_shares_to_weight_linear`,
    which maps the default 1024 shares to weight 39 instead of 100.
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math

    log = math.log2(shares)
    exponent = (log * log + 125 * log) / 612.0 - 7.0 / 34.0
    return int(math.ceil(math.pow(10, exponent)))


def convert_cpu_shares_to_weight_linear(shares: int) -> int:
    """The older linear mapping of [2, 262144] onto [1, 10000]:
        weight = 1 + (shares - 2) * 9999 // 262142
    0 stays 0. Source: runc ≤ 1.3.1 libcontainer/cgroups/utils.go
    ConvertCPUSharesToCgroupV2Value (kept for comparison; not used)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def convert_memory_swap_to_v2(swap: int, limit: int) -> int:
    """OCI memory.swap (memory+swap, as in v1 memsw) → v2 memory.swap.max
    (swap only):
        limit == -1, swap unset  → -1 (both unlimited, as v1 does)
        swap -1 or 0             → as is ("max" / unset)
        limit -1                 → swap (memory unlimited: nothing to subtract)
        otherwise                → swap - limit
    Errors when swap is set without a memory limit, or is below the limit.
    Source: runc utils.go ConvertMemorySwapToCgroupV2Value (runc ≥ 1.2
    treats limit -1 with a swap value as "swap as is"; 1.1.5 refused it).
    """
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit == -1:
        return swap
    if limit == 0:
        raise PyruncError(f"{R}.memory.swap: cannot set a swap limit without a memory limit "
                          f"({R}.memory.limit) on cgroup v2")
    if limit < 0:
        raise PyruncError(f"{R}.memory.limit: invalid memory limit {limit} (must be positive, or -1 for unlimited)")
    if swap < limit:
        raise _swap_below_limit(swap, limit)
    return swap - limit


def convert_blkio_weight_to_io_weight(weight: int) -> int:
    """v1 blkio.weight [10, 1000] → v2 io.weight [1, 10000], linearly:
        io_weight = 1 + (weight - 10) * 9999 // 990
    0 stays 0. Source: runc utils.go ConvertBlkIOToIOWeightValue."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def format_v2_limit(value: int) -> str:
    """A v2 .max/.low/.high value: -1 → "max", 0 → "" (unset), else the
    number. Source: runc fs2/memory.go numToStr."""
    if value == 0:
        return ""
    if value == -1:
        return "max"
    return str(value)


def format_pids_limit(limit) -> str:
    """pids.max for OCI pids.limit: > 0 the number, < 0 "max", 0 or absent ""
    (unset: nothing written). runc 1.1.5's semantics, both drivers.

    runtime-spec 1.3 says 0 SHOULD be a real limit (runc ≥ 1.3 writes "1",
    as systemd cannot express 0); we keep 0 = unset because the engines of
    that generation send 0 for "no limit" and `runc update` uses 0 for
    "unchanged" (see docker's update JSON)."""
    limit = _int(limit)
    if limit > 0:
        return str(limit)
    if limit < 0:
        return "max"
    return ""


def format_cpu_max(quota: int, period: int) -> str:
    """v2 cpu.max "QUOTA PERIOD": a quota ≤ 0 is "max", a period of 0 the
    kernel's default 100000. Source: runc fs2/cpu.go setCpu."""
    head = str(quota) if quota > 0 else "max"
    return f"{head} {period or DEFAULT_CPU_PERIOD}"


def format_rdma_limit(device: str, limit: dict) -> str:
    """An rdma.max line: "mlx4_0 hca_handle=2 hca_object=2000" (only the
    limits given). Source: runc fscommon/rdma.go createCmdString."""
    line = device
    if limit.get("hcaHandles") is not None:
        line += f" hca_handle={limit['hcaHandles']}"
    if limit.get("hcaObjects") is not None:
        line += f" hca_object={limit['hcaObjects']}"
    return line


def check_page_size(size: str, where: str) -> str:
    """A hugepage size as the cgroup file names spell it: digits, then KB,
    MB, GB, TB or PB ("2MB", "1GB", "64KB")."""
    if (not isinstance(size, str) or len(size) < 3 or not size[:-2].isdigit() or not size[:-2].isascii()
            or size[-2:] not in ("KB", "MB", "GB", "TB", "PB")):
        raise PyruncError(f'{where}: invalid hugepage size "{size}" (expected a number and KB, MB or GB, as "2MB")')
    return size


def order_memory_writes(limit: int, swap: int, current_limit: int | None,
                        swap_accounting: bool = True) -> list[tuple[str, str]]:
    """The v1 writes of memory.limit_in_bytes and memory.memsw.limit_in_bytes
    in an order the kernel accepts (it refuses memsw < limit at every step).

    runc's fs/memory.go setMemoryAndSwap, given the current limit:
    * limit -1 and swap unset → swap -1 too (when the kernel has swap
      accounting);
    * both set, and swap is -1 or above the current limit → memsw first
      (raising memsw makes room for the new limit);
    * otherwise limit first (lowering the limit makes room for a lower memsw).
    0 means unset. `current_limit` None: a fresh cgroup (unlimited).
    """
    if limit == -1 and swap == 0 and swap_accounting:
        swap = -1
    memory = ("memory.limit_in_bytes", str(limit))
    memsw = ("memory.memsw.limit_in_bytes", str(swap))
    if limit != 0 and swap != 0:
        current = V1_UNLIMITED if current_limit is None else current_limit
        if swap == -1 or current < swap:
            return [memsw, memory]
    writes = []
    if limit != 0:
        writes.append(memory)
    if swap != 0:
        writes.append(memsw)
    return writes


def describe_unified_key(key: str) -> str:
    """The controller a `unified` key belongs to, or an error for a key that
    is not a plain CONTROLLER.PARAMETER file name (runc fs2 setUnified)."""
    where = f'{R}.unified["{key}"]'
    if "/" in key or key in ("", ".", ".."):
        raise PyruncError(f"{where}: must be a file name (no slashes)")
    controller, dot, rest = key.partition(".")
    if not dot or not controller or not rest:
        raise PyruncError(f"{where}: must be in the form CONTROLLER.PARAMETER")
    return controller


# ---------------------------------------------------------------- cgroup v1


def v1_writes(resources: dict, current: dict | None = None,
              existing: set | None = None) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The cgroup v1 writes for `resources`: ([(controller, file, value)], warnings)."""
    plan, warnings = v1_plan(resources, current, existing)
    return [(controller, name, value) for _, controller, name, value in plan], warnings


def v1_plan(resources: dict, current: dict | None = None,
            existing: set | None = None) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """v1_writes with the JSON path of each write: [(path, controller, file, value)].

    Controller order is runc's fs driver's: cpuset, (devices), memory, cpu,
    pids, blkio, hugetlb, net_cls, net_prio, rdma.
    """
    resources = resources or {}
    current = current or {}
    plan: list[tuple[str, str, str, str]] = []
    warnings: list[str] = []
    if resources.get("unified"):
        raise PyruncError(f"{R}.unified: invalid configuration: cannot use unified on cgroup v1"
                          " (this host's cgroups are v1 or hybrid)")
    cpu = resources.get("cpu") or {}
    _v1_cpuset(cpu, plan)
    _v1_memory(resources.get("memory") or {}, current, existing, plan, warnings)
    _v1_cpu(cpu, existing, plan, warnings)
    pids = format_pids_limit((resources.get("pids") or {}).get("limit"))
    if pids:
        plan.append((f"{R}.pids.limit", "pids", "pids.max", pids))
    _v1_blkio(resources.get("blockIO") or {}, existing, plan)
    _v1_hugetlb(resources.get("hugepageLimits") or (), existing, plan)
    network = resources.get("network") or {}
    if _int(network.get("classID")):
        plan.append((f"{R}.network.classID", "net_cls", "net_cls.classid", str(network["classID"])))
    for i, prio in enumerate(network.get("priorities") or ()):
        plan.append((f"{R}.network.priorities[{i}]", "net_prio", "net_prio.ifpriomap",
                     f"{prio['name']} {prio['priority']}"))
    for line, where in _rdma_lines(resources.get("rdma") or {}):
        plan.append((where, "rdma", "rdma.max", line))
    return plan, warnings


def _v1_cpuset(cpu: dict, plan: list) -> None:
    if cpu.get("cpus"):
        plan.append((f"{R}.cpu.cpus", "cpuset", "cpuset.cpus", cpu["cpus"]))
    if cpu.get("mems"):
        plan.append((f"{R}.cpu.mems", "cpuset", "cpuset.mems", cpu["mems"]))


def _v1_memory(memory: dict, current: dict, existing: set | None, plan: list, warnings: list) -> None:
    limit = _int(memory.get("limit"))
    swap = _int(memory.get("swap"))
    _check_swap(limit, swap)
    swap_accounting = existing is None or "memory.memsw.limit_in_bytes" in existing
    if swap != 0 and not swap_accounting:
        raise PyruncError(f"{R}.memory.swap: this kernel has no swap accounting (no memory.memsw.limit_in_bytes; "
                          "it needs swapaccount=1 on the kernel command line)")
    if memory.get("useHierarchy") is not None:
        plan.append((f"{R}.memory.useHierarchy", "memory", "memory.use_hierarchy",
                     "1" if memory["useHierarchy"] else "0"))
    current_limit = _parse_uint(current.get("memory.limit_in_bytes"))
    for name, value in order_memory_writes(limit, swap, current_limit, swap_accounting):
        field = "limit" if name == "memory.limit_in_bytes" else "swap"
        plan.append((f"{R}.memory.{field}", "memory", name, value))
    _warn_kernel_memory(memory, warnings)
    if _int(memory.get("reservation")):
        plan.append((f"{R}.memory.reservation", "memory", "memory.soft_limit_in_bytes", str(memory["reservation"])))
    if memory.get("disableOOMKiller"):
        plan.append((f"{R}.memory.disableOOMKiller", "memory", "memory.oom_control", "1"))
    swappiness = _swappiness(memory)
    if swappiness is not None:
        plan.append((f"{R}.memory.swappiness", "memory", "memory.swappiness", str(swappiness)))


def _v1_cpu(cpu: dict, existing: set | None, plan: list, warnings: list) -> None:
    # runc fs/cpu.go Set: shares, period, burst, quota, idle, then the
    # realtime pair (period before runtime).
    if _int(cpu.get("shares")):
        plan.append((f"{R}.cpu.shares", "cpu", "cpu.shares", str(cpu["shares"])))
    if _int(cpu.get("period")):
        plan.append((f"{R}.cpu.period", "cpu", "cpu.cfs_period_us", str(cpu["period"])))
    if cpu.get("burst") is not None:
        if existing is not None and "cpu.cfs_burst_us" not in existing:
            # runc ignores the missing file (kernels before 5.14) silently.
            warnings.append(f"{R}.cpu.burst: ignored: this kernel has no cpu.cfs_burst_us")
        else:
            plan.append((f"{R}.cpu.burst", "cpu", "cpu.cfs_burst_us", str(cpu["burst"])))
    if _int(cpu.get("quota")):
        plan.append((f"{R}.cpu.quota", "cpu", "cpu.cfs_quota_us", str(cpu["quota"])))
    if cpu.get("idle") is not None:
        plan.append((f"{R}.cpu.idle", "cpu", "cpu.idle", str(cpu["idle"])))
    if _int(cpu.get("realtimePeriod")):
        plan.append((f"{R}.cpu.realtimePeriod", "cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
    if _int(cpu.get("realtimeRuntime")):
        plan.append((f"{R}.cpu.realtimeRuntime", "cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))


def _v1_blkio(blkio: dict, existing: set | None, plan: list) -> None:
    # runc fs/blkio.go: blkio.weight when the kernel has it (CFQ), else the
    # BFQ scheduler's blkio.bfq.weight.
    bfq = existing is not None and "blkio.weight" not in existing and "blkio.bfq.weight" in existing
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    weight_device_file = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
    where = f"{R}.blockIO"
    if _int(blkio.get("weight")):
        plan.append((f"{where}.weight", "blkio", weight_file, str(blkio["weight"])))
    if _int(blkio.get("leafWeight")):
        plan.append((f"{where}.leafWeight", "blkio", "blkio.leaf_weight", str(blkio["leafWeight"])))
    for i, device in enumerate(blkio.get("weightDevice") or ()):
        dev = f"{device['major']}:{device['minor']}"
        if _int(device.get("weight")):
            plan.append((f"{where}.weightDevice[{i}].weight", "blkio", weight_device_file, f"{dev} {device['weight']}"))
        if _int(device.get("leafWeight")):
            plan.append((f"{where}.weightDevice[{i}].leafWeight", "blkio", "blkio.leaf_weight_device",
                         f"{dev} {device['leafWeight']}"))
    for field, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, device in enumerate(blkio.get(field) or ()):
            line = f"{device['major']}:{device['minor']} {device['rate']}"
            plan.append((f"{where}.{field}[{i}]", "blkio", name, line))


def _v1_hugetlb(limits, existing: set | None, plan: list) -> None:
    # runc ≥ 1.2 also sets the reservation limit where the kernel has one
    # (5.7+), which runtime-spec prefers; 1.1.5 set the fault limit only.
    for i, entry in enumerate(limits):
        where = f"{R}.hugepageLimits[{i}]"
        size = check_page_size(entry.get("pageSize"), f"{where}.pageSize")
        value = str(entry["limit"])
        plan.append((f"{where}.limit", "hugetlb", f"hugetlb.{size}.limit_in_bytes", value))
        rsvd = f"hugetlb.{size}.rsvd.limit_in_bytes"
        if existing is not None and rsvd in existing:
            plan.append((f"{where}.limit", "hugetlb", rsvd, value))


# ---------------------------------------------------------------- cgroup v2


def v2_writes(resources: dict, current: dict | None = None,
              existing: set | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """The cgroup v2 writes for `resources`: ([(file, value)], warnings).

    Warnings name the settings v2 cannot express, which runc skips
    silently: realtime CPU, swappiness, disableOOMKiller, kernel memory,
    network classes and priorities, blkio leaf weights.
    """
    plan, warnings = v2_plan(resources, current, existing)
    return [(name, value) for _, name, value in plan], warnings


def v2_plan(resources: dict, current: dict | None = None,
            existing: set | None = None) -> tuple[list[tuple[str, str, str]], list[str]]:
    """v2_writes with the JSON path of each write: [(path, file, value)].

    Order is runc's fs2 driver's: pids, memory, io, cpu, (devices), cpuset,
    hugetlb, rdma, then `unified` last, so a unified key wins over a
    converted value for the same file (both are written, as runc does).
    """
    resources = resources or {}
    current = current or {}
    plan: list[tuple[str, str, str]] = []
    warnings: list[str] = []
    pids = format_pids_limit((resources.get("pids") or {}).get("limit"))
    if pids:
        plan.append((f"{R}.pids.limit", "pids.max", pids))
    _v2_memory(resources.get("memory") or {}, current, existing, plan, warnings)
    _v2_io(resources.get("blockIO") or {}, current, existing, plan, warnings)
    cpu = resources.get("cpu") or {}
    _v2_cpu(cpu, plan, warnings)
    if cpu.get("cpus"):
        plan.append((f"{R}.cpu.cpus", "cpuset.cpus", cpu["cpus"]))
    if cpu.get("mems"):
        plan.append((f"{R}.cpu.mems", "cpuset.mems", cpu["mems"]))
    for i, entry in enumerate(resources.get("hugepageLimits") or ()):
        where = f"{R}.hugepageLimits[{i}]"
        size = check_page_size(entry.get("pageSize"), f"{where}.pageSize")
        plan.append((f"{where}.limit", f"hugetlb.{size}.max", str(entry["limit"])))
        if existing is not None and f"hugetlb.{size}.rsvd.max" in existing:
            plan.append((f"{where}.limit", f"hugetlb.{size}.rsvd.max", str(entry["limit"])))
    for line, where in _rdma_lines(resources.get("rdma") or {}):
        plan.append((where, "rdma.max", line))
    network = resources.get("network") or {}
    if _int(network.get("classID")) or network.get("priorities"):
        warnings.append(f"{R}.network: ignored: cgroup v2 has no net_cls or net_prio controller")
    for key, value in (resources.get("unified") or {}).items():
        describe_unified_key(key)
        # One write per line: the kernel parses one entry per write (io.max
        # "8:0 rbps=1\n8:16 rbps=2"), as runc ≥ 1.2 WriteFileByLine does.
        lines = [line for line in str(value).split("\n") if line.strip()] or [str(value)]
        for line in lines:
            plan.append((f'{R}.unified["{key}"]', key, line))
    return plan, warnings


def _v2_memory(memory: dict, current: dict, existing: set | None, plan: list, warnings: list) -> None:
    limit = _int(memory.get("limit"))
    swap = _int(memory.get("swap"))
    reservation = _int(memory.get("reservation"))
    _warn_kernel_memory(memory, warnings)
    if _swappiness(memory) is not None:
        warnings.append(f"{R}.memory.swappiness: ignored: cgroup v2 has no per-cgroup swappiness")
    if memory.get("disableOOMKiller"):
        warnings.append(f"{R}.memory.disableOOMKiller: ignored: cgroup v2 cannot disable the OOM killer")
    if memory.get("useHierarchy") is False:
        warnings.append(f"{R}.memory.useHierarchy: ignored: cgroup v2 is always hierarchical")
    if not (limit or swap or reservation):
        return
    _check_swap(limit, swap)
    if memory.get("checkBeforeUpdate"):
        _check_memory_usage(limit, swap, _parse_uint(current.get("memory.current")))
    swap_v2 = convert_memory_swap_to_v2(swap, limit)
    swap_value = format_v2_limit(swap_v2)
    if swap_value == "" and swap_v2 == 0 and swap > 0:
        swap_value = "0"  # memory+swap equal to memory: no swap at all
    if swap_value:
        if existing is not None and "memory.swap.max" not in existing:
            # No swap accounting: "max" and "0" change nothing (runc ≥ 1.2
            # ignores them); a real swap limit cannot be honoured.
            if swap_value not in ("max", "0"):
                raise PyruncError(f"{R}.memory.swap: this kernel has no swap accounting (no memory.swap.max)")
        else:
            plan.append((f"{R}.memory.swap", "memory.swap.max", swap_value))
    if format_v2_limit(limit):
        plan.append((f"{R}.memory.limit", "memory.max", format_v2_limit(limit)))
    if format_v2_limit(reservation):
        plan.append((f"{R}.memory.reservation", "memory.low", format_v2_limit(reservation)))


def _v2_io(blkio: dict, current: dict, existing: set | None, plan: list, warnings: list) -> None:
    where = f"{R}.blockIO"
    bfq = existing is not None and "io.bfq.weight" in existing
    weight = _int(blkio.get("weight"))
    if weight:
        if bfq:
            plan.append((f"{where}.weight", "io.bfq.weight", str(weight)))
        else:
            if not 10 <= weight <= 1000:
                raise PyruncError(f"{where}.weight: {weight} is out of range [10, 1000]")
            plan.append((f"{where}.weight", "io.weight", str(convert_blkio_weight_to_io_weight(weight))))
    if _int(blkio.get("leafWeight")):
        warnings.append(f"{where}.leafWeight: ignored: cgroup v2 has no leaf weights")
    # Per-device BFQ weights (kernel 5.4+): io.bfq.weight then reads
    # "default N" plus device lines, not a bare number.
    per_device = bfq and not (current.get("io.bfq.weight") or "").strip().isdigit()
    for i, device in enumerate(blkio.get("weightDevice") or ()):
        if _int(device.get("leafWeight")):
            warnings.append(f"{where}.weightDevice[{i}].leafWeight: ignored: cgroup v2 has no leaf weights")
        if not _int(device.get("weight")):
            continue
        if per_device:
            plan.append((f"{where}.weightDevice[{i}].weight", "io.bfq.weight",
                         f"{device['major']}:{device['minor']} {device['weight']}"))
        else:
            warnings.append(f"{where}.weightDevice[{i}]: ignored: per-device weights need the BFQ I/O scheduler "
                            "(io.bfq.weight, kernel 5.4+)")
    for field, key in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for i, device in enumerate(blkio.get(field) or ()):
            line = f"{device['major']}:{device['minor']} {key}={device['rate']}"
            plan.append((f"{where}.{field}[{i}]", "io.max", line))


def _v2_cpu(cpu: dict, plan: list, warnings: list) -> None:
    # runc fs2/cpu.go setCPU: idle, weight, burst, then cpu.max.
    if cpu.get("idle") is not None:
        plan.append((f"{R}.cpu.idle", "cpu.idle", str(cpu["idle"])))
    weight = convert_cpu_shares_to_weight(_int(cpu.get("shares")))
    if weight:
        plan.append((f"{R}.cpu.shares", "cpu.weight", str(weight)))
    if cpu.get("burst") is not None:
        plan.append((f"{R}.cpu.burst", "cpu.max.burst", str(cpu["burst"])))
    quota = _int(cpu.get("quota"))
    period = _int(cpu.get("period"))
    if quota or period:
        plan.append((f"{R}.cpu.quota" if quota else f"{R}.cpu.period", "cpu.max", format_cpu_max(quota, period)))
    for field in ("realtimeRuntime", "realtimePeriod"):
        if _int(cpu.get(field)):
            warnings.append(f"{R}.cpu.{field}: ignored: cgroup v2 has no realtime CPU bandwidth")


# ---------------------------------------------------------------- shared checks


def _check_swap(limit: int, swap: int) -> None:
    """memory+swap below memory (both set, swap not -1): refused up front on
    both versions (v1's kernel would refuse it too, half-way through)."""
    if limit > 0 and swap > 0 and swap < limit:
        raise _swap_below_limit(swap, limit)


def _swap_below_limit(swap: int, limit: int) -> PyruncError:
    return PyruncError(f"{R}.memory.swap: memory+swap limit {swap} is below the memory limit {limit} "
                       f"({R}.memory.limit); use a value >= the memory limit, or -1 for unlimited swap")


def _check_memory_usage(limit: int, swap: int, usage: int | None) -> None:
    """memory.checkBeforeUpdate on v2 (v1's kernel refuses by itself):
    refuse limits at or below the current usage. Source: runc fs2
    CheckMemoryUsage (best effort: no usage known, no check)."""
    if usage is None:
        return
    if swap > 0 and swap <= usage:
        raise PyruncError(f"{R}.memory.swap: rejecting memory+swap limit {swap} <= usage {usage}")
    if limit > 0 and limit <= usage:
        raise PyruncError(f"{R}.memory.limit: rejecting memory limit {limit} <= usage {usage}")


def _warn_kernel_memory(memory: dict, warnings: list) -> None:
    # runc ignores kernel memory limits (the kernel deprecated kmem limits in
    # 5.4 and removed them in 6.x). 0 is what `update` sends for "unchanged":
    # no warning for it.
    for field in ("kernel", "kernelTCP"):
        if _int(memory.get(field)):
            warnings.append(f"{R}.memory.{field}: ignored: kernel memory limits are not supported")


def _swappiness(memory: dict) -> int | None:
    """memory.swappiness to write, or None: absent, -1 (or -1 as uint64,
    what older engines send) means "leave as is"; above 100 is an error."""
    value = memory.get("swappiness")
    if value is None or value == -1 or value == MAX_UINT64:
        return None
    if not 0 <= value <= 100:
        raise PyruncError(f"{R}.memory.swappiness: invalid value {value} (valid range is 0-100)")
    return value


def _rdma_lines(rdma: dict) -> list[tuple[str, str]]:
    # runc writes them in Go map order (random); sorted here for a stable order.
    lines = []
    for device in sorted(rdma):
        limit = rdma[device] or {}
        where = f'{R}.rdma["{device}"]'
        if limit.get("hcaHandles") is None and limit.get("hcaObjects") is None:
            raise PyruncError(f"{where}: must set hcaHandles or hcaObjects")
        lines.append((format_rdma_limit(device, limit), where))
    return lines


def _int(value) -> int:
    return 0 if value is None else int(value)


def _parse_uint(text: str | None) -> int | None:
    """A cgroup file's number: "max" → MAX_UINT64, garbage or absent → None."""
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return MAX_UINT64
    try:
        return int(text)
    except ValueError:
        return None
