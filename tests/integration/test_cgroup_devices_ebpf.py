"""The cgroup v2 device filter on the real kernel: build_device_filter +
attach_device_filter on a child cgroup of this host's cgroup2 mount, made by
the test and removed in a finally. A forked child moves itself into it and
tries to open /dev/null; its exit code says what the kernel allowed.

Only the test's own cgroup (pyrunc-devtest-<pid>-<n>) is touched: no other
cgroup, no mount. Skipped unless root with a cgroup2 mount and bpf(2).
"""

from __future__ import annotations

import errno
import itertools
import os

import pytest

from pyrunc.errors import KernelError
from pyrunc.linux import cgroups
from pyrunc.linux.cgroups import devices

OPENED, DENIED, BROKEN = 0, 1, 2
_counter = itertools.count(1)


def _cgroup2_mount() -> str | None:
    try:
        return cgroups.detect_layout().mounts.get(cgroups.V2_KEY)
    except Exception:
        return None


MOUNT = _cgroup2_mount()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(MOUNT is None, reason="needs a cgroup2 mount"),
]


@pytest.fixture
def devtest_cgroup():
    path = os.path.join(MOUNT, f"pyrunc-devtest-{os.getpid()}-{next(_counter)}")
    os.mkdir(path)
    try:
        yield path
    finally:
        # The children have exited and been reaped: the cgroup is empty.
        os.rmdir(path)


def attach(path: str, rules: list[dict]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        devices.attach_device_filter(fd, devices.build_device_filter(rules))
    except KernelError as err:
        if err.errno in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
            pytest.skip(f"no cgroup device programs here: {err}")
        raise
    finally:
        os.close(fd)


def open_in(path: str, device: str = "/dev/null", flags: int = os.O_RDONLY) -> int:
    """Fork a child that joins the cgroup and opens `device`: OPENED or DENIED."""
    pid = os.fork()
    if pid == 0:
        code = BROKEN
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            try:
                os.close(os.open(device, flags | os.O_CLOEXEC))
                code = OPENED
            except PermissionError:
                code = DENIED
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def attached(path: str) -> list[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return devices._Bpf().query(fd)
    finally:
        os.close(fd)


DENY_ALL = {"allow": False, "access": "rwm"}


def test_device_filter_deny_all_open_denied(devtest_cgroup):
    attach(devtest_cgroup, [DENY_ALL])
    assert open_in(devtest_cgroup) == DENIED


def test_device_filter_runc_defaults_dev_null_opened(devtest_cgroup):
    rules = devices.container_device_rules([DENY_ALL])
    attach(devtest_cgroup, rules)
    assert open_in(devtest_cgroup, "/dev/null", os.O_RDWR) == OPENED
    assert open_in(devtest_cgroup, "/dev/zero") == OPENED
    # a device outside the defaults stays closed: /dev/kmsg (c 1:11)
    if os.path.exists("/dev/kmsg"):
        assert open_in(devtest_cgroup, "/dev/kmsg") == DENIED


def test_device_filter_read_only_rule_write_denied(devtest_cgroup):
    attach(devtest_cgroup, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}])
    assert open_in(devtest_cgroup, "/dev/null", os.O_RDONLY) == OPENED
    assert open_in(devtest_cgroup, "/dev/null", os.O_WRONLY) == DENIED


def test_device_filter_deny_list_only_listed_denied(devtest_cgroup):
    attach(devtest_cgroup, [{"allow": True, "access": "rwm"},
                            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    assert open_in(devtest_cgroup, "/dev/null") == DENIED
    assert open_in(devtest_cgroup, "/dev/zero") == OPENED


def test_device_filter_reattach_replaces_old_program(devtest_cgroup):
    attach(devtest_cgroup, [DENY_ALL])
    first = attached(devtest_cgroup)
    attach(devtest_cgroup, devices.container_device_rules([DENY_ALL]))
    second = attached(devtest_cgroup)
    assert len(first) == 1 and len(second) == 1 and first != second
    assert open_in(devtest_cgroup) == OPENED
