"""config.md, POSIX-platform Hooks, and runtime.md, Lifecycle steps 3-13: when
each kind of hook runs, in which namespace, what it gets on stdin, and what a
failing hook does.

The bundles say ociVersion 1.0.2, so a failing poststart hook is a warning
(runtime-spec 1.3.0 made it an error that stops the container)."""

from __future__ import annotations

import json
import os
import time

from .harness import container_cgroup_dirs, read_file, test
from .state import schema_errors

CREATE_HOOKS = ["prestart", "createRuntime", "createContainer"]
RUNTIME_NS_HOOKS = ["prestart", "createRuntime", "poststart", "poststop"]


class Recorder:
    """The hooks of one container: a log dir on the host (bind-mounted at
    /hooklog for what runs inside the container) with an `order` file."""

    def __init__(self, t, b):
        self.t, self.b = t, b
        self.dir = os.path.join(b.path, "hooklog")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o777)
        self.host_script = os.path.join(b.path, "hook.sh")  # exists on the host only
        with open(os.path.join(b.rootfs, ".conformance", "hook.sh")) as src, open(self.host_script, "w") as dst:
            dst.write(src.read())
        os.chmod(self.host_script, 0o755)
        b.config["mounts"].append({"destination": "/hooklog", "type": "bind", "source": self.dir,
                                   "options": ["rbind"]})

    def hook(self, name: str, exit_code: str = "0", timeout: int | None = None, extra: str = "") -> dict:
        # startContainer resolves in the container: the script in the rootfs, logging to /hooklog.
        inside = name.startswith("startContainer")
        entry = {"path": "/.conformance/hook.sh" if inside else self.host_script,
                 "args": ["hook.sh", name, "/hooklog" if inside else self.dir, exit_code] + ([extra] if extra else []),
                 "env": ["HOOK_VAR=hook-env-value", "PATH=/bin:/usr/bin"]}
        if timeout:
            entry["timeout"] = timeout
        return entry

    def set(self, **hooks: list[dict]) -> None:
        self.b.config["hooks"] = hooks

    def event(self, text: str) -> None:
        with open(os.path.join(self.dir, "order"), "a") as f:
            f.write(text + "\n")

    def order(self) -> list[str]:
        return (read_file(os.path.join(self.dir, "order")) or "").split()

    def info(self, name: str) -> dict[str, str]:
        lines = (read_file(os.path.join(self.dir, f"{name}.info")) or "").splitlines()
        return dict(line.split(" ", 1) if " " in line else (line, "") for line in lines)

    def stdin(self, name: str) -> dict | None:
        text = read_file(os.path.join(self.dir, f"{name}.stdin"))
        try:
            return json.loads(text) if text else None
        except ValueError:
            self.t.check(False, f"{name}: stdin is not JSON: {text[:100]!r}")
            return None


def process_marker_script() -> str:
    # The shell stays the container process (a last command would be exec'd in its place).
    return "echo process >> /hooklog/order; probe_ns; sleep 30; exit 0"


def container_namespaces(b) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in b.probes().get("ns", "").splitlines() if " " in line)


def wait_for(predicate, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def full_lifecycle(t) -> tuple:
    """One container with every kind of hook, through create, start, kill, delete."""
    b = t.bundle(process_marker_script())
    rec = Recorder(t, b)
    cgroup_dir = container_cgroup_dirs(b.cgroups_path)[0]
    rec.set(prestart=[rec.hook("prestart")], createRuntime=[rec.hook("createRuntime")],
            createContainer=[rec.hook("createContainer")], startContainer=[rec.hook("startContainer")],
            poststart=[rec.hook("poststart")], poststop=[rec.hook("poststop", extra=cgroup_dir)])
    rec.event("create-called")
    t.ok(t.create(b), "create")
    rec.event("create-returned")
    pid = t.rt.state(b.id).get("pid")
    rec.event("start-called")
    t.ok(t.rt("start", b.id), "start")
    rec.event("start-returned")
    wait_for(lambda: "user " in b.output())
    ns = container_namespaces(b)
    t.ok(t.rt("kill", b.id, "KILL"), "kill")
    t.rt.wait_status(b.id, "stopped")
    rec.event("delete-called")
    t.ok(t.rt("delete", b.id), "delete")
    rec.event("delete-returned")
    t.check_nothing_left(b)
    return b, rec, pid, ns


@test("hooks", "config.md#posix-platform-hooks")
def hooks_run_in_lifecycle_order(t):
    """each kind of hook runs once, in the operation and order runtime.md gives"""
    _, rec, _, _ = full_lifecycle(t)
    order = rec.order()
    t.equal([e for e in order if e != "process"],
            ["create-called", "prestart", "createRuntime", "createContainer", "create-returned", "start-called",
             "startContainer", "poststart", "start-returned", "delete-called", "poststop", "delete-returned"],
            "order of hooks and operations")
    if "process" in order and "startContainer" in order:
        t.check(order.index("startContainer") < order.index("process"),
                f"startContainer must run before the user process: {order}")


@test("hooks", "config.md#posix-platform-hooks")
def hooks_run_in_the_right_namespaces(t):
    """prestart, createRuntime, poststart, poststop in the runtime namespace; createContainer, startContainer in the container's"""
    _, rec, _, ns = full_lifecycle(t)
    host_net = os.readlink("/proc/self/ns/net")
    for name in RUNTIME_NS_HOOKS:
        info = rec.info(name)
        t.equal(info.get("ns.net"), host_net, f"{name}: network namespace (runtime's)")
        t.check(info.get("ns.mnt") != ns.get("mnt"), f"{name}: runs in the container's mount namespace")
        t.equal(info.get("root"), "host", f"{name}: its / is the runtime's")
    for name in ("createContainer", "startContainer"):
        info = rec.info(name)
        for n in ("mnt", "net", "uts", "ipc"):
            t.equal(info.get(f"ns.{n}"), ns.get(n), f"{name}: {n} namespace (the container's)")
    t.equal(rec.info("startContainer").get("root"), "container", "startContainer: its / is the container's root")


@test("hooks", "config.md#posix-platform-hooks")
def create_hooks_run_before_pivot_root(t):
    """prestart, createRuntime, createContainer run after the namespaces exist, before pivot_root"""
    _, rec, _, ns = full_lifecycle(t)
    host_mnt = os.readlink("/proc/self/ns/mnt")
    for name in CREATE_HOOKS:
        info = rec.info(name)
        t.equal(info.get("pivoted"), "no", f"{name}: the container's root was already pivoted")
        t.equal(info.get("root"), "host", f"{name}: its / is not the runtime's (pivot_root already done)")
    t.check(ns.get("mnt") not in (None, host_mnt), "the container has no mount namespace of its own")


@test("hooks", "config.md#posix-platform-hooks")
def poststart_runs_after_the_process_is_executed(t):
    """poststart sees the user process already executed; poststop sees the container deleted"""
    b, rec, _, _ = full_lifecycle(t)
    cmdline = rec.info("poststart").get("cmdline", "").strip()
    t.equal(cmdline, " ".join(b.config["process"]["args"]).strip(), "poststart: the container process's argv")
    cgroup_dir = container_cgroup_dirs(b.cgroups_path)[0]
    t.equal(rec.info("poststop").get("absent"), cgroup_dir, "poststop: the container's cgroup was still there")


@test("hooks", "config.md#posix-platform-hooks")
def hooks_get_the_state_on_stdin(t):
    """every hook gets the container's state JSON on stdin, valid, with the right status"""
    b, rec, pid, _ = full_lifecycle(t)
    want_status = {"prestart": ("creating", "created"), "createRuntime": ("creating", "created"),
                   "createContainer": ("creating", "created"), "startContainer": ("created",),
                   "poststart": ("running",), "poststop": ("stopped",)}
    for name, statuses in want_status.items():
        state = rec.stdin(name)
        if not t.check(state is not None, f"{name}: nothing on stdin"):
            continue
        for problem in schema_errors(state):
            t.check(False, f"{name}: stdin state: {problem}")
        t.equal(state.get("id"), b.id, f"{name}: state id")
        t.equal(state.get("bundle"), b.path, f"{name}: state bundle")
        t.check(state.get("status") in statuses, f"{name}: state status {state.get('status')!r}, want {statuses}")
        if name in ("prestart", "createRuntime", "poststart"):
            t.equal(state.get("pid"), pid, f"{name}: state pid (as the runtime sees it)")


@test("hooks", "runtime.md#state")
def container_namespace_hooks_get_the_pid_the_container_sees(t):
    """createContainer and startContainer get the pid as seen by the container (1 in a new pid namespace)"""
    _, rec, _, _ = full_lifecycle(t)
    for name in ("createContainer", "startContainer"):
        state = rec.stdin(name) or {}
        t.equal(state.get("pid"), 1, f"{name}: state pid")


@test("hooks", "config.md#posix-platform-hooks")
def hook_args_and_env(t):
    """a hook gets exactly its args and env; hooks of one kind run in the listed order"""
    b = t.bundle(["true"])
    rec = Recorder(t, b)
    rec.set(prestart=[rec.hook("first"), rec.hook("second"), rec.hook("third")])
    t.run(b)
    t.equal(rec.order(), ["first", "second", "third"], "order of three prestart hooks")
    info = rec.info("first")
    t.equal(info.get("env.HOOK_VAR"), "hook-env-value", "env of the hook")
    t.equal(info.get("args"), f"first {rec.dir} 0", "arguments of the hook ($1...)")


def failing(t, kind: str, operation: str) -> None:
    """A failing hook of `kind`: `operation` generates an error, the process never runs, nothing is left."""
    b = t.bundle(process_marker_script())
    rec = Recorder(t, b)
    rec.set(**{kind: [rec.hook(kind, exit_code="3")]})
    result = t.create(b)
    if operation == "create":
        t.error(result, f"create with a failing {kind} hook")
        if result.returncode != 0:
            t.check_nothing_left(b, "after the failed create")
    else:
        t.ok(result, "create")
        t.error(t.rt("start", b.id), f"start with a failing {kind} hook")
        time.sleep(0.3)
        state = t.rt("state", b.id)
        if state.returncode == 0:
            t.check(json.loads(state.stdout).get("status") == "stopped",
                    f"after the failed start the container must be stopped: {state.stdout.strip()}")
    time.sleep(0.2)
    t.check("process" not in rec.order(), f"the user process ran despite the failing {kind} hook: {rec.order()}")


@test("hooks", "runtime.md#lifecycle step 3")
def failing_prestart_hook(t):
    """a failing prestart hook: create errors, the process never runs, nothing is left"""
    failing(t, "prestart", "create")


@test("hooks", "runtime.md#lifecycle step 4")
def failing_create_runtime_hook(t):
    """a failing createRuntime hook: create errors, the process never runs, nothing is left"""
    failing(t, "createRuntime", "create")


@test("hooks", "runtime.md#lifecycle step 5")
def failing_create_container_hook(t):
    """a failing createContainer hook: create errors, the process never runs, nothing is left"""
    failing(t, "createContainer", "create")


@test("hooks", "runtime.md#lifecycle step 7")
def failing_start_container_hook(t):
    """a failing startContainer hook: start errors, the process never runs, the container is stopped"""
    failing(t, "startContainer", "start")


@test("hooks", "runtime.md#lifecycle step 9 (1.0.2)")
def failing_poststart_hook_is_a_warning(t):
    """a failing poststart hook (ociVersion 1.0.2): a warning; later hooks and the lifecycle go on"""
    b = t.bundle(process_marker_script())
    rec = Recorder(t, b)
    rec.set(poststart=[rec.hook("poststart-bad", exit_code="3"), rec.hook("poststart-after")])
    t.ok(t.create(b), "create")
    t.ok(t.rt("start", b.id), "start with a failing poststart hook (1.0.2: only a warning)")
    t.check(wait_for(lambda: "process" in rec.order()), f"the user process did not run: {rec.order()}")
    t.check("poststart-after" in rec.order(), f"the hook after the failing one did not run: {rec.order()}")
    t.equal(t.rt.state(b.id).get("status"), "running", "status")


@test("hooks", "runtime.md#lifecycle step 13")
def failing_poststop_hook_is_a_warning(t):
    """a failing poststop hook: delete still succeeds, later hooks run, nothing is left"""
    b = t.bundle(["true"])
    rec = Recorder(t, b)
    rec.set(poststop=[rec.hook("poststop-bad", exit_code="3"), rec.hook("poststop-after")])
    t.ok(t.create(b), "create")
    t.ok(t.rt("start", b.id), "start")
    t.rt.wait_status(b.id, "stopped")
    t.ok(t.rt("delete", b.id), "delete with a failing poststop hook (a warning only)")
    t.equal(rec.order(), ["poststop-bad", "poststop-after"], "poststop hooks that ran")
    t.check_nothing_left(b)


@test("hooks", "config.md#posix-platform-hooks")
def hook_timeout_is_enforced(t):
    """a createRuntime hook past its timeout fails create within a few seconds, leaving nothing"""
    b = t.bundle(process_marker_script())
    rec = Recorder(t, b)
    rec.set(createRuntime=[rec.hook("slow", exit_code="sleep", timeout=1)])
    started = time.monotonic()
    result = t.create(b)
    took = time.monotonic() - started
    if t.error(result, "create with a hook past its timeout"):
        t.check_nothing_left(b, "after the failed create")
    t.check(took < 20, f"create took {took:.1f}s with a 1 s hook timeout")
