"""The handshake between `pyrunc create` and the container init it forks.

Framed JSON messages over a SOCK_SEQPACKET socketpair (one message per
datagram, EOF when every peer has closed or died). Each child has its own
socketpair where there are two (stage1 and the init it forks), each read
in the order its messages come (Channel; launcher's docstring has the
sequences). Messages:

    on stage1's channel (the init's own where stage1 forks no init):
    parent → stage1   {"type": "cgroups-ready"}            cgroups made, limits set: join them
    stage1 → parent   {"type": "idmap-request"}            write my uid_map/gid_map
    parent → stage1   {"type": "idmap-done"}
    stage1 → parent   {"type": "pid", "pid": N}            the init's host pid, where stage1 forks it
    on the init's channel:
    init   → parent   {"type": "hooks"}                    run prestart/createRuntime hooks now
    parent → init     {"type": "hooks-done"}
    init   → parent   {"type": "seccomp-listener"} + fd    the notify fd, for listenerPath, to the
                                                           agent at once with the pid of the process
                                                           that loaded the filter (no_new_privs off:
                                                           the Python init, here; on: the stub, below)
    init   → parent   {"type": "timings", "timings": {}}   set up; --debug shows where the time went
    stub   → parent   {"type": "pid", "pid": N}            the stub forked the init (a pid namespace
                                                           joined by path; exec): its child's
                                                           messages below may come before it
    stub   → parent   {"type": "seccomp-listener"} + fd    no_new_privs on
    stub   → parent   {"type": "ready"}                    it waits on exec.fifo
    on either:
    any    → parent   {"type": "error", "kind": K, "errno": E, "msg": "..."}   failed (error frame)
    stub   → parent   {"type": "stub-error", "step": S, "errno": E}     a step of the stub failed
    any    → parent   {"type": "warning", "msg": "..."}    to pyrunc's log; the parent reads on

An error frame is typed: `kind` is "exec" when the program itself cannot
run (its lookup in PATH, the check of its file), "setup" for any step
before; `errno` the system error behind it (0: none). The exit codes a
shell gives (127 not found, 126 not executable) follow from kind and errno
alone (errors.program_exit_code), never from the wording: a setup step
failing with ENOENT (a missing cwd, a vanished cgroup) is no "command not
found".

`expect` reads one message and fails on anything but the wanted type; an
error frame becomes an InitError (its kind, errno and the init's own
wording); warnings on the way go to `on_warning` (the launcher: the log).
A Channel is one child's socket, read step by step in the order its
messages must come (launcher.LaunchSequence); its errors name the step.
Imports: errors, jsonlite, _socket.
"""

from __future__ import annotations

import _socket
import struct

from pyrunc import oslite as os
from pyrunc import jsonlite
from pyrunc.errors import InitError

MAX_MESSAGE = 65536


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    """(parent end, child end); both close-on-exec."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC, 0)


def send(sock: _socket.socket, message_type: str, /, **fields) -> None:
    fields["type"] = message_type
    sock.send(jsonlite.dumps(fields).encode())


def send_fds(sock: _socket.socket, message_type: str, fds: list[int], /, **fields) -> None:
    """A message carrying file descriptors (SCM_RIGHTS)."""
    fields["type"] = message_type
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


ERROR_KINDS = ("setup", "exec")


def error_frame(kind: str, errno: int, msg: str) -> dict:
    """The fields of an "error" message (send(sock, "error", **fields))."""
    return {"kind": kind if kind in ERROR_KINDS else "setup", "errno": _errno(errno), "msg": str(msg)}


def error_from_frame(message: dict) -> InitError:
    """The InitError an "error" message stands for; a field missing or of the
    wrong type reads as a setup failure without errno, never as a program's."""
    kind = message.get("kind")
    msg = message.get("msg")
    return InitError(msg if isinstance(msg, str) and msg else "unknown error",
                     kind if kind in ERROR_KINDS else "setup", _errno(message.get("errno")))


def _errno(value) -> int:
    return value if type(value) is int and 0 < value < 4096 else 0


def send_warning(sock: _socket.socket, msg: str) -> None:
    """A warning for pyrunc's log; lost, not fatal, if it cannot be sent."""
    try:
        send(sock, "warning", msg=msg)
    except OSError:
        pass


def expect_any(sock: _socket.socket, kinds: tuple[str, ...],
               eof_msg: str = "container init exited before finishing setup", on_warning=None,
               who: str = "container init") -> dict:
    """The next message of one of `kinds`; "warning" messages before it go
    to on_warning(text) (without one, a warning is an unexpected message)."""
    while True:
        message = receive(sock)
        if message is None:
            raise InitError(eof_msg)
        if message["type"] != "warning" or on_warning is None:
            break
        on_warning(str(message.get("msg", "")))
    if message["type"] == "error":
        raise error_from_frame(message)
    if message["type"] == "stub-error":
        raise InitError(describe_stub_error(message), "setup", _errno(message.get("errno")))
    if message["type"] not in kinds:
        raise InitError(f"{who}: expected {_names(kinds)}, got {message['type']!r}")
    return message


def _names(kinds: tuple[str, ...]) -> str:
    return " or ".join(f'"{kind}"' for kind in kinds)


class Channel:
    """One child's end of the handshake, read in the order its messages
    must come: each step names what it waits for, so anything else, or
    EOF, is an error that says what was expected and at which step."""

    __slots__ = ("sock", "who", "on_warning")

    def __init__(self, sock: _socket.socket, who: str, on_warning=None):
        self.sock = sock
        self.who = who
        self.on_warning = on_warning

    def send(self, message_type: str, /, **fields) -> None:
        send(self.sock, message_type, **fields)

    def expect(self, kind: str, step: str) -> dict:
        return self.expect_any((kind,), step)

    def expect_any(self, kinds: tuple[str, ...], step: str) -> dict:
        """`step` says where the sequence is ("while joining the
        namespaces"): the EOF error reads "<who> exited <step>, before
        sending <kinds>"."""
        return expect_any(self.sock, kinds, f"{self.who} exited {step}, before sending {_names(kinds)}",
                          self.on_warning, who=f"{self.who} ({step})")

    def close(self) -> None:
        self.sock.close()


# The steps of the stub (linux/stubs/stub_x86_64.S), as a stub-error names them.
STUB_STEPS = {1: "fork the process into the container", 2: "start a session (setsid)",
              3: "make the pty the controlling terminal", 4: "load the seccomp filter (linux.seccomp)",
              5: "send the seccomp notify fd (linux.seccomp)", 6: "return to the working directory",
              7: "mount procfs for the pid namespace"}


def describe_stub_error(message: dict) -> str:
    step, number = message.get("step"), message.get("errno")
    what = STUB_STEPS.get(step, f"step {step}") if isinstance(step, int) else "a step"
    reason = os.strerror(number).lower() if isinstance(number, int) and 0 < number < 4096 else "failed"
    return f"container process: {what}: {reason}"


def expect(sock: _socket.socket, kind: str, eof_msg: str = "container init exited before finishing setup",
           on_warning=None) -> dict:
    return expect_any(sock, (kind,), eof_msg, on_warning)
