"""The handshake between `pyrunc create` and the container init it forks.

Framed JSON messages over a SOCK_SEQPACKET socketpair (one message per
datagram, EOF when every peer has closed or died). Messages:

    parent → stage1   {"type": "cgroups-ready"}            cgroups made, limits set: join them
    (an init cloned straight into its namespaces is stage1 and init at once:
    it gets cgroups-ready and sends no pid)
    stage1 → parent   {"type": "idmap-request"}            write my uid_map/gid_map
    parent → stage1   {"type": "idmap-done"}
    stage1 → parent   {"type": "pid", "pid": N}            init's host pid
    init   → parent   {"type": "hooks"}                    run createRuntime hooks now
    parent → init     {"type": "hooks-done"}
    init   → parent   {"type": "seccomp-listener"} + fd    the notify fd, for listenerPath
    init   → parent   {"type": "ready"}                    init waits on exec.fifo
    any    → parent   {"type": "error", "msg": "...", "exit"?: 127|126}  setup failed
                                                           (exit: the program cannot run)

`expect` reads one message and fails on anything but the wanted type; an
error message becomes an InitError carrying the init's own wording.
Imports: errors, jsonlite, _socket.
"""

from __future__ import annotations

import _socket
import os
import struct

from pyrunc import jsonlite
from pyrunc.errors import InitError

MAX_MESSAGE = 65536


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    """(parent end, child end); both close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)


def send(sock: _socket.socket, kind: str, **fields) -> None:
    fields["type"] = kind
    sock.send(jsonlite.dumps(fields).encode())


def send_fds(sock: _socket.socket, kind: str, fds: list[int], **fields) -> None:
    """A message carrying file descriptors (SCM_RIGHTS)."""
    fields["type"] = kind
    rights = struct.pack(f"{len(fds)}i", *fds)
    sock.sendmsg([jsonlite.dumps(fields).encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])


def receive(sock: _socket.socket) -> dict | None:
    """The next message, or None at EOF. Fds it carries are in message["fds"]."""
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(4 * 4))
        except InterruptedError:
            continue
        except ConnectionResetError:
            return None
        break
    received = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(payload) // 4
            received.extend(struct.unpack(f"{count}i", payload[: count * 4]))
    if not data:
        for fd in received:
            _close(fd)
        return None
    try:
        message = jsonlite.loads(data)
    except ValueError:
        raise InitError(f"container init sent a malformed message: {data[:80]!r}") from None
    if not isinstance(message, dict) or "type" not in message:
        raise InitError(f"container init sent a malformed message: {data[:80]!r}")
    if received:
        message["fds"] = received
    return message


def _close(fd: int) -> None:
    os.close(fd)


def expect_any(sock: _socket.socket, kinds: tuple[str, ...],
               eof_msg: str = "container init exited before finishing setup") -> dict:
    message = receive(sock)
    if message is None:
        raise InitError(eof_msg)
    if message["type"] == "error":
        code = message.get("exit")
        raise InitError(str(message.get("msg", "unknown error")), code if code in (126, 127) else 0)
    if message["type"] not in kinds:
        raise InitError(f"container init: expected one of {kinds}, got {message['type']!r}")
    return message


def expect(sock: _socket.socket, kind: str, eof_msg: str = "container init exited before finishing setup") -> dict:
    return expect_any(sock, (kind,), eof_msg)
