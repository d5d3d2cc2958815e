"""runtime.md, State and Query State: the state JSON against state-schema.json."""

from __future__ import annotations

import json
import os
import time

from .harness import REPO, read_file, test

_VALIDATOR = None


def state_validator():
    """oci-schemas/state-schema.json, with its $refs resolved in oci-schemas/."""
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        schema_dir = os.path.join(REPO, "oci-schemas")
        if not os.path.isdir(schema_dir):  # a copy of the suite without the source tree (the VM lane)
            import pyrunc

            schema_dir = os.path.join(os.path.dirname(pyrunc.__file__), "oci_schemas")  # as the wheel installs it
        with open(os.path.join(schema_dir, "state-schema.json")) as f:
            schema = json.load(f)
        store = {}
        for name in os.listdir(schema_dir):
            if name.endswith(".json"):
                with open(os.path.join(schema_dir, name)) as f:
                    doc = json.load(f)
                store[name] = doc
                store["file://" + os.path.join(schema_dir, name)] = doc
        resolver = jsonschema.RefResolver("file://" + os.path.join(schema_dir, "state-schema.json"), schema,
                                          store=store)
        cls = jsonschema.validators.validator_for(schema)
        _VALIDATOR = cls(schema, resolver=resolver)
    return _VALIDATOR


def schema_errors(state: dict) -> list[str]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        validator = state_validator()
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in validator.iter_errors(state)]


def check_state(t, state: dict, b, status: str, what: str) -> None:
    """One state JSON: valid against the schema, and what runtime.md says it holds."""
    for problem in schema_errors(state):
        t.check(False, f"{what}: state-schema.json: {problem}")
    t.equal(state.get("id"), b.id, f"{what}: id")
    t.equal(state.get("status"), status, f"{what}: status")
    t.equal(state.get("bundle"), b.path, f"{what}: bundle (absolute path of the bundle)")
    t.check(isinstance(state.get("ociVersion"), str) and state.get("ociVersion"), f"{what}: ociVersion missing")
    if status in ("created", "running"):
        pid = state.get("pid")
        t.check(isinstance(pid, int) and pid > 0 and os.path.exists(f"/proc/{pid}"),
                f"{what}: pid is REQUIRED when {status} and must be the live container process, got {pid!r}")


@test("state", "runtime.md#state")
def state_through_the_lifecycle(t):
    """state of a created, running and stopped container is valid and correct"""
    b = t.bundle(["sleep", "30"])
    b.config["annotations"] = {"org.example.conformance": "value", "another": "x"}
    t.ok(t.create(b), "create")
    created = t.rt.state(b.id)
    check_state(t, created, b, "created", "created")
    t.ok(t.rt("start", b.id), "start")
    running = t.rt.state(b.id)
    check_state(t, running, b, "running", "running")
    t.equal(running.get("pid"), created.get("pid"), "running: pid (the created process)")
    t.ok(t.rt("kill", b.id, "KILL"), "kill")
    stopped = t.rt.wait_status(b.id, "stopped")
    check_state(t, stopped, b, "stopped", "stopped")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("state", "runtime.md#state")
def state_annotations_are_the_configs(t):
    """annotations in the state are the config's annotations"""
    b = t.bundle(["sleep", "30"])
    annotations = {"org.example.conformance": "value", "another": "x"}
    b.config["annotations"] = annotations
    t.ok(t.create(b), "create")
    t.equal(t.rt.state(b.id).get("annotations"), annotations, "state annotations")


@test("state", "runtime.md#state")
def state_pid_is_the_container_process(t):
    """the state pid (as the runtime sees it) is the process in the container's namespaces and cgroup"""
    b = t.bundle("probe_ns; sleep 30")
    t.ok(t.create(b), "create")
    pid = t.rt.state(b.id).get("pid")
    t.ok(t.rt("start", b.id), "start")
    for _ in range(100):
        if "@@@ ns" in b.output() and "user " in b.output():
            break
        time.sleep(0.05)
    seen = dict(line.split(" ", 1) for line in b.probes().get("ns", "").splitlines() if " " in line)
    for ns in ("mnt", "pid", "net", "uts", "ipc"):
        host_view = os.readlink(f"/proc/{pid}/ns/{ns}") if os.path.exists(f"/proc/{pid}") else None
        t.equal(host_view, seen.get(ns), f"namespace {ns} of state pid {pid} vs the container's own")
    cgroup = read_file(f"/proc/{pid}/cgroup") or ""
    t.check(f"/{b.cgroups_path.strip('/')}" in cgroup, f"state pid {pid} is not in cgroup {b.cgroups_path}: {cgroup!r}")


@test("state", "runtime.md#query-state")
def state_of_a_deleted_container_is_an_error(t):
    """state of a deleted container generates an error"""
    b = t.bundle(["true"])
    t.run(b)
    t.error(t.rt("state", b.id), "state after delete")

