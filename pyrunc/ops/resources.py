"""The cgroup verbs: update, pause, resume, ps, events.

`update` takes runc's flags or a linux.resources JSON (--resources FILE, or
- for stdin, as containerd and CRI send it), validates it like a config's,
and writes only what it changes; the result is kept in the state, so a later
update starts from it. `pause`/`resume` freeze and thaw the container's
cgroup; `ps` lists its processes (every process of the cgroup, as runc);
`events --stats` prints runc's stats record.
Imports: errors, log, store, ops.common, linux.cgroups, jsonlite.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import log, status as status_rules
from pyrunc.errors import ConfigError, PyruncError, UsageError
from pyrunc.ops.common import long_wait_ahead, one_id, output_format, store_for, validate_config
from pyrunc.record import ContainerRecord
from pyrunc.store import STOPPED, Store


def _cgroups(record: ContainerRecord):
    """The container's cgroup manager (the driver its create chose)."""
    from pyrunc.linux.cgroups import manager

    return manager.from_state(record.cgroups)


# ---------------------------------------------------------------- pause / resume

def cmd_pause(parsed) -> int:
    pause_container(store_for(parsed), one_id(parsed))
    return 0


def cmd_resume(parsed) -> int:
    resume_container(store_for(parsed), one_id(parsed))
    return 0


def pause_container(st: Store, container_id: str) -> None:
    """Freeze every process of a created or running container."""
    record = st.load_record(container_id)
    with st.lock(container_id):
        status_rules.require("pause", container_id, st.status(record))
        _cgroups(record).freeze()


def resume_container(st: Store, container_id: str) -> None:
    """Thaw a paused container."""
    record = st.load_record(container_id)
    with st.lock(container_id):
        status_rules.require("resume", container_id, st.status(record))
        _cgroups(record).thaw()


def container_stats(st: Store, container_id: str) -> dict:
    """runc's stats record (the `data` of `events --stats`)."""
    record = st.load_record(container_id)
    status_rules.require("events --stats", container_id, st.status(record))
    return _cgroups(record).stats()


# ---------------------------------------------------------------- ps

def cmd_ps(parsed):
    """`ps [--format table|json] ID [ps options]`: the container's processes."""
    from pyrunc import jsonlite

    if not parsed.args:
        raise UsageError("ps: requires a container id; see `pyrunc ps --help`")
    container_id, ps_args = parsed.args[0], parsed.args[1:]
    st = store_for(parsed)
    record = st.load_record(container_id)
    # As runc: a stopped container lists what is left in its cgroup (usually
    # nothing: `[]`, the table's header), not an error.
    manager = _cgroups(record)
    if not manager.paths:
        # A rootless container the user could give no cgroup (runc fails too).
        raise PyruncError(f"{container_id}: has no cgroup to list processes from (rootless: "
                          "the user could not create one)")
    pids = sorted(set(manager.pids()))
    if output_format(parsed, ("table", "json")) == "json":
        return jsonlite.dumps(pids) + "\n"
    return _ps_table(pids, ps_args or ["-ef"])


def _ps_table(pids: list[int], ps_args: list[str]) -> str:
    """Run the host's ps with `ps_args`; keep the header and the rows of the
    container's pids (found through the PID column, as runc does)."""
    import subprocess

    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise PyruncError("ps: the ps command is not installed on this host") from None
    except subprocess.CalledProcessError as err:
        raise PyruncError(f"ps {' '.join(ps_args)}: {err.stderr.strip() or 'failed'}") from None
    lines = out.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise PyruncError("ps: the ps output has no PID column")
    column = header.index("PID")
    wanted = {str(p) for p in pids}
    rows = [line for line in lines[1:] if len(line.split()) > column and line.split()[column] in wanted]
    return "\n".join([lines[0], *rows]) + "\n"


# ---------------------------------------------------------------- events

def cmd_events(parsed) -> int:
    """`events [--stats] [--interval 5s] ID`: runc's JSON records, one per
    line: a stats record every interval (or once with --stats), and an
    {"type": "oom"} record whenever the kernel OOM-kills in the container."""
    from pyrunc import jsonlite

    container_id = one_id(parsed)
    st = store_for(parsed)
    record = st.load_record(container_id)  # a missing container before a bad --interval, as before
    interval = _parse_duration(parsed.options.get("interval") or "5s")

    def emit(record: dict) -> None:
        try:
            os.write(1, (jsonlite.dumps(record) + "\n").encode())
        except BrokenPipeError:
            raise
        except OSError as err:  # closed or full: as for any other output (cli._out)
            raise PyruncError(f"cannot write the output: {(err.strerror or str(err)).lower()}") from None

    status_rules.require("events", container_id, st.status(record))
    if parsed.options.get("stats"):
        emit({"type": "stats", "id": container_id, "data": container_stats(st, container_id)})
        return 0
    long_wait_ahead()
    for record in container_events(st, container_id, interval):
        emit(record)
    return 0


def event_stream(st: Store, container_id: str, interval: float):
    """The records' iterator, the container checked now (not found, not
    running), not at the first record."""
    status_rules.require("events", container_id, st.status(st.load_record(container_id)))
    return container_events(st, container_id, interval)


def container_events(st: Store, container_id: str, interval: float):
    """Yield runc's event records until the container stops: a stats record
    every `interval` seconds, an {"type": "oom"} one whenever the kernel
    OOM-kills in the container."""
    import time

    record = st.load_record(container_id)
    cgroups = _cgroups(record)
    watch = cgroups.watch_ooms()
    ooms = watch.count()
    next_stats = 0.0
    try:
        while True:
            # OOM first: the kill may be what stopped the container.
            count = watch.count()
            if count > ooms:
                yield {"type": "oom", "id": container_id}
                ooms = count
            if st.status(record) == STOPPED:
                # The kill may have landed between that count and this
                # status: read once more while the cgroup may still be there.
                if watch.count() > ooms:
                    yield {"type": "oom", "id": container_id}
                return
            now = time.monotonic()
            if now >= next_stats:
                yield {"type": "stats", "id": container_id, "data": cgroups.stats()}
                next_stats = now + interval
            watch.wait(min(0.1, interval))
    finally:
        watch.close()


def _parse_duration(text: str) -> float:
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            value = float(text[: -len(suffix)]) * factor
            if value > 0:
                return value
    raise UsageError(f"events: invalid --interval {text!r}; use a duration like 5s or 500ms")


# ---------------------------------------------------------------- update

_SIZE_SUFFIXES = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str, flag: str) -> int:
    """runc's units.RAMInBytes: 512m, 1g, 1024, -1 (unlimited)."""
    raw = text.strip().lower()
    if raw == "-1":
        return -1
    number = raw.rstrip("bkmgtpi")
    suffix = raw[len(number):].rstrip("b").rstrip("i") or "b"
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"update: {flag} {text!r}: not a size (use e.g. 512m, 1g, or -1)") from None
    if suffix not in _SIZE_SUFFIXES or value < 0:
        raise UsageError(f"update: {flag} {text!r}: not a size (use e.g. 512m, 1g, or -1)")
    return int(value * _SIZE_SUFFIXES[suffix])


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"update: {flag} {text!r}: must be an integer") from None


def resources_from_flags(opts: dict) -> dict:
    """runc update's flags as a linux.resources object (only those given)."""
    resources: dict = {}

    def put(section: str, key: str, value) -> None:
        resources.setdefault(section, {})[key] = value

    if opts.get("blkio_weight") is not None:
        put("blockIO", "weight", _int(opts["blkio_weight"], "--blkio-weight"))
    for flag, key in (("cpu_period", "period"), ("cpu_quota", "quota"), ("cpu_share", "shares"),
                      ("cpu_rt_period", "realtimePeriod"), ("cpu_rt_runtime", "realtimeRuntime"),
                      ("cpu_burst", "burst"), ("cpu_idle", "idle")):
        if opts.get(flag) is not None:
            put("cpu", key, _int(opts[flag], "--" + flag.replace("_", "-")))
    if opts.get("cpuset_cpus") is not None:
        put("cpu", "cpus", opts["cpuset_cpus"])
    if opts.get("cpuset_mems") is not None:
        put("cpu", "mems", opts["cpuset_mems"])
    for flag, key in (("memory", "limit"), ("memory_reservation", "reservation"), ("memory_swap", "swap")):
        if opts.get(flag) is not None:
            put("memory", key, parse_size(opts[flag], "--" + flag.replace("_", "-")))
    if opts.get("pids_limit") is not None:
        put("pids", "limit", _int(opts["pids_limit"], "--pids-limit"))
    for flag in ("l3_cache_schema", "mem_bw_schema"):
        if opts.get(flag):
            raise PyruncError(f"update: --{flag.replace('_', '-')}: Intel RDT is not supported by pyrunc")
    return resources


def cmd_update(parsed) -> int:
    from pyrunc import jsonlite

    container_id = one_id(parsed)
    st = store_for(parsed)
    st.load_record(container_id)  # a missing container is reported before stdin is read
    opts = parsed.options
    if opts.get("resources"):
        source = opts["resources"]
        from pyrunc.files import read_limited, read_regular

        try:
            what = f"update: --resources {source}"
            data = read_limited(0, what) if source == "-" else read_regular(source, what)
        except OSError as err:
            raise PyruncError(f"update: --resources {source}: {err.strerror.lower()}") from None
        try:
            resources = jsonlite.loads(data, integral_floats_as_int=True)
        except ValueError as err:
            raise PyruncError(f"update: --resources {source}: {err}") from None
        if not isinstance(resources, dict):
            raise PyruncError(f"update: --resources {source}: must be a JSON object")
        from pyrunc.spec.load import reject_lone_surrogates, reject_nul

        reject_lone_surrogates(resources, data, f"update: --resources {source}")
        reject_nul(resources, data, f"update: --resources {source}")
        # Flags given as well override the file (runc).
        for section, values in resources_from_flags(opts).items():
            resources.setdefault(section, {}).update(values)
    else:
        resources = resources_from_flags(opts)
    update_container(st, container_id, resources)
    return 0


def update_container(st: Store, container_id: str, resources: dict) -> None:
    """Apply a linux.resources object (only what it sets) and keep the
    merged result in the state."""
    record = st.load_record(container_id)
    _validate_resources(record, resources)
    with st.lock(container_id):
        # Read again under the lock: a concurrent update saved meanwhile is kept.
        record = st.load_record(container_id)
        status_rules.require("update", container_id, st.status(record))
        # Devices are not updated (runc 1.1 leaves them too): the JSON
        # engines send carries a deny-all rule that would lock the container out.
        manager = _cgroups(record)
        if not manager.paths:
            raise PyruncError(f"{container_id}: cannot set limits: the container has no cgroup (rootless: "
                              "the user could not create one)")
        for warning in manager.update(resources):
            log.warning(warning)
        merged = dict(record.resources)
        for section, values in resources.items():
            if isinstance(values, dict) and isinstance(merged.get(section), dict):
                merged[section] = {**merged[section], **values}
            else:
                merged[section] = values
        record.resources = merged
        st.save_record(record)


def _validate_resources(record: ContainerRecord, resources: dict) -> None:
    doc = {"ociVersion": record.oci_version or "1.0.2", "root": {"path": "rootfs"},
           "process": {"args": ["x"], "cwd": "/"}, "linux": {"resources": resources}}
    problems = [p for p in validate_config(doc) if p[0].startswith("linux.resources")]
    if problems:
        raise ConfigError(problems, file="update")
