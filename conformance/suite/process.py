"""config.md, Process (args, env, cwd, user, rlimits, capabilities, noNewPrivileges,
oomScoreAdj) and config-linux.md, Sysctl. What the container sees comes from the
container process's own /proc/<pid>/status, limits, environ and cmdline."""

from __future__ import annotations

import os
import resource

from .harness import read_file, status_fields, test

# capabilities(7), by number
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
STATUS_FIELD = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
                "ambient": "CapAmb"}


def decode_caps(hexmask: str) -> set[str]:
    mask = int(hexmask or "0", 16)
    return {CAPS[i] if i < len(CAPS) else f"CAP_{i}" for i in range(64) if mask >> i & 1}


def host_caps() -> list[str]:
    """The capabilities the suite (so the runtime) holds in its bounding set."""
    return sorted(decode_caps(status_fields(read_file("/proc/self/status") or "").get("CapBnd", "0")))


def check_caps(t, caps: dict, user: dict | None = None) -> None:
    b = t.bundle("probe_status")
    b.config["process"]["capabilities"] = caps
    if user:
        b.config["process"]["user"] = user
    status = status_fields(t.run(b).get("status", ""))
    for name, field in STATUS_FIELD.items():
        t.equal(sorted(decode_caps(status.get(field, ""))), sorted(caps.get(name, [])), f"{name} set ({field})")


@test("capabilities", "config.md#linux-process")
def capabilities_default_set(t):
    """runc's default three capabilities, in every set they are listed in"""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    check_caps(t, {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []})


@test("capabilities", "config.md#linux-process")
def capabilities_inheritable_and_ambient_as_root(t):
    """root: inheritable and ambient subsets are kept"""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETGID",
            "CAP_SETUID", "CAP_SYS_CHROOT"]
    check_caps(t, {"bounding": caps, "effective": caps, "permitted": caps,
                   "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]})


@test("capabilities", "config.md#linux-process")
def capabilities_ambient_for_a_non_root_user(t):
    """a non-root user keeps its ambient capabilities (and so permitted and effective)"""
    amb = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    check_caps(t, {"bounding": ["CAP_CHOWN", "CAP_KILL", *amb], "effective": amb, "permitted": amb,
                   "inheritable": amb + ["CAP_KILL"], "ambient": amb}, user={"uid": 1000, "gid": 1000})


@test("capabilities", "config.md#linux-process")
def capabilities_every_host_capability(t):
    """every capability the runtime holds, in bounding, effective and permitted"""
    caps = host_caps()
    check_caps(t, {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []})


@test("capabilities", "config.md#linux-process")
def capabilities_none(t):
    """empty sets: the process has no capabilities at all"""
    check_caps(t, {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []})


# ---------------------------------------------------------------- rlimits

# RLIMIT_* -> (/proc/<pid>/limits row, resource module constant)
LIMITS = {
    "RLIMIT_CPU": "Max cpu time", "RLIMIT_FSIZE": "Max file size", "RLIMIT_DATA": "Max data size",
    "RLIMIT_STACK": "Max stack size", "RLIMIT_CORE": "Max core file size", "RLIMIT_RSS": "Max resident set",
    "RLIMIT_NPROC": "Max processes", "RLIMIT_NOFILE": "Max open files", "RLIMIT_MEMLOCK": "Max locked memory",
    "RLIMIT_AS": "Max address space", "RLIMIT_LOCKS": "Max file locks", "RLIMIT_SIGPENDING": "Max pending signals",
    "RLIMIT_MSGQUEUE": "Max msgqueue size", "RLIMIT_NICE": "Max nice priority", "RLIMIT_RTPRIO": "Max realtime priority",
    "RLIMIT_RTTIME": "Max realtime timeout",
}
UNLIMITED = 2 ** 64 - 1
RLIMIT_NUMBER = {name: number for number, name in enumerate(LIMITS)}  # Linux's numbering, in LIMITS' order


def parse_limits(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines()[1:]:
        for row in LIMITS.values():
            if line.startswith(row):
                soft, hard = line[len(row):].split()[:2]
                rows[row] = (soft, hard)
    return rows


def shown(value: int) -> str:
    return "unlimited" if value >= UNLIMITED or value == resource.RLIM_INFINITY else str(value)


@test("rlimits", "config.md#posix-process")
def rlimits_every_type(t):
    """each of the 16 rlimit types: soft and hard as configured"""
    wanted = {"RLIMIT_CPU": (1000, 2000), "RLIMIT_FSIZE": (1 << 30, UNLIMITED), "RLIMIT_DATA": (1 << 32, UNLIMITED),
              "RLIMIT_STACK": (8 << 20, 16 << 20), "RLIMIT_CORE": (0, 1 << 20), "RLIMIT_RSS": (1 << 30, UNLIMITED),
              "RLIMIT_NPROC": (1000, 2000), "RLIMIT_NOFILE": (512, 1024), "RLIMIT_MEMLOCK": (65536, 1 << 20),
              "RLIMIT_AS": (UNLIMITED, UNLIMITED), "RLIMIT_LOCKS": (100, 200), "RLIMIT_SIGPENDING": (100, 1000),
              "RLIMIT_MSGQUEUE": (8192, 16384), "RLIMIT_NICE": (0, 0), "RLIMIT_RTPRIO": (0, 0),
              "RLIMIT_RTTIME": (100000, 200000)}
    rlimits = []
    for name, (soft, hard) in wanted.items():
        # Never above the suite's own hard limit: raising one needs CAP_SYS_RESOURCE.
        own_hard = resource.getrlimit(RLIMIT_NUMBER[name])[1]
        if own_hard != resource.RLIM_INFINITY:
            hard = min(hard, own_hard)
            soft = min(soft, hard)
        rlimits.append({"type": name, "soft": soft, "hard": hard})
    b = t.bundle("probe_limits")
    b.config["process"]["rlimits"] = rlimits
    seen = parse_limits(t.run(b).get("limits", ""))
    for r in rlimits:
        t.equal(seen.get(LIMITS[r["type"]]), (shown(r["soft"]), shown(r["hard"])), f"{r['type']} (soft, hard)")


@test("rlimits", "config.md#posix-process")
def rlimits_not_listed_are_inherited(t):
    """rlimits not in the config are left as the runtime's"""
    b = t.bundle("probe_limits")
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]
    seen = parse_limits(t.run(b).get("limits", ""))
    soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    t.equal(seen.get(LIMITS["RLIMIT_MSGQUEUE"]), (shown(soft), shown(hard)), "RLIMIT_MSGQUEUE (not configured)")
    t.equal(seen.get(LIMITS["RLIMIT_NOFILE"]), ("256", "512"), "RLIMIT_NOFILE")


# ---------------------------------------------------------------- sysctl

@test("sysctl", "config-linux.md#sysctl")
def sysctl_values_are_set_in_the_container(t):
    """linux.sysctl: values are in effect in the container's namespaces, the host's are untouched"""
    sysctl = {"kernel.shmmax": "4096000", "kernel.msgmax": "16384", "net.ipv4.ip_forward": "1",
              "net.core.somaxconn": "1234"}
    host_before = {k: read_file("/proc/sys/" + k.replace(".", "/")) for k in sysctl}
    b = t.bundle(f"probe_sysctl {' '.join(sysctl)}")
    b.config["linux"]["sysctl"] = sysctl
    probes = t.run(b)
    for key, value in sysctl.items():
        t.equal(probes.get(f"sysctl {key}", "").strip(), value, f"sysctl {key}")
        t.equal(read_file("/proc/sys/" + key.replace(".", "/")), host_before[key], f"host's {key} changed")


# ---------------------------------------------------------------- user, env, cwd, args, ...

@test("process", "config.md#posix-platform-user")
def user_uid_and_gid(t):
    """process.user uid and gid (real, effective, saved, fs)"""
    b = t.bundle("probe_status")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1001}
    status = status_fields(t.run(b).get("status", ""))
    t.equal(status.get("Uid", "").split(), ["1000"] * 4, "Uid")
    t.equal(status.get("Gid", "").split(), ["1001"] * 4, "Gid")


@test("process", "config.md#posix-platform-user")
def user_additional_gids(t):
    """process.user.additionalGids are the process's supplementary groups"""
    b = t.bundle("probe_status")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20, 3000]}
    groups = {int(g) for g in status_fields(t.run(b).get("status", "")).get("Groups", "").split()}
    t.check({10, 20, 3000} <= groups <= {10, 20, 3000, 1001}, f"Groups: {sorted(groups)}, want 10, 20, 3000")


@test("process", "config.md#posix-platform-user")
def user_umask(t):
    """process.user.umask"""
    b = t.bundle("probe_umask")
    b.config["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    t.equal(t.run(b).get("umask", "").strip(), "0027", "umask")


@test("process", "config.md#process")
def cwd_is_the_working_directory(t):
    """process.cwd is the working directory"""
    b = t.bundle("probe_cwd")
    os.makedirs(os.path.join(b.rootfs, "srv", "workdir"))
    b.config["process"]["cwd"] = "/srv/workdir"
    t.equal(t.run(b).get("cwd", "").strip(), "/srv/workdir", "working directory")


@test("process", "config.md#process")
def env_is_the_environment(t):
    """process.env entries are in the process environment, values verbatim"""
    b = t.bundle("probe_environ")
    extra = ["CONF_A=1", "CONF_EMPTY=", "CONF_EQUALS=a=b=c", "CONF_SPACES=with some spaces"]
    b.config["process"]["env"] += extra
    environ = t.run(b).get("environ", "").splitlines()
    for entry in b.config["process"]["env"]:
        t.check(entry in environ, f"{entry!r} missing from the environment {environ}")


@test("process", "config.md#process")
def args_are_the_argv(t):
    """process.args is the argv of the process, verbatim"""
    args = ["/bin/sh", "-c", ". /.conformance/lib.sh; probe_cmdline", "zero", "one two", ""]
    b = t.bundle(args)
    t.equal(t.run(b).get("cmdline", "").split("\n"), args, "argv")


@test("process", "config.md#process")
def args0_is_looked_up_in_the_container_path(t):
    """args[0] without a slash is found through the container's PATH (execvp)"""
    b = t.bundle(["conformance-tool"])
    os.makedirs(os.path.join(b.rootfs, "opt", "tools"))
    tool = os.path.join(b.rootfs, "opt", "tools", "conformance-tool")
    with open(tool, "w") as f:
        f.write("#!/bin/sh\necho found-through-path\n")
    os.chmod(tool, 0o755)
    b.config["process"]["env"][0] = "PATH=/opt/tools:/bin"
    t.run(b)
    t.equal(b.output().strip(), "found-through-path", "output")


@test("process", "config.md#linux-process")
def no_new_privileges_true(t):
    """noNewPrivileges true sets no_new_privs"""
    b = t.bundle("probe_status")
    b.config["process"]["noNewPrivileges"] = True
    t.equal(status_fields(t.run(b).get("status", "")).get("NoNewPrivs"), "1", "NoNewPrivs")


@test("process", "config.md#linux-process")
def no_new_privileges_false(t):
    """noNewPrivileges false leaves no_new_privs off"""
    b = t.bundle("probe_status")
    b.config["process"]["noNewPrivileges"] = False
    t.equal(status_fields(t.run(b).get("status", "")).get("NoNewPrivs"), "0", "NoNewPrivs")


def own_oom_score_adj() -> int:
    return int((read_file("/proc/self/oom_score_adj") or "0").strip())


@test("process", "config.md#linux-process")
def oom_score_adj_is_set(t):
    """oomScoreAdj is written to the process's oom_score_adj"""
    want = min(own_oom_score_adj() + 123, 1000)  # raising needs no privilege, lowering would
    b = t.bundle("probe_oom")
    b.config["process"]["oomScoreAdj"] = want
    t.equal(t.run(b).get("oom", "").strip(), str(want), "oom_score_adj")


@test("process", "config.md#linux-process")
def oom_score_adj_unset_is_unchanged(t):
    """without oomScoreAdj the value is not changed (the runtime's is inherited)"""
    b = t.bundle("probe_oom")
    b.config["process"].pop("oomScoreAdj", None)
    t.equal(t.run(b).get("oom", "").strip(), str(own_oom_score_adj()), "oom_score_adj")
