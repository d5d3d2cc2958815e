"""Log records to `--log FILE` (appended) or stderr, as text or JSON lines.

JSON lines carry `level`, `msg` and `time` (RFC 3339, UTC): containerd's shim
decodes every line of the log and keeps the last error, and a `time` that does
not parse as RFC 3339 fails the whole decode. Text lines in a file look like
logrus's (`time="…" level=error msg="…"`); on stderr so do --debug's debug
and info records (runc's users filter `level=debug`), while errors and
warnings there are plain `pyrunc: …` lines.

The file is opened on first use, so a command that succeeds quietly never
touches it. Imports: stdlib only (time, os).
"""

from __future__ import annotations

import time

from pyrunc import oslite as os

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class _Config:
    path: str | None = None
    json = False
    debug = False
    fd: int | None = None


_config = _Config()


def configure(path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
    if _config.fd is not None:
        os.close(_config.fd)
    _config.path = path or None
    _config.json = fmt == "json"
    _config.debug = debug
    _config.fd = None


def debug_enabled() -> bool:
    return _config.debug


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(text: str) -> str:
    from pyrunc.jsonlite import dumps

    return dumps(text)


def format_record(level: str, msg: str, as_json: bool, stamp: str) -> str:
    if as_json:
        from pyrunc.jsonlite import dumps

        return dumps({"level": level, "msg": msg, "time": stamp}) + "\n"
    return f"time={_quote(stamp)} level={level} msg={_quote(msg)}\n"


def _write_fd(fd: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except InterruptedError:
            continue
        data = data[written:]


def _emit(level: str, msg: str) -> None:
    """Never raises: a log that cannot be written (a full disk, a closed
    pipe) must not fail the command it reports on, nor lose an error."""
    msg = " ".join(msg.splitlines()) if "\n" in msg else msg
    if _config.path and _write_log_file(format_record(level, msg, _config.json, _timestamp()).encode()):
        # runc's fatal(): the error also reaches stderr, for callers that do not read the log.
        if level == "error":
            _stderr(f"pyrunc: {msg}\n")
        return
    if _config.json or level in ("debug", "info"):
        # --debug's records as runc's (logrus) on stderr: `level=debug` lines
        # that scripts filter, JSON lines with --log-format json.
        _stderr(format_record(level, msg, _config.json, _timestamp()))
    elif level == "error":
        _stderr(f"pyrunc: {msg}\n")
    else:
        _stderr(f"pyrunc: {level}: {msg}\n")


def _write_log_file(record: bytes) -> bool:
    """Append to --log; on failure say so once on stderr and fall back to it."""
    doing = "open"
    try:
        if _config.fd is None:
            _config.fd = os.open(_config.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        doing = "write"
        _write_fd(_config.fd, record)
        return True
    except OSError as err:
        # A warning: the record itself follows on stderr.
        _stderr(f"pyrunc: warning: cannot {doing} log file {_config.path}: {(err.strerror or str(err)).lower()}\n")
        if _config.fd is not None:
            os.close(_config.fd)
        _config.fd = None
        _config.path = None
        return False


def _stderr(text: str) -> None:
    try:
        _write_fd(2, text.encode("utf-8", "replace"))
    except OSError:
        pass


def debug(msg: str) -> None:
    if _config.debug:
        _emit("debug", msg)


def info(msg: str) -> None:
    if _config.debug:
        _emit("info", msg)


def warning(msg: str) -> None:
    _emit("warning", msg)


def error(msg: str) -> None:
    _emit("error", msg)


_phase_start = [0.0, 0.0, 0.0]  # wall at the last phase, wall at the start, CPU at the last phase


def start_clock() -> None:
    """Where `phase` timings count from (the CLI calls it first thing)."""
    _phase_start[0] = _phase_start[1] = time.perf_counter()
    _phase_start[2] = time.process_time()


def phase(name: str) -> None:
    """Under --debug, log the time the step `name` took, the CPU time this
    process spent in it (user+sys: what a machine running many containers
    pays), and the total since the CLI started, so `pyrunc --debug create`
    shows where the time goes (the interpreter's own start-up comes before
    and is not counted)."""
    if not _config.debug:
        return
    now, cpu = time.perf_counter(), time.process_time()
    if not _phase_start[0]:
        _phase_start[0] = _phase_start[1] = now
        _phase_start[2] = cpu
    _emit("debug", f"phase {name}: {(now - _phase_start[0]) * 1000:.2f} ms, cpu {(cpu - _phase_start[2]) * 1000:.2f} ms "
                   f"(total {(now - _phase_start[1]) * 1000:.2f} ms)")
    _phase_start[0], _phase_start[2] = now, cpu
