"""The state store (pyrunc.store), on a temporary root: ids, timestamps,
atomic writes, create/load/lock, derived status, listing and removal."""

from __future__ import annotations

import datetime
import fcntl
import os
import threading
import time

import pytest

from pyrunc import store
from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidID, PyruncError
from pyrunc.linux import proc
from pyrunc.record import ContainerRecord
from pyrunc.store import CREATED, CREATING, PAUSED, RUNNING, STOPPED, Store


def _record(state: dict) -> ContainerRecord:
    return ContainerRecord.from_state(state)


def _save(st: Store, state: dict) -> None:
    st.save_record(ContainerRecord.from_state(state))


# ---------------------------------------------------------------- validate_id

@pytest.mark.parametrize("container_id", [
    "a", "abc", "ABC", "a1", "0", "a_b", "a-b", "a+b", "a.b", "...", ".a", "a.", "-a", "x" * 1024,
    "5b7e8eb1a874f10188d1fb840f70b3b7fbf6d6d40247181528237e6c4d06e72c",
])
def test_validate_id_valid_accepted(container_id):
    store.validate_id(container_id)


@pytest.mark.parametrize("container_id, why", [
    ("", "must not be empty"),
    (".", "must not be . or .."),
    ("..", "must not be . or .."),
    ("/", "may contain only"),
    ("a/b", "may contain only"),
    ("../etc", "may contain only"),
    ("a b", "may contain only"),
    (" a", "may contain only"),
    ("a\tb", "may contain only"),
    ("a\nb", "may contain only"),
    ("a\x00b", "may contain only"),
    ("a:b", "may contain only"),
    ("é", "may contain only"),
    ("ａ", "may contain only"),  # fullwidth a
    ("日本", "may contain only"),
    ("a\u200bb", "may contain only"),  # zero-width space
    ("x" * 1025, "longer than 1024"),
])
def test_validate_id_invalid_rejected(container_id, why):
    with pytest.raises(InvalidID, match=why):
        store.validate_id(container_id)


def test_validate_id_long_message_truncated():
    with pytest.raises(InvalidID) as info:
        store.validate_id("y" * 5000)
    assert len(str(info.value)) < 200


# ---------------------------------------------------------------- rfc3339_nano

BASE_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize("ns, expected", [
    (0, "1970-01-01T00:00:00Z"),
    (BASE_NS, "2023-11-14T22:13:20Z"),
    (BASE_NS + 123_456_789, "2023-11-14T22:13:20.123456789Z"),
    (BASE_NS + 120_000_000, "2023-11-14T22:13:20.12Z"),
    (BASE_NS + 500_000_000, "2023-11-14T22:13:20.5Z"),
    (BASE_NS + 1, "2023-11-14T22:13:20.000000001Z"),
    (BASE_NS + 1_000, "2023-11-14T22:13:20.000001Z"),
    (BASE_NS + 999_999_999, "2023-11-14T22:13:20.999999999Z"),
])
def test_rfc3339_nano_formats_go_style(ns, expected):
    assert store.rfc3339_nano(ns) == expected


def test_rfc3339_nano_now_parses_back():
    now = time.time_ns()
    stamp = store.rfc3339_nano(now - now % 1_000)  # whole microseconds: fromisoformat's precision
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.timestamp() == pytest.approx(now / 1e9, abs=1e-5)


# ---------------------------------------------------------------- write_atomic

def test_write_atomic_content_and_mode(tmp_path):
    target = tmp_path / "state.json"
    store.write_atomic(str(target), b"hello", 0o640)
    assert target.read_bytes() == b"hello"
    assert os.stat(target).st_mode & 0o777 == 0o640 & ~_umask()
    assert os.listdir(tmp_path) == ["state.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_atomic_replace_leaves_no_temp(tmp_path):
    target = tmp_path / "f"
    for i in range(5):
        store.write_atomic(str(target), f"v{i}".encode())
    assert target.read_bytes() == b"v4"
    assert os.listdir(tmp_path) == ["f"]


def test_write_atomic_empty_data(tmp_path):
    target = tmp_path / "f"
    store.write_atomic(str(target), b"")
    assert target.read_bytes() == b""


def test_write_atomic_rename_fails_temp_removed(tmp_path):
    target = tmp_path / "adir"
    (target / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced
    with pytest.raises(OSError):
        store.write_atomic(str(target), b"x")
    assert sorted(os.listdir(tmp_path)) == ["adir"]


def test_write_atomic_missing_dir_raises_nothing_left(tmp_path):
    with pytest.raises(FileNotFoundError):
        store.write_atomic(str(tmp_path / "absent" / "f"), b"x")
    assert os.listdir(tmp_path) == []


def test_write_atomic_concurrent_reader_never_sees_partial(tmp_path):
    target = str(tmp_path / "state.json")
    size = 1 << 20
    versions = (b"a" * size, b"b" * size)
    store.write_atomic(target, versions[0])
    stop = threading.Event()
    bad = []
    reads = [0]

    def reader():
        while not stop.is_set():
            with open(target, "rb") as f:
                data = f.read()
            reads[0] += 1
            if data not in versions:
                bad.append((len(data), data[:1], data[-1:]))
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            store.write_atomic(target, versions[i % 2])
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert reads[0] > 0
    assert os.listdir(tmp_path) == ["state.json"]


def test_write_atomic_planted_temp_symlink_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "container.pid"
    os.symlink(victim, f"{target}.{os.getpid()}.tmp")
    try:
        store.write_atomic(str(target), b"1234")
    except OSError:
        pass  # refusing is fine; writing through the link is not
    assert victim.read_bytes() == b"precious"


# ---------------------------------------------------------------- create, load, lock

def test_store_root_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Store("rel").root == str(tmp_path / "rel")


def test_store_create_makes_dir_and_locks(tmp_path):
    st = Store(str(tmp_path / "root"))
    lock = st.create("c1")
    try:
        assert os.path.isdir(st.path("c1"))
        assert os.stat(st.path("c1")).st_mode & 0o777 == 0o711 & ~_umask()
        assert st.exists("c1")
        assert st.is_locked("c1")
    finally:
        lock.close()
    assert not st.is_locked("c1")


def test_store_create_twice_container_exists(tmp_path):
    st = Store(str(tmp_path))
    st.create("c1").close()
    with pytest.raises(ContainerExists, match="c1: container with given ID already exists"):
        st.create("c1")


def test_store_create_invalid_id_rejected_nothing_made(tmp_path):
    st = Store(str(tmp_path / "root"))
    with pytest.raises(InvalidID):
        st.create("../escape")
    assert not (tmp_path / "escape").exists()


def test_store_save_load_round_trip(tmp_path):
    st = Store(str(tmp_path))
    st.create("c1").close()
    state = {"id": "c1", "pid": 42, "annotations": {"a": "é"}, "startTime": 123, "cgroups": {"paths": {}}}
    _save(st, state)
    assert st.load_record("c1").to_state() == state
    assert sorted(os.listdir(st.path("c1"))) == ["state.json"]


def test_store_load_missing_dir_not_found(tmp_path):
    with pytest.raises(ContainerNotFound, match="c1: container does not exist"):
        Store(str(tmp_path)).load_record("c1")


def test_store_load_dir_without_state_unlocked_not_found(tmp_path):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    with pytest.raises(ContainerNotFound):
        st.load_record("c1")


def test_store_load_dir_without_state_locked_creating(tmp_path):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    fd = os.open(st.path("c1"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = st.load_record("c1").to_state()
        assert state == {"id": "c1", "creating": True}
        assert st.status(_record(state)) == CREATING
    finally:
        os.close(fd)
    with pytest.raises(ContainerNotFound):
        st.load_record("c1")


def test_store_load_while_create_lock_held_creating(tmp_path):
    st = Store(str(tmp_path))
    with st.create("c1"):
        assert st.load_record("c1").creating is True


def test_store_load_corrupt_state_error_names_file(tmp_path):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    with open(st.path("c1", "state.json"), "w") as f:
        f.write('{"id": "c1", "pid": ')
    with pytest.raises(PyruncError, match=r"c1: corrupt state\.json: line 1") as info:
        st.load_record("c1")
    assert not isinstance(info.value, ContainerNotFound)


@pytest.mark.parametrize("content", [b"[1, 2]", b'"text"', b"null", b"\xff\xfe"])
def test_store_load_non_object_state_error(tmp_path, content):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    with open(st.path("c1", "state.json"), "wb") as f:
        f.write(content)
    with pytest.raises(PyruncError, match=r"c1: corrupt state\.json"):
        st.load_record("c1")


def test_store_load_invalid_id_rejected(tmp_path):
    with pytest.raises(InvalidID):
        Store(str(tmp_path)).load_record("..")


def test_store_lock_missing_not_found(tmp_path):
    with pytest.raises(ContainerNotFound):
        Store(str(tmp_path)).lock("c1")


def test_store_lock_held_elsewhere_times_out_busy(tmp_path):
    st = Store(str(tmp_path))
    holder = st.create("c1")
    try:
        started = time.monotonic()
        with pytest.raises(PyruncError, match="container is busy"):
            st.lock("c1", timeout=0.05)
        assert time.monotonic() - started < 2
    finally:
        holder.close()
    with st.lock("c1", timeout=0.05) as lock:
        assert lock.fd >= 0
    assert lock.fd == -1


def test_store_lock_released_while_waiting_acquired(tmp_path):
    st = Store(str(tmp_path))
    holder = st.create("c1")
    timer = threading.Timer(0.05, holder.close)
    timer.start()
    try:
        with st.lock("c1", timeout=5):
            assert st.is_locked("c1")
    finally:
        timer.join()


def test_lock_close_twice_harmless(tmp_path):
    st = Store(str(tmp_path))
    lock = st.create("c1")
    lock.close()
    lock.close()
    assert lock.fd == -1


# ---------------------------------------------------------------- status

def _own_state(**extra) -> dict:
    state = {"id": "c1", "pid": os.getpid(), "startTime": proc.read_start_time(os.getpid())}
    state.update(extra)
    return state


def test_store_status_live_pid_matching_start_running(tmp_path):
    assert Store(str(tmp_path)).status(_record(_own_state())) == RUNNING


def test_store_status_fifo_held_by_the_init_created(tmp_path):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    os.mkfifo(st.path("c1", "exec.fifo"))
    held = os.open(st.path("c1", "exec.fifo"), os.O_RDWR | os.O_NONBLOCK)  # as the waiting init holds it
    try:
        assert st.status(_record(_own_state())) == CREATED
    finally:
        os.close(held)


def test_store_status_fifo_nobody_holds_running(tmp_path):
    # A start killed after its byte, before removing the fifo: the init has
    # exec'd the program and holds the fifo no more (issue 13, item 4).
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    os.mkfifo(st.path("c1", "exec.fifo"))
    assert st.status(_record(_own_state())) == RUNNING


def test_store_status_wrong_start_time_stopped(tmp_path):
    state = _own_state()
    state["startTime"] += 1  # the pid now belongs to another process
    assert Store(str(tmp_path)).status(_record(state)) == STOPPED


def test_store_status_wrong_start_time_with_fifo_stopped(tmp_path):
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    os.mkfifo(st.path("c1", "exec.fifo"))
    state = _own_state()
    state["startTime"] -= 1
    assert st.status(_record(state)) == STOPPED


@pytest.mark.parametrize("state", [
    {"id": "c1"},
    {"id": "c1", "pid": 0, "startTime": 0},
    {"id": "c1", "pid": -1, "startTime": 0},
])
def test_store_status_no_pid_stopped(tmp_path, state):
    assert Store(str(tmp_path)).status(_record(state)) == STOPPED


def test_store_status_missing_start_time_stopped(tmp_path):
    assert Store(str(tmp_path)).status(_record({"id": "c1", "pid": os.getpid()})) == STOPPED


def _fork_waiting_child():
    """A child blocked on a pipe: (pid, write end that releases it)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


def test_store_status_reaped_child_stopped(tmp_path):
    pid, release = _fork_waiting_child()
    start = proc.read_start_time(pid)
    state = {"id": "c1", "pid": pid, "startTime": start}
    st = Store(str(tmp_path))
    assert st.status(_record(state)) == RUNNING
    os.close(release)
    os.waitpid(pid, 0)
    assert st.status(_record(state)) == STOPPED


def test_store_status_zombie_child_stopped(tmp_path):
    pid, release = _fork_waiting_child()
    start = proc.read_start_time(pid)
    try:
        os.close(release)
        deadline = time.monotonic() + 5
        while proc.read_stat(pid)[0] != "Z":
            assert time.monotonic() < deadline, "child did not become a zombie"
            time.sleep(0.001)
        assert proc.read_start_time(pid) == start  # still there, same process
        assert Store(str(tmp_path)).status(_record({"id": "c1", "pid": pid, "startTime": start})) == STOPPED
    finally:
        os.waitpid(pid, 0)


def _frozen_state(tmp_path, kind: str, content: str) -> dict:
    """A state whose cgroup record names a freezer file with `content`: a v1
    freezer hierarchy, or a pure v2 cgroup."""
    directory = tmp_path / "cg"
    directory.mkdir()
    if kind == "v1":
        (directory / "freezer.state").write_text(content)
        return _own_state(cgroups={"driver": "cgroupfs", "paths": {"freezer": str(directory)}})
    (directory / "cgroup.freeze").write_text(content)
    return _own_state(cgroups={"driver": "cgroupfs", "paths": {"": str(directory)}})


@pytest.mark.parametrize("kind, content", [("v1", "FROZEN\n"), ("v1", "FREEZING"), ("v2", "1\n")])
def test_store_status_frozen_paused(tmp_path, kind, content):
    assert Store(str(tmp_path)).status(_record(_frozen_state(tmp_path, kind, content))) == PAUSED


@pytest.mark.parametrize("kind, content", [("v1", "THAWED\n"), ("v2", "0\n"), ("v1", "")])
def test_store_status_thawed_running(tmp_path, kind, content):
    assert Store(str(tmp_path)).status(_record(_frozen_state(tmp_path, kind, content))) == RUNNING


def test_store_status_freezer_file_missing_running(tmp_path):
    state = _own_state(freezerState=str(tmp_path / "absent"))
    assert Store(str(tmp_path)).status(_record(state)) == RUNNING


# ---------------------------------------------------------------- list_ids

def test_store_list_ids_sorted_dirs_only(tmp_path):
    for name in ("zeta", "alpha", "Mid", "b-2", "b-10"):
        (tmp_path / name).mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "state.json.1.tmp").write_text("x")
    outside = tmp_path.parent / (tmp_path.name + "-outside")
    outside.mkdir()
    (tmp_path / "alink").symlink_to(outside)
    assert Store(str(tmp_path)).list_ids() == sorted(["zeta", "alpha", "Mid", "b-2", "b-10"])


def test_store_list_ids_missing_root_empty(tmp_path):
    assert Store(str(tmp_path / "absent")).list_ids() == []


# ---------------------------------------------------------------- remove

def test_remove_tree_nested_removed(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "g").write_text("y")
    os.mkfifo(top / "fifo")
    store.remove_tree(str(top))
    assert not top.exists()


def test_remove_tree_missing_is_fine(tmp_path):
    store.remove_tree(str(tmp_path / "absent"))


def test_remove_tree_file_unlinked(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    store.remove_tree(str(f))
    assert not f.exists()


def test_remove_tree_inner_symlink_not_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep").write_text("keep")
    (outside / "sub" / "keep2").write_text("keep")
    top = tmp_path / "top"
    top.mkdir()
    (top / "dirlink").symlink_to(outside)
    (top / "filelink").symlink_to(outside / "keep")
    (top / "dangling").symlink_to(tmp_path / "nowhere")
    store.remove_tree(str(top))
    assert not os.path.lexists(top)
    assert (outside / "keep").read_text() == "keep"
    assert (outside / "sub" / "keep2").read_text() == "keep"


def test_remove_tree_path_itself_symlink_target_survives(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    link = tmp_path / "c1"
    link.symlink_to(outside)
    try:
        store.remove_tree(str(link))
    except OSError:
        pass
    assert (outside / "keep").exists()


def test_store_remove_removes_container_dir(tmp_path):
    st = Store(str(tmp_path))
    st.create("c1").close()
    _save(st, {"id": "c1"})
    os.mkfifo(st.path("c1", "exec.fifo"))
    st.remove("c1")
    assert not st.exists("c1")
    assert st.list_ids() == []
    st.remove("c1")  # twice: fine


# ---------------------------------------------------------------- only pyrunc's own state (issue 13, items 5-6)

def _write_raw(st: Store, container_id: str, text: str) -> None:
    os.makedirs(st.path(container_id), exist_ok=True)
    with open(st.path(container_id, "state.json"), "w") as f:
        f.write(text)


RUNC_STATE = ('{"id": "c1", "init_process_pid": 4242, "init_process_start": 9, "created": "2024-01-01T00:00:00Z", '
              '"config": {"rootfs": "/x"}, "cgroup_paths": {"memory": "/sys/fs/cgroup/memory/c1"}}')
YOUKI_STATE = ('{"ociVersion": "1.0.2", "id": "c1", "status": "running", "pid": 4242, "bundle": "/b", '
               '"annotations": {}, "created": "2024-01-01T00:00:00Z", "useSystemd": false}')


@pytest.mark.parametrize("text", [RUNC_STATE, YOUKI_STATE])
def test_store_load_another_runtimes_state_is_refused(tmp_path, text):
    st = Store(str(tmp_path))
    _write_raw(st, "c1", text)
    with pytest.raises(store.ForeignState, match=r"/c1: not a pyrunc container"):
        st.load_record("c1")


def test_store_load_another_runtimes_directory_without_state_json_is_refused(tmp_path):
    # crun keeps a "status" file, no state.json: not a create of ours that died half-way.
    st = Store(str(tmp_path))
    os.mkdir(st.path("c1"))
    (tmp_path / "c1" / "status").write_text("{}")
    with pytest.raises(store.ForeignState):
        st.load_record("c1")


def test_store_save_marks_the_state_as_pyrunc_and_load_hides_the_mark(tmp_path):
    import json

    st = Store(str(tmp_path))
    st.create("c1").close()
    _save(st, {"id": "c1", "pid": 0, "cgroups": {}})
    with open(st.path("c1", "state.json")) as f:
        assert json.load(f)["runtime"] == "pyrunc"
    assert st.load_record("c1").to_state() == {"id": "c1", "pid": 0, "cgroups": {}}


@pytest.mark.parametrize("state, why", [
    ({}, "id is None"),
    ({"id": "other"}, "id is 'other'"),
    ({"id": "c1", "pid": "12x"}, "pid is not a number: '12x'"),
    ({"id": "c1", "pid": True}, "pid is not a number"),
    ({"id": "c1", "pid": -5}, "pid is not a number"),
    ({"id": "c1", "startTime": "x"}, "startTime is not a number"),
    ({"id": "c1", "cgroups": []}, "cgroups has the wrong type"),
    ({"id": "c1", "cgroups": {"paths": {"": "relative"}}}, "cgroups.paths"),
    ({"id": "c1", "cgroups": {"paths": {}, "created": ["x"]}}, "cgroups.created"),
    ({"id": "c1", "annotations": "x"}, "annotations has the wrong type"),
    ({"id": "c1", "pid": 5, "cgroups": {}}, "startTime is missing"),
    ({"id": "c1", "pid": 0}, "cgroups is missing"),
    ({"id": "c1", "pid": 0, "cgroups": {}, "status": "running"}, "unknown field 'status'"),
])
def test_store_load_corrupt_fields_name_the_field(tmp_path, state, why):
    import json

    st = Store(str(tmp_path))
    _write_raw(st, "c1", json.dumps({"runtime": "pyrunc", **state}))
    with pytest.raises(store.CorruptState) as info:
        st.load_record("c1")
    assert str(info.value).startswith(f"c1: corrupt state.json: {why}"), str(info.value)
    assert "delete --force c1" in str(info.value)


def test_store_root_that_is_a_file_is_one_line(tmp_path):
    root = tmp_path / "root"
    root.write_text("")
    st = Store(str(root))
    for call in (st.list_ids, lambda: st.load_record("c1"), lambda: st.exists("c1")):
        with pytest.raises(PyruncError, match=r"--root .*/root: not a directory"):
            call()
