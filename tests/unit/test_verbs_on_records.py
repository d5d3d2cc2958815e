"""The verbs on container records, without root: a state.json written by
hand (this test's own process as the "init", or a pid that is gone) is
loaded as a record, its status derived from the kernel, and each verb
refused or done as the status table says."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.errors import InvalidStatus
from pyrunc.linux import proc
from pyrunc.ops import exec as exec_op, lifecycle, listing, resources
from pyrunc.record import ContainerRecord
from pyrunc.store import Store


def _store_with(tmp_path, **values) -> Store:
    """A store holding container c1, saved from a record with `values`."""
    st = Store(str(tmp_path / "root"))
    st.create("c1").close()
    values.setdefault("cgroups", {"paths": {}, "created": []})
    st.save_record(ContainerRecord("c1", oci_version="1.2.0", bundle="/b", rootfs="/b/rootfs",
                                   created="2026-12-06T00:00:00Z", **values))
    return st


def _running(tmp_path, **values) -> Store:
    return _store_with(tmp_path, pid=os.getpid(), start_time=proc.read_start_time(os.getpid()), **values)


def _gone_pid() -> tuple[int, int]:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    start = proc.read_start_time(pid) or 1
    os.waitpid(pid, 0)
    return pid, start


def test_state_of_a_running_record(tmp_path):
    st = _running(tmp_path, annotations={"a": "b"})
    assert lifecycle.container_state(st, "c1") == {
        "ociVersion": "1.2.0", "id": "c1", "pid": os.getpid(), "status": "running", "bundle": "/b",
        "rootfs": "/b/rootfs", "created": "2026-12-06T00:00:00Z", "annotations": {"a": "b"}, "owner": ""}


def test_state_and_list_of_a_stopped_record(tmp_path):
    pid, start = _gone_pid()
    st = _store_with(tmp_path, pid=pid, start_time=start)
    assert lifecycle.container_state(st, "c1")["status"] == "stopped"
    assert lifecycle.container_state(st, "c1")["pid"] == 0
    [entry] = listing.list_containers(st)
    assert (entry["id"], entry["status"], entry["pid"]) == ("c1", "stopped", 0)


@pytest.mark.parametrize("verb, words", [
    (lambda st: lifecycle.start_container(st, "c1"), "c1: cannot start a container that has stopped"),
    (lambda st: lifecycle.kill_container(st, "c1", 0), "c1: container not running"),
    (lambda st: resources.pause_container(st, "c1"), "c1: container not running"),
    (lambda st: resources.resume_container(st, "c1"), "c1: container not paused"),
    (lambda st: resources.update_container(st, "c1", {"pids": {"limit": 5}}), "c1: container not running"),
    (lambda st: resources.container_stats(st, "c1"), "c1: container is not running"),
    (lambda st: exec_op.exec_process(st, "c1", {"args": ["true"], "cwd": "/"}), "c1: cannot exec in a stopped container"),
])
def test_verbs_on_a_stopped_record_are_refused_by_the_table(tmp_path, verb, words):
    pid, start = _gone_pid()
    st = _store_with(tmp_path, pid=pid, start_time=start)
    with pytest.raises(InvalidStatus) as err:
        verb(st)
    assert str(err.value) == words


def test_running_record_refusals(tmp_path):
    st = _running(tmp_path)
    for verb, words in ((lambda: lifecycle.start_container(st, "c1"), "c1: cannot start an already running container"),
                        (lambda: lifecycle.delete_container(st, "c1"),
                         "c1: cannot delete container c1 that is not stopped: running"),
                        (lambda: resources.resume_container(st, "c1"), "c1: container not paused")):
        with pytest.raises(InvalidStatus) as err:
            verb()
        assert str(err.value) == words
    assert st.exists("c1")


def test_kill_signals_the_records_init_through_its_pidfd(tmp_path):
    st = _running(tmp_path)
    lifecycle.kill_container(st, "c1", 0)  # signal 0 to this process: checked, delivered, harmless


def test_an_init_gone_after_its_status_was_read_is_refused_as_stopped():
    pid, start = _gone_pid()
    with pytest.raises(InvalidStatus, match="^c1: container not running$"):
        lifecycle.send_signal(ContainerRecord("c1", pid=pid, start_time=start), 0)


def test_delete_of_a_stopped_record_removes_it(tmp_path):
    pid, start = _gone_pid()
    st = _store_with(tmp_path, pid=pid, start_time=start)
    lifecycle.delete_container(st, "c1")
    assert not st.exists("c1")


def test_update_is_validated_against_the_records_version_before_anything(tmp_path):
    from pyrunc.errors import ConfigError

    st = _running(tmp_path)
    with pytest.raises(ConfigError, match=r"^update: linux\.resources\.pids\.limit"):
        resources.update_container(st, "c1", {"pids": {"limit": "many"}})
    with open(st.path("c1", "state.json")) as f:
        assert "pids" not in json.load(f)["resources"]
