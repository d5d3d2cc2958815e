"""Cgroup resources on the filesystem: set limits, freeze and thaw, read stats.

Writes what cgroups.resources (and cgroups.devices) compute into a
container's existing cgroup directories (`paths` is CgroupDirs.paths: a
hierarchy key -- "memory", "cpu,cpuacct", "" for v2 -- to its directory).
Nothing here creates a directory or a file: a file that is missing is an
error (or skipped, where runc skips it), never created.

* apply_resources(paths, resources, device_rules) → warnings (v1 or v2 by paths)
* apply_v1(paths, ...), apply_v2(path, ...)
* enable_v2_controllers(mount_point, path): a v2 cgroup's ancestors hand it
  every controller (runc fs2 CreateCgroupPath; call before apply_v2)
* freeze(paths), thaw(paths), is_frozen(paths)
* stats(paths): the "data" of `runc events --stats`, JSON-ready
Imports: errors, linux.cgroups.{resources, devices}.
"""

from __future__ import annotations

import errno as errnos
import time

from pyrunc import oslite as os
from pyrunc.errors import KernelError, PyruncError
from pyrunc.linux.cgroups import resources as conv

V2_KEY = ""


def is_unified(paths: dict[str, str]) -> bool:
    """True when `paths` are a pure cgroup v2 container (a hybrid host's
    "" entry next to v1 hierarchies is managed as v1, as runc does)."""
    return bool(paths) and all(key == V2_KEY for key in paths)


def apply_resources(paths: dict[str, str], resources: dict, device_rules: list | None = None) -> list[str]:
    """Set `resources` on the container's cgroups; returns the warnings
    (settings skipped) for the caller to log. `device_rules` (see
    devices.container_device_rules) replaces the device access list; None
    leaves it as it is (what `update` wants)."""
    if is_unified(paths):
        return apply_v2(paths[V2_KEY], resources, device_rules)
    return apply_v1(paths, resources, device_rules)


# ---------------------------------------------------------------- cgroup v1


def find_controller_dirs(paths: dict[str, str]) -> dict[str, str]:
    """{controller: directory} for the v1 hierarchies in `paths`: a
    co-mounted "cpu,cpuacct" answers to both names."""
    dirs = {}
    for key, path in paths.items():
        if key == V2_KEY:
            continue
        for name in key.split(","):
            if name:
                dirs.setdefault(name, path)
    return dirs


def apply_v1(paths: dict[str, str], resources: dict, device_rules: list | None = None) -> list[str]:
    """Write `resources` into the v1 cgroup directories `paths`.

    Checks first that every controller the config needs is mounted (else
    `linux.resources.X: the Y cgroup controller is not available on this
    host`), so a refused config writes nothing; controllers the config does
    not mention are never touched.
    """
    resources = resources or {}
    dirs = find_controller_dirs(paths)
    existing = set()
    for directory in set(dirs.values()):
        existing.update(_list_dir(directory))
    current = {}
    memory_dir = dirs.get("memory")
    if memory_dir is not None:
        current = _read_current(memory_dir, conv.CURRENT_FILES_V1, existing)
    plan, warnings = conv.v1_plan(resources, current, existing)
    for where, controller, _, _ in plan:
        if controller not in dirs:
            raise PyruncError(f"{_top(where)}: the {controller} cgroup controller is not available on this host")
    writes = [(where, os.path.join(dirs[controller], name), value) for where, controller, name, value in plan]
    if device_rules is not None:
        # runc's order: cpuset, devices, then the other controllers.
        at = _count_leading(plan, "cpuset")
        writes[at:at] = _v1_device_writes(dirs, device_rules)
    _write_all(writes)
    return warnings


def _v1_device_writes(dirs: dict[str, str], device_rules: list) -> list[tuple[str, str, str]]:
    from pyrunc.linux.cgroups import devices

    directory = dirs.get("devices")
    if directory is None:
        raise PyruncError(f"{conv.R}.devices: the devices cgroup controller is not available on this host")
    current = _read_text(os.path.join(directory, "devices.list"))
    return [(f"{conv.R}.devices", os.path.join(directory, name), line)
            for name, line in devices.v1_device_writes(device_rules, current)]


def _count_leading(plan: list, controller: str) -> int:
    count = 0
    while count < len(plan) and plan[count][1] == controller:
        count += 1
    return count


# ---------------------------------------------------------------- cgroup v2


def apply_v2(path: str, resources: dict, device_rules: list | None = None) -> list[str]:
    """Write `resources` into the v2 cgroup directory `path`, then attach
    the device filter for `device_rules` (None: leave the filter alone)."""
    resources = resources or {}
    existing = set(_list_dir(path))
    current = _read_current(path, conv.CURRENT_FILES_V2, existing)
    plan, warnings = conv.v2_plan(resources, current, existing)
    available = None
    unified = {f'{conv.R}.unified["{key}"]' for key in (resources.get("unified") or {})}
    for where, name, _ in plan:
        if name in existing:
            continue
        controller = name.split(".", 1)[0]
        if available is None:
            available = set((_read_text(os.path.join(path, "cgroup.controllers")) or "").split())
        if controller not in available and controller != "cgroup":
            if where in unified:
                raise PyruncError(f'{where}: cannot be set: the {controller} controller is not available '
                                  "in this cgroup")
            raise PyruncError(f"{_top(where)}: the {controller} cgroup controller is not available on this host")
    _write_all([(where, os.path.join(path, name), value) for where, name, value in plan])
    if device_rules is not None:
        warnings.extend(_attach_v2_devices(path, device_rules))
    return warnings


def _attach_v2_devices(path: str, device_rules: list) -> list[str]:
    from pyrunc.linux.cgroups import devices

    program = devices.build_device_filter(device_rules)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("open cgroup", path, err.errno) from None
    try:
        devices.attach_device_filter(fd, program)
    except KernelError as err:
        # As runc (and crun): a filter that would only allow everything may
        # fail to load (no bpf(2) in a user namespace) without harm.
        if all(rule.get("allow") and set(rule.get("access") or "") >= set("rwm") for rule in device_rules):
            return [f"{conv.R}.devices: not enforced: {err}"]
        raise
    finally:
        os.close(fd)
    return []


def enable_v2_controllers(mount_point: str, path: str) -> None:
    """Make every controller the v2 root offers available in `path`: write
    "+cpu +memory ..." to cgroup.subtree_control of each directory from the
    mount point down to `path`'s parent (one by one when the kernel refuses
    the batch; what stays unavailable is reported by apply_v2, by name).
    runc's fs2 CreateCgroupPath does this for every container it creates."""
    mount_point = os.path.normpath(mount_point)
    path = os.path.normpath(path)
    below = mount_point.rstrip("/") + "/"
    if not path.startswith(below):
        raise PyruncError(f"cgroup {path} is not under the cgroup2 mount {mount_point}")
    relative = path[len(below):]
    controllers = (_read_text(os.path.join(mount_point, "cgroup.controllers")) or "").split()
    if not controllers:
        return
    batch = " ".join("+" + c for c in controllers)
    directory = mount_point
    for part in relative.split("/")[:-1] + [None]:
        target = os.path.join(directory, "cgroup.subtree_control")
        try:
            _write_file(target, batch)
        except OSError:
            for controller in controllers:
                try:
                    _write_file(target, "+" + controller)
                except OSError:
                    pass
        if part is None:
            break
        directory = os.path.join(directory, part)


# ---------------------------------------------------------------- writing


def _write_all(writes: list[tuple[str, str, str]]) -> None:
    """Write each (json path, file, value) in order, with runc's recoveries:
    a period (or burst) the kernel refuses with EINVAL is retried right after
    the quota write that follows it; cpu.shares is read back (the kernel
    clamps it); a memory limit below the usage says so."""
    deferred: dict[str, list[tuple[str, str, str]]] = {}
    for index, (where, target, value) in enumerate(writes):
        name = os.path.basename(target)
        try:
            _write_file(target, value)
        except OSError as err:
            partner = conv.RETRY_AFTER.get(name)
            if (err.errno == errnos.EINVAL and partner
                    and any(os.path.basename(t) == partner for _, t, _ in writes[index + 1:])):
                deferred.setdefault(partner, []).append((where, target, value))
                continue
            raise _write_error(where, target, value, err) from None
        if name == "cpu.shares":
            _check_shares(target, value)
        for again in deferred.pop(name, ()):
            try:
                _write_file(again[1], again[2])
            except OSError as err:
                raise _write_error(*again, err) from None


def _write_file(target: str, value: str) -> None:
    """One write(2) of `value` to an existing cgroup file (never created)."""
    fd = os.open(target, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _write_error(where: str, target: str, value: str, err: OSError) -> PyruncError:
    name = os.path.basename(target)
    if err.errno == errnos.EBUSY and name == "memory.limit_in_bytes":
        directory = os.path.dirname(target)
        usage = (_read_text(os.path.join(directory, "memory.usage_in_bytes")) or "?").strip()
        peak = (_read_text(os.path.join(directory, "memory.max_usage_in_bytes")) or "?").strip()
        return PyruncError(f"{where}: unable to set memory limit to {value} (current usage: {usage}, "
                           f"peak usage: {peak})")
    detail = "not supported by this kernel" if err.errno == errnos.ENOENT else ""
    return KernelError(f'{where}: write "{value}" to', target, err.errno or errnos.EIO, detail)


def _check_shares(target: str, value: str) -> None:
    got = conv._parse_uint(_read_text(target))
    wanted = int(value)
    if got is None or got == wanted:
        return
    bound = "maximum" if wanted > got else "minimum"
    raise PyruncError(f"{conv.R}.cpu.shares: {wanted} is out of range: the {bound} allowed cpu-shares is {got}")


# ---------------------------------------------------------------- reading


def _list_dir(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        raise PyruncError(f"cgroup {directory} does not exist") from None
    except OSError as err:
        raise KernelError("list cgroup", directory, err.errno) from None


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _read_current(directory: str, names: tuple[str, ...], existing: set) -> dict[str, str]:
    current = {}
    for name in names:
        if name in existing:
            text = _read_text(os.path.join(directory, name))
            if text is not None:
                current[name] = text
    return current


def _top(where: str) -> str:
    """linux.resources.hugepageLimits[0].limit → linux.resources.hugepageLimits"""
    rest = where[len(conv.R) + 1:] if where.startswith(conv.R + ".") else where
    for stop in ".[":
        rest = rest.split(stop, 1)[0]
    return f"{conv.R}.{rest}"


# ---------------------------------------------------------------- freezer


def freeze(paths: dict[str, str], timeout: float = 10.0) -> None:
    """Freeze every process of the container and wait until they are."""
    freezer = find_controller_dirs(paths).get("freezer")
    if freezer is not None:
        _freeze_v1(freezer, timeout)
    elif is_unified(paths):
        _set_v2_frozen(paths[V2_KEY], True, timeout)
    else:
        raise PyruncError("cannot freeze the container: it has no freezer cgroup")


def thaw(paths: dict[str, str], timeout: float = 10.0) -> None:
    """Let the container's processes run again (no freezer: nothing to do)."""
    freezer = find_controller_dirs(paths).get("freezer")
    if freezer is not None:
        target = os.path.join(freezer, "freezer.state")
        _write_or_raise(target, "THAWED", "thaw")
        # THAWED at once, unless a freeze is still in progress; FROZEN stays
        # only when an ancestor is frozen, which is not this container's.
        deadline = time.monotonic() + timeout
        while (_read_text(target) or "").strip() == "FREEZING" and time.monotonic() < deadline:
            time.sleep(0.001)
    elif is_unified(paths):
        _set_v2_frozen(paths[V2_KEY], False, timeout)


def frozen_dir(paths: dict[str, str]) -> str:
    """A directory of the container's cgroup that is frozen (by itself or an
    ancestor) now, or "": a process put there would never run its set-up.
    Both kinds on a hybrid host: the v1 freezer and v2's cgroup.freeze."""
    for key, path in paths.items():
        if key == V2_KEY:
            events = _read_text(os.path.join(path, "cgroup.events")) or ""
            if "frozen 1" in events.splitlines():
                return path
        elif "freezer" in key.split(","):
            if (_read_text(os.path.join(path, "freezer.state")) or "").strip() in ("FROZEN", "FREEZING"):
                return path
    return ""


def is_frozen(paths: dict[str, str]) -> bool:
    """Whether the container is frozen by its own cgroup (not by an
    ancestor's: runc reports that as running)."""
    freezer = find_controller_dirs(paths).get("freezer")
    if freezer is not None:
        deadline = time.monotonic() + 10.0
        while True:
            state = (_read_text(os.path.join(freezer, "freezer.state")) or "").strip()
            if state != "FREEZING" or time.monotonic() > deadline:
                break
            time.sleep(0.001)
        if state != "FROZEN":
            return False
        own = _read_text(os.path.join(freezer, "freezer.self_freezing"))
        return own is None or own.strip() == "1"
    if is_unified(paths):
        return (_read_text(os.path.join(paths[V2_KEY], "cgroup.freeze")) or "").strip() == "1"
    return False


def _freeze_v1(directory: str, timeout: float) -> None:
    # A v1 cgroup can stay FREEZING while new processes keep arriving: retry
    # the write, and now and then thaw and pause so forks can settle (runc).
    target = os.path.join(directory, "freezer.state")
    deadline = time.monotonic() + timeout
    attempt = 0
    try:
        while True:
            if attempt % 50 == 49:
                _write_or_raise(target, "THAWED", "freeze")
                time.sleep(0.01)
            _write_or_raise(target, "FROZEN", "freeze")
            state = (_read_text(target) or "").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise PyruncError(f"freeze: unexpected freezer state {state!r} in {target}")
            attempt += 1
            if time.monotonic() > deadline:
                raise PyruncError(f"freeze: {target} still FREEZING after {timeout:.0f}s")
    except PyruncError:
        # Never leave a half-frozen container behind.
        try:
            _write_file(target, "THAWED")
        except OSError:
            pass
        raise


def _set_v2_frozen(directory: str, frozen: bool, timeout: float) -> None:
    target = os.path.join(directory, "cgroup.freeze")
    if not os.path.exists(target):
        if frozen:
            raise PyruncError(f"cannot freeze the container: this kernel has no cgroup v2 freezer ({target})")
        return
    _write_or_raise(target, "1" if frozen else "0", "freeze" if frozen else "thaw")
    events = os.path.join(directory, "cgroup.events")
    want = "frozen 1" if frozen else "frozen 0"
    deadline = time.monotonic() + timeout
    while True:
        lines = (_read_text(events) or "").splitlines()
        if want in lines or not any(line.startswith("frozen ") for line in lines):
            return
        if time.monotonic() > deadline:
            if frozen:
                try:
                    _write_file(target, "0")
                except OSError:
                    pass
            raise PyruncError(f"{'freeze' if frozen else 'thaw'}: {events} did not show \"{want}\" "
                              f"within {timeout:.0f}s")
        time.sleep(0.01)


def _write_or_raise(target: str, value: str, op: str) -> None:
    try:
        _write_file(target, value)
    except OSError as err:
        raise KernelError(f'{op}: write "{value}" to', target, err.errno or errnos.EIO) from None


# ---------------------------------------------------------------- stats


def stats(paths: dict[str, str]) -> dict:
    """The container's resource usage as runc 1.1's `events --stats` prints
    it under "data": cpu, cpuset, memory, pids, blkio, hugetlb, intel_rdt,
    network_interfaces, with Go's omitempty applied (zero numbers and empty
    lists left out where runc's types leave them out). Missing files count
    as zero, as runc does for optional ones."""
    s = _Stats()
    if is_unified(paths):
        _stats_v2(paths[V2_KEY], s)
    else:
        _stats_v1(find_controller_dirs(paths), s)
    return s.render()


class _Stats:
    """runc's cgroups.Stats, the fields `events` prints."""

    def __init__(self):
        self.cpu_total = self.cpu_kernel = self.cpu_user = 0
        self.percpu: list[int] = []
        self.percpu_kernel: list[int] = []
        self.percpu_user: list[int] = []
        self.throttling = {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}
        self.cpuset = {"cpus": [], "cpu_exclusive": 0, "mems": [], "mem_hardwall": 0, "mem_exclusive": 0,
                       "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                       "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0}
        self.cache = 0
        self.memory = {name: _memory_entry() for name in ("usage", "swap", "kernel", "kernelTCP")}
        self.raw: dict[str, int] = {}
        self.pids_current = self.pids_limit = 0
        self.blkio: dict[str, list] = {}
        self.hugetlb: dict[str, dict] = {}

    def render(self) -> dict:
        usage = _omit_zero({"total": self.cpu_total, "percpu": self.percpu, "percpu_kernel": self.percpu_kernel,
                            "percpu_user": self.percpu_user})
        usage["kernel"] = self.cpu_kernel
        usage["user"] = self.cpu_user
        memory = _omit_zero({"cache": self.cache})
        for name, entry in self.memory.items():
            memory[name] = {"limit": entry["limit"], **_omit_zero({"usage": entry["usage"], "max": entry["max"]}),
                            "failcnt": entry["failcnt"]}
        if self.raw:
            memory["raw"] = dict(sorted(self.raw.items()))
        cpuset = dict(self.cpuset)
        for name in ("cpus", "mems"):
            if not cpuset[name]:
                del cpuset[name]
        blkio = {}
        for name in _BLKIO_FIELDS:
            entries = self.blkio.get(name)
            if entries:
                blkio[name] = [_omit_zero(e) for e in entries]
        hugetlb = {}
        for size in sorted(self.hugetlb):
            entry = self.hugetlb[size]
            hugetlb[size] = {**_omit_zero({"usage": entry["usage"], "max": entry["max"]}), "failcnt": entry["failcnt"]}
        return {
            "cpu": {"usage": usage, "throttling": _omit_zero(self.throttling)},
            "cpuset": cpuset,
            "memory": memory,
            "pids": _omit_zero({"current": self.pids_current, "limit": self.pids_limit}),
            "blkio": blkio,
            "hugetlb": hugetlb,
            "intel_rdt": {},
            "network_interfaces": None,
        }


# JSON names of runc's types.Blkio, in its field order.
_BLKIO_FIELDS = ("ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive", "ioServiceTimeRecursive",
                 "ioWaitTimeRecursive", "ioMergedRecursive", "ioTimeRecursive", "sectorsRecursive")


def _memory_entry() -> dict:
    return {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}


def _omit_zero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


def _read_uint(directory: str, name: str) -> int | None:
    return conv._parse_uint(_read_text(os.path.join(directory, name)) if directory else None)


def _read_int(directory: str, name: str) -> int | None:
    text = _read_text(os.path.join(directory, name))
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _read_key_values(directory: str, name: str) -> dict[str, int] | None:
    """A "key value" per line file (memory.stat, cpu.stat); negative values
    count as 0, as runc's ParseUint."""
    text = _read_text(os.path.join(directory, name))
    if text is None:
        return None
    values = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 2:
            parsed = conv._parse_uint(parts[1])
            if parsed is None:
                try:
                    parsed = 0 if int(parts[1]) < 0 else None
                except ValueError:
                    parsed = None
            if parsed is not None:
                values[parts[0]] = parsed
    return values


def parse_cpu_list(text: str) -> list[int]:
    """cpuset.cpus / cpuset.mems: "0-3,7" → [0, 1, 2, 3, 7]."""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if dash:
            out.extend(range(int(low), int(high) + 1))
        else:
            out.append(int(part))
    return out


# ---- v1


def _stats_v1(dirs: dict[str, str], s: _Stats) -> None:
    if "cpuset" in dirs:
        _stats_v1_cpuset(dirs["cpuset"], s)
    if "memory" in dirs:
        _stats_v1_memory(dirs["memory"], s)
    if "cpu" in dirs:
        values = _read_key_values(dirs["cpu"], "cpu.stat") or {}
        s.throttling = {"periods": values.get("nr_periods", 0), "throttledPeriods": values.get("nr_throttled", 0),
                        "throttledTime": values.get("throttled_time", 0)}
    if "cpuacct" in dirs:
        _stats_v1_cpuacct(dirs["cpuacct"], s)
    if "pids" in dirs:
        s.pids_current = _read_uint(dirs["pids"], "pids.current") or 0
        limit = _read_uint(dirs["pids"], "pids.max") or 0
        s.pids_limit = 0 if limit == conv.MAX_UINT64 else limit
    if "blkio" in dirs:
        _stats_v1_blkio(dirs["blkio"], s)
    if "hugetlb" in dirs:
        directory = dirs["hugetlb"]
        for name in sorted(_list_or_empty(directory)):
            if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes") and ".rsvd." not in name:
                size = name[len("hugetlb."):-len(".usage_in_bytes")]
                prefix = f"hugetlb.{size}."
                s.hugetlb[size] = {"usage": _read_uint(directory, prefix + "usage_in_bytes") or 0,
                                   "max": _read_uint(directory, prefix + "max_usage_in_bytes") or 0,
                                   "failcnt": _read_uint(directory, prefix + "failcnt") or 0}


def _stats_v1_cpuset(directory: str, s: _Stats) -> None:
    for name in ("cpus", "mems"):
        text = _read_text(os.path.join(directory, "cpuset." + name))
        if text and text.strip():
            s.cpuset[name] = parse_cpu_list(text)
    for name in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance"):
        value = _read_uint(directory, "cpuset." + name)
        if value is not None:
            s.cpuset[name] = value
    level = _read_int(directory, "cpuset.sched_relax_domain_level")
    if level is not None:
        s.cpuset["sched_relax_domain_level"] = level


def _stats_v1_memory(directory: str, s: _Stats) -> None:
    raw = _read_key_values(directory, "memory.stat")
    if raw is None:
        return
    s.raw = raw
    s.cache = raw.get("cache", 0)
    for key, module in (("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"),
                        ("kernelTCP", "memory.kmem.tcp")):
        usage = _read_uint(directory, module + ".usage_in_bytes")
        if usage is None:
            continue  # swap and kmem accounting are optional
        s.memory[key] = {"usage": usage, "max": _read_uint(directory, module + ".max_usage_in_bytes") or 0,
                         "failcnt": _read_uint(directory, module + ".failcnt") or 0,
                         "limit": _read_uint(directory, module + ".limit_in_bytes") or 0}


def _stats_v1_cpuacct(directory: str, s: _Stats) -> None:
    # cpuacct.stat counts USER_HZ ticks (100 per second on Linux): to ns.
    fields = (_read_text(os.path.join(directory, "cpuacct.stat")) or "").split()
    if len(fields) >= 4 and fields[0] == "user" and fields[2] == "system":
        s.cpu_user = int(fields[1]) * 1_000_000_000 // 100
        s.cpu_kernel = int(fields[3]) * 1_000_000_000 // 100
    s.cpu_total = _read_uint(directory, "cpuacct.usage") or 0
    s.percpu = [int(v) for v in (_read_text(os.path.join(directory, "cpuacct.usage_percpu")) or "").split()]
    lines = (_read_text(os.path.join(directory, "cpuacct.usage_all")) or "").splitlines()
    if lines and lines[0].startswith("cpu user system"):
        for line in lines[1:]:
            fields = line.split()
            if len(fields) >= 3:
                s.percpu_user.append(int(fields[1]))
                s.percpu_kernel.append(int(fields[2]))


# runc's fs/blkio.go GetStats: the first group whose first file has entries
# wins (BFQ with debug files, BFQ, CFQ, throttle recursive, throttle).
_V1_BLKIO_GROUPS = (
    (("blkio.bfq.sectors_recursive", "sectorsRecursive"),
     ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.bfq.time_recursive", "ioTimeRecursive"),
     ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.sectors_recursive", "sectorsRecursive"),
     ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.time_recursive", "ioTimeRecursive"),
     ("blkio.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive")),
)


def _stats_v1_blkio(directory: str, s: _Stats) -> None:
    for group in _V1_BLKIO_GROUPS:
        for index, (name, field) in enumerate(group):
            entries = parse_blkio_entries(_read_text(os.path.join(directory, name)))
            if not entries:
                if index == 0:
                    break  # this group's files are absent or empty: try the next group
                return  # runc stops at a later empty file, keeping what it has
            s.blkio[field] = entries
            if index == len(group) - 1:
                return


def parse_blkio_entries(text: str | None) -> list[dict]:
    """blkio stat lines "8:0 Read 1282048" / "8:0 6792" → entries; the
    "Total N" line is skipped."""
    entries = []
    for line in (text or "").splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue
        try:
            major, minor = int(fields[0]), int(fields[1])
            op, value = (fields[2], int(fields[3])) if len(fields) == 4 else ("", int(fields[2]))
        except (ValueError, IndexError):
            continue
        entries.append({"major": major, "minor": minor, "op": op, "value": value})
    return entries


def _list_or_empty(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


# ---- v2


def _stats_v2(directory: str, s: _Stats) -> None:
    current = _read_uint(directory, "pids.current")
    if current is None:
        procs = _read_text(os.path.join(directory, "cgroup.procs")) or ""
        s.pids_current = procs.count("\n")
    else:
        s.pids_current = current
        limit = _read_uint(directory, "pids.max") or 0
        s.pids_limit = 0 if limit == conv.MAX_UINT64 else limit
    raw = _read_key_values(directory, "memory.stat")
    if raw is not None:
        s.raw = raw
        s.cache = raw.get("file", 0)
        usage = _read_uint(directory, "memory.current")
        if usage is not None:
            limit = _read_uint(directory, "memory.max") or 0
            s.memory["usage"] = {"usage": usage, "limit": limit, "failcnt": 0,
                                 "max": _read_uint(directory, "memory.peak") or 0}
            swap = _read_uint(directory, "memory.swap.current")
            if swap is not None:
                # v1 reports memory+swap; so does runc on v2.
                swap_limit = _read_uint(directory, "memory.swap.max") or 0
                if swap_limit != conv.MAX_UINT64:
                    swap_limit += limit
                s.memory["swap"] = {"usage": swap + usage, "limit": swap_limit, "failcnt": 0, "max": 0}
    for line in (_read_text(os.path.join(directory, "io.stat")) or "").splitlines():
        fields = line.split()
        if not fields or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        for item in fields[1:]:
            key, _, value = item.partition("=")
            field, op = _V2_IO_KEYS.get(key, (None, None))
            if field is None or not value.isdigit():
                continue
            s.blkio.setdefault(field, []).append({"major": int(major), "minor": int(minor), "op": op,
                                                  "value": int(value)})
    cpu = _read_key_values(directory, "cpu.stat") or {}
    s.cpu_total = cpu.get("usage_usec", 0) * 1000
    s.cpu_user = cpu.get("user_usec", 0) * 1000
    s.cpu_kernel = cpu.get("system_usec", 0) * 1000
    s.throttling = {"periods": cpu.get("nr_periods", 0), "throttledPeriods": cpu.get("nr_throttled", 0),
                    "throttledTime": cpu.get("throttled_usec", 0) * 1000}
    for name in sorted(_list_or_empty(directory)):
        if name.startswith("hugetlb.") and name.endswith(".current") and ".rsvd." not in name:
            size = name[len("hugetlb."):-len(".current")]
            events = _read_key_values(directory, f"hugetlb.{size}.events") or {}
            s.hugetlb[size] = {"usage": _read_uint(directory, name) or 0, "max": 0, "failcnt": events.get("max", 0)}


# io.stat keys → (runc's v1-style table, op)
_V2_IO_KEYS = {"rbytes": ("ioServiceBytesRecursive", "Read"), "wbytes": ("ioServiceBytesRecursive", "Write"),
               "rios": ("ioServicedRecursive", "Read"), "wios": ("ioServicedRecursive", "Write")}
