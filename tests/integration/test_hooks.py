"""OCI hooks: when each kind runs, in which namespaces, with what on stdin."""

from __future__ import annotations

import json
import os
import time

from tests.integration.test_lifecycle import wait_for_status
from tests.integration.conftest import cgroups_path_for
from tests.integration.test_run import sh


def recorder(tmp_path, name: str, exit_code: int = 0) -> dict:
    """A host script that records its stdin, argv, env and hostname."""
    out = tmp_path / f"{name}.out"
    script = tmp_path / f"{name}.sh"
    script.write_text(f"""#!/bin/sh
{{ cat; echo; echo "ARGS $*"; echo "ENV $HOOK_ENV"; echo "HOST $(hostname)"; }} > {out}
exit {exit_code}
""")
    script.chmod(0o755)
    return {"path": str(script), "args": [name, "one", "two"], "env": [f"HOOK_ENV={name}-env"]}


def read_record(tmp_path, name: str) -> tuple[dict, list[str]]:
    lines = (tmp_path / f"{name}.out").read_text().splitlines()
    return json.loads(lines[0]), lines[1:]


def test_create_hooks_see_state_and_run_in_the_right_namespaces(runtime, bundle, tmp_path):
    bundle.config["hostname"] = "in-container"
    bundle.config["hooks"] = {
        "prestart": [recorder(tmp_path, "prestart")],
        "createRuntime": [recorder(tmp_path, "createRuntime")],
        "createContainer": [recorder(tmp_path, "createContainer")],
    }
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    init_pid = runtime.state(bundle.id)["pid"]
    host = os.uname().nodename
    for name, expected_host, expected_pid in (("prestart", host, init_pid), ("createRuntime", host, init_pid),
                                             ("createContainer", "in-container", 1)):
        state, rest = read_record(tmp_path, name)
        assert state["id"] == bundle.id and state["bundle"] == bundle.path, name
        assert state["status"] == "created" and state["pid"] == expected_pid, (name, state)
        assert rest == ["ARGS one two", f"ENV {name}-env", f"HOST {expected_host}"], (name, rest)


def test_failing_prestart_hook_fails_create_and_leaves_nothing(runtime, bundle, tmp_path):
    bundle.config["hooks"] = {"prestart": [recorder(tmp_path, "bad", exit_code=3)]}
    sh(bundle, "touch /never")
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1
    assert 'hooks.prestart[0]: "' in result.stderr and "exited with status 3" in result.stderr
    assert runtime.ids() == []


def test_hook_timeout_kills_it(runtime, bundle, tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    bundle.config["hooks"] = {"createRuntime": [{"path": str(script), "timeout": 1}]}
    bundle.write()
    started = time.monotonic()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and "ran past its timeout of 1s" in result.stderr
    assert time.monotonic() - started < 10
    assert runtime.ids() == []


def test_start_and_stop_hooks(runtime, bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    bundle.config["hooks"] = {
        # startContainer runs in the container: its path is the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /out/startContainer; hostname >> /out/startContainer"]}],
        "poststart": [recorder(tmp_path, "poststart")],
        "poststop": [recorder(tmp_path, "poststop")],
    }
    bundle.config["hostname"] = "hooked"
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    assert not (out / "startContainer").exists()
    runtime.ok("start", bundle.id)
    state, _ = read_record(tmp_path, "poststart")
    assert state["status"] == "running" and state["pid"] == runtime.state(bundle.id)["pid"]
    deadline = time.monotonic() + 5
    while not (out / "startContainer").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    state, end = json.JSONDecoder().raw_decode((out / "startContainer").read_text())
    assert state["pid"] == 1 and state["status"] == "created"
    assert (out / "startContainer").read_text()[end:].strip() == "hooked"
    runtime.ok("kill", bundle.id, "KILL")
    wait_for_status(runtime, bundle.id, "stopped")
    runtime.ok("delete", bundle.id)
    state, _ = read_record(tmp_path, "poststop")
    assert state["status"] == "stopped" and state["id"] == bundle.id


def test_failing_poststart_and_poststop_hooks_only_warn(runtime, bundle, tmp_path):
    bundle.config["hooks"] = {"poststart": [recorder(tmp_path, "poststart", exit_code=1)],
                              "poststop": [recorder(tmp_path, "poststop", exit_code=1)]}
    sh(bundle, "echo ran")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert "ran" in result.stdout
    assert "hooks.poststart[0]" in result.stderr and "hooks.poststop[0]" in result.stderr
    assert runtime.ids() == []


def test_create_hooks_run_without_a_mount_namespace_of_the_containers_own(runtime, bundle, tmp_path):
    """No mount namespace: the hooks of create still run (pyrunc once ran
    none of them there, silently). runc 1.1.5 runs prestart and
    createRuntime twice there; pyrunc runs each once, as config.md says."""
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "mount"]
    bundle.config["hooks"] = {
        "prestart": [recorder(tmp_path, "prestart")],
        "createRuntime": [recorder(tmp_path, "createRuntime")],
        "createContainer": [recorder(tmp_path, "createContainer")],
    }
    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    for name in ("prestart", "createRuntime", "createContainer"):
        state, rest = read_record(tmp_path, name)
        assert state["id"] == bundle.id and state["status"] == "created", (name, state)
        assert rest[0] == "ARGS one two", (name, rest)


def test_create_hooks_run_in_a_joined_mount_namespace(runtime, bundle, tmp_path, new_id):
    """A mount namespace joined by path: createContainer runs in it (its
    path is that namespace's: the holder's busybox) and prestart on the host."""
    sh(bundle, "sleep 60")
    holder_id = bundle.id
    runtime.ok("create", "--bundle", bundle.path, holder_id)
    holder_pid = runtime.state(holder_id)["pid"]
    joiner = tmp_path / "joiner"
    joiner.mkdir()
    config = bundle.copy_config()
    config["root"] = {"path": "/"}
    config["mounts"] = []
    config["linux"]["maskedPaths"], config["linux"]["readonlyPaths"] = [], []
    config["linux"]["namespaces"] = [{"type": "mount", "path": f"/proc/{holder_pid}/ns/mnt"}]
    config["linux"]["cgroupsPath"] = config["linux"]["cgroupsPath"] + "-joiner"
    config["process"]["args"] = ["true"]
    config.pop("hostname", None)
    config["hooks"] = {
        "prestart": [recorder(tmp_path, "prestart")],
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "pwd > /dev/hook.out"]}],
    }
    (joiner / "config.json").write_text(json.dumps(config))
    joiner_id = new_id()
    runtime.ok("create", "--bundle", str(joiner), joiner_id)
    runtime.ok("delete", "--force", joiner_id)
    assert read_record(tmp_path, "prestart")[0]["id"] == joiner_id
    with open(f"/proc/{holder_pid}/root/dev/hook.out") as f:
        assert f.read().strip() == "/"


def test_runtime_hooks_with_a_pid_namespace_joined_by_path(runtime, bundle, tmp_path, new_id):
    """Joining a pid namespace by path, stage1 builds the container and the
    stub forks the init only at the end: prestart and createRuntime run
    with stage1's pid, in the container's namespaces but the pid one (where
    a CNI-style hook finds the network namespace). The parent once waited
    for the init's pid before running them, which never came (a hang)."""
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    holder = runtime.state(bundle.id)["pid"]
    script = tmp_path / "ns.sh"
    script.write_text(f"""#!/bin/sh
pid=$(sed 's/.*"pid":\\([0-9]*\\).*/\\1/')
ns() {{ readlink /proc/$pid/ns/$1; }}
echo "$1 $pid $(ns net) $(ns mnt) $(ns pid)" >> {tmp_path}/ns.out
""")
    script.chmod(0o755)
    bundle.config["hooks"] = {"prestart": [{"path": str(script), "args": ["ns.sh", "prestart"]}],
                              "createRuntime": [{"path": str(script), "args": ["ns.sh", "createRuntime"]}]}
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.config["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{holder}/ns/pid"})
    other = new_id()
    bundle.config["linux"]["cgroupsPath"] = cgroups_path_for(other)
    sh(bundle, "sleep 60")
    runtime.ok("create", "--bundle", bundle.path, other, timeout=20)
    init = runtime.state(other)["pid"]
    lines = (tmp_path / "ns.out").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime"], lines
    for line in lines:
        _, pid, net, mnt, pid_ns = line.split()
        assert int(pid) != init, line  # stage1: the init did not exist yet
        assert (net, mnt) == (os.readlink(f"/proc/{init}/ns/net"), os.readlink(f"/proc/{init}/ns/mnt")), line
        assert pid_ns == os.readlink("/proc/self/ns/pid"), line  # outside the joined one
