"""A container's cgroups on the filesystem: create, join, list, kill, remove.

One manager for v1 and v2 directories alike (the operations this module does
are the same on both); resource limits are a separate concern.
Imports: errors.
"""

from __future__ import annotations

import errno
import time

from pyrunc import oslite as os
from pyrunc.errors import KernelError


class CgroupDirs:
    """The directories of one container's cgroup, one per hierarchy.

    `created` lists the directories this container made (outermost first),
    so destroy removes those and never one that existed before.
    """

    __slots__ = ("paths", "created")

    def __init__(self, paths: dict[str, str], created: list[str] | None = None):
        self.paths = paths
        self.created = list(created or ())

    def to_state(self) -> dict:
        return {"paths": self.paths, "created": self.created}

    @classmethod
    def from_state(cls, data: dict | None) -> "CgroupDirs":
        data = data or {}
        return cls(dict(data.get("paths") or {}), list(data.get("created") or ()))

    # ---- create and join

    def create(self, only_v2: bool = False) -> None:
        """Make the directories that do not exist yet (only the v2 one: what
        a process must be cloned into; the rest can follow meanwhile)."""
        for key, path in self.paths.items():
            if not (only_v2 and key):
                self._make_dirs(key, path)

    def missing(self) -> list[str]:
        """The directories create() would make now (outermost first): what a
        create killed half-way may have left, as its partial state records."""
        result = []
        for path in self.paths.values():
            current, chain = path, []
            while not os.path.isdir(current) and os.path.dirname(current) != current:
                chain.append(current)
                current = os.path.dirname(current)
            result += reversed(chain)
        return result

    def _make_dirs(self, key: str, path: str, attempts: int = 5) -> None:
        missing = []
        current = path
        while not os.path.isdir(current):
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory, 0o755)
            except FileExistsError:
                continue
            except OSError as err:
                if err.errno == errno.ENOENT and attempts > 1:
                    # A concurrent delete removed a parent that was empty a
                    # moment ago (it had made it): make it again.
                    return self._make_dirs(key, path, attempts - 1)
                raise KernelError("create cgroup", directory, err.errno) from None
            self.created.append(directory)
            if "cpuset" in key.split(","):
                _inherit_cpuset(directory)

    @property
    def v2_path(self) -> str | None:
        """The directory in the cgroup v2 (unified) hierarchy, if there is one."""
        return self.paths.get("")

    def join_self(self, v2: bool = True) -> None:
        """Move the calling process, which must be single-threaded, into every
        hierarchy (with v2=False, every v1 one: the v2 one it was born in).

        In v1 it writes "0" to `tasks`, which moves just this thread (so all of
        a single-threaded process), and which the kernel does without its
        global cgroup lock, and so without waiting an RCU grace period
        (6-15 ms) as a write to cgroup.procs does. v2 has no such file that
        crosses cgroups: there, being cloned into the cgroup is the fast way."""
        for key, path in self.paths.items():
            if key:
                _write_join(path, "tasks")
            elif v2:
                _write_join(path, "cgroup.procs")

    # ---- inspect

    def pids(self) -> list[int]:
        """Every process in the cgroup (its whole subtree), from one hierarchy."""
        path = self.paths.get("") or next(iter(self.paths.values()), None)
        if path is None:
            return []
        result = []
        for directory in subtree(path):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    result.extend(int(line) for line in f if line.strip())
            except OSError:
                continue
        return result

    # ---- tear down

    def kill_all(self, signal_number: int = 9, wait: float = 2.0) -> None:
        """Signal every process in the cgroup; with SIGKILL, wait until empty.

        SIGKILL goes through the v2 cgroup.kill file where there is one (the
        kernel kills the whole subtree at once, even processes forking right
        then); other signals, and hosts without it, go pid by pid."""
        deadline = time.monotonic() + wait
        if signal_number == 9 and self._cgroup_kill():
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.002)
            return
        while True:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal_number)
                except ProcessLookupError:
                    pass
            if signal_number != 9 or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def _cgroup_kill(self) -> bool:
        path = self.paths.get("")
        if not path:
            return False
        try:
            fd = os.open(os.path.join(path, "cgroup.kill"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.write(fd, b"1")
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def destroy(self) -> list[str]:
        """Remove the directories this container created (deepest first).

        Returns a warning per directory that could not be removed; directories
        that were already gone, or parents another cgroup still uses, are fine.
        """
        problems = []
        leaves = set(self.paths.values())
        for directory in sorted(self.created, key=len, reverse=True):
            if directory in leaves:
                # Sub-cgroups of the container's own (`exec --cgroup`'s, or
                # its processes'), as runc's RemovePath removes them.
                _remove_sub_cgroups(directory)
            if not _rmdir_retrying(directory):
                if directory in leaves:
                    problems.append(f"remove cgroup {directory}: still busy")
        return problems


def subtree(directory: str) -> list[str]:
    """`directory` and every directory below it, each before its own
    subdirectories (what os.walk gives, without importing os: pyrunc.oslite)."""
    found = [directory]
    for parent in found:  # grows as it goes: breadth first
        try:
            with os.scandir(parent) as entries:
                found.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return found


def _remove_sub_cgroups(directory: str) -> None:
    """Every cgroup below `directory`, children first (only an empty one can go)."""
    for subdir in reversed(subtree(directory)[1:]):
        _rmdir_retrying(subdir)


def _rmdir_retrying(directory: str, attempts: int = 50) -> bool:
    for _ in range(attempts):
        try:
            os.rmdir(directory)
            return True
        except FileNotFoundError:
            return True
        except OSError as err:
            if err.errno == errno.ENOTEMPTY:
                return False  # a parent another container still uses
            if err.errno != errno.EBUSY:
                return False
            time.sleep(0.01)
    return False


def _inherit_cpuset(directory: str) -> None:
    # A new v1 cpuset cgroup starts with empty cpus/mems and rejects tasks
    # until they are set: copy them from the parent.
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            with open(os.path.join(directory, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            if not value and parent != os.path.dirname(parent):
                # The parent was just made by a concurrent create that has not
                # filled it in yet: fill it in first (the same values).
                _inherit_cpuset(parent)
                with open(os.path.join(parent, name)) as f:
                    value = f.read().strip()
            with open(os.path.join(directory, name), "w") as f:
                f.write(value)
        except OSError as err:
            raise KernelError("set up cpuset cgroup", directory, err.errno) from None


def _write_join(directory: str, name: str) -> None:
    try:
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("join cgroup", directory, err.errno) from None
    try:
        os.write(fd, b"0")
    except OSError as err:
        raise KernelError("join cgroup", directory, err.errno) from None
    finally:
        os.close(fd)
