"""The parent's side of create (launcher.LaunchSequence): each child's
messages are read in the order they must come, and anything else, or EOF,
is one error naming what was expected at which step (issue 16, item 3).

The child is scripted: its messages are queued on a real SEQPACKET
socketpair (sync.socketpair) before the parent's reader runs; no fork, no
root. The sequences themselves, with real processes, are in the
integration tests (test_run, test_hooks, test_security, test_faults)."""

from __future__ import annotations

import _socket
import json
import os

import pytest

from pyrunc import sync
from pyrunc.errors import InitError
from pyrunc.init.context import InitContext
from pyrunc.launcher import LaunchSequence
from pyrunc.spec.defaults import default_config
from pyrunc.spec.model import Config


class Undo:
    """What the sequence registers to undo; never run here (a pidfd of
    this test process stands for the init's)."""

    def __init__(self):
        self.steps = []

    def callback(self, func, *args):
        self.steps.append((func, args))


class Program:
    """The parts of a compiled seccomp profile the sequence reads."""

    def __init__(self, notify: bool):
        self.flags = 8 if notify else 0  # SECCOMP_FILTER_FLAG_NEW_LISTENER


def make_sequence(user_ns=False, joined_pid_ns=False, hooks=False, notify=False, no_new_privs=True,
                  timings=False, listener_path="") -> tuple[LaunchSequence, Undo]:
    doc = default_config()
    doc["process"]["terminal"] = False
    doc["process"]["noNewPrivileges"] = no_new_privs
    spaces = [ns for ns in doc["linux"]["namespaces"] if ns["type"] not in ("user", "pid")]
    if user_ns:
        spaces.append({"type": "user"})
        doc["linux"]["uidMappings"] = doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    spaces.append({"type": "pid", "path": "/proc/1/ns/pid"} if joined_pid_ns else {"type": "pid"})
    doc["linux"]["namespaces"] = spaces
    if hooks:
        doc["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    if notify:
        doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener_path,
                                   "listenerMetadata": "meta"}
    ctx = InitContext("c1", Config(doc, "/b"), None, -1, None, None, wait_for_init=True,
                      seccomp_program=Program(True) if notify else None)
    ctx.send_timings = timings
    undo = Undo()
    seq = LaunchSequence(ctx, undo)
    seq.stage1_pid = os.getpid()
    seq._stage1_reaped = True
    return seq, undo


@pytest.fixture
def pair():
    parent, child = sync.socketpair()
    yield sync.Channel(parent, "container init"), child
    for sock in (parent, child):
        sock.close()


def close_pidfds(undo: Undo) -> None:
    for func, args in undo.steps:
        if func is os.close:
            os.close(*args)
        elif func.__name__ == "_kill_init":
            os.close(args[0])  # never kill: the "init" is this test


def script(child, *kinds, **fields) -> None:
    for kind in kinds:
        sync.send(child, kind, **fields.get(kind.replace("-", "_"), {}))


def test_the_init_in_order_ends_the_sequence(pair):
    channel, child = pair
    seq, _ = make_sequence(timings=True)
    seq.init_pid = os.getpid()
    script(child, "timings", "ready", timings={"timings": {"mounts": 1.5}})
    seq._init_steps(channel)


def test_ready_before_the_timings_names_what_was_expected(pair):
    channel, child = pair
    seq, _ = make_sequence(timings=True)
    seq.init_pid = os.getpid()
    script(child, "ready", "timings")
    with pytest.raises(InitError) as info:
        seq._init_steps(channel)
    assert str(info.value) == ('container init (while setting up the container): expected "timings", '
                               "got 'ready'")


def test_a_hooks_request_the_config_has_no_hooks_for_is_refused(pair):
    channel, child = pair
    seq, _ = make_sequence()
    seq.init_pid = os.getpid()
    script(child, "hooks", "ready")
    with pytest.raises(InitError, match="""expected "ready", got 'hooks'"""):
        seq._init_steps(channel)


def test_eof_names_the_step_and_the_message_that_never_came(pair):
    channel, child = pair
    seq, _ = make_sequence(timings=True)
    seq.init_pid = os.getpid()
    script(child, "timings")
    child.close()
    with pytest.raises(InitError) as info:
        seq._init_steps(channel)
    assert str(info.value) == 'container init exited before waiting for start, before sending "ready"'
    assert info.value.kind == "setup" and info.value.errno == 0


def test_an_error_frame_in_place_of_the_next_message_is_the_init_s_error(pair):
    channel, child = pair
    seq, _ = make_sequence(timings=True)
    seq.init_pid = os.getpid()
    sync.send(child, "error", **sync.error_frame("exec", 2, 'exec: "nope": executable file not found in $PATH'))
    with pytest.raises(InitError) as info:
        seq._init_steps(channel)
    assert (str(info.value), info.value.kind, info.value.errno) == (
        'exec: "nope": executable file not found in $PATH', "exec", 2)


def test_stage1_must_ask_for_the_id_maps_before_it_reports_a_pid(pair):
    channel, child = pair
    channel.who = "container setup (stage1)"
    seq, _ = make_sequence(user_ns=True)
    script(child, "pid", pid={"pid": os.getpid()})
    with pytest.raises(InitError, match="""expected "idmap-request", got 'pid'"""):
        seq._stage1_steps(channel)
    assert seq.init_pid == 0


def test_stage1_exiting_without_the_init_s_pid(pair):
    channel, child = pair
    channel.who = "container setup (stage1)"
    seq, _ = make_sequence()
    child.close()
    with pytest.raises(InitError) as info:
        seq._stage1_steps(channel)
    assert str(info.value) == ('container setup (stage1) exited before the init process started, '
                               'before sending "pid"')
    # test_faults reads the line for this: "exited" or "failed before the init process started"


def test_stage1_s_pid_is_tracked_for_undo(pair):
    channel, child = pair
    seq, undo = make_sequence()
    script(child, "pid", pid={"pid": os.getpid()})
    try:
        seq._stage1_steps(channel)
        assert seq.init_pid == os.getpid() and seq.pidfd >= 0
        assert [func.__name__ for func, _ in undo.steps] == ["_kill_init"]
    finally:
        close_pidfds(undo)


def test_joined_pid_namespace_pid_may_come_after_the_init_s_ready(pair):
    """The stub's fork: its "pid" and its child's "ready" share one fd."""
    channel, child = pair
    seq, undo = make_sequence(joined_pid_ns=True)
    script(child, "ready", "pid", pid={"pid": os.getpid()})
    try:
        seq._init_steps(channel)
        assert seq.init_pid == os.getpid()
    finally:
        close_pidfds(undo)


def test_joined_pid_namespace_a_second_pid_is_refused(pair):
    channel, child = pair
    seq, undo = make_sequence(joined_pid_ns=True)
    script(child, "pid", "pid", pid={"pid": os.getpid()})
    try:
        with pytest.raises(InitError, match="""expected "ready", got 'pid'"""):
            seq._init_steps(channel)
    finally:
        close_pidfds(undo)


def test_joined_pid_namespace_eof_before_the_pid_names_both(pair):
    channel, child = pair
    seq, _ = make_sequence(joined_pid_ns=True)
    child.close()
    with pytest.raises(InitError, match='before sending "pid" or "ready"'):
        seq._init_steps(channel)


def agent(tmp_path):
    server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    path = str(tmp_path / "agent.sock")
    server.bind(path)
    server.listen(4)
    return server, path


def receive_hand_over(server) -> tuple[dict, int]:
    conn, _ = server._accept()
    sock = _socket.socket(fileno=conn)
    try:
        data, ancillary, _, _ = sock.recvmsg(65536, _socket.CMSG_SPACE(4))
        fd = int.from_bytes(ancillary[0][2][:4], "little")
        return json.loads(data), fd
    finally:
        sock.close()


def test_a_listener_loaded_by_stage1_goes_to_the_agent_with_stage1_s_pid_before_the_init_exists(pair, tmp_path):
    """no_new_privs off, joining a pid namespace by path: stage1 loaded the
    filter and goes on making syscalls it may notify; the agent gets the
    listener at once, with stage1's pid (runc: the pid of the loader)."""
    channel, child = pair
    server, path = agent(tmp_path)
    seq, undo = make_sequence(joined_pid_ns=True, notify=True, no_new_privs=False, listener_path=path)
    seq.stage1_pid = 4242
    read_end, write_end = os.pipe()
    try:
        sync.send_fds(child, "seccomp-listener", [write_end])
        script(child, "pid", "ready", pid={"pid": os.getpid()})
        seq._init_steps(channel)
        message, fd = receive_hand_over(server)
        os.close(fd)
        assert (message["pid"], message["metadata"], message["state"]["status"]) == (4242, "meta", "creating")
    finally:
        close_pidfds(undo)
        server.close()
        os.close(read_end)
        os.close(write_end)


def test_a_listener_the_stub_loaded_waits_for_the_init_s_pid(pair, tmp_path):
    """no_new_privs on: the stub's child loaded it; with the stub's "pid"
    late, the hand-over waits for it and carries the init's pid."""
    channel, child = pair
    server, path = agent(tmp_path)
    seq, undo = make_sequence(joined_pid_ns=True, notify=True, no_new_privs=True, listener_path=path)
    seq.stage1_pid = 4242
    read_end, write_end = os.pipe()
    try:
        sync.send_fds(child, "seccomp-listener", [write_end])
        script(child, "ready", "pid", pid={"pid": os.getpid()})
        seq._init_steps(channel)
        message, fd = receive_hand_over(server)
        os.close(fd)
        assert message["pid"] == os.getpid()
    finally:
        close_pidfds(undo)
        server.close()
        os.close(read_end)
        os.close(write_end)


def test_a_listener_message_without_its_fd_is_an_error(pair, tmp_path):
    channel, child = pair
    seq, _ = make_sequence(notify=True, no_new_privs=False, listener_path=str(tmp_path / "none"))
    seq.init_pid = os.getpid()
    script(child, "seccomp-listener", "ready")
    with pytest.raises(InitError, match="came without its fd"):
        seq._init_steps(channel)
