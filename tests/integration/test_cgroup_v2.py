"""cgroup v2 on this host's real cgroup2 mount (/sys/fs/cgroup/unified on a
hybrid host, /sys/fs/cgroup on a pure v2 one): creating cgroups, moving processes, freezing, cgroup.kill and
removal, through the same code the containers use. Only cgroups this test
creates are touched."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from pyrunc.linux.cgroups import apply
from pyrunc.linux.cgroups.fs import CgroupDirs
from tests import cgroupfs
from tests.integration.conftest import CGROUP_PARENT

UNIFIED = cgroupfs.v2_mount()


@pytest.fixture
def v2_cgroup():
    if UNIFIED is None:
        pytest.skip("no cgroup2 mount on this host")
    dirs = CgroupDirs({"": os.path.join(UNIFIED, CGROUP_PARENT + "-v2", "c1")})
    dirs.create()
    yield dirs
    dirs.kill_all()
    assert dirs.destroy() == []
    assert not os.path.exists(os.path.join(UNIFIED, CGROUP_PARENT + "-v2"))


def move(dirs: CgroupDirs, pid: int) -> None:
    with open(os.path.join(dirs.paths[""], "cgroup.procs"), "w") as f:
        f.write(str(pid))


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "30"])


def test_v2_create_add_and_list(v2_cgroup):
    proc = sleeper()
    try:
        move(v2_cgroup, proc.pid)
        assert v2_cgroup.pids() == [proc.pid]
        assert f"0::/{CGROUP_PARENT}-v2/c1" in open(f"/proc/{proc.pid}/cgroup").read()
    finally:
        proc.kill()
        proc.wait()


def test_v2_freeze_and_thaw(v2_cgroup):
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        move(v2_cgroup, proc.pid)
        apply.freeze(v2_cgroup.paths)
        assert apply.is_frozen(v2_cgroup.paths)
        assert "frozen 1" in open(os.path.join(v2_cgroup.paths[""], "cgroup.events")).read()
        before = int(open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11])
        time.sleep(0.2)
        after = int(open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11])
        assert after == before, "a frozen process kept running"
        apply.thaw(v2_cgroup.paths)
        assert not apply.is_frozen(v2_cgroup.paths)
    finally:
        proc.kill()
        proc.wait()


def test_v2_cgroup_kill_takes_the_whole_tree(v2_cgroup):
    # The shell forks only once it is in the cgroup (after reading a line).
    proc = subprocess.Popen(["sh", "-c", "read go; sleep 30 & sleep 30 & wait"], stdin=subprocess.PIPE)
    try:
        move(v2_cgroup, proc.pid)
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        time.sleep(0.2)
        assert len(v2_cgroup.pids()) == 3
        v2_cgroup.kill_all()
        assert v2_cgroup.pids() == []
        assert proc.wait(timeout=5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _forked_child_report(dirs: CgroupDirs, namespace_flags: int = 0) -> tuple[bool, int, str]:
    """fork_into(dirs, namespace_flags); the child sends back its pid, its
    /proc/self/cgroup, and whether its C library's idea of its tid is its
    real one."""
    import ctypes

    from pyrunc.launcher import fork_into
    from pyrunc.linux import _libc_ctypes
    from pyrunc.linux.cgroups.manager import FsV2Manager

    r, w = os.pipe()
    pid, join_v2, cloned_with = fork_into(FsV2Manager(dirs), namespace_flags)
    if pid == 0:
        try:
            os.close(r)
            address = _libc_ctypes._own_tid_address()
            libc_tid = ctypes.c_int32.from_address(address).value if address else os.getpid()
            os.write(w, f"{libc_tid == os.getpid()} {os.getpid()}\n{open('/proc/self/cgroup').read()}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        report = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    first, cgroup = report.split("\n", 1)
    tid_ok, child_pid = first.split()
    assert tid_ok == "True", "the child's C library believes it is its parent's thread"
    assert cloned_with in (0, namespace_flags)
    return join_v2, cloned_with, int(child_pid), cgroup


def test_fork_into_starts_the_child_in_the_cgroup(v2_cgroup):
    """clone3(CLONE_INTO_CGROUP): the child is in the container's cgroup
    before it runs a line, so it has no cgroup.procs write (and no RCU grace
    period) to pay; the parent stays where it was."""
    join_v2, cloned_with, _, cgroup = _forked_child_report(v2_cgroup)
    assert join_v2 is False and cloned_with == 0
    assert f"0::/{CGROUP_PARENT}-v2/c1\n" in cgroup
    assert f"/{CGROUP_PARENT}-v2" not in open("/proc/self/cgroup").read()


def test_fork_into_new_namespaces_makes_pid_1(v2_cgroup):
    """With CLONE_NEWPID the child is pid 1 of its namespace at once: the
    init needs no second fork (stage1.run_as_init)."""
    from pyrunc.linux import namespaces

    flags = namespaces.CLONE_FLAGS["pid"] | namespaces.CLONE_FLAGS["uts"]
    join_v2, cloned_with, child_pid, cgroup = _forked_child_report(v2_cgroup, flags)
    assert (join_v2, cloned_with, child_pid) == (False, flags, 1)
    assert f"0::/{CGROUP_PARENT}-v2/c1\n" in cgroup


def test_fork_into_a_directory_that_is_no_cgroup_falls_back_to_fork(tmp_path):
    """Where clone3 says no (here: the fd is not a cgroup; elsewhere an old
    kernel or a seccomp filter), a plain fork, and the child joins itself."""
    join_v2, cloned_with, child_pid, cgroup = _forked_child_report(CgroupDirs({"": str(tmp_path)}))
    assert join_v2 is True and cloned_with == 0 and child_pid > 1
    assert cgroup == open("/proc/self/cgroup").read()


def test_whole_container_on_a_cgroup_v2_only_host(runtime, bundle, tmp_path):
    """A host with only cgroup v2, made in a private mount namespace: there
    the v1 hierarchies are unmounted and this host's cgroup2 hierarchy is
    moved to /sys/fs/cgroup (bind mounts only: mounting cgroup2 anew would
    reset its options for the whole machine). The init is cloned straight
    into its v2 cgroup, the device filter is attached while it loads its
    code, and it runs inside both."""
    if UNIFIED is None:
        pytest.skip("no cgroup2 mount on this host")
    if cgroupfs.is_unified():
        pytest.skip("this host is cgroup v2 only: every container test here runs that way")
    hold = tmp_path / "cgroup2"
    hold.mkdir()

    setup = (f"mount --bind {UNIFIED} {hold} && umount -R /sys/fs/cgroup && "
             f"mount --move {hold} /sys/fs/cgroup")
    v2_host = ["unshare", "-m", "--propagation", "private", "sh", "-c", setup + ' && exec "$@"', "sh"]

    def on_v2_host(*args):
        return runtime(*args, wrapper=v2_host)

    bundle.config["process"]["args"] = ["sh", "-c", "echo $$; cat /proc/self/cgroup; echo ok > /dev/null && echo dev-ok"]
    bundle.write()
    result = on_v2_host("--debug", "run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert "phase cloned into the cgroup and namespaces" in result.stderr
    pid, *cgroup, dev = result.stdout.split()
    # /proc/self/cgroup lists the v1 hierarchies too (the kernel has them,
    # unmounted or not): in the cgroup namespace, every line is its root.
    assert (pid, dev) == ("1", "dev-ok") and "0::/" in cgroup, result.stdout
    assert all(line.endswith(":/") for line in cgroup), result.stdout

    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    try:
        result = on_v2_host("run", "--detach", "--bundle", bundle.path, bundle.id)
        assert result.returncode == 0, result
        state = json.loads(on_v2_host("state", bundle.id).stdout)
        assert f"0::/{CGROUP_PARENT}/{bundle.id}\n" in open(f"/proc/{state['pid']}/cgroup").read()
    finally:
        result = on_v2_host("delete", "--force", bundle.id)
    assert result.returncode == 0, result
    assert not os.path.exists(os.path.join(UNIFIED, CGROUP_PARENT, bundle.id))
