"""Privileges a container gets from its config, checked from inside it:
seccomp, user namespaces, capabilities, personality, scheduling, devices."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import struct
import threading

import pytest

from tests.integration.test_run import sh

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(os.path.dirname(HERE), "unit", "configs", "good")


def engine_profile(name: str) -> dict:
    with open(os.path.join(CONFIGS, name)) as f:
        return json.load(f)["linux"]["seccomp"]


# ---------------------------------------------------------------- seccomp

def test_seccomp_errno_rule_denies_syscall(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    sh(bundle, "mkdir /tmp/x 2>&1; grep '^Seccomp:' /proc/self/status")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert "Permission denied" in result.stdout  # errno 13
    assert "Seccomp:\t2" in result.stdout


def test_seccomp_default_errno_and_allow_list(runtime, bundle):
    # Everything denied with ENOSYS except what sh, echo and exit need.
    allowed = ["execve", "brk", "arch_prctl", "mmap", "munmap", "mprotect", "set_tid_address", "write",
               "exit_group", "getpid", "getppid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "getuid",
               "geteuid", "getgid", "getegid", "read", "close", "fcntl", "uname", "ioctl", "stat", "newfstatat",
               "fstat", "lseek", "prlimit64", "poll", "ppoll", "sendto", "sendmsg", "recvmsg", "recvfrom", "getcwd",
               "set_robust_list", "rseq", "futex", "readlink", "access", "faccessat", "faccessat2", "wait4",
               "sigaltstack", "getrandom",
               # what the runtime itself still does once the filter is loaded (as with runc)
               "sendmsg", "poll", "execveat"]
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }
    sh(bundle, "echo still-here; read line < /etc/passwd || echo open-denied")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert "still-here" in result.stdout, result
    assert "open-denied" in result.stdout, result


def test_seccomp_argument_conditions(runtime, bundle):
    # setpriority(which, who, prio): deny only prio == 5 (arg 2), with EACCES.
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["setpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                      "args": [{"index": 2, "value": 5, "op": "SCMP_CMP_EQ"}]}],
    }
    sh(bundle, "renice 3 $$ >/dev/null && echo three-ok; renice 5 $$ 2>&1 || true")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert result.stdout.splitlines()[0] == "three-ok", result
    assert "Permission denied" in result.stdout, result


def test_seccomp_unknown_syscall_is_a_warning(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_2099", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    sh(bundle, "echo ran")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "ran\n"
    assert "unknown syscall 'no_such_syscall_2099'" in result.stderr


@pytest.mark.parametrize("config_file", ["docker-config.json", "podman-config.json"])
def test_seccomp_engine_default_profiles_load_and_behave(runtime, bundle, new_id, config_file):
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["seccomp"] = engine_profile(config_file)
    sh(bundle, "grep '^Seccomp:' /proc/self/status; echo hello > /tmp/f && cat /tmp/f; ls / | wc -l")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"] and lines[1] == "hello" and int(lines[2]) > 5, result


def test_seccomp_docker_profile_denies_what_it_lists(runtime, bundle, new_id):
    # Creating a user namespace needs no capability, but Docker's profile
    # allows unshare(2) only to containers that have CAP_SYS_ADMIN.
    sh(bundle, "unshare -U true 2>/dev/null && echo userns || echo denied")
    control = runtime.ok("run", "--bundle", bundle.path, new_id())
    if control.stdout.strip() != "userns":
        pytest.skip(f"user namespaces cannot be created here even without a profile: {control.stdout!r}")
    bundle.config["linux"]["seccomp"] = engine_profile("docker-config.json")
    bundle.write()
    assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout.strip() == "denied"


# struct seccomp_notif is 80 bytes and struct seccomp_notif_resp 24: the
# ioctls are _IOWR('!', 0, seccomp_notif) and _IOWR('!', 1, seccomp_notif_resp).
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def answer_notifications(fd: int, errno_ret: int, seen: list) -> None:
    """A minimal seccomp agent: fail every notified syscall with errno_ret
    until the container is gone (the fd then polls as hung up)."""
    import fcntl
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        events = poller.poll(10_000)
        if not events or events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return
        notif = bytearray(80)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, notif)
        except OSError:
            return
        notif_id, pid, _flags, syscall_nr = struct.unpack_from("QIIi", notif)
        seen.append((pid, syscall_nr))
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("QqiI", notif_id, 0, -errno_ret, 0)))


def test_seccomp_notify_sends_fd_and_state_to_listener(runtime, bundle, tmp_path):
    listener_path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener_path)
    server.listen(1)
    received = {"calls": []}

    def agent():
        conn, _ = server.accept()
        data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        conn.close()
        received["state"] = json.loads(data)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = struct.unpack("i", payload[:4])[0]
                received["fd_target"] = os.readlink(f"/proc/self/fd/{fd}")
                answer_notifications(fd, errno.EPERM, received["calls"])
                os.close(fd)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener_path, "listenerMetadata": "meta=1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    sh(bundle, "mkdir /tmp/notified 2>&1; [ -d /tmp/notified ] || echo not-made")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    thread.join(20)
    server.close()
    assert result.returncode == 0, result
    state = received["state"]
    assert state["fds"] == ["seccompFd"] and state["metadata"] == "meta=1"
    assert state["state"]["id"] == bundle.id and state["state"]["status"] == "creating"
    assert state["pid"] == state["state"]["pid"] > 0
    assert "seccomp" in received["fd_target"]
    # The agent saw the container's mkdir and its answer (EPERM) is what mkdir returned.
    assert [nr for _, nr in received["calls"]] in ([83], [258]), received["calls"]
    assert "Operation not permitted" in result.stdout and "not-made" in result.stdout, result


class Agent:
    """A seccomp agent on a unix socket: takes each listener sent to it (one
    a container process) and answers every notification with `errno_ret`,
    or lets the syscall continue when it is 0; `calls` gets (pid, nr)."""

    def __init__(self, path: str, errno_ret: int):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.server.settimeout(30)
        self.errno_ret, self.calls, self.threads, self.states = errno_ret, [], [], []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            conn.close()
            self.states.append(json.loads(data))
            fd = struct.unpack("i", ancillary[0][2][:4])[0]
            thread = threading.Thread(target=self._serve, args=(fd,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, fd):
        if self.errno_ret:
            answer_notifications(fd, self.errno_ret, self.calls)
        else:
            continue_notifications(fd, self.calls)
        os.close(fd)

    def close(self):
        # shutdown() wakes the blocked accept (close() alone does not): no
        # thread of the agent's may outlive the test, or the next test's
        # pyrunc.Runtime refuses to fork (ThreadsRunning).
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        self.acceptor.join(10)
        for thread in self.threads:
            thread.join(10)


def continue_notifications(fd: int, seen: list) -> None:
    """As answer_notifications, but every syscall goes ahead (USER_NOTIF_FLAG_CONTINUE)."""
    import fcntl
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        events = poller.poll(10_000)
        if not events or events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return
        notif = bytearray(80)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, notif)
            notif_id, pid, _flags, syscall_nr = struct.unpack_from("QIIi", notif)
            seen.append((pid, syscall_nr))
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("QqiI", notif_id, 0, 0, 1)))
        except OSError:
            continue  # the process is gone (ENOENT): go on with the next


FCHMOD, CHMOD, FCHMODAT = 91, 90, 268


@pytest.mark.parametrize("no_new_privileges", [False, True])
@pytest.mark.parametrize("verb", ["run", "exec"])
def test_seccomp_notify_fchmod_never_asked_for_the_runtime(runtime, bundle, tmp_path, verb, no_new_privileges):
    """Issue 15 item 16: the runtime's own fchmod (of its stub's memfd) is
    made before the container's filter is loaded; the agent, answering
    ENOMEDIUM, is asked only about the container's own chmod."""
    agent = Agent(str(tmp_path / "agent.sock"), errno.ENOMEDIUM)
    try:
        bundle.config["root"]["readonly"] = False
        bundle.config["process"]["noNewPrivileges"] = no_new_privileges
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.server.getsockname(),
            "syscalls": [{"names": ["fchmod", "fchmodat", "chmod"], "action": "SCMP_ACT_NOTIFY"}],
        }
        script = "touch /tmp/f; chmod 600 /tmp/f 2>&1; echo done"
        if verb == "run":
            sh(bundle, script)
            result = runtime("run", "--bundle", bundle.path, bundle.id, timeout=30)
        else:
            sh(bundle, "sleep 30")
            runtime.ok("run", "-d", "--bundle", bundle.path, bundle.id, timeout=30)
            result = runtime("exec", bundle.id, "sh", "-c", script, timeout=30)
            runtime.ok("kill", bundle.id, "KILL")
    finally:
        agent.close()
    assert result.returncode == 0, result
    assert "No medium found" in result.stdout and "done" in result.stdout, result
    assert FCHMOD not in [nr for _, nr in agent.calls], agent.calls
    assert [nr for _, nr in agent.calls] in ([CHMOD], [FCHMODAT]), agent.calls


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_seccomp_notify_listener_handed_over_before_any_other_syscall(runtime, bundle, tmp_path, verb):
    """Issue 15 item 16: with no_new_privs the stub loads the filter; the
    listener must reach the agent before the stub makes any other syscall
    (it used to close the filter's memfd first: with close notified, that
    close waited for an agent that had no listener yet, and create hung;
    `exec` held the listener back until the process said "ready")."""
    agent = Agent(str(tmp_path / "agent.sock"), 0)
    try:
        bundle.config["process"]["noNewPrivileges"] = True
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.server.getsockname(),
            "syscalls": [{"names": ["close", "poll", "read"], "action": "SCMP_ACT_NOTIFY"}],
        }
        if verb == "run":
            sh(bundle, "echo ran")
            result = runtime("run", "--bundle", bundle.path, bundle.id, timeout=30)
        else:
            sh(bundle, "sleep 30")
            runtime.ok("run", "-d", "--bundle", bundle.path, bundle.id, timeout=30)
            result = runtime("exec", bundle.id, "echo", "ran", timeout=30)
            runtime.ok("kill", bundle.id, "KILL")
    finally:
        agent.close()
    assert result.returncode == 0 and result.stdout == "ran\n", result
    assert agent.calls, "the agent was asked about nothing: was the filter loaded?"


@pytest.mark.parametrize("syscall", ["write", "sendmsg"])
def test_seccomp_notify_on_what_the_runtime_needs_is_refused(runtime, bundle, syscall):
    # runc: "SCMP_ACT_NOTIFY cannot be used for the write syscall"; sendmsg
    # hands the listener over in pyrunc: notified, create would hang.
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/none.sock",
                                         "syscalls": [{"names": [syscall], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1, result
    assert f"SCMP_ACT_NOTIFY cannot be used for the {syscall} syscall" in result.stderr, result
    assert "linux.seccomp.syscalls[0].names" in result.stderr and len(result.stderr.splitlines()) == 1, result
    assert runtime.ids() == []


def test_seccomp_kill_process_action(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }
    sh(bundle, "(mkdir /tmp/x); echo rc=$?")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == f"rc={128 + signal.SIGSYS}\n", result


def test_seccomp_notify_without_listener_path_is_refused(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and "listenerPath" in result.stderr
    assert runtime.ids() == []


# ---------------------------------------------------------------- user namespaces

def userns_bundle(bundle, host_id: int = 100000):
    # The container's root (host uid host_id) must be able to reach the rootfs.
    path = bundle.path
    while path != "/":
        os.chmod(path, os.stat(path).st_mode | 0o111)
        path = os.path.dirname(path)
    for directory, dirs, files in os.walk(bundle.rootfs):
        for name in dirs + files:
            os.lchown(os.path.join(directory, name), host_id, host_id)
    os.lchown(bundle.rootfs, host_id, host_id)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]


def test_user_namespace_maps_root_to_host_id(runtime, bundle):
    userns_bundle(bundle)
    bundle.config["root"]["readonly"] = False
    sh(bundle, "id -u; cat /proc/self/uid_map; touch /tmp/made; ls /dev/null >/dev/null && echo dev-ok")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "dev-ok"
    st = os.stat(os.path.join(bundle.rootfs, "tmp", "made"))
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_user_namespace_non_root_user_inside(runtime, bundle):
    userns_bundle(bundle)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    sh(bundle, "id -u; id -g")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["1000", "1000"]


def test_user_namespace_joined_by_path(runtime, bundle):
    import subprocess

    # A process in a user namespace of its own, whose maps we write as root.
    holder = subprocess.Popen(["unshare", "--user", "sleep", "60"])
    try:
        import time

        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/user") == os.readlink("/proc/self/ns/user"):
            assert time.monotonic() < deadline, "unshare --user did not start"
            time.sleep(0.01)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as f:
                f.write("0 100000 65536\n")
        userns_bundle(bundle)
        bundle.config["linux"]["namespaces"][-1] = {"type": "user", "path": f"/proc/{holder.pid}/ns/user"}
        del bundle.config["linux"]["uidMappings"], bundle.config["linux"]["gidMappings"]
        sh(bundle, "cat /proc/self/uid_map; cat /proc/1/uid_map")
        result = runtime("run", "--bundle", bundle.path, bundle.id)
        assert result.returncode == 0, result
        assert result.stdout.split() == ["0", "100000", "65536"] * 2
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- capabilities and friends

def test_ambient_capabilities_reach_a_non_root_user(runtime, bundle):
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = {k: caps for k in
                                                ("bounding", "effective", "permitted", "inheritable", "ambient")}
    sh(bundle, "grep -E '^Cap(Eff|Amb)' /proc/self/status")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    expected = f"{(1 << 5) | (1 << 10):016x}"
    assert result.stdout.split() == ["CapEff:", expected, "CapAmb:", expected]


def test_capability_above_kernel_last_cap_is_a_warning(runtime, bundle):
    from pyrunc.linux.capabilities import CAPABILITIES, read_cap_last_cap

    missing = [name for name, number in CAPABILITIES.items() if number > read_cap_last_cap()]
    if not missing:
        pytest.skip("this kernel knows every capability pyrunc knows")
    bundle.config["process"]["capabilities"]["bounding"].append(missing[0])
    sh(bundle, "echo ran")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert missing[0] in result.stderr


def test_personality_linux32(runtime, bundle):
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    sh(bundle, "uname -m")
    assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout.strip() in ("i686", "i386")


def test_scheduler_policy_and_io_priority(runtime, bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    # /proc/self/stat: field 19 is nice, field 41 the policy (3 = SCHED_BATCH).
    sh(bundle, "cut -d')' -f2 /proc/self/stat | awk '{print $17, $39}'; ionice -p $$")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["5", "3"], result
    assert "idle" in lines[1], result


def test_sysctl_in_private_network_namespace(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net/ipv4/conf/all/rp_filter": "2"}
    sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/rp_filter")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["1", "2"]


@pytest.mark.parametrize("key, namespace", [
    ("net/../fs/lease-break-time", "network"),
    ("fs/mqueue/../../fs/lease-break-time", "ipc"),
    ("net.//.fs.lease-break-time", "network"),
    ("net/../kernel/core_pattern", "network"),
])
def test_sysctl_key_cannot_walk_out_of_its_namespaced_subtree(runtime, bundle, key, namespace):
    # issue 13, item 1: "net/../fs/..." with a network namespace changed the
    # host's /proc/sys/fs/...; the same path reaches kernel/core_pattern.
    host_file = "/proc/sys/" + ("kernel/core_pattern" if "core_pattern" in key else "fs/lease-break-time")
    before = open(host_file).read()
    # The host's own value: were the key to get through, nothing would change.
    bundle.config["linux"]["sysctl"] = {key: before.strip()}
    assert namespace in [ns["type"] for ns in bundle.config["linux"]["namespaces"]]
    sh(bundle, "true")
    for verb in (("check",), ("create",)):
        result = runtime(*verb, "--bundle", bundle.path, *([bundle.id] if verb[0] == "create" else []))
        assert result.returncode == 1, result
        assert f'linux.sysctl["{key}"]' in result.stderr and "Traceback" not in result.stderr, result
    assert open(host_file).read() == before
    assert runtime.ids() == []


def test_sysctl_write_stays_beneath_its_subtree_even_past_the_checks(monkeypatch):
    # The write itself: were a key like "net/../fs/x" to slip through the
    # checks, the kernel would still refuse to resolve it outside /proc/sys/net.
    from pyrunc.linux import sysctl

    monkeypatch.setattr(sysctl, "parse", lambda key: sysctl.Key(key.split("/"), "network", 1))
    current = open("/proc/sys/fs/lease-break-time").read()
    proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as info:
            sysctl.write(proc_fd, "net/../fs/lease-break-time", current)  # the same value: harmless if it got through
        assert info.value.errno == errno.EXDEV
    finally:
        os.close(proc_fd)


def test_sysctl_in_the_hosts_own_namespace_joined_by_path_is_refused(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "network"]
    bundle.config["linux"]["namespaces"].append({"type": "network", "path": f"/proc/{os.getpid()}/ns/net"})
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": open("/proc/sys/net/ipv4/ip_forward").read().strip()}
    sh(bundle, "true")
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and "the host's own" in result.stderr, result
    assert runtime.ids() == []


def test_sysctl_not_namespaced_is_refused(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"vm.swappiness": "10"}
    bundle.write()
    result = runtime("create", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1 and "vm.swappiness" in result.stderr
    assert runtime.ids() == []


def test_devices_created_with_mode_and_owner(runtime, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/loop9", "type": "b", "major": 7, "minor": 9},
    ]
    sh(bundle, "ls -ln /dev/fuse /dev/sub/loop9 | awk '{print $1, $3, $4, $5, $6}'")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.splitlines() == ["crw-r----- 1000 1001 10, 229", "brw-rw-rw- 0 0 7, 9"]


def test_masked_proc_file_reads_empty(runtime, bundle):
    if not os.path.exists("/proc/timer_list"):
        pytest.skip("no /proc/timer_list on this kernel")
    bundle.config["linux"]["maskedPaths"] = ["/proc/timer_list"]
    sh(bundle, "wc -c < /proc/timer_list")
    assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout.strip() == "0"


@pytest.fixture(autouse=True)
def _needs_busybox_applets():
    if not shutil.which("busybox"):
        pytest.skip("needs busybox")


def test_oom_score_adj_is_set(runtime, bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    sh(bundle, "cat /proc/self/oom_score_adj")
    assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout.strip() == "500"


def test_oom_score_adj_lowering_needs_a_capability_this_host_may_lack(runtime, bundle):
    status = open("/proc/self/status").read()
    cap_eff = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    bundle.config["process"]["oomScoreAdj"] = -998
    sh(bundle, "cat /proc/self/oom_score_adj")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    if cap_eff >> 24 & 1:  # CAP_SYS_RESOURCE
        assert result.returncode == 0 and result.stdout.strip() == "-998", result
    else:
        assert result.returncode == 1, result
        assert "process.oomScoreAdj" in result.stderr and "permission denied" in result.stderr
        assert runtime.ids() == []


def test_devices_in_user_namespace_are_bind_mounted(runtime, bundle):
    userns_bundle(bundle)
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    sh(bundle, "ls -l /dev/fuse | cut -c1; echo x > /dev/null && echo null-ok")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["c", "null-ok"]


def host_lsm(name: str) -> bool:
    if name == "apparmor":
        try:
            return open("/sys/module/apparmor/parameters/enabled").read().strip() == "Y"
        except OSError:
            return False
    return os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.parametrize("section, field, value, module", [
    ("process", "apparmorProfile", "docker-default", "apparmor"),
    ("process", "selinuxLabel", "system_u:system_r:container_t:s0", "selinux"),
    ("linux", "mountLabel", "system_u:object_r:container_file_t:s0:c1,c2", "selinux"),
])
def test_lsm_label_is_refused_on_a_host_without_that_lsm(runtime, bundle, section, field, value, module):
    # config.md: a property the runtime cannot apply MUST be an error (runc 1.1 refuses these too).
    if host_lsm(module):
        pytest.skip(f"this host has {module} enabled")
    bundle.config[section][field] = value
    sh(bundle, "echo ran")
    result = runtime("run", "--bundle", bundle.path, bundle.id, global_args=("--debug",))
    assert result.returncode == 1 and result.stdout == "", result
    assert f'config.json: {section}.{field}: "{value}": ' in result.stderr and "is not enabled on this host" in result.stderr
    assert "LSMs: AppArmor not enabled, SELinux not enabled" in result.stderr or host_lsm("apparmor") \
        or host_lsm("selinux"), result.stderr
    assert runtime.ids() == []
    check = runtime("check", "--bundle", bundle.path)
    assert check.returncode == 1 and f"{section}.{field}" in check.stderr, check


def test_exec_with_an_lsm_label_the_host_lacks_is_refused(runtime, bundle):
    if host_lsm("apparmor"):
        pytest.skip("this host has AppArmor enabled")
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    result = runtime("exec", "--apparmor", "docker-default", bundle.id, "true")
    assert result.returncode == 255, result  # runc's code for an exec that fails before its process runs
    assert 'exec: process.apparmorProfile: "docker-default": AppArmor is not enabled on this host' in result.stderr
    assert runtime.state(bundle.id)["status"] == "running"


def test_seccomp_filters_are_cached_per_profile(runtime, bundle, new_id):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    bundle.config["root"]["readonly"] = False
    sh(bundle, "mkdir /x 2>/dev/null && echo made || echo denied")
    from pyrunc.linux import seccomp

    first = os.path.join(seccomp.CACHE_DIR, seccomp.cache_key(bundle.config["linux"]["seccomp"]))
    try:
        assert runtime.ok("run", "--bundle", bundle.path, bundle.id).stdout == "denied\n"
        assert os.path.isfile(first)
        assert oct(os.stat(seccomp.CACHE_DIR).st_mode & 0o777) == "0o700"
        # The same profile again: from the cache, same behaviour.
        assert runtime.ok("run", "--bundle", bundle.path, new_id()).stdout == "denied\n"
        # A different profile gets its own filter, never the cached one.
        bundle.config["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_ALLOW"
        bundle.config["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_LOG"
        bundle.write()
        second = os.path.join(seccomp.CACHE_DIR, seccomp.cache_key(bundle.config["linux"]["seccomp"]))
        assert runtime.ok("run", "--bundle", bundle.path, new_id()).stdout == "made\n"
        assert os.path.isfile(second) and second != first
        # Not in the state root: that holds containers only.
        assert runtime.ids() == [] and runtime.ok("list", "-q").stdout == ""
    finally:
        for path in (first, os.path.join(seccomp.CACHE_DIR, seccomp.cache_key(bundle.config["linux"]["seccomp"]))):
            if os.path.exists(path):
                os.unlink(path)


def test_init_is_cloned_directly_unless_the_config_needs_stage1(runtime, bundle):
    """The default namespaces: the init is cloned straight into them (one
    process, launcher.namespaces_to_clone_into). A user namespace needs its
    id maps written between two steps: the two-process path. Both give the
    container the same namespaces (the other tests check what it sees)."""
    sh(bundle, "echo $$")
    result = runtime.ok("--debug", "run", "--bundle", bundle.path, bundle.id)
    assert "phase cloned into the cgroup and namespaces" in result.stderr and result.stdout == "1\n"
    runtime.ok("delete", "--force", bundle.id)
    userns_bundle(bundle)
    bundle.write()
    result = runtime.ok("--debug", "run", "--bundle", bundle.path, bundle.id)
    assert "phase forked stage1" in result.stderr and result.stdout == "1\n"


def test_joining_a_pods_user_and_pid_namespaces(runtime, bundle, new_id):
    """A Kubernetes pod with user namespaces: the container joins the
    sandbox's user and pid namespaces by path. pyrunc sets it up outside the
    pid namespace and joins it last, as the user namespace's root."""
    userns_bundle(bundle)
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    sandbox = runtime.state(bundle.id)["pid"]
    config = bundle.config
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] not in ("user", "pid")]
    config["linux"]["namespaces"] += [{"type": "user", "path": f"/proc/{sandbox}/ns/user"},
                                      {"type": "pid", "path": f"/proc/{sandbox}/ns/pid"}]
    del config["linux"]["uidMappings"], config["linux"]["gidMappings"]
    other = new_id()
    config["linux"]["cgroupsPath"] = config["linux"]["cgroupsPath"].replace(bundle.id, other)
    sh(bundle, "id -u; head -c 5 /proc/1/cmdline; echo; cat /proc/self/uid_map")
    result = runtime("run", "--bundle", bundle.path, other)
    assert result.returncode == 0, result
    assert result.stdout.split() == ["0", "sleep", "0", "100000", "65536"], result


SETRESUID, CAPSET, CHDIR, GETCWD = 117, 126, 80, 79


@pytest.mark.parametrize("verb", ["run", "exec", "run-in-a-joined-pid-namespace"])
def test_seccomp_notify_without_no_new_privs_agent_answers_the_runtime_too(runtime, bundle, tmp_path, verb, new_id):
    """Issue 15: with no_new_privs off the filter is loaded before the user
    switch, so the runtime's own setresuid, capset, chdir, getcwd are
    notified; the listener must be with the agent before any of them (runc:
    syncParentSeccomp), or they wait for an answer nobody can give and
    `exec` hangs. The agent lets everything continue; the process runs as
    its user and prints what it should. Joining a pid namespace by path,
    stage1 loads the filter and its stub forks the init only afterwards,
    as `exec`'s joiner does."""
    agent = Agent(str(tmp_path / "agent.sock"), 0)
    before = 0
    try:
        if verb == "run-in-a-joined-pid-namespace":
            sh(bundle, "sleep 30")
            runtime.ok("run", "-d", "--bundle", bundle.path, bundle.id, timeout=30)
            init_pid = runtime.state(bundle.id)["pid"]
            pod, bundle.id = bundle.id, new_id()
            bundle.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"].replace(pod, bundle.id)
            bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                                    if ns["type"] != "pid"]
            bundle.config["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{init_pid}/ns/pid"})
        bundle.config["process"]["noNewPrivileges"] = False
        bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
        bundle.config["process"]["cwd"] = "/tmp"
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.server.getsockname(),
            "syscalls": [{"names": ["setresuid", "setresgid", "setgroups", "capset", "chdir", "fchdir", "getcwd"],
                          "action": "SCMP_ACT_NOTIFY"}],
        }
        if verb != "exec":
            sh(bundle, "id -u; pwd")
            result = runtime("run", "--bundle", bundle.path, bundle.id, timeout=30)
            if verb != "run":
                runtime.ok("kill", pod, "KILL")
        else:
            sh(bundle, "sleep 30")
            runtime.ok("run", "-d", "--bundle", bundle.path, bundle.id, timeout=30)
            before = len(agent.calls)
            result = runtime("exec", "--cwd", "/", "--user", "1001:1001", bundle.id, "sh", "-c", "id -u; pwd",
                             timeout=30)
            runtime.ok("kill", bundle.id, "KILL")
    finally:
        agent.close()
    assert result.returncode == 0, result
    assert result.stdout == ("1001\n/\n" if verb == "exec" else "1000\n/tmp\n"), result
    numbers = {nr for _, nr in agent.calls[before:]}
    assert {SETRESUID, CAPSET} <= numbers, agent.calls
    # The pid the agent was given is the process it hears from first: the
    # one that loaded the filter (for exec, the set-up process whose stub
    # then forks the program's).
    first = [pid for pid, nr in agent.calls[before:] if nr == SETRESUID][0]
    assert agent.states[-1]["pid"] == first, (agent.states, agent.calls)
