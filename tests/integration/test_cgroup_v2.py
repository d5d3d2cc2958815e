"""cgroup v2 on this host's real cgroup2 mount (/sys/fs/cgroup/unified on a
hybrid host): creating cgroups, moving processes, freezing, cgroup.kill and
removal, through the same code the containers use. Only cgroups this test
creates are touched."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from pyrunc.linux.cgroups import apply
from pyrunc.linux.cgroups.fs import CgroupDirs
from tests.integration.conftest import CGROUP_PARENT

UNIFIED = "/sys/fs/cgroup/unified"


@pytest.fixture
def v2_cgroup():
    if not os.path.isfile(os.path.join(UNIFIED, "cgroup.procs")):
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified")
    dirs = CgroupDirs({"": os.path.join(UNIFIED, CGROUP_PARENT + "-v2", "c1")})
    dirs.create()
    yield dirs
    dirs.kill_all()
    assert dirs.destroy() == []
    assert not os.path.exists(os.path.join(UNIFIED, CGROUP_PARENT + "-v2"))


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "30"])


def test_v2_create_add_and_list(v2_cgroup):
    proc = sleeper()
    try:
        v2_cgroup.add(proc.pid)
        assert v2_cgroup.pids() == [proc.pid]
        assert f"0::/{CGROUP_PARENT}-v2/c1" in open(f"/proc/{proc.pid}/cgroup").read()
    finally:
        proc.kill()
        proc.wait()


def test_v2_freeze_and_thaw(v2_cgroup):
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        v2_cgroup.add(proc.pid)
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
        v2_cgroup.add(proc.pid)
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
