"""`exec`: a new process in a running container, in every one of its
namespaces and its cgroup, with the process settings it is given."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.integration.conftest import cgroup_of
from tests.integration.test_run import sh
from tests.integration.test_terminal import ConsoleReceiver


@pytest.fixture
def running(runtime, bundle):
    bundle.config["hostname"] = "exec-box"
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    return bundle


def test_exec_joins_namespaces_and_cgroup(runtime, running):
    init_pid = runtime.state(running.id)["pid"]
    result = runtime("exec", running.id, "sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    assert result.returncode == 0, result
    pid, hostname, init_cmd = result.stdout.splitlines()
    assert int(pid) > 1 and hostname == "exec-box" and init_cmd.strip() == "sleep 60"
    # From the host: a detached exec's namespaces are the init's.
    pid_file = os.path.join(running.path, "exec.pid")
    runtime.ok("exec", "--detach", "--pid-file", pid_file, running.id, "sleep", "30")
    exec_pid = int(open(pid_file).read())
    for ns in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert os.readlink(f"/proc/{exec_pid}/ns/{ns}") == os.readlink(f"/proc/{init_pid}/ns/{ns}"), ns
    lines = open(f"/proc/{exec_pid}/cgroup").read().splitlines()
    assert lines == open(f"/proc/{init_pid}/cgroup").read().splitlines()
    assert all(line.endswith(f":{cgroup_of(running.id)}") for line in lines), lines


def test_exec_exit_codes(runtime, running):
    assert runtime("exec", running.id, "sh", "-c", "exit 42").returncode == 42
    # runc exits 255 and engines read the words: podman reports 127 for
    # "executable file not found", 126 for "permission denied".
    result = runtime("exec", running.id, "no-such-command")
    assert result.returncode == 255 and "executable file not found in $PATH" in result.stderr
    result = runtime("exec", running.id, "/etc/passwd")
    assert result.returncode == 255 and "permission denied" in result.stderr


# Issue 16, item 3: each failure crosses the sync socket as a typed frame
# {kind, errno, msg}; "exec failed" (exit 255, runc's words, which engines
# turn into 127/126) only for the program itself ("exec" kind); a set-up
# step's ENOENT is no "command not found". A program whose own execve fails
# (the stub's) exits 127 for ENOENT, 126 otherwise.
EXEC_FRAMES = {
    "lookup-enoent": ([], ["no-such-command"], 255,
                      'exec failed: exec: "no-such-command": executable file not found in $PATH'),
    "path-enoent": ([], ["/no/such"], 255, 'exec failed: exec: "/no/such": stat /no/such: no such file or directory'),
    "not-executable": ([], ["/etc/passwd"], 255, 'exec failed: exec: "/etc/passwd": permission denied'),
    "a-directory": ([], ["/etc"], 255, 'exec failed: exec: "/etc": permission denied'),
    "setup-enoent-cwd": (["--cwd", "/nonexistent"], ["true"], 255,
                         'process.cwd: chdir to "/nonexistent": no such file or directory'),
    "execve-enoent-interpreter": ([], ["/bad-interpreter"], 127, ""),
    "execve-enoexec": ([], ["/not-a-program"], 126, ""),
}


@pytest.mark.parametrize("case", sorted(EXEC_FRAMES))
def test_exec_failure_exit_code_follows_kind_and_errno(runtime, running, case):
    with open(os.path.join(running.rootfs, "bad-interpreter"), "w") as f:
        f.write("#!/no/such/interpreter\n")
    with open(os.path.join(running.rootfs, "not-a-program"), "w") as f:
        f.write("neither ELF nor #!\n")
    for name in ("bad-interpreter", "not-a-program"):
        os.chmod(os.path.join(running.rootfs, name), 0o755)
    flags, command, code, line = EXEC_FRAMES[case]
    result = runtime("exec", *flags, running.id, *command)
    assert result.returncode == code, result
    if line:
        assert result.stderr == f"pyrunc: {line}\n", result
    else:
        assert result.stderr == "", result


def test_exec_user_cwd_env_caps_and_nnp(runtime, running):
    result = runtime.ok("exec", "--user", "1000:1001", "--additional-gids", "1002", "--cwd", "/tmp", "--env",
                        "A=1", "-e", "B=two", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", running.id, "sh", "-c",
                        "id -u; id -g; id -G; pwd; echo $A$B; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status")
    lines = result.stdout.splitlines()
    assert lines[:5] == ["1000", "1001", "1001 1002", "/tmp", "1two"]
    bounding = int(lines[5].split()[1], 16)
    assert bounding & (1 << 21) and bounding & (1 << 5)  # CAP_SYS_ADMIN added, CAP_KILL kept
    assert lines[6].split() == ["NoNewPrivs:", "1"]


def test_exec_stdin_is_relayed(runtime, running):
    result = runtime.ok("exec", running.id, "sh", "-c", "read x; echo got $x", input="hello\n")
    assert result.stdout == "got hello\n"


def test_exec_process_json(runtime, running, tmp_path):
    process = {"args": ["sh", "-c", "echo from-json $X; id -u"], "cwd": "/", "env": ["X=1", "PATH=/bin"],
               "user": {"uid": 7, "gid": 7}, "terminal": False}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = runtime.ok("exec", "--process", str(path), running.id)
    assert result.stdout.split() == ["from-json", "1", "7"]


def test_exec_invalid_process_json_names_field(runtime, running, tmp_path):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": [], "cwd": "/"}))
    result = runtime("exec", "--process", str(path), running.id)
    assert result.returncode == 255  # runc's code for an exec that fails before the process runs
    assert "process.json: process.args: must not be empty" in result.stderr


def test_exec_gets_container_seccomp(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    bundle.config["root"]["readonly"] = False
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", bundle.id, "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /x 2>&1 || true")
    assert "Seccomp:\t2" in result.stdout and "Operation not permitted" in result.stdout, result


def test_exec_tty_with_console_socket(runtime, running, tmp_path):
    receiver = ConsoleReceiver(str(tmp_path / "console.sock"))
    try:
        pid_file = os.path.join(running.path, "tty.pid")
        runtime.ok("exec", "--tty", "--detach", "--console-socket", receiver.path, "--pid-file", pid_file,
                   running.id, "sh", "-c", "tty; read x; echo got:$x")
        receiver.thread.join(5)
        assert receiver.master is not None
        assert b"/dev/pts/" in receiver.read_until(b"/dev/pts/")
        os.write(receiver.master, b"ping\n")
        assert b"got:ping" in receiver.read_until(b"got:ping")
    finally:
        receiver.close()


def test_exec_into_stopped_container_fails(runtime, bundle):
    sh(bundle, "true")
    runtime.ok("run", "--keep", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", bundle.id, "true")
    assert result.returncode == 255 and "cannot exec in a stopped container" in result.stderr


def test_exec_into_missing_container_fails(runtime):
    result = runtime("exec", "nope", "true")
    # runc: exit 255, "exec failed: container does not exist"
    assert result.returncode == 255 and result.stderr == "pyrunc: nope: container does not exist\n"


def test_exec_cve_2019_5736_proc_self_exe(runtime, running):
    # As for the init: the exec'd process never runs the host's interpreter.
    from tests.integration.test_escapes import digest, runtime_files

    before = {f: digest(f) for f in runtime_files()}
    assert runtime("exec", running.id, "/proc/self/exe").returncode == 126
    assert {f: digest(f) for f in runtime_files()} == before


def test_exec_leaks_no_fds(runtime, running):
    assert runtime.ok("exec", running.id, "sh", "-c", "ls /proc/self/fd | wc -l").stdout.strip() == "4"


def test_exec_is_killed_with_the_container(runtime, running):
    pid_file = os.path.join(running.path, "exec.pid")
    runtime.ok("exec", "--detach", "--pid-file", pid_file, running.id, "sleep", "60")
    exec_pid = int(open(pid_file).read())
    runtime.ok("delete", "--force", running.id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if open(f"/proc/{exec_pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the exec'd process outlived its container")


FORK_SYSCALLS = ["clone", "clone3", "fork", "vfork"]


def test_exec_works_under_a_profile_that_forbids_clone(runtime, bundle):
    """The stub forks the process into the container before it loads the
    filter (no_new_privs on: the filter waits until the very end), so a
    profile that forbids every kind of fork still lets exec run the
    process, and binds it."""
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": FORK_SYSCALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", bundle.id, "grep", "Seccomp:", "/proc/self/status")
    assert result.returncode == 0 and result.stdout.split() == ["Seccomp:", "2"], result
    result = runtime("exec", bundle.id, "sh", "-c", "sleep 0 & wait")
    assert "can't fork" in result.stderr, result


@pytest.mark.parametrize("nnp", [False, True])
def test_exec_and_a_joined_pid_namespace_with_dockers_profile(runtime, bundle, new_id, nnp):
    """Docker's default profile restricts clone's flags: the stub's plain
    fork passes it, with the filter loaded early (no_new_privs off) or late."""
    from tests.integration.test_security import engine_profile

    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = engine_profile("docker-config.json")
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", bundle.id, "sh", "-c", "grep Seccomp: /proc/self/status")
    assert result.returncode == 0 and result.stdout.split() == ["Seccomp:", "2"], result
    init_pid = runtime.state(bundle.id)["pid"]
    other = new_id()
    bundle.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"].replace(bundle.id, other)
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.config["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{init_pid}/ns/pid"})
    sh(bundle, "grep Seccomp: /proc/self/status; head -c 5 /proc/1/cmdline")
    result = runtime("run", "--bundle", bundle.path, other)
    assert result.returncode == 0 and result.stdout.split() == ["Seccomp:", "2", "sleep"], result


# ---------------------------------------------------------------- exec --cgroup (issue 15, item 8)


def _exec_cgroup_lines(runtime, container, *cgroup_args) -> list[str]:
    pid_file = os.path.join(container.path, "exec-cgroup.pid")
    args = [a for arg in cgroup_args for a in ("--cgroup", arg)]
    runtime.ok("exec", "--detach", "--pid-file", pid_file, *args, container.id, "sleep", "30")
    with open(f"/proc/{int(open(pid_file).read())}/cgroup") as f:
        return f.read().splitlines()


def test_exec_cgroup_joins_a_sub_cgroup_as_runc_1_1(runtime, running):
    """runc 1.1's `exec --cgroup`: "path" for every hierarchy, or
    "controller[,controller]:path" (cgroup v1) for those only."""
    from tests import cgroupfs

    base = cgroup_of(running.id)
    v2 = cgroupfs.is_unified()
    controllers = [] if v2 else ["pids", "memory"]
    for controller in controllers or [""]:
        os.makedirs(cgroupfs.directory(controller or "pids", f"{base}/sub"), exist_ok=True)
    if v2:
        lines = _exec_cgroup_lines(runtime, running, "sub")
        assert lines == [f"0::{base}/sub"], lines
        return
    lines = _exec_cgroup_lines(runtime, running, "pids,memory:sub")
    in_sub = {line.split(":")[1] for line in lines if line.endswith(f"{base}/sub")}
    assert {"pids", "memory"} <= {c for field in in_sub for c in field.split(",")}, lines
    assert all(line.endswith(base) for line in lines if line.split(":")[1] not in in_sub), lines


@pytest.mark.parametrize("args, words", [
    (["a:b:c"], "invalid --cgroup argument: a:b:c"),
    (["sub", "other"], "invalid --cgroup argument: sub (missing <controller>: prefix)"),
    (["nosuch:sub"], "unknown controller nosuch"),
    (["../../escape"], "is not a sub cgroup path"),
    (["missing"], "does not exist"),
])
def test_exec_cgroup_refusals_are_one_line(runtime, running, args, words):
    from tests import cgroupfs

    if cgroupfs.is_unified() and words.startswith("unknown controller"):
        words = "unknown controller"  # v2 has no "controller:" form at all
    result = runtime("exec", *[a for arg in args for a in ("--cgroup", arg)], running.id, "true")
    assert result.returncode != 0 and words in result.stderr, result
    assert result.stderr.count("\n") == 1, result
    assert runtime.state(running.id)["status"] == "running"


def test_a_cgroup_with_processes_already_is_a_warning_as_runc(runtime, running, new_id):
    """runc warns when a new container's cgroup already holds processes (a
    pod's shared cgroup) and goes on: issue 15, item 10."""
    from tests.integration.conftest import cgroups_path_for

    other = new_id()
    running.config["linux"]["cgroupsPath"] = cgroups_path_for(running.id)
    running.write()
    result = runtime("create", "--bundle", running.path, other)
    try:
        if result.returncode and "already exists" in result.stderr:
            pytest.skip("the systemd driver gives each unit one container")
        assert result.returncode == 0, result
        assert "container's cgroup is not empty: 1 process(es) found" in result.stderr, result
    finally:
        runtime("delete", "--force", other)
    assert runtime.state(running.id)["status"] == "running"
