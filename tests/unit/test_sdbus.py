"""pyrunc.linux.sdbus without systemd: the D-Bus marshalling (round trips,
alignment, the bytes the specification fixes), and a connection over a
socketpair whose other end plays systemd, written with the same message
builder. tests/unit/test_cgroup_systemd.py holds the client to a real
dbus-daemon; the VM lane's systemd jobs to a real systemd."""

from __future__ import annotations

import contextlib
import socket

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import sdbus


def _parse(data: bytes) -> tuple[int, dict, list]:
    """(type, header fields, body values) of one whole message."""
    kind, fields, reader = sdbus._parse_header(data)
    return kind, fields, sdbus._body(fields, reader)


def _round_trip(signature: str, value):
    writer = sdbus._Writer()
    writer.put(signature, value)
    reader = sdbus._Reader(bytes(writer.data), "little")
    result = reader.get(signature)
    assert reader.position == len(writer.data)
    return result, bytes(writer.data)


@pytest.mark.parametrize("signature, value", [
    ("y", 255), ("b", True), ("b", False), ("n", -2), ("q", 65535), ("i", -(1 << 31)), ("u", (1 << 32) - 1),
    ("x", -(1 << 63)), ("t", (1 << 64) - 1), ("d", 0.25), ("s", "päth"), ("o", "/org/x"), ("g", "a(sv)"),
    ("ay", b"\x00\x03"), ("as", ["a", "", "bc"]), ("au", []), ("at", [1, 2]),
    ("a(sv)", [("Slice", ("s", "system.slice")), ("MemoryMax", ("t", 1 << 30)), ("PIDs", ("au", [4321])),
               ("AllowedCPUs", ("ay", b"\x03")), ("Delegate", ("b", True))]),
    ("a(sa(sv))", []), ("a{st}", {"a": 1, "b": 2}), ("(yt)", (1, 2)), ("v", ("as", ["x"])),
])
def test_values_come_back_as_they_went(signature, value):
    assert _round_trip(signature, value)[0] == value


def test_alignment_is_the_specifications():
    # a byte, then a uint64 at offset 8 (padded), little-endian
    writer = sdbus._Writer()
    writer.put("y", 7)
    writer.put("t", 1)
    assert bytes(writer.data) == b"\x07" + bytes(7) + b"\x01" + bytes(7)
    # an empty array of structs: its length 0, then padding to 8 all the same
    assert _round_trip("a(yt)", [])[1] == bytes(8)
    # a string: uint32 length, the bytes, a NUL; a signature: one length byte
    assert _round_trip("s", "ab")[1] == b"\x02\x00\x00\x00ab\x00"
    assert _round_trip("g", "s")[1] == b"\x01s\x00"
    # an array's length counts its elements, not the padding before them
    assert _round_trip("at", [5])[1] == b"\x08\x00\x00\x00" + bytes(4) + b"\x05" + bytes(7)


def test_signatures_split_into_complete_types():
    assert sdbus.split_signature("ssa(sv)a(sa(sv))") == ["s", "s", "a(sv)", "a(sa(sv))"]
    assert sdbus.split_signature("a{sv}bv") == ["a{sv}", "b", "v"]
    for bad in ("a", "(s", "h", "a{s"):
        with pytest.raises(PyruncError):
            sdbus.split_signature(bad)


def test_values_that_do_not_fit_are_one_clear_error():
    for signature, value in (("y", 256), ("u", -1), ("s", "a\0b"), ("(ss)", ("a",)), ("t", "x"), ("s", "\udcff"),
                             ("g", "s" * 256), ("v", ("", 1)), ("v", ("ss", ("a", "b"))), ("h", 1), ("()", ())):
        with pytest.raises(PyruncError, match="systemd D-Bus"):
            sdbus._Writer().put(signature, value)


def test_a_method_call_has_the_header_the_specification_fixes():
    message = sdbus._message(sdbus._METHOD_CALL, 5, [(sdbus._F_MEMBER, "s", "Ping")], "s", ("x",))
    assert message[:4] == b"l\x01\x00\x01"  # little-endian, method call, no flags, version 1
    assert int.from_bytes(message[4:8], "little") == 6  # the body: "x" as a string
    assert int.from_bytes(message[8:12], "little") == 5  # the serial
    assert len(message) == sdbus._message_length(message[:16])
    kind, fields, body = _parse(message)
    assert (kind, fields, body) == (sdbus._METHOD_CALL, {sdbus._F_MEMBER: "Ping", sdbus._F_SIGNATURE: "s"}, ["x"])


def test_a_big_endian_message_is_read_too():
    # A method return with reply serial 9 and the body "ok", written big-endian by hand.
    fields = b"\x05\x01u\x00" + (9).to_bytes(4, "big") + b"\x08\x01g\x00\x01s\x00"
    header = b"B\x02\x00\x01" + (7).to_bytes(4, "big") + (1).to_bytes(4, "big") + len(fields).to_bytes(4, "big")
    data = header + fields + bytes(-(len(header) + len(fields)) % 8) + (2).to_bytes(4, "big") + b"ok\x00"
    assert sdbus._message_length(data[:16]) == len(data)
    assert _parse(data) == (sdbus._METHOD_RETURN, {sdbus._F_REPLY_SERIAL: 9, sdbus._F_SIGNATURE: "s"},
                                  ["ok"])


def test_a_truncated_message_is_refused():
    message = sdbus._message(sdbus._SIGNAL, 1, [(sdbus._F_MEMBER, "s", "X")], "s", ("long enough",))
    with pytest.raises(PyruncError, match="malformed"):
        _parse(message[:-6])


@pytest.mark.parametrize("address, expected", [
    ("unix:path=/run/user/1000/bus", ["/run/user/1000/bus"]),
    ("unix:path=/tmp/a%20b,guid=0123", ["/tmp/a b"]),
    ("unix:abstract=/tmp/dbus-x,guid=1;unix:path=/p", ["\0/tmp/dbus-x", "/p"]),
    ("tcp:host=localhost,port=1", []),
])
def test_socket_addresses_of_a_dbus_address(address, expected):
    assert sdbus.socket_addresses(address) == expected


# ---------------------------------------------------------------- a connection whose other end plays systemd


class FakeSystemd:
    """The daemon's end of a socketpair: reads what the client sent and
    answers with messages built by the module's own builder."""

    def __init__(self, sock):
        self.sock = sock
        self.serial = 100

    def read_call(self) -> tuple[int, dict, list]:
        data = b""
        while len(data) < 16 or len(data) < sdbus._message_length(data[:16]):
            data += self.sock.recv(65536)
        message = data[:sdbus._message_length(data[:16])]
        assert message[1] == sdbus._METHOD_CALL
        serial = int.from_bytes(message[8:12], "little")
        return (serial, *_parse(message)[1:])

    def send(self, kind: int, fields: list, signature: str = "", args: tuple = ()) -> None:
        self.serial += 1
        self.sock.sendall(sdbus._message(kind, self.serial, fields, signature, args))


@pytest.fixture
def bus_and_systemd():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    bus = sdbus.Bus(ours, "socketpair", bus_client=False)
    try:
        yield bus, FakeSystemd(theirs)
    finally:
        bus.close()
        theirs.close()


JOB = "/org/freedesktop/systemd1/job/42"


def _job_removed(systemd: FakeSystemd, job: str, result: str) -> None:
    systemd.send(sdbus._SIGNAL, [(sdbus._F_PATH, "o", sdbus._PATH), (sdbus._F_INTERFACE, "s", sdbus._MANAGER),
                                 (sdbus._F_MEMBER, "s", "JobRemoved")], "uoss", (42, job, "x.scope", result))


def test_start_returns_the_job_and_its_result_comes_by_signal(bus_and_systemd):
    bus, systemd = bus_and_systemd
    # The answer and a signal that came first are already waiting in the socket.
    _job_removed(systemd, "/org/freedesktop/systemd1/job/7", "done")  # another client's job
    systemd.send(sdbus._METHOD_RETURN, [(sdbus._F_REPLY_SERIAL, "u", 1)], "o", (JOB,))
    _job_removed(systemd, JOB, "failed")
    assert bus.start_transient_unit("x.scope", [("Delegate", "b", True)]) == JOB
    serial, fields, body = systemd.read_call()
    assert serial == 1 and fields[sdbus._F_MEMBER] == "StartTransientUnit"
    assert fields[sdbus._F_DESTINATION] == "org.freedesktop.systemd1"
    assert body == ["x.scope", "replace", [("Delegate", ("b", True))], []]
    assert bus.wait_for_job(JOB) == "failed"


def test_an_error_reply_is_a_bus_error_with_its_name_and_message(bus_and_systemd):
    bus, systemd = bus_and_systemd
    systemd.send(sdbus._ERROR, [(sdbus._F_REPLY_SERIAL, "u", 1),
                                (sdbus._F_ERROR_NAME, "s", "org.freedesktop.systemd1.UnitExists")],
                 "s", ("Unit x.scope was already loaded",))
    with pytest.raises(sdbus.BusError) as caught:
        bus.stop_unit("x.scope")
    assert caught.value.name == "org.freedesktop.systemd1.UnitExists"
    assert str(caught.value) == "Unit x.scope was already loaded (org.freedesktop.systemd1.UnitExists)"


def test_a_property_read_through_its_variant(bus_and_systemd):
    bus, systemd = bus_and_systemd
    systemd.send(sdbus._METHOD_RETURN, [(sdbus._F_REPLY_SERIAL, "u", 1)], "v", (("s", "252.38-1~deb12u1"),))
    assert bus.manager_property("Version") == "252.38-1~deb12u1"
    _, fields, body = systemd.read_call()
    assert fields[sdbus._F_INTERFACE] == "org.freedesktop.DBus.Properties"
    assert body == ["org.freedesktop.systemd1.Manager", "Version"]


def test_a_job_that_never_ends_is_a_timeout_not_a_hang(bus_and_systemd):
    bus, _ = bus_and_systemd
    assert bus.wait_for_job(JOB, timeout=0) == "timeout waiting for systemd"


def test_systemd_going_away_mid_call_is_a_bus_error_as_sd_bus_reports_it(bus_and_systemd):
    """systemd.py's clean-up (delete) turns BusErrors into warnings and goes
    on removing what is left: a lost connection must be one too."""
    bus, systemd = bus_and_systemd
    systemd.sock.close()
    with pytest.raises(sdbus.BusError, match="systemd D-Bus: ResetFailedUnit: ") as caught:
        bus.reset_failed_unit("x.scope")
    assert caught.value.name == "org.freedesktop.DBus.Error.Disconnected"
    bus.close()
    with pytest.raises(sdbus.BusError) as caught:
        bus.wait_for_job(JOB)
    assert caught.value.name == "org.freedesktop.DBus.Error.Disconnected"


def test_a_call_systemd_never_answers_is_a_timeout_bus_error(bus_and_systemd, monkeypatch):
    bus, _ = bus_and_systemd
    monkeypatch.setattr(sdbus, "CALL_TIMEOUT", 0.2)
    with pytest.raises(sdbus.BusError) as caught:
        bus.stop_unit("x.scope")
    assert caught.value.name == "org.freedesktop.DBus.Error.Timeout"
    assert "StopUnit: no answer in" in str(caught.value)


@contextlib.contextmanager
def _daemon_answering(tmp_path, answer: bytes):
    """(its socket path, what it heard): a daemon thread that accepts one
    client, reads its opening up to BEGIN, sends `answer` and closes; joined
    and its socket closed when the block ends."""
    import threading

    path = str(tmp_path / "private")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    heard = []

    def serve():
        conn, _ = listener.accept()
        data = b""
        while not data.endswith(b"BEGIN\r\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        heard.append(data)
        conn.sendall(answer)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield path, heard
    finally:
        thread.join()
        listener.close()


def _open_against(tmp_path, answer: bytes) -> tuple[bytes, list]:
    """(what _open read past the authentication, what the daemon heard)."""
    with _daemon_answering(tmp_path, answer) as (path, heard):
        sock, pending = sdbus._open(path)
        sock.close()
    return pending, heard


def test_authentication_is_external_with_no_identity(tmp_path):
    pending, heard = _open_against(tmp_path, b"DATA\r\nOK 0123456789abcdef\r\nl\x04\x00")
    # the credentials byte, AUTH EXTERNAL with no identity, the empty DATA, BEGIN
    assert heard == [b"\0AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n"]
    assert pending == b"l\x04\x00"  # the start of the message stream


def test_systemd_before_242_answering_ok_twice_is_understood(tmp_path):
    """Its server answered a bare AUTH EXTERNAL with OK at once, and the
    DATA that follows with a second OK (systemd PR 11785 changed it): both
    are the authentication's, none the message stream's."""
    pending, _ = _open_against(tmp_path, b"OK 0123\r\nOK 0123\r\nl\x02")
    assert pending == b"l\x02"


def test_a_refused_authentication_names_the_daemons_answer(tmp_path):
    with _daemon_answering(tmp_path, b"REJECTED EXTERNAL\r\n") as (path, _):
        with pytest.raises(sdbus.Unreachable, match="private: authentication refused \\(rejected external\\)"):
            sdbus.connect([(path, False)])


def test_signals_of_no_interest_are_skipped_unread(bus_and_systemd):
    """systemd sends a private connection all its signals; a body of a type
    this client does not know (here "h", a file descriptor) is never read."""
    bus, systemd = bus_and_systemd
    systemd.send(sdbus._SIGNAL, [(sdbus._F_MEMBER, "s", "Odd"), (sdbus._F_SIGNATURE, "g", "h")])
    systemd.send(sdbus._METHOD_RETURN, [(sdbus._F_REPLY_SERIAL, "u", 1)])
    assert bus.reset_failed_unit("x.scope") is None


def test_a_job_removed_sent_to_this_connection_alone_is_not_systemds(bus_and_systemd):
    bus, systemd = bus_and_systemd
    systemd.send(sdbus._SIGNAL, [(sdbus._F_PATH, "o", sdbus._PATH), (sdbus._F_INTERFACE, "s", sdbus._MANAGER),
                                 (sdbus._F_MEMBER, "s", "JobRemoved"), (sdbus._F_DESTINATION, "s", ":1.5")],
                 "uoss", (42, JOB, "x.scope", "done"))
    assert bus.wait_for_job(JOB, timeout=0.5) == "timeout waiting for systemd"
