"""1000 lifecycles in a row, and nothing grows: fds of this process,
allocated file handles system-wide, mounts, cgroups, files under the root,
zombies among our children.

This process is a subreaper here, as an engine's shim is: each container
init becomes our child when `create` returns, and we reap it after delete.
Anything else pyrunc left behind (a stage1 nobody waited for, a hook) would
show up as a zombie child of ours.
"""

from __future__ import annotations

import pytest

from tests import leaks
from tests.stress import harness
from tests.stress.harness import scaled


@pytest.fixture
def subreaper():
    with harness.subreaper():
        yield


def sample(rt, paths) -> dict:
    return {
        "fds": leaks.open_fds(),
        "file_handles": leaks.system_file_handles(),
        "mounts_total": leaks.mount_count(),
        "our_mounts": sum(len(leaks.mounts_mentioning(p)) for p in paths),
        "cgroups": len(leaks.cgroup_dirs_under(harness.CGROUP_PARENT)),
        "root_files": len(leaks.files_under(rt.root)),
        "zombies": len(leaks.zombie_children()),
        "children": len(leaks.children()),
    }


def test_lifecycles_leak_nothing(rt, bundles, tmp_path, subreaper):
    n = scaled(1000, minimum=20)
    pid_file = str(tmp_path / "pid")
    paths = [bundles.base, rt.root]
    samples = []
    every = max(1, n // 10)
    for i in range(n):
        container_id = f"l{i % 7}"
        outcomes = harness.lifecycle(rt, bundles, container_id, pid_file=pid_file, reap=True)
        assert [o for o in outcomes if o.rc != 0] == [], outcomes
        if i % every == 0 or i == n - 1:
            samples.append(sample(rt, paths))
    first, last = samples[0], samples[-1]
    report = "\n".join(f"  {k}: {first[k]} -> {last[k]} (max {max(s[k] for s in samples)})" for k in first)
    print(f"\n{n} lifecycles, {rt.calls} commands:\n{report}")
    assert last["fds"] <= first["fds"], report
    assert all(s["our_mounts"] == 0 for s in samples), report
    assert all(s["cgroups"] == 0 for s in samples), report
    assert all(s["root_files"] == 0 for s in samples), report
    assert all(s["zombies"] == 0 for s in samples), report
    assert last["children"] == 0, report
    # System-wide handles move with everything else running on the machine;
    # a leak of one per lifecycle would still stand out.
    assert last["file_handles"] - first["file_handles"] < 500 + n // 4, report
    assert harness.wait_clean(rt, paths) == {}
