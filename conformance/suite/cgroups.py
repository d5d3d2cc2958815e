"""config-linux.md, Control groups: cgroupsPath (absolute, relative, existing)
and linux.resources as the container's cgroup files show them (cgroup v1
controllers, or the cgroup2 files on a unified host), read from the host."""

from __future__ import annotations

import os

from .harness import (
    CGROUP_PARENT,
    CGROUP_ROOT,
    CgroupParent,
    Skip,
    cgroup_hierarchies,
    controller_dir,
    is_cgroup2,
    read_file,
    test,
)


def proc_cgroups(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup from the host: {hierarchy name: path}."""
    out = {}
    for line in (read_file(f"/proc/{pid}/cgroup") or "").splitlines():
        _, names, path = line.split(":", 2)
        out[names] = path
    return out


def sleeping(t, cgroups_path: str | None = None, cgroup: CgroupParent | None = None, resources: dict | None = None,
             preexisting: bool = False):
    b = t.bundle(["sleep", "30"], cgroups_path=cgroups_path)
    b.cgroup_preexisting = preexisting
    if resources is not None:
        b.config["linux"]["resources"] = resources
    t.ok(t.create(b, cgroup=cgroup), "create")
    return b, t.rt.state(b.id)["pid"]


def finish(t, b, cgroup_dirs: list[str] | None = None, cgroup: CgroupParent | None = None) -> None:
    t.ok(t.rt("kill", b.id, "KILL"), "kill")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id, cgroup=cgroup), "delete")
    t.check_nothing_left(b, cgroups_dirs=cgroup_dirs)


@test("cgroups", "config-linux.md#cgroups-path")
def absolute_cgroups_path(t):
    """an absolute cgroupsPath is relative to each hierarchy's mount point; removed on delete"""
    b, pid = sleeping(t)
    want = "/" + b.cgroups_path.strip("/")
    seen = proc_cgroups(pid)
    needed = [n for n in ("memory", "pids", "cpu", "devices") if controller_dir(n)]
    for name, path in seen.items():
        controllers = name.replace("name=", "").split(",")
        if any(c in needed for c in controllers) or (name == "" and is_cgroup2()):
            t.equal(path, want, f"cgroup of the container in hierarchy {name or 'cgroup2'}")
    for controller in needed:
        procs = read_file(os.path.join(controller_dir(controller), want.lstrip("/"), "cgroup.procs")) or ""
        t.check(str(pid) in procs.split(), f"{controller}: pid {pid} not in {want}/cgroup.procs")
    finish(t, b)


@test("cgroups", "config-linux.md#cgroups-path")
def relative_cgroups_path(t):
    """a relative cgroupsPath lands under a runtime-determined place, consistently, with its limits; removed on delete"""
    parent = CgroupParent(f"{CGROUP_PARENT}/runtime-{t.number}").create()
    rel = f"{CGROUP_PARENT}/rel-{t.number}"
    v2 = is_cgroup2()
    if not v2 and controller_dir("memory") is None and controller_dir("pids") is None:
        raise Skip("no memory or pids hierarchy")
    # The runtime runs in a cgroup of its own below the suite's (the relative
    # path's base); a pids limit shows the container's cgroup can take limits
    # there too (on cgroup2 only a cgroup without processes can hand a
    # controller down).
    pids_base = CGROUP_ROOT if v2 and controller_available_v2("pids") else controller_dir("pids")
    resources = {"pids": {"limit": 50}} if pids_base else None
    places = []
    for attempt in range(2):
        b, pid = sleeping(t, cgroups_path=rel, cgroup=parent, resources=resources)
        seen = [p for n, p in proc_cgroups(pid).items()
                if (n == "" if v2 else ("memory" in n.split(",") or "pids" in n.split(",")))]
        path = seen[0] if seen else ""
        places.append(path)
        t.check(path.endswith("/" + rel), f"attempt {attempt + 1}: container cgroup {path!r} does not end in {rel}")
        t.check(path.startswith(f"/{CGROUP_PARENT}/"), f"container cgroup {path!r} is outside the runtime's "
                                                      f"cgroup and the hierarchy root")
        if pids_base and path:
            limit = (read_file(os.path.join(pids_base, path.lstrip("/"), "pids.max")) or "").strip()
            t.equal(limit, "50", f"pids.max of the container's cgroup {path}")
        finish(t, b, [os.path.join(m, path.lstrip("/")) for m in cgroup_hierarchies().values()] if path else [],
               cgroup=parent)
    t.equal(places[1], places[0], "the same relative cgroupsPath attaches to the same place")


@test("cgroups", "runtime.md#delete")
def existing_cgroup_is_not_removed(t):
    """a cgroup that existed before create is not deleted with the container"""
    cid = t.new_id()
    existing = CgroupParent(f"{CGROUP_PARENT}/existing-{cid}").create()
    b, _ = sleeping(t, cgroups_path="/" + existing.relpath, preexisting=True)
    t.ok(t.rt("kill", b.id, "KILL"), "kill")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id), "delete")
    for d in existing.created:
        t.check(os.path.isdir(d), f"delete removed {d}, which the container did not create")
    t.check_nothing_left(b, cgroups_dirs=[])


def controller_available_v2(controller: str) -> bool:
    return controller in (read_file(os.path.join(CGROUP_ROOT, "cgroup.controllers")) or "").split()


def cgroup_file(b, controller: str, name: str) -> str | None:
    """A file of the container's cgroup: in the controller's v1 hierarchy, or
    the cgroup2 one on a cgroup2-only host."""
    base = CGROUP_ROOT if is_cgroup2() else controller_dir(controller)
    if base is None:
        return None
    value = read_file(os.path.join(base, b.cgroups_path.lstrip("/"), name))
    return value.strip() if value is not None else None


def parent_file(controller: str, name: str) -> str:
    """A file of the suite's own parent cgroup (what a container below it
    inherits, or can be given)."""
    base = CGROUP_ROOT if is_cgroup2() else controller_dir(controller)
    return os.path.join(base, CGROUP_PARENT, name)


def needs(*controllers: str) -> None:
    for c in controllers:
        if is_cgroup2() and not controller_available_v2(c):
            raise Skip(f"the {c} controller is not available in this host's cgroup2 hierarchy")
        if not is_cgroup2() and controller_dir(c) is None:
            raise Skip(f"the {c} controller is not mounted")


@test("cgroups", "config-linux.md#memory")
def memory_resources(t):
    """memory limit, reservation, swap, swappiness, disableOOMKiller (cgroup2: the first three)"""
    needs("memory")
    memory = {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10, "disableOOMKiller": True}
    swap_file = "memory.swap.max" if is_cgroup2() else "memory.memsw.limit_in_bytes"
    if os.path.exists(parent_file("memory", swap_file)):
        memory["swap"] = 128 << 20
    b, _ = sleeping(t, resources={"memory": memory, "devices": [{"allow": False, "access": "rwm"}]})
    if is_cgroup2():
        # cgroup2 has no swappiness nor OOM-killer switch per cgroup: runtimes
        # ignore those two there. memory.swap.max is swap alone.
        t.equal(cgroup_file(b, "memory", "memory.max"), str(memory["limit"]), "memory.max")
        t.equal(cgroup_file(b, "memory", "memory.low"), str(memory["reservation"]), "memory.low")
        if "swap" in memory:
            t.equal(cgroup_file(b, "memory", "memory.swap.max"), str(memory["swap"] - memory["limit"]),
                    "memory.swap.max")
        finish(t, b)
        return
    t.equal(cgroup_file(b, "memory", "memory.limit_in_bytes"), str(memory["limit"]), "memory.limit_in_bytes")
    t.equal(cgroup_file(b, "memory", "memory.soft_limit_in_bytes"), str(memory["reservation"]),
            "memory.soft_limit_in_bytes")
    if "swap" in memory:
        t.equal(cgroup_file(b, "memory", "memory.memsw.limit_in_bytes"), str(memory["swap"]),
                "memory.memsw.limit_in_bytes")
    t.equal(cgroup_file(b, "memory", "memory.swappiness"), "10", "memory.swappiness")
    oom = cgroup_file(b, "memory", "memory.oom_control") or ""
    t.check("oom_kill_disable 1" in oom, f"memory.oom_control: {oom!r}")
    finish(t, b)


@test("cgroups", "config-linux.md#cpu")
def cpu_resources(t):
    """cpu shares, quota, period, cpus, mems"""
    needs("cpu", "cpuset")
    # cgroup2's cpuset.cpus is empty until set: what a cgroup may use is .effective
    suffix = ".effective" if is_cgroup2() else ""
    cpus = (read_file(parent_file("cpuset", "cpuset.cpus" + suffix)) or "0").strip() or "0"
    first_cpu = cpus.split(",")[0].split("-")[0]
    mems = (read_file(parent_file("cpuset", "cpuset.mems" + suffix)) or "0").strip() or "0"
    first_mem = mems.split(",")[0].split("-")[0]
    cpu = {"shares": 512, "quota": 50000, "period": 100000, "cpus": first_cpu, "mems": first_mem}
    b, _ = sleeping(t, resources={"cpu": cpu, "devices": [{"allow": False, "access": "rwm"}]})
    if is_cgroup2():
        # shares to weight: runc up to 1.3.1 maps 512 to 20 (linear), later
        # runc and crun to 59 (the curve that keeps 1024 at 100).
        t.check(cgroup_file(b, "cpu", "cpu.weight") in ("20", "59"),
                f"cpu.weight for 512 shares: {cgroup_file(b, 'cpu', 'cpu.weight')!r}, want 20 or 59")
        t.equal(cgroup_file(b, "cpu", "cpu.max"), "50000 100000", "cpu.max")
        t.equal(cgroup_file(b, "cpuset", "cpuset.cpus"), first_cpu, "cpuset.cpus")
        t.equal(cgroup_file(b, "cpuset", "cpuset.mems"), first_mem, "cpuset.mems")
        finish(t, b)
        return
    t.equal(cgroup_file(b, "cpu", "cpu.shares"), "512", "cpu.shares")
    t.equal(cgroup_file(b, "cpu", "cpu.cfs_quota_us"), "50000", "cpu.cfs_quota_us")
    t.equal(cgroup_file(b, "cpu", "cpu.cfs_period_us"), "100000", "cpu.cfs_period_us")
    t.equal(cgroup_file(b, "cpuset", "cpuset.cpus"), first_cpu, "cpuset.cpus")
    t.equal(cgroup_file(b, "cpuset", "cpuset.mems"), first_mem, "cpuset.mems")
    finish(t, b)


@test("cgroups", "config-linux.md#pids")
def pids_resources(t):
    """pids limit"""
    needs("pids")
    b, _ = sleeping(t, resources={"pids": {"limit": 100}, "devices": [{"allow": False, "access": "rwm"}]})
    t.equal(cgroup_file(b, "pids", "pids.max"), "100", "pids.max")
    finish(t, b)


@test("cgroups", "config-linux.md#block-io")
def blkio_weight(t):
    """blockIO weight"""
    if is_cgroup2():
        needs("io")
        # BFQ takes the v1 weight as it is; io.weight (iocost) its v2 conversion.
        candidates = (("io.bfq.weight", "321"), ("io.weight", "3142"))
    else:
        needs("blkio")
        candidates = (("blkio.weight", "321"), ("blkio.bfq.weight", "321"))
    names = [(n, want) for n, want in candidates if os.path.exists(parent_file("blkio", n))]
    if not names:
        raise Skip("no block I/O weight file (no proportional-weight I/O scheduler)")
    name, want = names[0]
    b, _ = sleeping(t, resources={"blockIO": {"weight": 321}, "devices": [{"allow": False, "access": "rwm"}]})
    got = cgroup_file(b, "blkio", name) or ""
    t.check(got.split()[-1:] == [want], f"{name}: {got!r}, want {want}")
    finish(t, b)


def device_rules(t, rules: list[dict]) -> dict[str, str]:
    """A device node c 10:229 (the misc "fuse" numbers) under the given rules,
    opened for reading and for writing; returns what each open said."""
    if controller_dir("devices") is None and not is_cgroup2():
        raise Skip("the devices controller is not mounted")
    b = t.bundle("probe_open /dev/conf-dev")
    b.config["linux"]["devices"] = [{"path": "/dev/conf-dev", "type": "c", "major": 10, "minor": 229,
                                     "fileMode": 0o666, "uid": 0, "gid": 0}]
    b.config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}] + rules}
    text = t.run(b).get("open /dev/conf-dev", "")
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in text.splitlines() if " " in line}


def denied(result: str) -> bool:
    return "not permitted" in result


@test("cgroups", "config-linux.md#allowed-device-list")
def device_allow_read_only(t):
    """deny all, then allow c 10:229 r: reading is allowed, writing is not"""
    seen = device_rules(t, [{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}])
    t.check(not denied(seen.get("read", "not permitted")), f"open for reading was denied: {seen.get('read')}")
    t.check(denied(seen.get("write", "")), f"open for writing was not denied: {seen.get('write')}")


@test("cgroups", "config-linux.md#allowed-device-list")
def device_rules_in_listed_order(t):
    """allow c 10:229 rw, then deny w: the later rule wins"""
    seen = device_rules(t, [{"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                            {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"}])
    t.check(not denied(seen.get("read", "not permitted")), f"open for reading was denied: {seen.get('read')}")
    t.check(denied(seen.get("write", "")), f"open for writing was not denied: {seen.get('write')}")


@test("cgroups", "config-linux.md#allowed-device-list")
def device_rules_in_listed_order_reversed(t):
    """deny c 10:229 w, then allow rw: the later rule wins"""
    seen = device_rules(t, [{"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"},
                            {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}])
    t.check(not denied(seen.get("read", "not permitted")), f"open for reading was denied: {seen.get('read')}")
    t.check(not denied(seen.get("write", "not permitted")), f"open for writing was denied: {seen.get('write')}")


@test("cgroups", "config-linux.md#allowed-device-list")
def device_not_allowed_is_denied(t):
    """deny all and no rule for c 10:229: both opens are denied"""
    seen = device_rules(t, [])
    t.check(denied(seen.get("read", "")), f"open for reading was not denied: {seen.get('read')}")
    t.check(denied(seen.get("write", "")), f"open for writing was not denied: {seen.get('write')}")
