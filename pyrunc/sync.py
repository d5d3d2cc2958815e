"""The handshake between `pyrunc create` and the container init it forks.

Framed JSON messages over a SOCK_SEQPACKET socketpair (one message per
datagram, EOF when every peer has closed or died). Messages:

    stage1 → parent   {"type": "pid", "pid": N}            init's host pid
    init   → parent   {"type": "hooks"}                    run createRuntime hooks now
    parent → init     {"type": "hooks-done"}
    init   → parent   {"type": "ready"}                    init waits on exec.fifo
    any    → parent   {"type": "error", "msg": "..."}      setup failed

`expect` reads one message and fails on anything but the wanted type; an
error message becomes an InitError carrying the init's own wording.
Imports: errors, jsonlite, _socket.
"""

from __future__ import annotations

import _socket

from pyrunc import jsonlite
from pyrunc.errors import InitError

MAX_MESSAGE = 65536


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    """(parent end, child end); both close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)


def send(sock: _socket.socket, kind: str, **fields) -> None:
    fields["type"] = kind
    sock.send(jsonlite.dumps(fields).encode())


def receive(sock: _socket.socket) -> dict | None:
    """The next message, or None at EOF."""
    while True:
        try:
            data = sock.recv(MAX_MESSAGE)
        except InterruptedError:
            continue
        except ConnectionResetError:
            return None
        break
    if not data:
        return None
    try:
        message = jsonlite.loads(data)
    except ValueError:
        raise InitError(f"container init sent a malformed message: {data[:80]!r}") from None
    if not isinstance(message, dict) or "type" not in message:
        raise InitError(f"container init sent a malformed message: {data[:80]!r}")
    return message


def expect_any(sock: _socket.socket, kinds: tuple[str, ...],
               eof_msg: str = "container init exited before finishing setup") -> dict:
    message = receive(sock)
    if message is None:
        raise InitError(eof_msg)
    if message["type"] == "error":
        raise InitError(str(message.get("msg", "unknown error")))
    if message["type"] not in kinds:
        raise InitError(f"container init: expected one of {kinds}, got {message['type']!r}")
    return message


def expect(sock: _socket.socket, kind: str, eof_msg: str = "container init exited before finishing setup") -> dict:
    message = receive(sock)
    if message is None:
        raise InitError(eof_msg)
    if message["type"] == "error":
        raise InitError(str(message.get("msg", "unknown error")))
    if message["type"] != kind:
        raise InitError(f"container init: expected message {kind!r}, got {message['type']!r}")
    return message
