"""`delete --force` of a container whose state.json is corrupt: what is
left of it (the fields that still make sense, init.json, the process that
holds the exec fifo) names its init and its cgroups, which are killed and
removed like any container's. Apart from lifecycle, which imports it only
for that case: every other command stays as cheap as before.
Imports: errors, log, record, store, ops.lifecycle, linux.{cgroups, proc}.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log, store as store_mod
from pyrunc.errors import PyruncError
from pyrunc.ops.lifecycle import _kill_and_wait as kill_and_wait, destroy_container
from pyrunc.record import ContainerRecord
from pyrunc.store import CorruptState, Store


def destroy_corrupt(st: Store, container_id: str) -> None:
    """`delete --force` of a container whose state.json is corrupt: kill and
    remove what the fields that still make sense name (the init by pid and
    start time, the cgroups it made), then the state directory. Hooks are
    not run from a corrupt state."""
    try:
        raw = st.read_raw(container_id)
    except CorruptState:
        raw = {}
    record = salvage_record(container_id, raw)
    # What state.json lost, init.json (written beside it by create) may still say.
    backup = salvage_record(container_id, st.read_init(container_id))
    if not record.pid and backup.pid:
        record.pid, record.start_time = backup.pid, backup.start_time
    if not record.cgroups["paths"]:
        record.cgroups = backup.cgroups
    log.warning(f"{container_id}: {store_mod.STATE_FILE} is corrupt; removing what is left of the container")
    if record.pid:
        kill_and_wait(record)
    else:
        for pid in _fifo_holders(st.path(container_id, store_mod.FIFO_FILE)):
            if not record.cgroups["paths"]:
                # Its own leaf cgroups, found from the process: removed once
                # it is dead, but not emptied (others may share them).
                record.cgroups = _own_cgroups_of(pid)
                record.shared_pid_namespace = False
            from pyrunc.linux import proc

            start_time = proc.read_start_time(pid)
            if start_time is not None:
                kill_and_wait(ContainerRecord(container_id, pid=pid, start_time=start_time))
    destroy_container(st, record)


def salvage_record(container_id: str, raw: dict) -> ContainerRecord:
    """The fields of a corrupt state.json that can still be trusted: the
    init's pid with its start time, and the cgroup directories create made
    (under this host's cgroup mounts): every process in those is the
    container's, so they are emptied (shared_pid_namespace) and removed; a
    cgroup it did not make is left alone."""
    from pyrunc.linux import cgroups

    record = ContainerRecord(container_id)
    pid, start_time = raw.get("pid"), raw.get("startTime")
    if type(pid) is int and pid > 0 and type(start_time) is int:
        record.pid, record.start_time = pid, start_time
    info = raw.get("cgroups") if isinstance(raw.get("cgroups"), dict) else {}
    mounts = [m.rstrip("/") + "/" for m in cgroups.detect_layout().mounts.values()]

    def under_mount(path) -> bool:
        return isinstance(path, str) and os.path.normpath(path) == path and any(path.startswith(m) for m in mounts)

    created = info.get("created") if isinstance(info.get("created"), list) else []
    created = [d for d in created if under_mount(d)]
    paths = info.get("paths") if isinstance(info.get("paths"), dict) else {}
    paths = {k: v for k, v in paths.items() if isinstance(k, str) and v in created}
    created = [d for d in created if any(p == d or p.startswith(d + "/") for p in paths.values())]
    record.cgroups = {"paths": paths, "created": created}
    return record


def _own_cgroups_of(pid: int) -> dict:
    """The leaf cgroups of a container's init found without a state: removed
    with the container (as runc removes a container's cgroup paths), unless
    a hierarchy's root or one holding pyrunc itself."""
    from pyrunc.linux import cgroups

    layout = cgroups.detect_layout()
    paths = cgroups.process_paths(layout, pid)
    try:
        cgroups.refuse_shared_cgroup(layout, paths)
    except PyruncError:
        return {"paths": {}, "created": []}
    return {"paths": paths, "created": sorted(set(paths.values()))}


def _fifo_holders(fifo: str) -> list[int]:
    """Without a pid to trust, a created container's init is found as the
    process that holds its exec fifo open."""
    try:
        target = os.stat(fifo)
    except OSError:
        return []
    holders = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{name}/fd/{fd}")
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                holders.append(int(name))
                break
    return holders
