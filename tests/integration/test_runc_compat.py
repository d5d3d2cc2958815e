"""The same scenario under runc and pyrunc (issue 15): where runc's users,
scripts and engines rely on a behaviour, both runtimes must show it. Each
test runs once per runtime (`rt`), with the same bundle and the same
assertions; the runc run is skipped where runc is not installed (runc 1.1.5,
Debian 12's, is the reference)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests import leaks
from tests.integration.conftest import Runtime, leftover_cgroups

RUNC = shutil.which("runc")
PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat_probe.c")


class Runc(Runtime):
    """runc with a private --root, driven like the pyrunc Runtime."""

    def __init__(self, root: str):
        self.root = root
        self.cmd = [RUNC, "--root", root]
        self.name = "runc"


@pytest.fixture(params=["pyrunc", "runc"])
def rt(request, tmp_path):
    """pyrunc, then runc: each with its own state root; afterwards every
    container is force-deleted and nothing may be left behind."""
    root = str(tmp_path / f"state-{request.param}")
    if request.param == "runc":
        if not RUNC:
            pytest.skip("needs runc")
        runtime = Runc(root)
    else:
        runtime = Runtime(root)
        runtime.name = "pyrunc"
    yield runtime
    for container_id in runtime.ids():
        runtime("delete", "--force", container_id)
    assert runtime.ids() == []
    assert leftover_cgroups() == []
    assert leaks.mounts_mentioning(str(tmp_path)) == []


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """compat_probe.c, built static once."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the probe")
    binary = str(tmp_path_factory.mktemp("probe") / "compat_probe")
    built = subprocess.run(["gcc", "-static", "-O2", "-o", binary, PROBE_SOURCE], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a static probe: {built.stderr[-300:]}")
    return binary


@pytest.fixture
def probe_bundle(bundle, probe_binary):
    shutil.copy2(probe_binary, os.path.join(bundle.rootfs, "bin", "compat_probe"))
    return bundle


def run(rt, bundle, *args, flags=(), **kwargs):
    """`run` of the bundle with `args` as the process; the Result."""
    bundle.config["process"]["args"] = list(args)
    bundle.write()
    return rt("run", *flags, "--bundle", bundle.path, bundle.id, **kwargs)


def add_caps(bundle, *caps):
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind].extend(caps)


# ----------------------------------------------------------------- 1. --no-pivot and a fresh procfs

@pytest.mark.parametrize("flags", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_fresh_procfs_from_a_nested_user_namespace_is_refused(rt, probe_bundle, flags):
    """The kernel lets a user namespace mount procfs only where a whole
    procfs is visible in its mount namespace. Behind --no-pivot's chroot the
    host's /proc is still there unless the runtime detaches it: the
    container's mount would then succeed, a /proc without the masked paths."""
    result = run(rt, probe_bundle, "compat_probe", "procfs", flags=flags)
    assert result.returncode == 0, result
    assert result.stdout == "procfs: EPERM\n", result


# ----------------------------------------------------------------- 2. read-only /dev

def test_read_only_dev_tmpfs_gets_its_mounts_and_devices_first(rt, bundle):
    """A "ro" /dev tmpfs: devpts, shm, mqueue, the devices and links go in
    first; /dev turns read-only after (runc's finalizeRootfs)."""
    for mount in bundle.config["mounts"]:
        if mount["destination"] == "/dev":
            mount["options"].append("ro")
    bundle.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["ro", "nosuid", "tmpcopyup"]})
    os.makedirs(os.path.join(bundle.rootfs, "scratch"))
    with open(os.path.join(bundle.rootfs, "scratch", "kept"), "w") as f:
        f.write("copied\n")
    result = run(rt, bundle, "sh", "-c",
                 "ls /dev/pts/ptmx /dev/null /dev/shm /dev/mqueue /dev/stdout >/dev/null && echo made;"
                 "touch /dev/x 2>/dev/null && echo dev-writable || echo dev-read-only;"
                 "cat /scratch/kept; touch /scratch/y 2>/dev/null && echo tmpfs-writable || echo tmpfs-read-only;"
                 "grep -E ' /dev | /scratch ' /proc/self/mountinfo | cut -d' ' -f5,6")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[:4] == ["made", "dev-read-only", "copied", "tmpfs-read-only"], result
    assert sorted(lines[4:]) == ["/dev ro,nosuid", "/scratch ro,nosuid,relatime"], result


# ----------------------------------------------------------------- 3. rro on every Python

def test_recursive_read_only_bind_mount(rt, bundle, tmp_path):
    """rro (mount_setattr AT_RECURSIVE): crashed on Python 3.11, where os has
    no AT_EMPTY_PATH (tests/unit/test_stdlib_names.py guards the class)."""
    shared = tmp_path / "shared"
    (shared / "sub").mkdir(parents=True)
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "rro"]})
    result = run(rt, bundle, "sh", "-c", "touch /shared/x 2>&1; echo $?")
    assert result.returncode == 0, result
    assert result.stdout.endswith("1\n") and "Read-only file system" in result.stdout, result


# ----------------------------------------------------------------- 4. seccomp: -ENOSYS above the profile

# Enough for both runtimes' last steps, busybox and the probe; the highest
# is faccessat2 (439).
ALLOWED = sorted({
    "access", "arch_prctl", "brk", "capget", "capset", "chdir", "clone", "close", "close_range", "dup2", "dup3",
    "epoll_ctl", "epoll_pwait", "execve", "exit", "exit_group", "faccessat", "faccessat2", "fchdir", "fcntl",
    "fstat", "fstatfs", "futex", "getcwd", "getdents64", "getegid", "geteuid", "getgid", "getpid", "getppid",
    "getrandom", "gettid", "getuid", "ioctl", "lseek", "madvise", "mmap", "mprotect", "munmap", "nanosleep",
    "newfstatat", "openat", "poll", "ppoll", "prctl", "pread64", "prlimit64", "read", "readlink", "readlinkat",
    "recvmsg", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_yield", "sendmsg", "sendto",
    "set_robust_list", "set_tid_address", "setgroups", "setresgid", "setresuid", "setsid", "sigaltstack", "stat",
    "statfs", "statx", "tgkill", "uname", "wait4", "write", "writev"})


@pytest.mark.parametrize("architectures", [["SCMP_ARCH_X86_64"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]])
def test_seccomp_syscall_above_the_profile_gets_enosys(rt, probe_bundle, architectures):
    """Numbers above the highest the profile names get -ENOSYS, so libc falls
    back (clone3 → clone) and future syscalls look absent; one below it that
    the profile does not allow gets the default action's EPERM."""
    if os.uname().machine != "x86_64":
        pytest.skip("the profile is x86_64's")
    probe_bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": architectures,
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]}
    result = run(rt, probe_bundle, "sh", "-c",
                 "compat_probe syscall 1000; compat_probe syscall 440; compat_probe syscall 435")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["errno=ENOSYS", "errno=ENOSYS", "errno=EPERM"], result


def test_seccomp_enosys_prefix_not_with_an_allowing_default(rt, probe_bundle):
    """With an allowing default the filter lets unknown numbers through to
    the kernel (which answers ENOSYS itself), and a denied call is EPERM."""
    probe_bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getcpu"], "action": "SCMP_ACT_ERRNO"}]}
    result = run(rt, probe_bundle, "sh", "-c", "compat_probe syscall 1000; compat_probe syscall 309")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["errno=ENOSYS", "errno=EPERM"], result


def test_exec_seccomp_notify_without_no_new_privs_the_agent_answers_the_setup(rt, bundle, tmp_path):
    """With no_new_privs off the filter is loaded before the user switch:
    the runtime's own capset (and setuid, chdir ...) is notified, and the
    agent must hold the listener by then, or `exec` hangs (it did: the
    listener waited for the process's pid). The agent lets all through."""
    from tests.integration.test_security import CAPSET, Agent

    agent = Agent(str(tmp_path / "agent.sock"), 0)
    try:
        bundle.config["process"]["noNewPrivileges"] = False
        bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
        bundle.config["process"]["args"] = ["sleep", "30"]
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.server.getsockname(),
            "syscalls": [{"names": ["setuid", "setresuid", "setresgid", "setgroups", "capset", "chdir", "fchdir",
                                    "getcwd"], "action": "SCMP_ACT_NOTIFY"}],
        }
        bundle.write()
        rt.ok("run", "--detach", "--bundle", bundle.path, bundle.id, timeout=30)
        before = len(agent.calls)
        result = rt("exec", "--cwd", "/", "--user", "1001:1001", bundle.id, "sh", "-c", "id -u; pwd", timeout=30)
        rt.ok("kill", bundle.id, "KILL")
    finally:
        agent.close()
    assert result.returncode == 0 and result.stdout == "1001\n/\n", result
    assert CAPSET in {nr for _, nr in agent.calls[before:]}, agent.calls


# ----------------------------------------------------------------- 7, 18. exec: pid file, exit codes

@pytest.fixture
def running(rt, bundle, tmp_path):
    """A running container (sleep) whose /shared is tmp_path/shared."""
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "rw"]})
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    rt.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    bundle.shared = shared
    return bundle


def test_exec_pid_file_in_the_foreground(rt, running):
    """Written as soon as the process runs, while `exec` waits for it."""
    pid_file = running.shared / "pid"
    result = rt("exec", "--pid-file", str(pid_file), running.id, "sh", "-c",
                "for i in $(seq 100); do [ -s /shared/pid ] && break; sleep 0.1; done; cat /shared/pid")
    assert result.returncode == 0, result
    assert result.stdout.strip().isdigit() and result.stdout.strip() == pid_file.read_text().strip(), result


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detach"])
def test_exec_pid_file_that_cannot_be_written_ends_the_process(rt, running, detach):
    flags = ["--detach"] if detach else []
    result = rt("exec", *flags, "--pid-file", str(running.shared / "no" / "pid"), running.id, "sh", "-c",
                "sleep 1; touch /shared/finished")
    assert result.returncode == 255, result
    assert "no such file or directory" in result.stderr
    time.sleep(2)
    assert not (running.shared / "finished").exists()


# Each: exec's flags, the command, the exit code, words callers match in stderr.
EXEC_FAILURES = {
    "program-not-found": ([], ["no-such-program"], 255, "executable file not found in $PATH"),
    "path-not-found": ([], ["/no/such/program"], 255, "no such file or directory"),
    "not-executable": ([], ["/etc/passwd"], 255, "permission denied"),
    "a-directory": ([], ["/etc"], 255, "permission denied"),
    "cwd-missing": (["--cwd", "/nonexistent"], ["true"], 255, "no such file or directory"),
    "cwd-relative": (["--cwd", "rel"], ["true"], 255, "absolute"),
    "user-not-a-number": (["--user", "abc"], ["true"], 255, "abc"),
    "env-without-equals": (["-e", "FOO"], ["true"], 255, "FOO"),
    "no-command": ([], [], 255, "empty"),
    "console-socket-without-tty": (["--console-socket", "/nonexistent"], ["true"], 255, "console"),
    "exits-7": ([], ["sh", "-c", "exit 7"], 7, None),
    "killed": ([], ["sh", "-c", "kill -9 $$"], 137, None),
}


@pytest.mark.parametrize("case", sorted(EXEC_FAILURES))
def test_exec_exit_codes_and_words(rt, running, case):
    flags, command, code, words = EXEC_FAILURES[case]
    result = rt("exec", *flags, running.id, *command)
    assert result.returncode == code, result
    if words:
        assert words in result.stderr, result


def test_exec_in_paused_stopped_and_missing_containers_exits_255(rt, running):
    rt.ok("pause", running.id)
    try:
        result = rt("exec", running.id, "true")
        assert result.returncode == 255 and "paused" in result.stderr, result
    finally:
        rt.ok("resume", running.id)
    rt.ok("kill", running.id, "KILL")
    result = rt("exec", running.id, "true")
    assert result.returncode == 255 and "cannot exec in a stopped container" in result.stderr, result
    result = rt("exec", "no-such-container", "true")
    assert result.returncode == 255 and "container does not exist" in result.stderr, result


# ----------------------------------------------------------------- 5. cwd with the runtime's rights

def test_cwd_only_root_can_enter_is_entered_before_the_user_switch(rt, bundle):
    """runc changes directory before it drops privileges (and again after,
    only if that failed): a cwd the user cannot search is still its cwd."""
    os.chmod(os.path.join(bundle.rootfs, "root"), 0o700)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["cwd"] = "/root"
    result = run(rt, bundle, "sh", "-c", "pwd; id -u; ls . 2>/dev/null || echo cannot-list")
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["/root", "1000", "cannot-list"], result


@pytest.mark.parametrize("how", ["flags", "process.json"])
def test_exec_cwd_only_root_can_enter(rt, running, how, tmp_path):
    os.chmod(os.path.join(running.rootfs, "root"), 0o700)
    if how == "flags":
        result = rt("exec", "--user", "1000:1000", "--cwd", "/root", running.id, "sh", "-c", "pwd; id -u")
    else:
        import json

        process = tmp_path / "process.json"
        process.write_text(json.dumps({"args": ["sh", "-c", "pwd; id -u"], "cwd": "/root",
                                       "user": {"uid": 1000, "gid": 1000}, "env": ["PATH=/bin"]}))
        result = rt("exec", "--process", str(process), running.id)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["/root", "1000"], result


def test_cwd_missing_is_created_and_a_file_is_refused(rt, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["process"]["cwd"] = "/made/here"
    result = run(rt, bundle, "pwd")
    assert result.returncode == 0 and result.stdout == "/made/here\n", result
    rt("delete", bundle.id)
    bundle.config["process"]["cwd"] = "/etc/passwd"
    result = run(rt, bundle, "pwd")
    assert result.returncode == 1 and "not a directory" in result.stderr, result


# ----------------------------------------------------------------- 6. bind sources only the host's root reaches

def test_bind_source_only_the_hosts_root_can_reach_with_a_user_namespace(rt, bundle, tmp_path):
    """runc opens bind-mount sources with the runtime's rights before the
    user namespace applies: a source under a directory only the host's
    root can search (0700) is mounted; `exec` into it works too."""
    from tests.integration.test_security import userns_bundle

    userns_bundle(bundle)
    secret = tmp_path / "secret"
    (secret / "data").mkdir(parents=True)
    (secret / "data" / "f").write_text("hello\n")
    (secret / "file").write_text("a file\n")
    secret.chmod(0o700)
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(secret / "data"), "options": ["rbind", "ro"]},
        {"destination": "/file", "type": "bind", "source": str(secret / "file"), "options": ["bind", "ro"]}]
    bundle.config["process"]["args"] = ["sh", "-c", "cat /data/f /file; sleep 600"]
    bundle.write()
    rt.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = rt("exec", "--cwd", "/data", bundle.id, "cat", "f")
    assert result.returncode == 0 and result.stdout == "hello\n", result
    rt.ok("delete", "--force", bundle.id)


def test_bind_source_missing_with_a_user_namespace_is_one_line(rt, bundle, tmp_path):
    from tests.integration.test_security import userns_bundle

    userns_bundle(bundle)
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "nothing"),
                                    "options": ["rbind"]})
    result = run(rt, bundle, "true")
    assert result.returncode == 1, result
    assert "nothing" in result.stderr and ("no such file or directory" in result.stderr.lower()
                                           or "does not exist" in result.stderr)
    assert rt.ids() == []


# ----------------------------------------------------------------- 9. terminal and stdio ownership

def _terminal_output(rt, args_create, receiver_path, command, tmp_path):
    from tests.integration.test_terminal import ConsoleReceiver

    receiver = ConsoleReceiver(receiver_path)
    try:
        result = rt(*args_create)
        assert result.returncode == 0, result
        receiver.thread.join(10)
        return receiver.read_until(b"END").decode()
    finally:
        receiver.close()


def test_terminal_belongs_to_the_process_user_and_the_tty_group(rt, bundle, tmp_path):
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["args"] = ["sh", "-c", "stat -c '%u %g' $(tty) /dev/console; echo END; sleep 600"]
    bundle.write()
    out = _terminal_output(rt, ["run", "--detach", "--console-socket", str(tmp_path / "run.sock"), "--bundle",
                                bundle.path, bundle.id], str(tmp_path / "run.sock"), None, tmp_path)
    assert out.split("END")[0].split() == ["1000", "5", "1000", "5"], out
    out = _terminal_output(rt, ["exec", "--detach", "--tty", "--user", "2000:2000", "--console-socket",
                                str(tmp_path / "exec.sock"), bundle.id, "sh", "-c",
                                "stat -c '%u %g' $(tty); echo END"], str(tmp_path / "exec.sock"), None, tmp_path)
    assert out.split("END")[0].split() == ["2000", "5"], out


def test_non_root_user_can_reopen_its_stdout_pipe(rt, bundle):
    """/dev/stdout reopened by a non-root user (nginx-style logging)."""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    result = run(rt, bundle, "sh", "-c", "echo reopened > /dev/stdout")
    assert result.returncode == 0 and result.stdout == "reopened\n", result


# ----------------------------------------------------------------- 11, 15. hooks: working directory and environment

def _hook(tmp_path, name: str, body: str, env=None) -> dict:
    """A host script `name` running `body`; with `env` only when given."""
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    hook = {"path": str(script)}
    if env is not None:
        hook["env"] = env
    return hook


def test_create_container_hook_works_in_the_root_filesystem(rt, bundle, tmp_path):
    """runc runs createContainer hooks in the container's mount namespace,
    before pivot_root, in the root filesystem: a bind mount they make at a
    relative path is the container's."""
    os.makedirs(os.path.join(bundle.rootfs, "hooked"))
    (tmp_path / "x").write_text("from the hook\n")
    bundle.config["hooks"] = {"createContainer": [_hook(
        tmp_path, "cc", f"pwd > {tmp_path}/cc.cwd; touch ./hooked/x && mount --bind {tmp_path}/x ./hooked/x")]}
    result = run(rt, bundle, "cat", "/hooked/x")
    assert result.returncode == 0, result
    assert result.stdout == "from the hook\n", result
    assert (tmp_path / "cc.cwd").read_text() == bundle.rootfs + "\n"


def test_hooks_working_directory_and_inherited_environment(rt, bundle, tmp_path):
    """Hooks without `env` inherit: the runtime's environment for those the
    runtime runs (prestart, createRuntime, poststart, poststop), the
    process's for those runc runs from its init (createContainer,
    startContainer); with `env`, exactly that. The runtime's hooks run in the
    bundle (runc's run enters it)."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    bundle.config["process"]["env"] = ["PATH=/bin", "FROM_PROCESS=p"]
    record = 'echo "$(pwd) ${MARK:-none} ${FROM_PROCESS:-none} ${OWN:-none}" > ' + str(out)
    bundle.config["hooks"] = {
        "prestart": [_hook(tmp_path, "prestart", record + "/prestart")],
        "createRuntime": [_hook(tmp_path, "createRuntime", record + "/createRuntime", env=["OWN=o"])],
        "createContainer": [_hook(tmp_path, "createContainer", record + "/createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", record.replace(str(out), "/out")
                                                        + "/startContainer"]}],
        "poststart": [_hook(tmp_path, "poststart", record + "/poststart")],
        "poststop": [_hook(tmp_path, "poststop", record + "/poststop")],
    }
    result = run(rt, bundle, "true", env=dict(os.environ, MARK="m"))
    assert result.returncode == 0, result
    seen = {p.name: p.read_text().split() for p in out.iterdir()}
    assert seen == {
        "prestart": [bundle.path, "m", "none", "none"],
        "createRuntime": [bundle.path, "none", "none", "o"],
        "createContainer": [bundle.rootfs, "none", "p", "none"],
        "startContainer": ["/", "none", "p", "none"],
        "poststart": [bundle.path, "m", "none", "none"],
        "poststop": [bundle.path, "m", "none", "none"],
    }, seen


# ----------------------------------------------------------------- 20. --debug records

@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_records_are_logrus_lines_on_stderr(rt, bundle, fmt):
    """`level=debug` lines (text), JSON lines with `--log-format json`; the
    container's own output is untouched on stdout."""
    import json

    bundle.config["process"]["args"] = ["echo", "out"]
    bundle.write()
    result = rt("--debug", "--log-format", fmt, "run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0 and result.stdout == "out\n", result
    lines = result.stderr.splitlines()
    assert lines, result
    if fmt == "json":
        assert {json.loads(line)["level"] for line in lines} <= {"debug", "info", "warning"}, result
        assert "debug" in {json.loads(line)["level"] for line in lines}, result
    else:
        assert all(line.startswith('time="') and " level=" in line for line in lines), result
        assert any(" level=debug msg=" in line for line in lines), result


# ----------------------------------------------------------------- 17. kill with signal 0

def test_kill_signal_0_is_a_liveness_probe(rt, running):
    """Signal 0 reaches nothing but says whether the init is there."""
    rt.ok("kill", running.id, "0")
    rt.ok("kill", "--all", running.id, "0")
    assert rt.state(running.id)["status"] == "running"
    rt.ok("kill", running.id, "KILL")
    for _ in range(100):
        if rt.state(running.id)["status"] == "stopped":
            break
        time.sleep(0.1)
    result = rt("kill", running.id, "0")
    assert result.returncode == 1 and "container not running" in result.stderr, result


# ----------------------------------------------------------------- 13. capabilities that cannot be mapped; exec --cap

def _cap_sets(status_text: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1], 16) for line in status_text.splitlines()
            if line.startswith(("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"))}


def test_unknown_capability_is_a_warning(rt, bundle):
    """runtime-spec 1.1 config.md: MUST warn, SHOULD NOT fail (engines send
    capabilities newer than the host's kernel); the rest are applied."""
    add_caps(bundle, "CAP_NO_SUCH_THING")
    result = run(rt, bundle, "grep", "^CapEff", "/proc/self/status")
    assert result.returncode == 0, result
    assert "CAP_NO_SUCH_THING" in result.stderr, result
    assert int(result.stdout.split()[1], 16) & (1 << 5), result  # CAP_KILL, of the spec's default set


def test_exec_cap_adds_to_bounding_effective_permitted(rt, running):
    sys_admin = 1 << 21
    before = _cap_sets(rt.ok("exec", running.id, "cat", "/proc/self/status").stdout)
    assert not before["CapBnd"] & sys_admin and not before["CapEff"] & sys_admin
    result = rt("exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NO_SUCH_THING", running.id,
                "cat", "/proc/self/status")
    assert result.returncode == 0, result
    assert "CAP_NO_SUCH_THING" in result.stderr, result
    after = _cap_sets(result.stdout)
    for kind in ("CapBnd", "CapEff", "CapPrm"):
        assert after[kind] == before[kind] | sys_admin, (kind, after, before)
    assert after["CapInh"] == before["CapInh"] and after["CapAmb"] == before["CapAmb"]


# ----------------------------------------------------------------- 14. HOME from the container's /etc/passwd

@pytest.mark.parametrize("uid, env_home, expected", [
    (0, None, "/root"), (1000, None, "/home/u"), (2000, None, "/"), (1000, "/elsewhere", "/elsewhere")])
def test_home_from_the_containers_passwd(rt, bundle, uid, env_home, expected):
    with open(os.path.join(bundle.rootfs, "etc", "passwd"), "a") as f:
        f.write("u:x:1000:1000:a user:/home/u:/bin/sh\n")
    os.chmod(os.path.join(bundle.rootfs, "etc", "passwd"), 0o600)  # read before the user switch
    bundle.config["process"]["env"] = ["PATH=/bin"] + ([f"HOME={env_home}"] if env_home else [])
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}
    result = run(rt, bundle, "sh", "-c", 'echo "${HOME-unset}"')
    assert result.returncode == 0 and result.stdout == expected + "\n", result


def test_exec_user_gets_its_home(rt, running):
    with open(os.path.join(running.rootfs, "etc", "passwd"), "a") as f:
        f.write("u:x:1000:1000:a user:/home/u:/bin/sh\n")
    result = rt("exec", "--user", "1000:1000", running.id, "sh", "-c", 'echo "${HOME-unset}"')
    assert result.returncode == 0 and result.stdout == "/home/u\n", result
    result = rt("exec", running.id, "sh", "-c", 'echo "${HOME-unset}"')
    assert result.returncode == 0 and result.stdout == "/root\n", result


def test_home_with_a_fifo_or_directory_for_passwd_is_slash(rt, bundle):
    """The container's /etc/passwd is the container's: a fifo there must
    not make the runtime wait (runc's open does), a directory is no file."""
    if rt.name == "runc":
        pytest.skip("runc waits for a writer of the fifo")
    passwd = os.path.join(bundle.rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.mkfifo(passwd)
    bundle.config["process"]["env"] = ["PATH=/bin"]
    result = run(rt, bundle, "sh", "-c", 'echo "${HOME-unset}"', timeout=30)
    assert result.returncode == 0 and result.stdout == "/\n", result
    os.unlink(passwd)
    os.mkdir(passwd)
    result = run(rt, bundle, "sh", "-c", 'echo "${HOME-unset}"', timeout=30)
    assert result.returncode == 0 and result.stdout == "/\n", result


# ----------------------------------------------------------------- 21. runc's key phrases, in one line

def one_line_with(result, *phrases: str, code: int = 1) -> None:
    """The failure is `code`, one line on stderr, holding each phrase (pyrunc's
    line also names the field or the container)."""
    assert result.returncode == code, result
    assert len(result.stderr.strip().splitlines()) == 1, result
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result)


def test_phrase_invalid_configuration(rt, bundle):
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("about cgroup v1 (runc refuses unified there)")
    bundle.config["linux"]["resources"] = {"unified": {"pids.max": "10"}}
    bundle.write()
    result = rt("create", "--bundle", bundle.path, bundle.id)
    one_line_with(result, "invalid configuration: cannot use unified on cgroup v1")
    if rt.name == "pyrunc":
        assert "linux.resources.unified" in result.stderr, result


def test_phrase_failed_to_connect_with_seccomp_agent(rt, bundle, tmp_path):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "none.sock"),
                                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.write()
    result = rt("create", "--bundle", bundle.path, bundle.id)
    one_line_with(result, "failed to connect with seccomp agent", "no such file or directory")
    if rt.name == "pyrunc":
        assert "linux.seccomp.listenerPath" in result.stderr, result
    rt("delete", "--force", bundle.id)


def test_phrase_notify_cannot_be_used_for_the_write_syscall(rt, bundle, tmp_path):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "a.sock"),
                                         "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.write()
    result = rt("create", "--bundle", bundle.path, bundle.id)
    one_line_with(result, "SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if rt.name == "pyrunc":
        assert "linux.seccomp.syscalls[0].names" in result.stderr, result
    rt("delete", "--force", bundle.id)


@pytest.mark.parametrize("verb", [["state"], ["kill"], ["delete"], ["start"], ["ps"], ["events", "--stats"],
                                  ["pause"], ["update", "--pids-limit", "5"]], ids=lambda v: v[0])
def test_phrase_container_does_not_exist(rt, verb):
    result = rt(*verb, "no-such-container")
    one_line_with(result, "container does not exist")


def test_phrase_container_with_given_id_already_exists(rt, bundle):
    rt.ok("create", "--bundle", bundle.path, bundle.id)
    one_line_with(rt("create", "--bundle", bundle.path, bundle.id), "container with given ID already exists")


@pytest.fixture
def stopped(rt, running):
    rt.ok("kill", running.id, "KILL")
    for _ in range(100):
        if rt.state(running.id)["status"] == "stopped":
            return running
        time.sleep(0.05)
    pytest.fail("the container did not stop")


@pytest.mark.parametrize("verb", [["kill"], ["pause"], ["update", "--pids-limit", "5"]], ids=lambda v: v[0])
def test_phrase_container_not_running(rt, stopped, verb):
    one_line_with(rt(*verb, stopped.id), "container not running")


@pytest.mark.parametrize("flags", [["--stats"], []], ids=["stats", "stream"])
def test_phrase_container_is_not_running(rt, stopped, flags):
    # runc's events: "container with id X is not running"; pyrunc: "X: container is not running".
    one_line_with(rt("events", *flags, stopped.id, timeout=10), "is not running", stopped.id)


def test_phrases_of_a_stopped_container_for_start_and_resume(rt, stopped):
    one_line_with(rt("start", stopped.id), "cannot start a container that has stopped")
    one_line_with(rt("resume", stopped.id), "container not paused")
