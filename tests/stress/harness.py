"""What the stress tests share: the pyrunc command, sizes, bundles, checks.

Every container gets a cgroup under /pyrunc-stress-<pid>/ and every test its
own --root, so the runs never touch what other test sessions on the same
machine have made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from tests import fuzzgen, leaks
from tests.busybox import base_config, make_rootfs

SCALE = float(os.environ.get("PYRUNC_STRESS_SCALE", "1.0"))
CGROUP_PARENT = f"pyrunc-stress-{os.getpid()}"

_launcher = os.path.join(os.path.dirname(sys.executable), "pyrunc")
# The launcher engines call (bin/pyrunc: python -I -S); `python -m pyrunc` when there is none.
PYRUNC = [_launcher] if os.access(_launcher, os.X_OK) else [sys.executable, "-m", "pyrunc"]


def scaled(full: int, minimum: int = 1) -> int:
    """`full` at PYRUNC_STRESS_SCALE=1.0, proportionally less below."""
    return max(minimum, int(round(full * SCALE)))


class Outcome:
    __slots__ = ("args", "rc", "out", "err", "seconds")

    def __init__(self, args, rc, out, err, seconds):
        self.args, self.rc, self.out, self.err, self.seconds = args, rc, out, err, seconds

    def __repr__(self):
        return f"Outcome({self.args!r}, rc={self.rc}, out={self.out[:300]!r}, err={self.err[:500]!r})"

    def problems(self, **kwargs) -> list[str]:
        return fuzzgen.problems(self.rc, self.out, self.err, **kwargs)


class Pyrunc:
    """The real command line, with a private --root. Output goes to files,
    not pipes: a container inherits the stdio of `create`, and would hold a
    pipe open for as long as it lives."""

    def __init__(self, root: str):
        self.root = root
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 120, cwd: str | None = None,
                 global_args=()) -> Outcome:
        with self._lock:
            self.calls += 1
        argv = [*PYRUNC, "--root", self.root, *global_args, *args]
        started = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                      timeout=timeout, cwd=cwd)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            out.seek(0)
            err.seek(0)
            return Outcome(list(args), rc, out.read().decode("utf-8", "replace"),
                           err.read().decode("utf-8", "replace"), time.monotonic() - started)

    def ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if n != "seccomp:cache")
        except FileNotFoundError:
            return []

    def force_delete_all(self) -> None:
        for container_id in self.ids():
            self("delete", "--force", container_id)


class Bundles:
    """One shared busybox rootfs, and a bundle (config.json only) per
    container id, whose cgroup is /pyrunc-stress-<pid>/<id>."""

    def __init__(self, base: str):
        self.base = base
        self.rootfs = os.path.join(base, "rootfs")
        make_rootfs(self.rootfs)
        self._made: dict[str, str] = {}
        self._lock = threading.Lock()

    def config(self, container_id: str, args=("sleep", "1000")) -> dict:
        config = base_config(list(args), f"/{CGROUP_PARENT}/{container_id}")
        config["root"] = {"path": self.rootfs, "readonly": True}
        return config

    def get(self, container_id: str, config: dict | None = None) -> str:
        """The bundle directory for `container_id` (made on first use)."""
        with self._lock:
            path = self._made.get(container_id)
            if path is not None and config is None:
                return path
            path = os.path.join(self.base, f"b-{len(self._made)}")
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(config or self.config(container_id), f)
            self._made[container_id] = path
            return path


def lifecycle(rt: Pyrunc, bundles: Bundles, container_id: str, pid_file: str | None = None,
              reap: bool = False) -> list[Outcome]:
    """create, start, kill, delete (retried while the init is still dying).

    With reap (this process a subreaper, see subreaper()), the init is
    reaped afterwards, and a start that finds it dead already says how it
    died."""
    create_args = ["create", "--bundle", bundles.get(container_id)]
    if pid_file:
        create_args += ["--pid-file", pid_file]
    outcomes = [rt(*create_args, container_id)]
    pid = 0
    if pid_file and outcomes[0].rc == 0:
        with open(pid_file) as f:
            pid = int(f.read())
    outcomes.append(rt("start", container_id))
    if reap and pid and outcomes[-1].rc != 0:
        outcomes[-1].err += f"(init {pid}: {reap_child(pid)})\n"
    outcomes.append(rt("kill", container_id, "KILL"))
    deadline = time.monotonic() + 10
    while True:
        result = rt("delete", container_id)
        if result.rc == 0 or "not stopped" not in result.err or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    outcomes.append(result)
    if reap and pid:
        reap_child(pid)
    return outcomes


def reap_child(pid: int, timeout: float = 10) -> str:
    """Wait for `pid` (a child of ours: we are its subreaper); how it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return "not our child (reaped already, or never reparented to us)"
        if waited:
            if os.WIFSIGNALED(status):
                return f"killed by signal {os.WTERMSIG(status)}"
            return f"exited {os.WEXITSTATUS(status)}"
        time.sleep(0.002)
    return "still running"


class subreaper:
    """This process adopts orphans (as an engine's shim does) while inside."""

    def __enter__(self):
        import _prctl

        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
        return self

    def __exit__(self, *exc):
        import _prctl

        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 0)


def live(pids) -> list[int]:
    return [p for p in pids if not leaks.is_zombie(p)]


def leftovers(rt: Pyrunc, paths=()) -> dict:
    """Everything a container could leave on the host, by kind; empty when clean."""
    found = {
        "state": leaks.files_under(rt.root),
        "cgroups": leaks.cgroup_dirs_under(CGROUP_PARENT),
        "processes": leaks.processes_in_cgroup(CGROUP_PARENT),
        "mounts": [m for p in paths for m in leaks.mounts_mentioning(p)],
    }
    for path in paths:
        found["processes"] += leaks.processes_in(path)
    return {k: v for k, v in found.items() if v}


def wait_clean(rt: Pyrunc, paths=(), timeout: float = 10) -> dict:
    """leftovers(), given a moment for killed processes to finish exiting."""
    deadline = time.monotonic() + timeout
    while True:
        found = leftovers(rt, paths)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def scrub(rt: Pyrunc) -> None:
    """After a test: force-delete what is left, kill what is still in our
    cgroups, remove them (so one failure does not cascade)."""
    rt.force_delete_all()
    for pid in leaks.processes_in_cgroup(CGROUP_PARENT):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while leaks.processes_in_cgroup(CGROUP_PARENT) and time.monotonic() < deadline:
        time.sleep(0.02)
    for directory in reversed(leaks.cgroup_dirs_under(CGROUP_PARENT)):
        try:
            os.rmdir(directory)
        except OSError:
            pass
    shutil.rmtree(rt.root, ignore_errors=True)
