"""config-linux.md, Namespaces (new, joined by path, inherited) and
User namespace mappings, Offset for Time Namespace; config.md Hostname/Domainname."""

from __future__ import annotations

import os
import time

from .harness import Skip, test

# OCI type -> /proc/<pid>/ns name
PROC_NAME = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
             "cgroup": "cgroup", "time": "time"}
UNSHARE_FLAG = {"network": "--net", "ipc": "--ipc", "uts": "--uts", "cgroup": "--cgroup", "time": "--time",
                "pid": "--pid"}


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def seen_namespaces(probes: dict) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in probes.get("ns", "").splitlines() if " " in line)


def kernel_has(name: str) -> bool:
    return os.path.exists(f"/proc/self/ns/{name}")


@test("namespaces", "config-linux.md#namespaces")
def new_namespaces_are_created(t):
    """each namespace listed without a path is a new one"""
    b = t.bundle("probe_ns")
    types = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    b.config["linux"]["namespaces"] = [{"type": n} for n in types]
    seen = seen_namespaces(t.run(b))
    for n in types:
        name = PROC_NAME[n]
        t.check(seen.get(name) and seen.get(name) != host_ns(name),
                f"{n}: container namespace {seen.get(name)} must be new (the host's is {host_ns(name)})")


@test("namespaces", "config-linux.md#namespaces")
def unlisted_namespaces_are_inherited(t):
    """a namespace type not listed is the runtime's"""
    b = t.bundle("probe_ns")
    b.config["linux"]["namespaces"] = [{"type": "mount"}]
    b.config.pop("hostname", None)
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] not in ("/sys", "/dev/mqueue")]
    b.config["linux"].pop("sysctl", None)
    seen = seen_namespaces(t.run(b))
    for n in ("pid", "network", "ipc", "uts", "cgroup"):
        name = PROC_NAME[n]
        t.equal(seen.get(name), host_ns(name), f"{n} namespace (not listed: inherited)")


def _link_or_none(path: str) -> str | None:
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return None


def join_by_path(t, ns_type: str, path_name: str | None = None):
    if not kernel_has(PROC_NAME[ns_type]):
        raise Skip(f"the kernel has no {ns_type} namespaces")
    holder = t.spawn(["unshare", UNSHARE_FLAG[ns_type], *(["--fork"] if ns_type == "pid" else []), "sleep", "300"])
    proc_name = path_name or PROC_NAME[ns_type]
    path = f"/proc/{holder.pid}/ns/{proc_name}"
    deadline = time.monotonic() + 5
    while _link_or_none(path) in (None, host_ns(PROC_NAME[ns_type])) and time.monotonic() < deadline:
        # unshare(1) has not unshared yet; or, for pid_for_children, it has
        # but not forked yet: the kernel hides a pid namespace without its
        # init (no child reaper) and the link is ENOENT until then.
        time.sleep(0.02)
    want = os.readlink(path)
    b = t.bundle("probe_ns")
    namespaces = [n for n in b.config["linux"]["namespaces"] if n["type"] != ns_type]
    b.config["linux"]["namespaces"] = namespaces + [{"type": ns_type, "path": path}]
    seen = seen_namespaces(t.run(b))
    t.equal(seen.get(PROC_NAME[ns_type]), want, f"{ns_type} namespace joined by path {path}")


@test("namespaces", "config-linux.md#namespaces")
def join_network_namespace_by_path(t):
    """network namespace path: the container is placed in it"""
    join_by_path(t, "network")


@test("namespaces", "config-linux.md#namespaces")
def join_uts_namespace_by_path(t):
    """uts namespace path: the container is placed in it"""
    join_by_path(t, "uts")


@test("namespaces", "config-linux.md#namespaces")
def join_ipc_namespace_by_path(t):
    """ipc namespace path: the container is placed in it"""
    join_by_path(t, "ipc")


@test("namespaces", "config-linux.md#namespaces")
def join_pid_namespace_by_path(t):
    """pid namespace path: the container is placed in it"""
    join_by_path(t, "pid", "pid_for_children")


@test("namespaces", "config-linux.md#namespaces")
def join_cgroup_namespace_by_path(t):
    """cgroup namespace path: the container is placed in it"""
    join_by_path(t, "cgroup")


@test("namespaces", "config-linux.md#namespaces")
def cgroup_namespace_root_is_the_container_cgroup(t):
    """a new cgroup namespace shows the container's cgroup as its root"""
    b = t.bundle("probe_cgroup")
    b.config["linux"]["namespaces"].append({"type": "cgroup"})
    lines = [line for line in t.run(b).get("cgroup", "").splitlines() if line]
    t.check(lines and all(line.endswith(":/") for line in lines),
            f"/proc/self/cgroup in a new cgroup namespace: {lines}")


@test("namespaces", "config-linux.md#offset-for-time-namespace")
def time_namespace_with_offsets(t):
    """a new time namespace with linux.timeOffsets"""
    if not kernel_has("time"):
        raise Skip("the kernel has no time namespaces")
    b = t.bundle("probe_ns; probe_timens")
    b.config["ociVersion"] = "1.1.0"
    b.config["linux"]["namespaces"].append({"type": "time"})
    b.config["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 5},
                                        "boottime": {"secs": 3600}}
    result = t.create(b)
    if result.returncode != 0:
        # Runtimes SHOULD support time namespaces; one that cannot MUST fail cleanly.
        t.check_nothing_left(b, "after the refused create")
        if not t.failures:
            raise Skip(f"the runtime does not support time namespaces (SHOULD): {result}")
        return
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)
    probes = b.probes()
    t.check(seen_namespaces(probes).get("time") not in (None, host_ns("time")), "time namespace must be new")
    offsets = {line.split()[0]: line.split()[1:] for line in probes.get("timens", "").splitlines() if line.strip()}
    t.equal(offsets.get("monotonic"), ["86400", "5"], "monotonic offset")
    t.equal(offsets.get("boottime"), ["3600", "0"], "boottime offset")


@test("namespaces", "config-linux.md#user-namespace-mappings")
def user_namespace_with_mappings(t):
    """a new user namespace with uidMappings and gidMappings"""
    script = ("echo @@@ uid_map; cat /proc/$$/uid_map; echo @@@ gid_map; cat /proc/$$/gid_map;"
              " echo @@@ user; readlink /proc/$$/ns/user")
    b = t.bundle(["/bin/sh", "-c", script])
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # sysfs needs a network namespace owned by the user namespace: keep it simple.
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]
    probes = t.run(b)
    t.equal(probes.get("uid_map", "").split(), ["0", "100000", "65536"], "uid_map")
    t.equal(probes.get("gid_map", "").split(), ["0", "200000", "65536"], "gid_map")
    t.check(probes.get("user", "").strip() not in ("", host_ns("user")), "user namespace must be new")


@test("hostname", "config.md#hostname")
def hostname_is_set(t):
    """hostname in a new UTS namespace"""
    b = t.bundle("probe_uts")
    b.config["hostname"] = "conformance-host"
    t.equal(t.run(b).get("uts", "").splitlines()[:1], ["conformance-host"], "hostname")


@test("hostname", "config.md#domainname")
def domainname_is_set(t):
    """domainname in a new UTS namespace"""
    b = t.bundle("probe_uts")
    b.config["ociVersion"] = "1.1.0"
    b.config["domainname"] = "conformance.test"
    t.equal(t.run(b).get("uts", "").splitlines()[1:2], ["conformance.test"], "domainname")
