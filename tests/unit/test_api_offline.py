"""The Python API's pure parts, without root: validate, check, default_spec,
the lazy re-export from the package, and the refusal to fork with threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

import pyrunc

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(m for m in sys.modules if m.startswith('pyrunc'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT_DIR)
    return set(out.stdout.split())


def test_import_pyrunc_and_the_cli_do_not_load_the_api():
    assert _modules_after("import pyrunc") == {"pyrunc"}
    assert "pyrunc.api" not in _modules_after("import pyrunc.cli")


def test_api_names_load_on_first_use():
    loaded = _modules_after("import pyrunc; pyrunc.Runtime")
    assert "pyrunc.api" in loaded and "pyrunc.ops.create" not in loaded  # the verbs load per call
    assert "Runtime" in dir(pyrunc)
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        pyrunc.nonesuch


def test_exceptions_are_the_ones_pyrunc_raises():
    from pyrunc import errors

    assert pyrunc.ContainerNotFound is errors.ContainerNotFound
    assert issubclass(pyrunc.InvalidStatus, pyrunc.PyruncError)
    assert issubclass(pyrunc.ThreadsRunning, pyrunc.PyruncError)


def test_default_spec_is_valid_and_a_fresh_copy():
    spec = pyrunc.default_spec()
    assert pyrunc.validate(spec) == []
    assert spec["process"]["args"] == ["sh"] and spec["root"]["path"] == "rootfs"
    spec["process"]["args"].append("x")
    assert pyrunc.default_spec()["process"]["args"] == ["sh"]
    assert "user" in [ns["type"] for ns in pyrunc.default_spec(rootless=True)["linux"]["namespaces"]]


def test_validate_returns_problems_with_their_json_path():
    spec = pyrunc.default_spec()
    del spec["process"]["args"]
    assert pyrunc.validate(spec) == [pyrunc.Problem("process.args", "is required", "schema")]
    spec = pyrunc.default_spec()
    spec["linux"]["namespaces"].append({"type": "pid"})  # a rule the schema cannot express
    problems = pyrunc.validate(spec)
    path = f"linux.namespaces[{len(spec['linux']['namespaces']) - 1}].type"
    assert [(p.path, p.kind) for p in problems] == [(path, "config")]
    assert str(problems[0]) == f'{path}: duplicate namespace type "pid"'
    assert pyrunc.validate([]) == [pyrunc.Problem("", "the config must be a JSON object (a dict)", "schema")]


def test_check_looks_at_the_bundle_on_this_host(tmp_path):
    spec = pyrunc.default_spec()
    (tmp_path / "config.json").write_text(json.dumps(spec))
    problems = pyrunc.check(str(tmp_path))
    assert [(p.kind, p.path) for p in problems] == [("host", "root.path")]  # no rootfs directory
    (tmp_path / "rootfs").mkdir()
    assert pyrunc.check(tmp_path) == []
    missing = pyrunc.check(str(tmp_path / "nothing"))
    assert len(missing) == 1 and missing[0].kind == "file" and "nothing" in missing[0].message


def test_state_round_trips_the_state_json():
    doc = {"ociVersion": "1.2.0", "id": "a", "pid": 12, "status": "running", "bundle": "/b", "rootfs": "/b/rootfs",
           "created": "2026-01-01T00:00:00.000000000Z", "annotations": {"k": "v"}, "owner": "root"}
    state = pyrunc.ContainerState.from_dict(doc)
    assert state.status == "running" and state.pid == 12 and state.annotations == {"k": "v"}
    assert state.to_dict() == doc
    assert list(state.to_dict()) == list(doc)  # runc's key order


def test_forking_verbs_refuse_while_other_threads_run(tmp_path):
    rt = pyrunc.Runtime(root=str(tmp_path / "state"))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        for call in (lambda: rt.create("c1", str(tmp_path)), lambda: rt.start("c1"),
                     lambda: rt.run("c1", str(tmp_path)), lambda: rt.exec("c1", ["true"])):
            with pytest.raises(pyrunc.ThreadsRunning, match=r"refusing to fork with \d+ threads running"):
                call()
    finally:
        stop.set()
        thread.join()
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("process, kind", [("ls -l", "str"), (42, "int"), (None, "NoneType"),
                                           (["ls", 1], "a list holding int"), ({"args"}, "set")])
def test_exec_refuses_a_process_that_is_neither_a_dict_nor_a_command_line(tmp_path, process, kind):
    from pyrunc.linux import proc
    from pyrunc.record import ContainerRecord
    from pyrunc.store import Store

    # A container in the running status (this process as its init), so the
    # process argument is what is wrong (a bare TypeError or ValueError before).
    st = Store(str(tmp_path / "state"))
    st.create("c1").close()
    st.save_record(ContainerRecord("c1", pid=os.getpid(), start_time=proc.read_start_time(os.getpid())))
    with pytest.raises(pyrunc.ConfigError) as err:
        pyrunc.Runtime(root=st.root).exec("c1", process)
    assert str(err.value) == ("exec: process: must be an OCI process object (a dict) or a command line "
                              f"(a list of strings), not {kind}")
    assert err.value.problems[0][0] == "process"
