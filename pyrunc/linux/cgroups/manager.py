"""A container's cgroups behind one interface: the cgroup manager.

Every verb reaches a container's cgroups through a CgroupManager only. It is
built once, by `create` (new_manager), and its record in state.json
(to_state) names the driver, so every later verb rebuilds the same kind of
manager (from_state). The drivers:

    record "driver"  class            host
    "cgroupfs"       FsV2Manager      pure cgroup v2
    "cgroupfs"       FsV1Manager      cgroup v1, or hybrid (v1 plus a v2 directory)
    "systemd"        SystemdManager   --systemd-cgroup (cgroups/systemd.py): a transient
                                      systemd unit holds the container, over D-Bus

The interface (after runc's cgroups.Manager, youki's CgroupManager and crun's
cgroup-internal.h, in pyrunc's words):

  create, in this order
    prepare() -> warnings   before the init is forked: what it can be born in
                            (clone_into), the checks (frozen, not empty), the
                            systemd connection; raises a one-line PyruncError
    clone_into              the v2 directory the init is cloned into
                            (clone3 CLONE_INTO_CGROUP), or None
    apply(pid, resources, device_rules) -> warnings
                            right after the fork, while the init loads its code:
                            every directory (or the unit holding `pid`), the limits
    join_self(v2)           in the init or exec's joiner, a forked child: join the
                            hierarchies it was not born in (v1: "0" to tasks)
  every verb after
    update(resources) -> warnings     `update` (device rules are left as they are)
    freeze(), thaw(), paused(), frozen_dir()
    stats(), oom_kill_count(), pids(), kill_all(signal), destroy() -> warnings
    sub_cgroup(spec) -> manager       `exec --cgroup`: a sub-cgroup of the container's
    to_state(), partial_state()       the record for state.json (partial: before
                                      anything exists, so a killed create is undone)
    paths                             {hierarchy key: directory}; "" is the v2 one

Methods that change the host raise PyruncError (one line) or return the
warnings (settings skipped) for the caller to log; nothing here logs.
Imports: errors, linux.cgroups (fs, apply, devices and systemd lazily).
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc.errors import PyruncError
from pyrunc.linux.cgroups.fs import CgroupDirs

V2_KEY = ""
DRIVER_FS = "cgroupfs"
DRIVER_SYSTEMD = "systemd"


class CgroupManager:
    """The cgroupfs driver's operations, shared by every driver (a systemd
    unit's cgroup is a directory as well). Subclasses differ where v1 and
    v2 differ, and in how the cgroup comes to exist."""

    driver = DRIVER_FS

    def __init__(self, dirs: CgroupDirs, v2_mount: str = ""):
        self.dirs = dirs
        # Where the cgroup2 hierarchy is mounted ("" when unknown: looked up).
        self.v2_mount = v2_mount
        # (step, milliseconds) of the last prepare/apply, for --debug.
        self.timings: list[tuple[str, float]] = []

    # ---- what the container's cgroup is

    @property
    def paths(self) -> dict[str, str]:
        return self.dirs.paths

    @property
    def v2_path(self) -> str | None:
        return self.dirs.v2_path

    @property
    def clone_into(self) -> str | None:
        """The v2 directory a new process can be cloned straight into."""
        return self.dirs.v2_path

    def to_state(self) -> dict:
        return {"driver": self.driver, **self.dirs.to_state()}

    def private_fds(self) -> tuple[int, ...]:
        """Fds the manager holds (a D-Bus connection) that a forked child
        must close: they are the runtime's, never the container's."""
        return ()

    def partial_state(self) -> dict:
        """The record saved before anything is made: what create would make,
        so that `delete` of a create killed half-way removes exactly that."""
        return {"driver": self.driver, "paths": self.dirs.paths, "created": self.dirs.missing()}

    # ---- create

    def prepare(self) -> list[str]:
        """Before the fork: warn about a cgroup that already has processes
        (runc does), make the directory the init is cloned into, and refuse
        a frozen cgroup (the init would freeze half-way through its set-up)."""
        warnings = self._not_empty_warning()
        self.dirs.create(only_v2=True)
        self._refuse_frozen()
        return warnings

    def apply(self, pid: int, resources: dict, device_rules: list | None) -> list[str]:
        """After the fork of `pid` (which joins by itself, join_self): every
        directory, then the limits and the device rules."""
        self.dirs.create()
        self._refuse_frozen()
        return self._write_resources(resources, device_rules)

    def add_process(self, pid: int) -> None:
        """Move a running process `pid` into every hierarchy, after apply()
        (CRIU's restorer: what it forks is then born in the container's
        cgroups)."""
        for path in self.paths.values():
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def join_self(self, v2: bool = True) -> None:
        """In a forked child: join every hierarchy (v2 too unless it was born
        there, see launcher.fork_into)."""
        self.dirs.join_self(v2=v2)

    # ---- every verb after

    def update(self, resources: dict) -> list[str]:
        """`update`: the limits in `resources` (device rules are not changed,
        as runc 1.1 leaves them)."""
        return self._write_resources({k: v for k, v in resources.items() if k != "devices"}, None)

    def freeze(self, timeout: float = 10.0) -> None:
        from pyrunc.linux.cgroups import apply

        apply.freeze(self.paths, timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        from pyrunc.linux.cgroups import apply

        apply.thaw(self.paths, timeout)

    def paused(self) -> bool:
        """Whether the container is frozen (see cgroups.paused)."""
        from pyrunc.linux import cgroups

        return cgroups.paused(self.paths)

    def frozen_dir(self) -> str:
        """A directory of the container's cgroup frozen now (by itself or an
        ancestor), or ""."""
        from pyrunc.linux.cgroups import apply

        return apply.frozen_dir(self.paths)

    def stats(self) -> dict:
        """runc's `events --stats` data."""
        from pyrunc.linux.cgroups import apply

        return apply.stats(self.paths)

    def oom_kill_count(self) -> int:
        """How many processes the kernel's OOM killer killed in the container."""
        return _read_field(self._oom_file(), "oom_kill")

    def watch_ooms(self) -> "OomWatch":
        """`events`: the OOM-kill count, with a wait that wakes when it changes."""
        return OomWatch(self._oom_file())

    def pids(self) -> list[int]:
        """Every process in the container's cgroup (its subtree too)."""
        return self.dirs.pids()

    def kill_all(self, signal_number: int = 9, wait: float = 2.0) -> None:
        self.dirs.kill_all(signal_number, wait)

    def destroy(self, kill: bool = False) -> list[str]:
        """Remove what this container made; with `kill`, end every process
        in its cgroup first (a failed create: they can only be its own).
        Returns warnings for what could not be removed."""
        if kill and self.dirs.created:
            self.dirs.kill_all()
        return self.dirs.destroy()

    def sub_cgroup(self, spec: dict[str, str]) -> "CgroupManager":
        """`exec --cgroup`: the container's cgroup with `spec`
        (parse_sub_cgroup_args) applied: {"": path} for every hierarchy,
        else {controller: path}. The sub-cgroup must exist."""
        paths = dict(self.paths)
        if V2_KEY in spec and len(spec) == 1:
            for key in paths:
                paths[key] = _sub_path(self.paths[key], spec[V2_KEY])
        else:
            for controller, sub in spec.items():
                keys = [key for key in paths if self._answers_to(key, controller)]
                if not keys:
                    raise PyruncError(f"exec: --cgroup: unknown controller {controller} in the container's cgroups")
                for key in keys:
                    paths[key] = _sub_path(self.paths[key], sub)
        for path in paths.values():
            if not os.path.isdir(path):
                raise PyruncError(f'exec: --cgroup: "{path}" does not exist')
        # Joining is all exec does with it: a plain cgroupfs manager, whatever
        # the driver (a systemd unit's sub-cgroup is the container's own).
        return _fs_class(paths)(CgroupDirs(paths), self.v2_mount)

    # ---- the parts v1 and v2 do differently

    def _write_resources(self, resources: dict, device_rules: list | None) -> list[str]:
        raise NotImplementedError

    def _oom_file(self) -> str:
        raise NotImplementedError

    def _answers_to(self, key: str, controller: str) -> bool:
        raise NotImplementedError

    def _not_empty_warning(self) -> list[str]:
        """runc's warning for a cgroup that already holds processes (a pod's
        shared cgroup, a leftover): the container joins them."""
        path = self._leaf_to_check()
        if not path or not os.path.isdir(path):
            return []
        count = len(CgroupDirs({V2_KEY: path}).pids())
        if not count:
            return []
        return [f"container's cgroup is not empty: {count} process(es) found"]

    def _leaf_to_check(self) -> str:
        raise NotImplementedError

    def _refuse_frozen(self) -> None:
        frozen = self.frozen_dir()
        if frozen:
            raise PyruncError(f'linux.cgroupsPath: the cgroup "{frozen}" is frozen; thaw it, or give the '
                              f"container another one")


class FsV2Manager(CgroupManager):
    """A pure cgroup v2 host: one directory, controllers handed down to it
    by its ancestors, the freezer and the device filter built in."""

    def apply(self, pid: int, resources: dict, device_rules: list | None) -> list[str]:
        from pyrunc.linux.cgroups import apply

        self.dirs.create()
        self._refuse_frozen()
        # The ancestors hand the new cgroup every controller (runc's fs2 does).
        apply.enable_v2_controllers(self._v2_mount(), self.paths[V2_KEY])
        return self._write_resources(resources, device_rules)

    def _write_resources(self, resources: dict, device_rules: list | None) -> list[str]:
        from pyrunc.linux.cgroups import apply

        return apply.apply_v2(self.paths[V2_KEY], resources, device_rules)

    def _v2_mount(self) -> str:
        if not self.v2_mount:
            from pyrunc.linux import cgroups

            self.v2_mount = cgroups.detect_layout().mounts.get(V2_KEY, "/sys/fs/cgroup")
        return self.v2_mount

    def _oom_file(self) -> str:
        return os.path.join(self.paths[V2_KEY], "memory.events")

    def _answers_to(self, key: str, controller: str) -> bool:
        return False  # v2 has one hierarchy: no "controller:" form (runc refuses it too)

    def _leaf_to_check(self) -> str:
        return self.paths.get(V2_KEY, "")


class FsV1Manager(CgroupManager):
    """A cgroup v1 host, or a hybrid one: a directory per hierarchy, joined
    one by one (the v2 directory of a hybrid host is joined too, and holds
    no limits, as with runc)."""

    def _write_resources(self, resources: dict, device_rules: list | None) -> list[str]:
        from pyrunc.linux.cgroups import apply

        return apply.apply_v1(self.paths, resources, device_rules)

    def _oom_file(self) -> str:
        for key, path in self.paths.items():
            if "memory" in key.split(","):
                return os.path.join(path, "memory.oom_control")
        return ""

    def _answers_to(self, key: str, controller: str) -> bool:
        # A co-mounted "cpu,cpuacct" answers to each name; a named hierarchy
        # ("systemd") to "name=systemd", as runc's paths call it.
        return key != V2_KEY and (controller in key.split(",") or controller == f"name={key}")

    def _leaf_to_check(self) -> str:
        # As runc: the devices hierarchy stands for all of them.
        for key, path in self.paths.items():
            if "devices" in key.split(","):
                return path
        return next((p for k, p in self.paths.items() if k), "")


# ---------------------------------------------------------------- building one


def new_manager(cgroups_path: str, container_id: str, systemd: bool = False, annotations: dict | None = None,
                layout=None, rootless: bool = False, resources: dict | None = None) -> CgroupManager:
    """The manager for a new container (`create`). Raises a one-line
    PyruncError for a cgroupsPath this host cannot have (cgroupfs: a
    hierarchy's root or pyrunc's own cgroup; systemd: not
    "slice:prefix:name", systemd not reachable). Nothing is made yet.

    `rootless` (runc's rootless cgroup manager): the hierarchies the caller
    cannot write are left out, or, when `resources` asks for limits, refused
    naming the cgroup; with `systemd`, the unit is the user manager's."""
    from pyrunc.linux import cgroups

    layout = layout or cgroups.detect_layout()
    if systemd:
        from pyrunc.linux import proc
        from pyrunc.linux.cgroups import systemd as systemd_driver

        # Rootless: a unit of the user's own systemd (user@UID.service).
        user_uid = systemd_driver.user_manager_uid(rootless, proc.host_uid()) if rootless else None
        return systemd_driver.SystemdManager.for_new_container(layout, cgroups_path, container_id,
                                                                annotations or {}, user_uid=user_uid)
    paths = cgroups.resolve_paths(layout, cgroups_path, container_id)
    cgroups.refuse_shared_cgroup(layout, paths)
    if rootless:
        paths = _writable_paths(paths, resources or {})
    return _fs_class(paths)(CgroupDirs(paths), layout.mounts.get(V2_KEY, ""))


def from_state(record: dict | None) -> CgroupManager:
    """The manager a container's state.json record (to_state) describes. A
    record without "driver" (written before there were drivers) is cgroupfs."""
    record = record or {}
    dirs = CgroupDirs.from_state(record)
    if record.get("driver") == DRIVER_SYSTEMD:
        from pyrunc.linux.cgroups import systemd as systemd_driver

        return systemd_driver.SystemdManager.from_record(record, dirs)
    return _fs_class(dirs.paths)(dirs)


def _fs_class(paths: dict[str, str]) -> type:
    return FsV2Manager if paths and all(key == V2_KEY for key in paths) else FsV1Manager


# linux.resources keys → the v1 controllers that hold them.
_V1_CONTROLLERS = {"memory": ("memory",), "cpu": ("cpu", "cpuset"), "pids": ("pids",), "blockIO": ("blkio",),
                   "hugepageLimits": ("hugetlb",), "network": ("net_cls", "net_prio"), "rdma": ("rdma",)}


def _writable_paths(paths: dict[str, str], resources: dict) -> dict[str, str]:
    """The cgroups an unprivileged caller can make or join. Without limits to
    set, the others are skipped (the container shares the caller's cgroup
    there, as with runc); a hierarchy that must hold a limit and that it
    cannot write is an error: silently unlimited would be worse than
    refused. Device rules do not count: a user namespace cannot create
    device nodes anyway (runc ignores them too)."""
    wanted = {key for key, value in resources.items() if value and key != "devices"}
    controllers = {c for key in wanted for c in _V1_CONTROLLERS.get(key, ())}
    unified = all(key == V2_KEY for key in paths)
    kept = {}
    for key, path in paths.items():
        if _can_write_cgroup(path):
            kept[key] = path
            continue
        holds_limits = (unified and wanted) or controllers.intersection(key.split(","))
        if holds_limits:
            raise PyruncError(f"linux.resources: cannot set limits in cgroup {path}: permission denied; "
                              "a rootless container can be limited only in a cgroup delegated to its user")
    return kept


def _can_write_cgroup(path: str) -> bool:
    # An existing cgroup must take a process; a new one needs its nearest
    # existing parent writable (mkdir). The kernel checks again on the real
    # write: this only decides what to skip.
    if os.path.isdir(path):
        return any(os.access(os.path.join(path, name), os.W_OK) for name in ("cgroup.procs", "tasks"))
    parent = os.path.dirname(path)
    while parent != os.path.dirname(parent) and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    return os.access(parent, os.W_OK | os.X_OK)


# ---------------------------------------------------------------- exec --cgroup


def parse_sub_cgroup_args(args: list[str]) -> dict[str, str]:
    """runc's `exec --cgroup [controller[,controller]:]path` (repeatable):
    {"": path} (every hierarchy; then it must be the only one given) or
    {controller: path}. Raises PyruncError in runc's words."""
    spec: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise PyruncError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise PyruncError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            spec[V2_KEY] = arg
        else:
            for controller in parts[0].split(","):
                spec[controller] = parts[1]
    return spec


def _sub_path(base: str, sub: str) -> str:
    """`sub` under `base`, never out of it (runc checks the same)."""
    joined = os.path.normpath(os.path.join(base, sub.lstrip("/"))) if sub else base
    if joined != base and not joined.startswith(base.rstrip("/") + "/"):
        raise PyruncError(f"exec: --cgroup: {sub} is not a sub cgroup path")
    return joined


# ---------------------------------------------------------------- helpers


class OomWatch:
    """The container's OOM-kill count, read from one open file. On cgroup v2
    the kernel makes poll() report POLLPRI as soon as memory.events changes,
    so `wait` wakes at the kill itself: systemd removes an emptied scope's
    cgroup (and the count with it) moments after an OOM-killed init exits,
    and a watcher that only polled every 100 ms could miss it. v1's
    memory.oom_control gives no such wake-up, and `wait` just sleeps there."""

    def __init__(self, path: str):
        import select

        self.fd = -1
        self._woke_at = float("-inf")
        self._poller = select.poll()
        if path:
            try:
                self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
            else:
                self._poller.register(self.fd, select.POLLPRI)

    def count(self) -> int:
        """The count now; 0 once the cgroup is gone (the file reads ENODEV)."""
        if self.fd < 0:
            return 0
        try:
            text = os.pread(self.fd, 4096, 0).decode()  # the read also re-arms POLLPRI
        except OSError:
            self.close()
            return 0
        return _field_in(text, "oom_kill")

    def wait(self, timeout: float) -> None:
        """Return at a change (the caller reads at once: the cgroup may go
        within milliseconds of the kill) or after `timeout` seconds."""
        import time

        if self.fd < 0:
            time.sleep(timeout)
            return
        # memory.events also counts "max" and "high" events, which come in
        # bursts under memory pressure: poll at most every 5 ms, the pause
        # taken before the poll, never between a wake and the read.
        since_wake = time.monotonic() - self._woke_at
        if since_wake < 0.005:
            time.sleep(0.005 - since_wake)
        if self._poller.poll(int(timeout * 1000)):
            self._woke_at = time.monotonic()

    def close(self) -> None:
        if self.fd >= 0:
            self._poller.unregister(self.fd)
            os.close(self.fd)
            self.fd = -1


def _field_in(text: str, field: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == field:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _read_field(path: str, field: str) -> int:
    if not path:
        return 0
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == field:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0
