"""The same scenario under runc and pyrunc (issue 15): where runc's users,
scripts and engines rely on a behaviour, both runtimes must show it. Each
test runs once per runtime (`rt`), with the same bundle and the same
assertions; the runc run is skipped where runc is not installed (runc 1.1.5,
Debian 12's, is the reference)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests import leaks
from tests.integration.conftest import Runtime, leftover_cgroups

RUNC = shutil.which("runc")
PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat_probe.c")


class Runc(Runtime):
    """runc with a private --root, driven like the pyrunc Runtime."""

    def __init__(self, root: str):
        self.root = root
        self.cmd = [RUNC, "--root", root]
        self.name = "runc"


@pytest.fixture(params=["pyrunc", "runc"])
def rt(request, tmp_path):
    """pyrunc, then runc: each with its own state root; afterwards every
    container is force-deleted and nothing may be left behind."""
    root = str(tmp_path / f"state-{request.param}")
    if request.param == "runc":
        if not RUNC:
            pytest.skip("needs runc")
        runtime = Runc(root)
    else:
        runtime = Runtime(root)
        runtime.name = "pyrunc"
    yield runtime
    for container_id in runtime.ids():
        runtime("delete", "--force", container_id)
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    assert leaks.mounts_mentioning(str(tmp_path)) == []


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """compat_probe.c, built static once."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the probe")
    binary = str(tmp_path_factory.mktemp("probe") / "compat_probe")
    built = subprocess.run(["gcc", "-static", "-O2", "-o", binary, PROBE_SOURCE], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a static probe: {built.stderr[-300:]}")
    return binary


@pytest.fixture
def probe_bundle(bundle, probe_binary):
    shutil.copy2(probe_binary, os.path.join(bundle.rootfs, "bin", "compat_probe"))
    return bundle


def run(rt, bundle, *args, flags=()):
    """`run` of the bundle with `args` as the process; the Result."""
    bundle.config["process"]["args"] = list(args)
    bundle.write()
    return rt("run", *flags, "--bundle", bundle.path, bundle.id)


def add_caps(bundle, *caps):
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].extend(caps)


# ----------------------------------------------------------------- 1. --no-pivot and a fresh procfs

@pytest.mark.parametrize("flags", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_fresh_procfs_from_a_nested_user_namespace_is_refused(rt, probe_bundle, flags):
    """The kernel lets a user namespace mount procfs only where a whole
    procfs is visible in its mount namespace. Behind --no-pivot's chroot the
    host's /proc is still there unless the runtime detaches it: the
    container's mount would then succeed, a /proc without the masked paths."""
    result = run(rt, probe_bundle, "compat_probe", "procfs", flags=flags)
    assert result.returncode == 0, result
    assert result.stdout == "procfs: EPERM\n", result


# ----------------------------------------------------------------- 2. read-only /dev

def test_read_only_dev_tmpfs_gets_its_mounts_and_devices_first(rt, bundle):
    """A "ro" /dev tmpfs: devpts, shm, mqueue, the devices and links go in
    first; /dev turns read-only after (runc's finalizeRootfs)."""
    for mount in bundle.config["mounts"]:
        if mount["destination"] == "/dev":
            mount["options"].append("ro")
    bundle.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["ro", "nosuid", "tmpcopyup"]})
    os.makedirs(os.path.join(bundle.rootfs, "scratch"))
    with open(os.path.join(bundle.rootfs, "scratch", "kept"), "w") as f:
        f.write("copied\n")
    result = run(rt, bundle, "sh", "-c",
                 "ls /dev/pts/ptmx /dev/null /dev/shm /dev/mqueue /dev/stdout >/dev/null && echo made;"
                 "touch /dev/x 2>/dev/null && echo dev-writable || echo dev-read-only;"
                 "cat /scratch/kept; touch /scratch/y 2>/dev/null && echo tmpfs-writable || echo tmpfs-read-only;"
                 "grep -E ' /dev | /scratch ' /proc/self/mountinfo | cut -d' ' -f5,6")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[:4] == ["made", "dev-read-only", "copied", "tmpfs-read-only"], result
    assert sorted(lines[4:]) == ["/dev ro,nosuid", "/scratch ro,nosuid,relatime"], result


# ----------------------------------------------------------------- 3. rro on every Python

def test_recursive_read_only_bind_mount(rt, bundle, tmp_path):
    """rro (mount_setattr AT_RECURSIVE): crashed on Python 3.11, where os has
    no AT_EMPTY_PATH (tests/unit/test_stdlib_names.py guards the class)."""
    shared = tmp_path / "shared"
    (shared / "sub").mkdir(parents=True)
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "rro"]})
    result = run(rt, bundle, "sh", "-c", "touch /shared/x 2>&1; echo $?")
    assert result.returncode == 0, result
    assert result.stdout.endswith("1\n") and "Read-only file system" in result.stdout, result


# ----------------------------------------------------------------- 4. seccomp: -ENOSYS above the profile

# Enough for both runtimes' last steps, busybox and the probe; the highest
# is faccessat2 (439).
ALLOWED = sorted({
    "access", "arch_prctl", "brk", "capget", "capset", "chdir", "clone", "close", "close_range", "dup2", "dup3",
    "epoll_ctl", "epoll_pwait", "execve", "exit", "exit_group", "faccessat", "faccessat2", "fchdir", "fcntl",
    "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getegid", "geteuid", "getgid", "getpid", "getppid",
    "getrandom", "gettid", "getuid", "ioctl", "lseek", "madvise", "mmap", "mprotect", "munmap", "nanosleep",
    "newfstatat", "openat", "poll", "ppoll", "prctl", "pread64", "prlimit64", "read", "readlink", "readlinkat",
    "recvmsg", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_yield", "sendmsg", "sendto",
    "set_robust_list", "set_tid_address", "setgroups", "setresgid", "setresuid", "setsid", "sigaltstack", "stat",
    "statfs", "statx", "tgkill", "uname", "wait4", "write", "writev"})


@pytest.mark.parametrize("architectures", [["SCMP_ARCH_X86_64"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]])
def test_seccomp_syscall_above_the_profile_gets_enosys(rt, probe_bundle, architectures):
    """Numbers above the highest the profile names get -ENOSYS, so libc falls
    back (clone3 → clone) and future syscalls look absent; one below it that
    the profile does not allow gets the default action's EPERM."""
    if os.uname().machine != "x86_64":
        pytest.skip("the profile is x86_64's")
    probe_bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": architectures,
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]}
    result = run(rt, probe_bundle, "sh", "-c",
                 "compat_probe syscall 1000; compat_probe syscall 440; compat_probe syscall 435")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["errno=ENOSYS", "errno=ENOSYS", "errno=EPERM"], result


def test_seccomp_enosys_prefix_not_with_an_allowing_default(rt, probe_bundle):
    """With an allowing default the filter lets unknown numbers through to
    the kernel (which answers ENOSYS itself), and a denied call is EPERM."""
    probe_bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getcpu"], "action": "SCMP_ACT_ERRNO"}]}
    result = run(rt, probe_bundle, "sh", "-c", "compat_probe syscall 1000; compat_probe syscall 309")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["errno=ENOSYS", "errno=EPERM"], result
