"""Fixes found by the reliability runs (tests/stress, tests/integration/
test_faults.py), each pinned here without root: races between concurrent
commands, a create killed half-way, state roots that refuse writes, input
that is valid JSON but no valid value."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

import pytest

from pyrunc import jsonlite, store
from pyrunc.errors import ContainerNotFound, PyruncError
from pyrunc.linux.cgroups import fs as cgroup_fs
from pyrunc.record import ContainerRecord
from pyrunc.store import CREATING, STOPPED, Store


def _record(state: dict) -> ContainerRecord:
    return ContainerRecord.from_state(state)


def _save(st: Store, state: dict) -> None:
    st.save_record(ContainerRecord.from_state(state))


# ---------------------------------------------------------------- store: create vs. concurrent readers and deletes


def test_create_waits_for_a_reader_probing_the_new_directory(tmp_path, monkeypatch):
    """`state` probes a directory without state.json with a shared flock; a
    create that made the directory a moment before must wait, not fail with
    "already exists"."""
    st = Store(str(tmp_path))
    real_mkdir = os.mkdir
    released = threading.Event()

    def mkdir_then_probe(path, mode=0o777, **kw):
        real_mkdir(path, mode, **kw)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)

        def release():
            time.sleep(0.05)
            os.close(fd)
            released.set()

        threading.Thread(target=release).start()

    monkeypatch.setattr(store.os, "mkdir", mkdir_then_probe)
    lock = st.create("c1")
    assert released.is_set()
    lock.close()


def test_create_makes_the_directory_again_when_a_delete_removed_it(tmp_path, monkeypatch):
    """A `delete` may take a fresh directory (no state.json, lock free) for
    what a killed create left and remove it: create makes it again."""
    st = Store(str(tmp_path))
    real_lock = store.Lock
    calls = []

    def lock_after_removal(directory, container_id, blocking, timeout=30.0):
        calls.append(directory)
        if len(calls) == 1:
            os.rmdir(directory)  # the concurrent delete
        return real_lock(directory, container_id, blocking, timeout)

    monkeypatch.setattr(store, "Lock", lock_after_removal)
    lock = st.create("c1")
    assert len(calls) == 2
    assert os.path.isdir(st.path("c1"))
    assert os.fstat(lock.fd).st_ino == os.stat(st.path("c1")).st_ino
    lock.close()


def test_save_on_a_full_root_is_one_clear_error(tmp_path, monkeypatch):
    st = Store(str(tmp_path))
    st.create("c1").close()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "write", full)
    with pytest.raises(PyruncError) as err:
        _save(st, {"id": "c1"})
    assert str(err.value) == f"c1: cannot save state.json in {tmp_path}: no space left on device"
    assert os.listdir(st.path("c1")) == []


def test_load_of_an_id_too_long_for_a_directory_name_is_not_found(tmp_path):
    with pytest.raises(ContainerNotFound):
        Store(str(tmp_path)).load_record("a" * 300)


# ---------------------------------------------------------------- store: a create killed half-way


def _partial(st: Store, container_id: str) -> None:
    _save(st, {"ociVersion": "1.2.0", "id": container_id, "pid": 0, "bundle": "/b", "rootfs": "/b/r",
                           "created": "", "cgroups": {"paths": {}, "created": []}, "creating": True})


def test_partial_state_while_its_creator_holds_the_lock_is_creating(tmp_path):
    st = Store(str(tmp_path))
    lock = st.create("c1")
    _partial(st, "c1")
    state = st.load_record("c1").to_state()
    assert st.status(_record(state)) == CREATING
    lock.close()


def test_partial_state_of_a_creator_that_died_is_stopped(tmp_path):
    st = Store(str(tmp_path))
    st.create("c1").close()  # the creator is gone: its lock with it
    _partial(st, "c1")
    state = st.load_record("c1").to_state()
    assert st.status(_record(state)) == STOPPED
    assert state["pid"] == 0


def test_partial_state_completed_meanwhile_loads_complete(tmp_path, monkeypatch):
    """The creator finishes between the first read and the lock probe: the
    second read sees the complete state, not a "stopped" half."""
    st = Store(str(tmp_path))
    lock = st.create("c1")
    _partial(st, "c1")
    real_is_locked = st.is_locked

    def finish_then_probe(container_id):
        _save(st, {"id": container_id, "pid": os.getpid(), "startTime": 1, "cgroups": {}})
        lock.close()
        return real_is_locked(container_id)

    monkeypatch.setattr(st, "is_locked", finish_then_probe)
    state = st.load_record("c1").to_state()
    assert "creating" not in state and state["pid"] == os.getpid()


# ---------------------------------------------------------------- cgroups: concurrent creates under a new parent


def _fake_cpuset(tmp_path):
    root = tmp_path / "cpuset"
    root.mkdir()
    (root / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset.mems").write_text("0\n")
    return root


def _dir_with_empty_cpuset(path):
    path.mkdir()
    (path / "cpuset.cpus").write_text("\n")
    (path / "cpuset.mems").write_text("\n")


def test_cpuset_of_a_parent_not_filled_in_yet_is_filled_first(tmp_path):
    """Two creates under a new parent: one made the parent and has not copied
    its cpus yet, the other makes its leaf now. The leaf must not get the
    parent's empty cpus (joining would fail: no space left on device)."""
    root = _fake_cpuset(tmp_path)
    _dir_with_empty_cpuset(root / "parent")
    _dir_with_empty_cpuset(root / "parent" / "leaf")
    cgroup_fs._inherit_cpuset(str(root / "parent" / "leaf"))
    for directory in (root / "parent", root / "parent" / "leaf"):
        assert (directory / "cpuset.cpus").read_text() == "0-1"
        assert (directory / "cpuset.mems").read_text() == "0"


def test_cgroup_dirs_made_again_when_a_delete_removed_the_parent(tmp_path, monkeypatch):
    """A delete removes a parent it had made, between our check that it
    exists and our mkdir of the leaf: make the parent again."""
    parent = tmp_path / "parent"
    parent.mkdir()
    leaf = parent / "leaf"
    real_mkdir = os.mkdir
    removed = []

    def mkdir(path, mode=0o777):
        if path == str(leaf) and not removed:
            os.rmdir(parent)
            removed.append(path)
        return real_mkdir(path, mode)

    monkeypatch.setattr(cgroup_fs.os, "mkdir", mkdir)
    dirs = cgroup_fs.CgroupDirs({"memory": str(leaf)})
    dirs.create()
    assert leaf.is_dir()
    assert dirs.created == [str(parent), str(leaf)]


def test_missing_lists_what_create_would_make(tmp_path):
    (tmp_path / "a").mkdir()
    dirs = cgroup_fs.CgroupDirs({"x": str(tmp_path / "a" / "b" / "c"), "y": str(tmp_path / "a")})
    assert dirs.missing() == [str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c")]


# ---------------------------------------------------------------- documents: valid JSON, no valid value


def test_integral_floats_become_ints_only_when_asked():
    text = '{"uid": 1.0, "gid": -0.0, "big": 1e3, "half": 0.5}'
    assert jsonlite.loads(text, integral_floats_as_int=True) == {"uid": 1, "gid": 0, "big": 1000, "half": 0.5}
    assert [type(v) for v in jsonlite.loads(text, integral_floats_as_int=True).values()] == [int, int, int, float]
    assert type(jsonlite.loads(text)["uid"]) is float


def test_config_with_a_lone_surrogate_escape_is_refused_naming_the_field():
    from pyrunc.spec import load

    with pytest.raises(PyruncError) as err:
        load.parse_config(b'{"ociVersion": "1.2.0", "process": {"env": ["A=\\udcff"]}}')
    assert str(err.value) == ("config.json: process.env[0]: not valid Unicode "
                              "(a \\u escape of half a surrogate pair)")
    assert load.parse_config(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001F600"}


# ---------------------------------------------------------------- list vs. concurrent create and delete


def test_list_skips_quietly_what_vanished_or_is_only_being_made(tmp_path):
    """An id listed, then deleted before it is loaded (or a directory whose
    create has not written anything yet) is no warning: it is not there."""
    from tests import fuzzgen

    os.makedirs(tmp_path / "root" / "c1")
    code, out, err = fuzzgen.run_cli(["--root", str(tmp_path / "root"), "list", "--format", "json"], str(tmp_path))
    assert (code, out, err) == (0, "null\n", "")


def test_lock_of_a_container_deleted_meanwhile_is_not_found(tmp_path, monkeypatch):
    """Two deletes of one container: the second finds the directory, then
    the first removes it before the second opens it."""
    st = Store(str(tmp_path))
    monkeypatch.setattr(store.os.path, "isdir", lambda path: True)
    with pytest.raises(ContainerNotFound):
        st.lock("gone")


# ---------------------------------------------------------------- events: an OOM kill that stops the container


def test_events_reports_an_oom_kill_that_lands_between_its_count_and_the_status(monkeypatch):
    """The init OOM-killed just after `events` read the count: the status it
    reads next says stopped, and the kill must still be reported (seen in the
    systemd VM lane, where the scope's cgroup goes moments later)."""
    from pyrunc.ops import resources

    counts = iter([0, 0, 1])  # the start, the loop's read, the read after "stopped"

    class Watch:
        def count(self):
            return next(counts)

        def wait(self, timeout):
            raise AssertionError("the container stopped: no wait")

        def close(self):
            pass

    class Cgroups:
        def watch_ooms(self):
            return Watch()

        def stats(self):
            raise AssertionError("the container stopped: no stats")

    class StoppedStore:
        def load_record(self, container_id):
            return object()

        def status(self, record):
            return STOPPED

    monkeypatch.setattr(resources, "_cgroups", lambda record: Cgroups())
    records = list(resources.container_events(StoppedStore(), "c1", 1.0))
    assert records == [{"type": "oom", "id": "c1"}]
