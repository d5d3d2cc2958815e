"""systemd's D-Bus API for the systemd cgroup driver: start, stop and change
transient units, wait for their jobs. The D-Bus wire protocol is spoken here
(https://dbus.freedesktop.org/doc/dbus-specification.html): a unix socket,
the EXTERNAL authentication, method calls and their replies, the JobRemoved
signal; nothing else.

Why pyrunc speaks the protocol itself rather than through a library: every
`create`, `run` and `delete` under --systemd-cgroup connects anew, and what
the connection costs to set up is what counts. libsystemd's sd-bus through
ctypes (pyrunc's binding until 2026-12) cost 12M instructions for ctypes and
the os module it needs, before loading libsystemd and declaring its
prototypes (about 3.5 ms a command); jeepney costs 15-20 ms to import,
dbus-fast ~60 ms, python-sdbus ~45 ms. This module needs only the
interpreter's _socket (0.8M instructions), and the few messages the driver
sends have fixed shapes. youki does the same (its own minimal D-Bus client).

As root it talks to systemd directly on its private socket
(/run/systemd/private, what systemctl uses as root: no broker in between,
no Hello, and systemd sends job signals to every private connection), else
through the system bus (Hello, then AddMatch for JobRemoved). Rootless
(connect_user), to the user's own manager (user@UID.service): on the session
bus, else on its private socket. Authentication is EXTERNAL with no identity
(as sd-bus does it), so the daemon takes the peer's credentials from the
socket: right in a user namespace too, where pyrunc's uid 0 is the user's
uid outside. Every call waits at most CALL_TIMEOUT; a job at most
JOB_TIMEOUT (runc waits 30 s too). No thread, no fd passing.

Errors: Unreachable (one line naming the sockets tried) and BusError (the
D-Bus error's name and message; a call whose connection failed or timed out
too, named as sd-bus names it: Disconnected, Timeout), both PyruncErrors.
systemd before 242 answered the authentication differently; both forms are
read.
Imports: errors (_socket).
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc.errors import PyruncError

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"
CALL_TIMEOUT = 25.0
JOB_TIMEOUT = 30.0

_DEST = "org.freedesktop.systemd1"
_PATH = "/org/freedesktop/systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"
_JOB_REMOVED_MATCH = ("type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
                      "interface='org.freedesktop.systemd1.Manager',member='JobRemoved'")

# Message types, and the header fields used (their codes).
_METHOD_CALL, _METHOD_RETURN, _ERROR, _SIGNAL = 1, 2, 3, 4
_F_PATH, _F_INTERFACE, _F_MEMBER, _F_ERROR_NAME, _F_REPLY_SERIAL, _F_DESTINATION, _F_SIGNATURE = 1, 2, 3, 4, 5, 6, 8
_MAX_MESSAGE = 1 << 27  # the specification's limit (128 MiB)


class Unreachable(PyruncError):
    pass


class BusError(PyruncError):
    """A method call systemd answered with an error."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{message} ({name})" if message else name)
        self.name = name
        self.message = message


# ---------------------------------------------------------------- marshalling

# Each type's alignment; the integers' (size, signed).
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4, "o": 4, "g": 1,
          "a": 4, "(": 8, "{": 8, "v": 1}
_INTEGERS = {"y": (1, False), "b": (4, False), "n": (2, True), "q": (2, False), "i": (4, True), "u": (4, False),
             "x": (8, True), "t": (8, False)}


def split_signature(signature: str) -> list[str]:
    """The single complete types of a signature: "sa(sv)b" -> ["s", "a(sv)", "b"]."""
    types = []
    i = 0
    while i < len(signature):
        end = _type_end(signature, i)
        types.append(signature[i:end])
        i = end
    return types


def _type_end(signature: str, i: int) -> int:
    if i >= len(signature):
        raise PyruncError(f"systemd D-Bus: incomplete type signature {signature!r}")
    code = signature[i]
    if code == "a":
        return _type_end(signature, i + 1)
    if code in "({":
        close = ")" if code == "(" else "}"
        i += 1
        if signature[i:i + 1] == close:
            raise PyruncError(f"systemd D-Bus: an empty struct in {signature!r}")
        while i < len(signature) and signature[i] != close:
            i = _type_end(signature, i)
        if i >= len(signature):
            raise PyruncError(f"systemd D-Bus: incomplete type signature {signature!r}")
        return i + 1
    if code in _ALIGN:
        return i + 1
    raise PyruncError(f"systemd D-Bus: unsupported type {code!r} in {signature!r}")


def _one_type(signature: str) -> str:
    """`signature`, if it is one single complete type (a variant's)."""
    if not signature or _type_end(signature, 0) != len(signature):
        raise PyruncError(f"systemd D-Bus: a variant of type {signature!r}")
    return signature


class _Writer:
    """Values marshalled little-endian into one buffer whose offset 0 is
    8-aligned in the message (a header, or a body)."""

    def __init__(self):
        self.data = bytearray()

    def pad(self, alignment: int) -> None:
        self.data += bytes(-len(self.data) % alignment)

    def put(self, signature: str, value) -> None:
        """One value of the single complete type `signature`: ints and bools,
        str for s/o/g, bytes for ay, lists for arrays, dicts for a{..},
        tuples for structs, (signature, value) for v."""
        try:
            self._put(signature, value)
        except (TypeError, ValueError, OverflowError, UnicodeError, IndexError, KeyError):  # PyruncError is none
            raise PyruncError(f"systemd D-Bus: {value!r} is no value of type {signature!r}") from None

    def _put(self, signature: str, value) -> None:
        code = signature[0]
        if code not in _ALIGN:
            raise PyruncError(f"systemd D-Bus: unsupported type {code!r} in {signature!r}")
        self.pad(_ALIGN[code])
        data = self.data
        if code in _INTEGERS:
            size, signed = _INTEGERS[code]
            data += int(bool(value) if code == "b" else value).to_bytes(size, "little", signed=signed)
        elif code in "sog":
            text = str(value).encode()
            if b"\0" in text:
                raise PyruncError("systemd D-Bus: a string with a NUL byte")
            data += (len(text).to_bytes(1 if code == "g" else 4, "little")) + text + b"\0"
        elif code == "d":
            import struct

            data += struct.pack("<d", float(value))
        elif code == "a":
            element = signature[1:]
            length_at = len(data)
            data += bytes(4)
            self.pad(_ALIGN[element[0]])
            start = len(data)
            if element == "y":
                data += bytes(value)
            else:
                for item in (value.items() if element[0] == "{" else value):
                    self._put(element, item)
            data[length_at:length_at + 4] = (len(data) - start).to_bytes(4, "little")
        elif code in "({":
            fields = split_signature(signature[1:-1])
            if not fields or len(fields) != len(value):
                raise PyruncError(f"systemd D-Bus: {value!r} is no {signature}")
            for field, item in zip(fields, value):
                self._put(field, item)
        else:  # "v": (signature, value)
            inner, item = value
            _one_type(inner)
            self._put("g", inner)
            self._put(inner, item)


class _Reader:
    """Values unmarshalled from one whole message (offsets from its start)."""

    def __init__(self, data: bytes, byteorder: str, position: int = 0):
        self.data = data
        self.order = byteorder
        self.position = position

    def _take(self, size: int) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise PyruncError("systemd D-Bus: a malformed message (a value runs past its end)")
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def get(self, signature: str):
        code = signature[0]
        self.position += -self.position % _ALIGN[code]
        if code in _INTEGERS:
            size, signed = _INTEGERS[code]
            value = int.from_bytes(self._take(size), self.order, signed=signed)
            return bool(value) if code == "b" else value
        if code in "so":
            size = int.from_bytes(self._take(4), self.order)
            text = self._take(size + 1)[:-1]
            return text.decode(errors="replace")
        if code == "g":
            size = self._take(1)[0]
            return self._take(size + 1)[:-1].decode(errors="replace")
        if code == "d":
            import struct

            return struct.unpack("<d" if self.order == "little" else ">d", self._take(8))[0]
        if code == "a":
            size = int.from_bytes(self._take(4), self.order)
            self.position += -self.position % _ALIGN[signature[1]]
            end = self.position + size
            if end > len(self.data):
                raise PyruncError("systemd D-Bus: a malformed message (an array runs past its end)")
            if signature[1] == "y":
                return self._take(size)
            items = []
            while self.position < end:
                items.append(self.get(signature[1:]))
            return dict(items) if signature[1] == "{" else items
        if code in "({":
            return tuple(self.get(field) for field in split_signature(signature[1:-1]))
        inner = _one_type(self.get("g"))  # "v"
        return inner, self.get(inner)


def _message(kind: int, serial: int, fields: list[tuple[int, str, object]], signature: str = "",
             args: tuple = ()) -> bytes:
    """One whole message: its header (fields as (code, type, value)) and body."""
    body = _Writer()
    for field, value in zip(split_signature(signature), args):
        body.put(field, value)
    if signature:
        fields = [*fields, (_F_SIGNATURE, "g", signature)]
    header = _Writer()
    header.data += bytes((ord("l"), kind, 0, 1))  # little-endian, flags, protocol version 1
    header.put("u", len(body.data))
    header.put("u", serial)
    header.put("a(yv)", [(code, (kind_of_value, value)) for code, kind_of_value, value in fields])
    header.pad(8)
    return bytes(header.data + body.data)


def _message_length(start: bytes) -> int:
    """The length of the message whose first 16 bytes are `start`."""
    order = "little" if start[0:1] == b"l" else "big"
    body = int.from_bytes(start[4:8], order)
    fields = int.from_bytes(start[12:16], order)
    return 16 + fields + (-(16 + fields) % 8) + body


def _parse_header(data: bytes) -> tuple[int, dict, _Reader]:
    """(type, header fields by code, a reader at the body) of one whole
    message. The body is read only where it matters: systemd sends every
    private connection all its signals, whatever their types."""
    if data[0:1] not in (b"l", b"B"):
        raise PyruncError("systemd D-Bus: a malformed message (unknown byte order)")
    reader = _Reader(data, "little" if data[0:1] == b"l" else "big", 12)
    fields = {code: value for code, (_, value) in reader.get("a(yv)")}
    reader.position += -reader.position % 8
    return data[1], fields, reader


def _body(fields: dict, reader: _Reader) -> list:
    return [reader.get(field) for field in split_signature(fields.get(_F_SIGNATURE, ""))]


# ---------------------------------------------------------------- the connection


class Bus:
    """One authenticated connection to systemd (connect())."""

    def __init__(self, sock, socket_path: str, bus_client: bool, pending: bytes = b""):
        self._sock = sock
        self.socket_path = socket_path
        self._buffer = bytearray(pending)  # what was read past the authentication
        self._serial = 0
        self._finished: dict[str, str] = {}
        if bus_client:  # a broker in between: say hello, and ask it for the signal
            self._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", ())
            self._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                       (_JOB_REMOVED_MATCH,))

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ---- systemd's Manager methods

    def start_transient_unit(self, name: str, properties: list[tuple[str, str, object]]) -> str:
        """StartTransientUnit(name, "replace", properties, []): the job's path."""
        return self._manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))",
                                  (name, "replace", _variants(properties), []))

    def stop_unit(self, name: str) -> str:
        """StopUnit(name, "replace"): the job's path."""
        return self._manager_call("StopUnit", "ss", (name, "replace"))

    def reset_failed_unit(self, name: str) -> None:
        self._manager_call("ResetFailedUnit", "s", (name,))

    def set_unit_properties(self, name: str, properties: list[tuple[str, str, object]]) -> None:
        """SetUnitProperties(name, runtime=true, properties)."""
        self._manager_call("SetUnitProperties", "sba(sv)", (name, True, _variants(properties)))

    def manager_property(self, name: str) -> str:
        """A string property of systemd's Manager object (Version)."""
        reply = self._call(_DEST, _PATH, "org.freedesktop.DBus.Properties", "Get", "ss", (_MANAGER, name))
        if not reply:
            raise PyruncError("systemd D-Bus: Get: an empty reply")
        signature, value = reply[0]
        return str(value)

    def wait_for_job(self, job: str, timeout: float = JOB_TIMEOUT) -> str:
        """Wait until systemd removes `job`; its result ("done", "failed",
        "canceled", "timeout", "dependency", "skipped")."""
        import time

        deadline = time.monotonic() + timeout
        while job not in self._finished:
            if self._receive(deadline, "wait for systemd") is None:
                return "timeout waiting for systemd"
        return self._finished.pop(job)

    # ---- plumbing

    def _manager_call(self, member: str, signature: str, args: tuple):
        reply = self._call(_DEST, _PATH, _MANAGER, member, signature, args)
        return reply[0] if reply else None

    def _call(self, destination: str, path: str, interface: str, member: str, signature: str, args: tuple) -> list:
        """Send a method call and return its reply's values; BusError for an
        error reply. Signals that come meanwhile are kept (JobRemoved)."""
        import time

        self._serial += 1
        serial = self._serial
        message = _message(_METHOD_CALL, serial, [(_F_PATH, "o", path), (_F_INTERFACE, "s", interface),
                                                  (_F_MEMBER, "s", member), (_F_DESTINATION, "s", destination)],
                           signature, args)
        deadline = time.monotonic() + CALL_TIMEOUT
        sock = self._connected(member)
        try:
            sock.settimeout(CALL_TIMEOUT)
            sock.sendall(message, _MSG_NOSIGNAL)
        except OSError as err:
            raise _transport_error(member, err) from None
        while True:
            received = self._receive(deadline, member)
            if received is None:
                raise BusError(_TIMEOUT, f"systemd D-Bus: {member}: no answer in {CALL_TIMEOUT:.0f} s")
            kind, fields, reader = received
            if fields.get(_F_REPLY_SERIAL) != serial or kind not in (_METHOD_RETURN, _ERROR):
                continue
            body = _body(fields, reader)
            if kind == _ERROR:
                text = body[0] if body and isinstance(body[0], str) else ""
                raise BusError(str(fields.get(_F_ERROR_NAME, "")), text)
            return body

    def _connected(self, what: str):
        if self._sock is None:
            raise BusError(_DISCONNECTED, f"systemd D-Bus: {what}: the connection is closed")
        return self._sock

    def _receive(self, deadline: float, what: str):
        """The next message (type, header fields, a reader at its body),
        having noted a JobRemoved; None once `deadline` (time.monotonic())
        has passed. A failed connection is a BusError, as sd-bus reports it
        (systemd.py's clean-up tells those from its own errors)."""
        import time

        sock = self._connected(what)
        while True:
            if len(self._buffer) >= 16:
                length = _message_length(self._buffer[:16])
                if length > _MAX_MESSAGE:
                    raise BusError("System.Error.EBADMSG", f"systemd D-Bus: {what}: a message of {length} bytes")
                if len(self._buffer) >= length:
                    data = bytes(self._buffer[:length])
                    del self._buffer[:length]
                    kind, fields, reader = _parse_header(data)
                    # JobRemoved(u id, o job, s unit, s result), as systemd
                    # sends it: to everyone (a signal sent to this connection
                    # alone came from some other client of the bus).
                    if (kind == _SIGNAL and fields.get(_F_MEMBER) == "JobRemoved"
                            and fields.get(_F_INTERFACE) == _MANAGER and fields.get(_F_SIGNATURE) == "uoss"
                            and _F_DESTINATION not in fields):
                        _, job, _, result = _body(fields, reader)
                        self._finished[job] = result
                    return kind, fields, reader
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as err:
                raise _transport_error(what, err) from None
            if not chunk:
                raise BusError(_DISCONNECTED, f"systemd D-Bus: {what}: systemd closed the connection")
            self._buffer += chunk


def _variants(properties: list[tuple[str, str, object]]) -> list[tuple[str, tuple[str, object]]]:
    """a(sv) from (name, D-Bus signature, value) triples."""
    return [(name, (signature, value)) for name, signature, value in properties]


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


_TIMEOUT = "org.freedesktop.DBus.Error.Timeout"
_DISCONNECTED = "org.freedesktop.DBus.Error.Disconnected"
_MSG_NOSIGNAL = 0x4000  # a closed peer is an EPIPE, never a SIGPIPE (sd-bus sends so too)


def _transport_error(what: str, err: OSError) -> BusError:
    """The BusError sd-bus gives a call whose connection failed: its
    errno's D-Bus name (a lost connection is Disconnected)."""
    import errno

    if err.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN):
        name = _DISCONNECTED
    elif isinstance(err, TimeoutError) or err.errno == errno.ETIMEDOUT:
        name = _TIMEOUT
    else:
        name = "System.Error." + errno.errorcode.get(err.errno or 0, "EIO")
    return BusError(name, f"systemd D-Bus: {what}: {_reason(err)}")


# ---------------------------------------------------------------- where systemd answers


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


def socket_addresses(address: str) -> list[str]:
    """The unix socket addresses (a path, or "\\0name" for an abstract one)
    of a D-Bus address ("unix:path=/run/bus", "unix:abstract=x,guid=...",
    several joined by ";"), in order; other transports are skipped."""
    found = []
    for entry in address.split(";"):
        transport, _, params = entry.partition(":")
        if transport != "unix":
            continue
        keys = {}
        for param in params.split(","):
            key, _, value = param.partition("=")
            keys[key] = _unescape(value)
        if keys.get("path"):
            found.append(keys["path"])
        elif keys.get("abstract"):
            found.append("\0" + keys["abstract"])
    return found


def _unescape(value: str) -> str:
    """A D-Bus address value with its %XX escapes decoded."""
    if "%" not in value:
        return value
    raw = bytearray()
    i = 0
    while i < len(value):
        pair = value[i + 1:i + 3]
        if value[i] == "%" and len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            raw.append(int(pair, 16))
            i += 3
        else:
            raw += value[i].encode()
            i += 1
    return raw.decode(errors="surrogateescape")


def _open(socket_address: str):
    """A connected socket, authenticated (EXTERNAL, no identity: the daemon
    reads the peer's credentials), and the bytes read past the last "OK"."""
    import _socket
    import time

    deadline = time.monotonic() + CALL_TIMEOUT
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(CALL_TIMEOUT)
        sock.connect(socket_address)
        # The whole exchange at once, as sd-bus sends it: the credentials
        # byte, AUTH with no initial response, the empty DATA answering the
        # daemon's challenge, and BEGIN (which takes effect after its OK).
        sock.sendall(b"\0AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n", _MSG_NOSIGNAL)
        # Two answers, as sd-bus expects them: "DATA" (the challenge) then
        # "OK <guid>"; or, from systemd before 242, "OK" to the AUTH and
        # "OK" again to the DATA.
        answers = []
        received = b""
        while len(answers) < 2:
            end = received.find(b"\r\n")
            if end < 0:
                if len(received) > 4096:
                    raise OSError(0, "an unreadable authentication answer")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OSError(0, "no authentication answer in time")
                sock.settimeout(left)
                chunk = sock.recv(4096)
                if not chunk:
                    raise OSError(0, "closed during authentication")
                received += chunk
                continue
            line, received = received[:end], received[end + 2:]
            word = line.split(b" ", 1)[0]
            if word not in ((b"DATA", b"OK") if not answers else (b"OK",)):
                raise OSError(0, "authentication refused (" + line.decode(errors="replace")[:80] + ")")
            answers.append(word)
        return sock, received
    except BaseException:
        sock.close()
        raise


def connect(sockets=((PRIVATE_SOCKET, False), (SYSTEM_BUS_SOCKET, True)), manager: str = "",
            hint: str = "") -> Bus:
    """A connection to systemd: its private socket (root), else the system
    bus (a bus client: authenticated, then Hello); `sockets` are paths or
    D-Bus addresses, each with whether it is a bus. Raises Unreachable
    naming what was tried; `manager` names the manager meant, `hint` what
    to check."""
    tried = []
    for target, bus_client in sockets:
        address, path = _address(target)
        label = path or address
        if path and not os.path.exists(path):
            tried.append(f"{label}: no such socket")
            continue
        candidates = socket_addresses(address)
        if not candidates:
            tried.append(f"{label}: not a unix socket address")
            continue
        for candidate in candidates:
            try:
                sock, pending = _open(candidate)
            except OSError as err:
                tried.append(f"{label}: {_reason(err)}")
                continue
            try:
                return Bus(sock, label, bus_client, pending)
            except PyruncError as err:
                sock.close()
                tried.append(f"{label}: {err}")
            except BaseException:
                sock.close()
                raise
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
