"""runtime.md, Lifecycle and Operations: create, start, kill, delete in order."""

from __future__ import annotations

import os
import time

from .harness import Failure, read_file, test


def read_pid_file(path: str) -> int:
    text = read_file(path)
    if text is None:
        raise Failure(f"--pid-file {path} was not written")
    if not text.strip().isdigit():
        raise Failure(f"--pid-file holds {text!r}, not a pid")
    return int(text)


@test("lifecycle", "runtime.md#lifecycle step 2")
def create_does_not_run_the_process(t):
    """create sets the container up but does not run process.args"""
    b = t.bundle("echo the-process-ran")
    t.ok(t.create(b), "create")
    time.sleep(0.5)
    t.equal(b.output(), "", "container output after create, before start")
    t.equal(t.rt.state(b.id).get("status"), "created", "status after create")
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    t.equal(b.output().strip(), "the-process-ran", "container output after start")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#start")
def start_runs_the_process_as_the_created_pid(t):
    """start runs process.args in the process create made (same pid); status running"""
    b = t.bundle(["sleep", "30"])
    t.ok(t.create(b), "create")
    created = t.rt.state(b.id)
    t.equal(read_pid_file(b.pid_file), created.get("pid"), "--pid-file vs state pid")
    t.ok(t.rt("start", b.id), "start")
    running = t.rt.wait_status(b.id, "running", 5)
    t.equal(running.get("pid"), created.get("pid"), "pid after start")
    cmdline = (read_file(f"/proc/{running.get('pid')}/cmdline") or "").split("\0")[:-1]
    t.equal(cmdline, ["sleep", "30"], "argv of the container process (host /proc)")
    t.ok(t.rt("kill", b.id, "KILL"), "kill KILL")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#lifecycle step 10")
def process_exit_stops_the_container(t):
    """when the process exits the status becomes stopped and stays queryable until delete"""
    b = t.bundle(["true"])
    t.ok(t.create(b), "create")
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    time.sleep(0.3)
    t.equal(t.rt.state(b.id).get("status"), "stopped", "status a while after the exit")
    t.ok(t.rt("delete", b.id), "delete")
    t.error(t.rt("state", b.id), "state after delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#kill")
def kill_sends_the_signal_to_the_process(t):
    """kill ID TERM reaches the container process (which traps it)"""
    b = t.bundle("trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done")
    t.ok(t.create(b), "create")
    t.ok(t.rt("start", b.id), "start")
    deadline = time.monotonic() + 5
    while "ready" not in b.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    t.ok(t.rt("kill", b.id, "TERM"), "kill TERM")
    t.rt.wait_status(b.id, "stopped")
    t.check("got-TERM" in b.output(), f"the process did not see SIGTERM (output {b.output()!r})")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#kill")
def kill_a_created_container(t):
    """kill works on a created container; process.args never runs"""
    b = t.bundle("echo the-process-ran")
    t.ok(t.create(b), "create")
    t.ok(t.rt("kill", b.id, "KILL"), "kill KILL of a created container")
    t.rt.wait_status(b.id, "stopped")
    t.equal(b.output(), "", "output of a container killed before start")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#lifecycle step 2")
def config_changes_after_create_have_no_effect(t):
    """config.json edited after create does not affect the container"""
    b = t.bundle("echo original")
    t.ok(t.create(b), "create")
    b.config["process"]["args"] = ["/bin/sh", "-c", "echo changed"]
    b.config["hostname"] = "changed"
    b.write()
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    t.equal(b.output().strip(), "original", "output")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("lifecycle", "runtime.md#delete")
def id_can_be_reused_after_delete(t):
    """once deleted, the same id may be used by a new container"""
    b = t.bundle("echo first")
    t.run(b)
    again = t.bundle("echo second", cid=b.id)
    t.run(again)
    t.equal(again.output().strip(), "second", "output of the second container")


@test("lifecycle", "config.md#extensibility")
def unknown_properties_are_ignored(t):
    """unknown properties and annotation keys are ignored (the container runs)"""
    b = t.bundle("echo ran")
    b.config["conformanceUnknown"] = {"x": 1}
    b.config["process"]["conformanceUnknown"] = True
    b.config["linux"]["conformanceUnknown"] = [1, 2]
    b.config["annotations"] = {"org.example.conformance/unknown": "value"}
    t.run(b)
    t.equal(b.output().strip(), "ran", "output")


@test("lifecycle", "runtime-linux.md#file-descriptors")
def only_stdio_is_open(t):
    """by default only stdin, stdout and stderr are open in the container process"""
    b = t.bundle(["/bin/sh", "-c", "echo @@@ fds; ls /proc/$$/fd; exit 0"])
    fds = sorted(int(x) for x in t.run(b).get("fds", "").split() if x.isdigit())
    t.equal(fds, [0, 1, 2], "open fds of the container process")


@test("lifecycle", "config.md#root")
def relative_bundle_path_in_state_is_absolute(t):
    """a bundle given as a relative path is reported as an absolute path"""
    b = t.bundle(["sleep", "30"])
    b.write()
    parent = os.path.dirname(b.path)
    rel = os.path.basename(b.path)
    result = t.rt("create", "--bundle", rel, b.id, stdout_path=b.out, cwd=parent)
    t.ok(result, "create --bundle RELATIVE")
    t.remember_pid(b.id)
    state = t.rt.state(b.id)
    t.equal(state.get("bundle"), b.path, "state bundle")
    t.ok(t.rt("kill", b.id, "KILL"), "kill")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)

