"""runtime.md, Errors: every operation the spec says MUST generate an error, and
that the error leaves the environment "as if the operation were never attempted"
(nothing left behind, no effect on an existing container)."""

from __future__ import annotations

import os
import time

from .harness import container_cgroup_dirs, marked_processes, test


def sleeping(t):
    b = t.bundle("echo started; sleep 30")
    t.ok(t.create(b), "create")
    return b


def running(t):
    b = sleeping(t)
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "running", 5)
    return b


def stopped(t):
    b = t.bundle(["true"])
    t.ok(t.create(b), "create")
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    return b


def unchanged(t, b, before: dict, what: str) -> None:
    after = t.rt.state(b.id)
    t.equal((after.get("status"), after.get("pid")), (before.get("status"), before.get("pid")),
            f"{what}: state (status, pid) must be unchanged")


# ---------------------------------------------------------------- no or unknown id

@test("errors", "runtime.md#query-state")
def state_without_id(t):
    """state without an id"""
    t.error(t.rt("state"), "state without an id")


@test("errors", "runtime.md#query-state")
def state_unknown_id(t):
    """state of a container that does not exist"""
    t.error(t.rt("state", f"no-such-{t.new_id()}"), "state of an unknown id")


@test("errors", "runtime.md#create")
def create_without_id(t):
    """create without a container id"""
    b = t.bundle(["true"])
    b.write()
    t.error(t.rt("create", "--bundle", b.path, stdout_path=b.out), "create without an id")
    t.check(os.listdir(t.rt.root) == [] or b.id not in os.listdir(t.rt.root), "a container appeared")


@test("errors", "runtime.md#start")
def start_without_id(t):
    """start without an id"""
    t.error(t.rt("start"), "start without an id")


@test("errors", "runtime.md#start")
def start_unknown_id(t):
    """start of a container that does not exist"""
    t.error(t.rt("start", f"no-such-{t.new_id()}"), "start of an unknown id")


@test("errors", "runtime.md#kill")
def kill_without_id(t):
    """kill without an id"""
    t.error(t.rt("kill"), "kill without an id")


@test("errors", "runtime.md#kill")
def kill_unknown_id(t):
    """kill of a container that does not exist"""
    t.error(t.rt("kill", f"no-such-{t.new_id()}", "KILL"), "kill of an unknown id")


@test("errors", "runtime.md#delete")
def delete_without_id(t):
    """delete without an id"""
    t.error(t.rt("delete"), "delete without an id")


@test("errors", "runtime.md#delete")
def delete_unknown_id(t):
    """delete of a container that does not exist"""
    t.error(t.rt("delete", f"no-such-{t.new_id()}"), "delete of an unknown id")


# ---------------------------------------------------------------- wrong status

@test("errors", "runtime.md#create")
def create_duplicate_id(t):
    """a second create with the same id fails and leaves the first container alone"""
    first = sleeping(t)
    before = t.rt.state(first.id)
    second = t.bundle("echo second-ran", cid=first.id)
    second.config["linux"]["cgroupsPath"] = first.cgroups_path + "-dup"
    second.config["process"]["env"].append("CONFORMANCE_DUPLICATE=1")
    t.error(t.create(second, pid_file=False), "create with an id in use")
    unchanged(t, first, before, "the first container")
    t.equal(t.rt.state(first.id).get("bundle"), first.path, "bundle of the first container")
    left = [d for d in container_cgroup_dirs(second.cgroups_path) if os.path.isdir(d)]
    left += [f"process {p}" for p in marked_processes("CONFORMANCE_DUPLICATE=1")]
    t.check(not left, f"the failed create left behind: {left}")
    t.ok(t.rt("start", first.id), "start of the first container")
    time.sleep(0.3)
    t.equal(first.output().strip(), "started", "output of the first container")
    t.equal(second.output(), "", "output of the duplicate")


@test("errors", "runtime.md#start")
def start_twice(t):
    """start of a running container fails and has no effect"""
    b = running(t)
    before = t.rt.state(b.id)
    t.error(t.rt("start", b.id), "second start")
    unchanged(t, b, before, "after the second start")
    time.sleep(0.3)
    t.equal(b.output().split(), ["started"], "the process ran exactly once")


@test("errors", "runtime.md#start")
def start_stopped(t):
    """start of a stopped container fails"""
    b = stopped(t)
    t.error(t.rt("start", b.id), "start of a stopped container")
    t.equal(t.rt.state(b.id).get("status"), "stopped", "status")


@test("errors", "runtime.md#kill")
def kill_stopped(t):
    """kill of a stopped container fails and has no effect"""
    b = stopped(t)
    t.error(t.rt("kill", b.id, "KILL"), "kill of a stopped container")
    t.equal(t.rt.state(b.id).get("status"), "stopped", "status")
    t.ok(t.rt("delete", b.id), "delete")
    t.check_nothing_left(b)


@test("errors", "runtime.md#delete")
def delete_running(t):
    """delete of a running container fails and has no effect"""
    b = running(t)
    before = t.rt.state(b.id)
    t.error(t.rt("delete", b.id), "delete of a running container")
    unchanged(t, b, before, "after the refused delete")
    t.check(os.path.isdir(os.path.join(t.rt.root, b.id)), "the refused delete removed the state dir")


@test("errors", "runtime.md#delete")
def delete_created(t):
    """delete of a created (not stopped) container fails and has no effect"""
    b = sleeping(t)
    before = t.rt.state(b.id)
    t.error(t.rt("delete", b.id), "delete of a created container")
    if t.rt("state", b.id).returncode == 0:
        unchanged(t, b, before, "after the refused delete")


# ---------------------------------------------------------------- invalid configs

def invalid_config(t, edit, what: str, raw: str | None = None):
    """create with a broken config: an error, and nothing created."""
    b = t.bundle("echo the-process-ran")
    edit(b.config)
    b.write()
    if raw is not None:
        with open(os.path.join(b.path, "config.json"), "w") as f:
            f.write(raw)
    result = t.rt("create", "--bundle", b.path, "--pid-file", b.pid_file, b.id, stdout_path=b.out)
    if t.error(result, f"create with {what}"):
        t.check_nothing_left(b, "after the failed create")
    else:
        t.remember_pid(b.id)
    t.check(not os.path.exists(b.pid_file) or result.returncode == 0, "a failed create wrote the pid file")
    time.sleep(0.1)
    t.equal(b.output(), "", "container output")


@test("errors", "config.md#specification-version")
def config_not_json(t):
    """config.json that is not JSON"""
    invalid_config(t, lambda c: None, "a config.json that is not JSON", raw='{"ociVersion": "1.0.2", ')


@test("errors", "config.md#specification-version")
def config_without_oci_version(t):
    """ociVersion is REQUIRED"""
    invalid_config(t, lambda c: c.pop("ociVersion"), "no ociVersion")


@test("errors", "config.md#specification-version")
def config_oci_version_not_semver(t):
    """ociVersion MUST be SemVer"""
    invalid_config(t, lambda c: c.update(ociVersion="one.zero"), 'ociVersion "one.zero"')


@test("errors", "config.md#root")
def config_root_path_missing(t):
    """a directory MUST exist at root.path"""
    invalid_config(t, lambda c: c["root"].update(path="no-such-rootfs"), "a root.path that does not exist")


@test("errors", "config.md#process")
def config_cwd_relative(t):
    """process.cwd MUST be an absolute path"""
    invalid_config(t, lambda c: c["process"].update(cwd="tmp"), 'process.cwd "tmp"')


@test("errors", "config.md#process")
def config_args_empty(t):
    """process.args needs at least one entry"""
    invalid_config(t, lambda c: c["process"].update(args=[]), "empty process.args")


@test("errors", "config-linux.md#namespaces")
def config_duplicate_namespace(t):
    """duplicated namespace types MUST generate an error"""
    invalid_config(t, lambda c: c["linux"]["namespaces"].append({"type": "pid"}), "two pid namespaces")


@test("errors", "config.md#posix-process")
def config_duplicate_rlimit(t):
    """duplicated rlimit types MUST generate an error"""
    invalid_config(t, lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}),
                   "two RLIMIT_NOFILE entries")


@test("errors", "config.md#posix-process")
def config_unknown_rlimit(t):
    """an rlimit type that maps to no kernel interface MUST generate an error"""
    invalid_config(t, lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_CONFORMANCE", "soft": 1, "hard": 1}),
                   "rlimit RLIMIT_CONFORMANCE")


@test("errors", "config.md#posix-platform-hooks")
def config_hook_path_relative(t):
    """a hook path MUST be absolute"""
    invalid_config(t, lambda c: c.update(hooks={"prestart": [{"path": "bin/true"}]}), 'hook path "bin/true"')


@test("errors", "config.md#posix-platform-hooks")
def config_hook_timeout_zero(t):
    """a hook timeout MUST be greater than zero"""
    invalid_config(t, lambda c: c.update(hooks={"prestart": [{"path": "/bin/true", "timeout": 0}]}),
                   "hook timeout 0")


@test("errors", "config.md#annotations")
def config_annotation_empty_key(t):
    """annotation keys MUST NOT be empty"""
    invalid_config(t, lambda c: c.update(annotations={"": "x"}), 'annotation key ""')


@test("errors", "config-linux.md#devices")
def config_device_type_invalid(t):
    """a device type other than c, b, u or p"""
    invalid_config(t, lambda c: c["linux"].update(devices=[{"path": "/dev/bad", "type": "x", "major": 1, "minor": 3}]),
                   'device type "x"')


@test("errors", "config-linux.md#namespaces")
def config_namespace_path_of_another_type(t):
    """a namespace path not associated with a namespace of that type"""
    path = f"/proc/{os.getpid()}/ns/net"
    invalid_config(t, lambda c: c["linux"]["namespaces"].__setitem__(
        3, {"type": "uts", "path": path}), f"uts namespace path {path} (a network namespace)")


@test("errors", "runtime.md#start")
def start_without_process(t):
    """a config without process: start MUST generate an error (create may refuse it already)"""
    b = t.bundle(["true"])
    del b.config["process"]
    result = t.create(b)
    if result.returncode != 0:
        t.check_nothing_left(b, "after the refused create")
        return
    t.error(t.rt("start", b.id), "start of a container without process")

