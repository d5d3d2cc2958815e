"""Integration tests: real containers, as root, with a real kernel.

Every test gets its own state root and container ids, and every container
its own cgroup under /pyrunc-test-<pid>/. After each test, everything is
force-deleted and the test fails if anything was left behind: a state
directory, a cgroup, or a mount naming the test's bundle.

With PYRUNC_TEST_CGROUP_DRIVER=systemd (the VM lane's systemd job) every
pyrunc command gets --systemd-cgroup and every container the cgroupsPath
"pyrunc_test_<pid>.slice:pyrunc:<id>", a transient scope in a slice of
this session's own (stopped at the end); cgroup_of() says where its
cgroup is either way, and no scope may be left behind.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys

import pytest

from tests import leaks
from tests.busybox import Bundle, base_config, container_skip_reason, make_rootfs

CGROUP_PARENT = f"pyrunc-test-{os.getpid()}"
CGROUP_DRIVER = os.environ.get("PYRUNC_TEST_CGROUP_DRIVER", "cgroupfs")
SYSTEMD = CGROUP_DRIVER == "systemd"
# systemd's "-" nests slices: this one sits right under the root slice.
SLICE = f"pyrunc_test_{os.getpid()}.slice"
_counter = itertools.count(1)


def cgroups_path_for(container_id: str) -> str:
    """The cgroupsPath a test container gets, for the session's driver."""
    return f"{SLICE}:pyrunc:{container_id}" if SYSTEMD else f"/{CGROUP_PARENT}/{container_id}"


def cgroup_of(container_id: str) -> str:
    """Where that container's cgroup is in each hierarchy (a path from the
    hierarchy's root, as /proc/PID/cgroup shows it)."""
    return f"/{SLICE}/pyrunc-{container_id}.scope" if SYSTEMD else f"/{CGROUP_PARENT}/{container_id}"


def needs_cgroupfs_driver() -> None:
    """For tests about cgroupfs paths (a cgroupsPath of a given form)."""
    if SYSTEMD:
        pytest.skip("about the cgroupfs driver's cgroupsPath (this session runs --systemd-cgroup)")


# A test stuck this long fails with its stack instead of silently holding up
# the whole run (the VM lane has one time limit for every job).
TEST_TIME_LIMIT = float(os.environ.get("PYRUNC_TEST_TIME_LIMIT", "600"))


@pytest.fixture(autouse=True)
def _time_limit():
    """SIGALRM, not faulthandler's watchdog thread: pyrunc's in-process
    create refuses to fork while other threads run. The timer spans the
    test's fixtures too (this one is set up first, torn down last)."""
    def expired(signum, frame):
        raise TimeoutError(f"the test ran past its {TEST_TIME_LIMIT:.0f} s limit (PYRUNC_TEST_TIME_LIMIT)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_collection_modifyitems(config, items):
    reason = container_skip_reason()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return f"Result(rc={self.returncode}, stdout={self.stdout!r}, stderr={self.stderr!r})"


class Runtime:
    """Runs `python -m pyrunc --root <tmp> ...` and tracks container ids."""

    def __init__(self, root: str):
        self.root = root
        self.cmd = [sys.executable, "-m", "pyrunc", "--root", root, *(["--systemd-cgroup"] if SYSTEMD else [])]

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60, global_args=(), wrapper=(),
                 **kwargs) -> Result:
        """`wrapper`: a command line that execs the rest (e.g. in another
        mount namespace)."""
        # Output goes to files, not pipes: a detached container inherits
        # pyrunc's stdio, and a pipe would stay open until it exits.
        import tempfile

        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run([*wrapper, *self.cmd[:3], *global_args, *self.cmd[3:], *args], input=input, stdout=out,
                                  stderr=err, text=True, timeout=timeout, **kwargs)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return Result(proc)

    def ok(self, *args: str, **kwargs) -> Result:
        result = self(*args, **kwargs)
        assert result.returncode == 0, result
        return result

    def state(self, container_id: str) -> dict:
        import json

        return json.loads(self.ok("state", container_id).stdout)

    def ids(self) -> list[str]:
        """Everything under the root: container directories only."""
        try:
            return sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []


@pytest.fixture
def runtime(tmp_path):
    """The runtime under test, with a private --root. Afterwards every
    container is force-deleted, and the test fails if a state dir, a cgroup
    or a mount under its tmp_path was left behind."""
    root = str(tmp_path / "state")
    rt = Runtime(root)
    yield rt
    for container_id in rt.ids():
        rt("delete", "--force", container_id)
    leftovers = rt.ids()
    assert leftovers == [], f"state dirs left behind: {leftovers}"
    left = leftover_cgroups()
    assert left == [], f"cgroups left behind: {left}"
    mounts = leaks.mounts_mentioning(str(tmp_path))
    assert mounts == [], f"mounts left on the host: {mounts}"


@pytest.fixture
def new_id():
    def make(prefix: str = "c") -> str:
        return f"{prefix}{os.getpid()}-{next(_counter)}"

    return make


@pytest.fixture
def bundle(tmp_path, new_id):
    """A busybox bundle; `bundle.config` is the dict to edit, then `write()`."""
    path = tmp_path / "bundle"
    path.mkdir()
    make_rootfs(str(path / "rootfs"))
    container_id = new_id()
    b = Bundle(str(path), base_config(["true"], cgroups_path_for(container_id)))
    b.id = container_id
    b.write()
    return b


def leftover_cgroups() -> list[str]:
    """Container cgroups under this session's parent that still exist (and,
    under systemd, scopes of this session systemd still has loaded)."""
    if SYSTEMD:
        return leaks.cgroup_dirs_under(SLICE) + leaks.systemd_units(f"pyrunc-c{os.getpid()}-*")
    return leaks.cgroup_dirs_under(CGROUP_PARENT)


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent():
    cached = leaks.seccomp_cache_entries()
    yield
    leaks.remove_cgroup_parent(CGROUP_PARENT)
    if SYSTEMD or os.path.isdir("/run/systemd/system"):
        leaks.stop_systemd_unit(SLICE)
    leaks.remove_seccomp_cache_entries(cached)
