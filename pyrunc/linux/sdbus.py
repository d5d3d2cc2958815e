"""systemd's D-Bus API, through libsystemd's sd-bus (ctypes), for the systemd
cgroup driver: start, stop and change transient units, wait for their jobs.

Why sd-bus through ctypes, not a Python D-Bus package: it is systemd's own
client library (systemctl's), installed with systemd on every host that has
it (libsystemd0), so the driver needs no new dependency; loading it costs
about 1 ms (ctypes is loaded by pyrunc already), where importing jeepney
costs 15-20 ms, dbus-fast ~60 ms and python-sdbus ~45 ms, and a call costs
the same with each (README, "The systemd cgroup driver"). Imported only
under --systemd-cgroup. sd-bus starts no thread.

As root it talks to systemd directly on its private socket
(/run/systemd/private, what systemctl uses as root: no broker in between,
no Hello, and systemd sends job signals to every private connection), else
through the system bus. Rootless (connect_user), to the user's own manager
(user@UID.service): on the session bus, else on its private socket. Every
call waits at most CALL_TIMEOUT; a job at most JOB_TIMEOUT (runc waits 30 s
too).

Errors: Unreachable (one line naming the sockets tried) and BusError (the
D-Bus error's name and message), both PyruncErrors.
Imports: errors (ctypes).
"""

from __future__ import annotations

import ctypes

from pyrunc import oslite as os
from pyrunc.errors import PyruncError

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"
LIBRARY = "libsystemd.so.0"
CALL_TIMEOUT_USEC = 25_000_000
JOB_TIMEOUT = 30.0

_DEST = b"org.freedesktop.systemd1"
_PATH = b"/org/freedesktop/systemd1"
_MANAGER = b"org.freedesktop.systemd1.Manager"
_JOB_REMOVED_MATCH = (b"type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
                      b"interface='org.freedesktop.systemd1.Manager',member='JobRemoved'")


class Unreachable(PyruncError):
    pass


class BusError(PyruncError):
    """A method call systemd answered with an error."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{message} ({name})" if message else name)
        self.name = name
        self.message = message


class _Error(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("message", ctypes.c_char_p), ("need_free", ctypes.c_int)]


_lib = None
_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _library():
    """libsystemd, with prototypes for the functions used (the variadic
    ones are not used: every value goes through append_basic)."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(LIBRARY, use_errno=True)
    except OSError:
        raise Unreachable(f"--systemd-cgroup: {LIBRARY} is not installed (systemd's client library, "
                          "how pyrunc talks to systemd)") from None
    p, i, u64, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_char_p
    pp = ctypes.POINTER(ctypes.c_void_p)
    for name, args, result in (
        ("sd_bus_new", [pp], i),
        ("sd_bus_set_address", [p, s], i),
        ("sd_bus_set_bus_client", [p, i], i),
        ("sd_bus_start", [p], i),
        ("sd_bus_get_fd", [p], i),
        ("sd_bus_flush_close_unref", [p], p),
        ("sd_bus_message_new_method_call", [p, pp, s, s, s, s], i),
        ("sd_bus_message_append_basic", [p, ctypes.c_char, p], i),
        ("sd_bus_message_append_array", [p, ctypes.c_char, p, ctypes.c_size_t], i),
        ("sd_bus_message_open_container", [p, ctypes.c_char, s], i),
        ("sd_bus_message_close_container", [p], i),
        ("sd_bus_message_enter_container", [p, ctypes.c_char, s], i),
        ("sd_bus_message_read_basic", [p, ctypes.c_char, p], i),
        ("sd_bus_message_unref", [p], p),
        ("sd_bus_call", [p, p, u64, ctypes.POINTER(_Error), pp], i),
        ("sd_bus_error_free", [ctypes.POINTER(_Error)], None),
        ("sd_bus_add_match", [p, pp, s, _HANDLER, p], i),
        ("sd_bus_slot_unref", [p], p),
        ("sd_bus_process", [p, pp], i),
        ("sd_bus_wait", [p, u64], i),
    ):
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result
    _lib = lib
    return lib


def _check(result: int, what: str) -> int:
    if result < 0:
        raise PyruncError(f"systemd D-Bus: {what}: {os.strerror(-result).lower()}")
    return result


class Bus:
    """One connection to systemd (connect())."""

    def __init__(self, handle, socket_path: str):
        self._lib = _library()
        self._bus = handle
        self.socket_path = socket_path
        self._finished: dict[bytes, str] = {}
        self._slot = ctypes.c_void_p()
        self._handler = _HANDLER(self._on_job_removed)  # kept alive as long as the match
        _check(self._lib.sd_bus_add_match(self._bus, ctypes.byref(self._slot), _JOB_REMOVED_MATCH, self._handler,
                                          None), "subscribe to JobRemoved")

    def fileno(self) -> int:
        return self._lib.sd_bus_get_fd(self._bus)

    def close(self) -> None:
        if self._bus:
            self._lib.sd_bus_slot_unref(self._slot)
            self._lib.sd_bus_flush_close_unref(self._bus)
            self._bus = None

    # ---- systemd's Manager methods

    def start_transient_unit(self, name: str, properties: list[tuple[str, str, object]]) -> str:
        """StartTransientUnit(name, "replace", properties, []): the job's path."""
        def build(m):
            self._append(m, "s", name)
            self._append(m, "s", "replace")
            self._append_properties(m, properties)
            _check(self._lib.sd_bus_message_open_container(m, b"a", b"(sa(sv))"), "build message")
            _check(self._lib.sd_bus_message_close_container(m), "build message")
        return self._call(b"StartTransientUnit", build, "o")

    def stop_unit(self, name: str) -> str:
        """StopUnit(name, "replace"): the job's path."""
        def build(m):
            self._append(m, "s", name)
            self._append(m, "s", "replace")
        return self._call(b"StopUnit", build, "o")

    def reset_failed_unit(self, name: str) -> None:
        self._call(b"ResetFailedUnit", lambda m: self._append(m, "s", name), None)

    def set_unit_properties(self, name: str, properties: list[tuple[str, str, object]]) -> None:
        """SetUnitProperties(name, runtime=true, properties)."""
        def build(m):
            self._append(m, "s", name)
            self._append(m, "b", True)
            self._append_properties(m, properties)
        self._call(b"SetUnitProperties", build, None)

    def manager_property(self, name: str) -> str:
        """A string property of systemd's Manager object (Version)."""
        def build(m):
            self._append(m, "s", _MANAGER.decode())
            self._append(m, "s", name)
        return self._call(b"Get", build, "v:s", interface=b"org.freedesktop.DBus.Properties")

    def wait_for_job(self, job: str, timeout: float = JOB_TIMEOUT) -> str:
        """Wait until systemd removes `job`; its result ("done", "failed",
        "canceled", "timeout", "dependency", "skipped")."""
        import time

        key = job.encode()
        deadline = time.monotonic() + timeout
        while key not in self._finished:
            result = _check(self._lib.sd_bus_process(self._bus, None), "read from systemd")
            if result > 0:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout waiting for systemd"
            _check(self._lib.sd_bus_wait(self._bus, ctypes.c_uint64(int(left * 1_000_000))), "wait for systemd")
        return self._finished.pop(key)

    # ---- plumbing

    def _on_job_removed(self, message, userdata, error) -> int:
        # JobRemoved(u id, o job, s unit, s result)
        job_id = ctypes.c_uint32()
        job, unit, result = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
        read = self._lib.sd_bus_message_read_basic
        if (read(message, b"u", ctypes.byref(job_id)) >= 0 and read(message, b"o", ctypes.byref(job)) >= 0
                and read(message, b"s", ctypes.byref(unit)) >= 0 and read(message, b"s", ctypes.byref(result)) >= 0):
            self._finished[job.value] = (result.value or b"").decode()
        return 0

    def _call(self, member: bytes, build, reply_type: str | None, interface: bytes = _MANAGER):
        lib = self._lib
        message, reply = ctypes.c_void_p(), ctypes.c_void_p()
        _check(lib.sd_bus_message_new_method_call(self._bus, ctypes.byref(message), _DEST, _PATH, interface, member),
               f"make a {member.decode()} call")
        error = _Error()
        try:
            build(message)
            result = lib.sd_bus_call(self._bus, message, ctypes.c_uint64(CALL_TIMEOUT_USEC), ctypes.byref(error),
                                     ctypes.byref(reply))
            if result < 0:
                name = (error.name or b"").decode(errors="replace")
                text = (error.message or b"").decode(errors="replace")
                if not name:
                    raise PyruncError(f"systemd D-Bus: {member.decode()}: {os.strerror(-result).lower()}")
                raise BusError(name, text)
            if reply_type is None:
                return None
            if reply_type.startswith("v:"):
                _check(lib.sd_bus_message_enter_container(reply, b"v", reply_type[2:].encode()), "read reply")
                reply_type = reply_type[2:]
            value = ctypes.c_char_p()
            _check(lib.sd_bus_message_read_basic(reply, reply_type.encode(), ctypes.byref(value)), "read reply")
            return (value.value or b"").decode()
        finally:
            lib.sd_bus_error_free(ctypes.byref(error))
            if reply:
                lib.sd_bus_message_unref(reply)
            lib.sd_bus_message_unref(message)

    def _append_properties(self, m, properties) -> None:
        """a(sv): each (name, D-Bus signature, value)."""
        lib = self._lib
        _check(lib.sd_bus_message_open_container(m, b"a", b"(sv)"), "build message")
        for name, signature, value in properties:
            _check(lib.sd_bus_message_open_container(m, b"r", b"sv"), "build message")
            self._append(m, "s", name)
            _check(lib.sd_bus_message_open_container(m, b"v", signature.encode()), f"build property {name}")
            self._append(m, signature, value, name)
            _check(lib.sd_bus_message_close_container(m), "build message")
            _check(lib.sd_bus_message_close_container(m), "build message")
        _check(lib.sd_bus_message_close_container(m), "build message")

    def _append(self, m, signature: str, value, name: str = "") -> None:
        """One value of a basic type, or an array of one ("ay" from bytes,
        "as", "au", "at" ... from lists), or a(ss) from pairs."""
        lib = self._lib
        what = f"build property {name}" if name else "build message"
        if signature == "ay":
            data = bytes(value)
            buffer = ctypes.create_string_buffer(data, len(data))
            _check(lib.sd_bus_message_append_array(m, b"y", buffer, len(data)), what)
            return
        if signature.startswith("a"):
            _check(lib.sd_bus_message_open_container(m, b"a", signature[1:].encode()), what)
            for item in value:
                if signature[1] == "(":
                    _check(lib.sd_bus_message_open_container(m, b"r", signature[2:-1].encode()), what)
                    for sub_signature, sub in zip(signature[2:-1], item):
                        self._append(m, sub_signature, sub, name)
                    _check(lib.sd_bus_message_close_container(m), what)
                else:
                    self._append(m, signature[1:], item, name)
            _check(lib.sd_bus_message_close_container(m), what)
            return
        ctype = _BASIC.get(signature)
        if ctype is None:
            raise PyruncError(f"systemd D-Bus: {what}: unsupported type {signature!r}")
        if ctype is ctypes.c_char_p:
            data = str(value).encode()
            if b"\0" in data:
                raise PyruncError(f"systemd D-Bus: {what}: a string with a NUL byte")
            _check(lib.sd_bus_message_append_basic(m, signature.encode(), ctypes.c_char_p(data)), what)
            return
        holder = ctype(int(bool(value)) if signature == "b" else value)
        _check(lib.sd_bus_message_append_basic(m, signature.encode(), ctypes.byref(holder)), what)


_BASIC = {
    "s": ctypes.c_char_p, "o": ctypes.c_char_p, "g": ctypes.c_char_p,
    "b": ctypes.c_int, "y": ctypes.c_uint8, "n": ctypes.c_int16, "q": ctypes.c_uint16,
    "i": ctypes.c_int32, "u": ctypes.c_uint32, "x": ctypes.c_int64, "t": ctypes.c_uint64,
    "d": ctypes.c_double,
}


def user_bus_targets(env: dict, uid: int) -> list[tuple[str, bool]]:
    """Where the user manager of `uid` answers, in the order tried (runc's
    DetectUserDbusSessionBusAddress, then the manager's private socket, as
    `systemctl --user` knows it): $DBUS_SESSION_BUS_ADDRESS (any D-Bus
    address), the session bus $XDG_RUNTIME_DIR/bus, $XDG_RUNTIME_DIR/
    systemd/private; $XDG_RUNTIME_DIR defaults to /run/user/UID (Podman
    passes it to its runtime; a bare environment may lack it).
    → [(address or socket path, is a bus: authenticate and Hello)]."""
    targets: list[tuple[str, bool]] = []
    address = env.get("DBUS_SESSION_BUS_ADDRESS") or ""
    if address:
        targets.append((address, True))
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    bus = os.path.join(runtime_dir, "bus")
    if f"unix:path={bus}" != address:
        targets.append((bus, True))
    targets.append((os.path.join(runtime_dir, "systemd", "private"), False))
    return targets


def _address(target: str) -> tuple[str, str]:
    """(D-Bus address, socket path to check first or "") for a target: a
    socket path, or an address as $DBUS_SESSION_BUS_ADDRESS holds it."""
    if target.startswith("/"):
        return f"unix:path={target}", target
    if target.startswith("unix:path=") and not any(c in target for c in ",;"):
        return target, target[len("unix:path="):]
    return target, ""


def connect(sockets=((PRIVATE_SOCKET, False), (SYSTEM_BUS_SOCKET, True)), manager: str = "",
            hint: str = "") -> Bus:
    """A connection to systemd: its private socket (root), else the system
    bus (a bus client: authenticated, then Hello); `sockets` are paths or
    D-Bus addresses, each with whether it is a bus. sd-bus authenticates
    with EXTERNAL and no identity, so the daemon takes the peer's
    credentials from the socket: right in a user namespace too, where
    pyrunc's uid 0 is the user's uid outside. Raises Unreachable naming
    what was tried; `manager` names the manager meant, `hint` what to
    check."""
    lib = _library()
    tried = []
    for target, bus_client in sockets:
        address, path = _address(target)
        label = path or address
        if path and not os.path.exists(path):
            tried.append(f"{label}: no such socket")
            continue
        handle = ctypes.c_void_p()
        _check(lib.sd_bus_new(ctypes.byref(handle)), "new connection")
        result = lib.sd_bus_set_address(handle, address.encode())
        if result >= 0 and bus_client:
            result = lib.sd_bus_set_bus_client(handle, 1)
        if result >= 0:
            result = lib.sd_bus_start(handle)
        if result < 0:
            lib.sd_bus_flush_close_unref(handle)
            tried.append(f"{label}: {os.strerror(-result).lower()}")
            continue
        return Bus(handle, label)
    if manager:
        raise Unreachable(f"--systemd-cgroup: cannot reach {manager} ({'; '.join(tried)}){hint}")
    running = "" if os.path.isdir("/run/systemd/system") else "systemd is not running on this host; "
    raise Unreachable(f"--systemd-cgroup: cannot reach systemd ({running}{'; '.join(tried)})")


def connect_user(uid: int, env: dict | None = None) -> Bus:
    """A connection to the systemd user manager of `uid` (rootless
    --systemd-cgroup), at user_bus_targets."""
    env = os.environ if env is None else env
    return connect(user_bus_targets(env, uid), manager=f"the systemd user manager of uid {uid}",
                   hint=f": is user@{uid}.service running? (it runs while the user is logged in, "
                        "or always after `loginctl enable-linger USER`)")
