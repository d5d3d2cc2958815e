"""The typed container record: state.json round-trips through it unchanged
(engines and `delete --force` read the file), and a new record writes what
create wrote before it existed."""

from __future__ import annotations

import json

from pyrunc.record import ContainerRecord
from pyrunc.store import Store

FULL = {
    "ociVersion": "1.2.0", "id": "c1", "pid": 4242, "bundle": "/b", "rootfs": "/b/rootfs",
    "created": "2026-12-05T23:00:00.123Z", "annotations": {"a": "b"}, "startTime": 987654,
    "cgroups": {"driver": "cgroupfs", "paths": {"pids": "/sys/fs/cgroup/pids/x"}, "created": []},
    "resources": {"pids": {"limit": 10}}, "sharedPidNamespace": False, "hooks": {},
    "process": {"args": ["sh"], "cwd": "/"}, "seccomp": None,
}
PARTIAL = {"ociVersion": "1.2.0", "id": "c1", "pid": 0, "bundle": "/b", "rootfs": "/b/rootfs", "created": "",
           "annotations": {}, "cgroups": {"driver": "cgroupfs", "paths": {}, "created": []}, "creating": True}


def test_documents_round_trip_with_their_keys_in_order():
    for doc in (FULL, PARTIAL, {"id": "c1", "creating": True}):
        out = ContainerRecord.from_state(json.loads(json.dumps(doc))).to_state()
        assert json.dumps(out) == json.dumps(doc)


def test_attributes_are_typed_and_a_change_is_written():
    record = ContainerRecord.from_state(dict(FULL))
    assert (record.pid, record.start_time, record.shared_pid_namespace, record.seccomp) == (4242, 987654, False, None)
    record.resources = {"pids": {"limit": 20}}
    assert record.to_state()["resources"] == {"pids": {"limit": 20}}
    partial = ContainerRecord.from_state(dict(PARTIAL))
    partial.freezer_state = "FROZEN"
    assert list(partial.to_state())[-1] == "freezerState"


def test_a_new_record_writes_the_keys_create_writes():
    loaded = ContainerRecord.from_state(dict(FULL))
    record = ContainerRecord("c1", **{attr: getattr(loaded, attr) for attr in ContainerRecord.DEFAULTS})
    assert json.dumps(record.to_state()) == json.dumps(FULL)  # "seccomp": null included


def test_creating_the_record_costs_create_no_dataclasses_import():
    import subprocess
    import sys

    code = "import sys, pyrunc.ops.create; print('dataclasses' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_store_saves_and_loads_records(tmp_path):
    st = Store(str(tmp_path))
    lock = st.create("c1")
    try:
        st.save_record(ContainerRecord.from_state(dict(FULL)))
        assert st.load_record("c1").to_state() == FULL
        assert st.load_record("c1") == ContainerRecord.from_state(dict(FULL))
    finally:
        lock.close()
