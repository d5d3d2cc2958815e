"""Guards against the known runtime escapes (see the CVE in each test).

Each test builds the hostile container and checks from the host that
nothing outside the container changed.
"""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

import pyrunc
from tests.integration.test_run import sh


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def runtime_files() -> list[str]:
    """The host files a container must never be able to change: the
    interpreter pyrunc runs on and pyrunc's own modules."""
    files = [os.path.realpath(sys.executable)]
    package = os.path.dirname(pyrunc.__file__)
    for directory, _, names in os.walk(package):
        files += [os.path.join(directory, n) for n in names if n.endswith(".py")]
    return files


def test_cve_2019_5736_proc_self_exe_is_not_the_host_interpreter(runtime, bundle):
    # CVE-2019-5736: a container whose program is /proc/self/exe would run
    # the runtime's own binary (here: the host's Python) and could rewrite it.
    before = {f: digest(f) for f in runtime_files()}
    bundle.config["process"]["args"] = ["/proc/self/exe"]
    bundle.write()
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 126, result
    # The same through a script whose interpreter is /proc/self/exe.
    with open(os.path.join(bundle.rootfs, "evil"), "w") as f:
        f.write("#!/proc/self/exe\nprint('host python reached')\n")
    os.chmod(os.path.join(bundle.rootfs, "evil"), 0o755)
    bundle.config["process"]["args"] = ["/evil"]
    bundle.write()
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 126, result
    assert "host python reached" not in result.stdout
    assert {f: digest(f) for f in runtime_files()} == before


def test_cve_2019_5736_waiting_init_is_not_dumpable(runtime, bundle):
    # While the init is still the host's interpreter, processes without
    # CAP_SYS_PTRACE (every container process) must not open its /proc
    # entries: /proc/<init>/exe would lead to the host's interpreter.
    import subprocess

    sh(bundle, "sleep 30")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    init_pid = runtime.state(bundle.id)["pid"]
    probe = """
import os, sys, prctl
prctl.cap_effective.sys_ptrace = False
for pid in sys.argv[1:]:
    try:
        os.readlink(f"/proc/{pid}/exe")
        print("readable")
    except PermissionError:
        print("denied")
"""
    # The control: a dumpable process with no capabilities, which the probe
    # (root without CAP_SYS_PTRACE) may inspect.
    other = subprocess.Popen(["setpriv", "--bounding-set=-all", "sleep", "30"])
    try:
        result = subprocess.run([sys.executable, "-c", probe, str(init_pid), str(other.pid)],
                                capture_output=True, text=True, timeout=30)
    finally:
        other.kill()
        other.wait()
    assert result.stdout.split() == ["denied", "readable"], result


def test_cve_2024_21626_no_leaked_fd_can_become_the_cwd(runtime, bundle):
    # CVE-2024-21626: a leaked host directory fd as process.cwd
    # (/proc/self/fd/N) put the container's cwd on the host.
    for fd in range(3, 21):
        bundle.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
        sh(bundle, "pwd; ls ../../../../ | head -3")
        result = runtime("run", "--bundle", bundle.path, f"{bundle.id}-{fd}")
        if result.returncode == 0:
            assert not result.stdout.startswith("(unreachable)"), result
        else:
            assert result.returncode == 1 and "process.cwd" in result.stderr, result
    assert runtime.ids() == []


def test_cve_2021_30465_symlinked_mount_destination_stays_in_root(runtime, bundle, tmp_path):
    # CVE-2021-30465: a mount destination that is a symlink to a host path
    # must resolve inside the rootfs, never on the host.
    host_target = tmp_path / "host-target"
    host_target.mkdir()
    (host_target / "keep.txt").write_text("host data\n")
    os.symlink(str(host_target), os.path.join(bundle.rootfs, "abs-link"))
    os.symlink("../../../../../../../../" + str(host_target).lstrip("/"), os.path.join(bundle.rootfs, "rel-link"))
    bundle.config["mounts"] += [
        {"destination": "/abs-link", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/rel-link", "type": "tmpfs", "source": "tmpfs"},
    ]
    bundle.config["root"]["readonly"] = False
    sh(bundle, "grep -c tmpfs /proc/self/mountinfo >/dev/null; touch /abs-link/new1 /rel-link/new2; echo done")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "done\n"
    assert sorted(os.listdir(host_target)) == ["keep.txt"]
    # Both landed inside the rootfs (the symlinks resolved against it).
    inside = os.path.join(bundle.rootfs, str(host_target).lstrip("/"))
    assert os.path.isdir(inside)


def test_cve_2025_31133_fake_dev_null_cannot_redirect_masking(runtime, bundle, tmp_path):
    # CVE-2025-31133: masking binds /dev/null over each masked file; a /dev/null
    # that is really a host file would be bound read-write instead.
    host_file = tmp_path / "host-file"
    host_file.write_text("host secret\n")
    dev = os.path.join(bundle.rootfs, "dev")
    os.symlink(str(host_file), os.path.join(dev, "null"))
    with open(os.path.join(bundle.rootfs, "masked.txt"), "w") as f:
        f.write("masked\n")
    # No tmpfs on /dev: the rootfs's own /dev is used as it is.
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]
    bundle.config["linux"]["maskedPaths"] = ["/masked.txt"]
    bundle.config["root"]["readonly"] = False
    sh(bundle, "cat /masked.txt; echo end; echo pwned > /masked.txt 2>/dev/null; true")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert host_file.read_text() == "host secret\n"
    if result.returncode == 0:
        assert result.stdout == "end\n"
    else:
        assert "null" in result.stderr


def test_symlinked_rootfs_dev_cannot_point_devices_at_host(runtime, bundle, tmp_path):
    host_dir = tmp_path / "host-dev"
    host_dir.mkdir()
    os.rmdir(os.path.join(bundle.rootfs, "dev"))
    os.symlink(str(host_dir), os.path.join(bundle.rootfs, "dev"))
    bundle.config["root"]["readonly"] = False
    sh(bundle, "ls /dev/null >/dev/null && echo ok")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert os.listdir(host_dir) == []
    assert result.returncode in (0, 1), result


@pytest.mark.parametrize("target", ["/proc/self/root", "/proc/1/root"])
def test_magic_link_mount_destinations_are_refused(runtime, bundle, target):
    bundle.config["mounts"].append({"destination": target + "/x", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1, result
    assert runtime.ids() == []


def tree(path: str) -> set[str]:
    found = set()
    for directory, dirs, files in os.walk(path):
        found.update(os.path.relpath(os.path.join(directory, n), path) for n in dirs + files)
    return found


def test_cwd_magic_link_is_never_followed_as_text(runtime, bundle):
    # issue 13, item 11: cwd /proc/self/fd/N made directories inside the
    # rootfs named after pyrunc's host paths (<rootfs>/tmp/.../exec.fifo/).
    # CVE-2024-21626 class: a magic link is refused, never read as a path.
    bundle.config["root"]["readonly"] = False
    before = tree(bundle.rootfs)
    for fd in range(3, 9):
        bundle.config["process"]["cwd"] = f"/proc/self/fd/{fd}"
        sh(bundle, "pwd")
        result = runtime("run", "--bundle", bundle.path, f"{bundle.id}-{fd}")
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "process.cwd" in result.stderr, result
        assert "magic link" in result.stderr, result
    assert tree(bundle.rootfs) == before
    assert runtime.ids() == []


def test_exec_cwd_magic_link_is_one_line_not_a_missing_program(runtime, bundle):
    # Under exec it was "no such file or directory", as if the program were
    # missing. Every failure before the process runs exits 255, as runc.
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    for cwd in ("/proc/self/fd/3", "/proc/self/cwd", "/nonexistent"):
        result = runtime("exec", "--cwd", cwd, bundle.id, "true")
        assert result.returncode == 255, (cwd, result)
        assert result.stderr.count("\n") == 1 and "process.cwd" in result.stderr, (cwd, result)
        assert "executable file not found" not in result.stderr
    result = runtime("exec", bundle.id, "/no/such/program")
    assert result.returncode == 255 and "no such file or directory" in result.stderr
    result = runtime("exec", bundle.id, "/etc/passwd")
    assert result.returncode == 255 and "permission denied" in result.stderr


@pytest.mark.parametrize("fstype, destination", [("proc", "/proc"), ("sysfs", "/sys")])
def test_kernel_filesystem_is_not_mounted_through_a_rootfs_symlink(runtime, bundle, fstype, destination):
    # A rootfs whose /proc is a symlink to /tmp got procfs mounted at /tmp.
    inside = os.path.join(bundle.rootfs, destination.lstrip("/"))
    os.rmdir(inside)
    os.symlink("/tmp", inside)
    bundle.config["root"]["readonly"] = False
    sh(bundle, "ls /tmp | head -3")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and f'"{fstype}" on "{destination}"' in result.stderr, result
    assert "symlink" in result.stderr
    assert runtime.ids() == []


# ---------------------------------------------------------------- CVE-2019-5736: the exe holder

HOLDER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exe_holder.c")


def interpreter_id() -> str:
    st = os.stat(os.path.realpath(sys.executable))
    return f"{st.st_dev}:{st.st_ino}"


class Holder:
    """A container whose init holds /proc/N/exe of everything it sees
    (exe_holder.c), with CAP_SYS_PTRACE: the attacker of CVE-2019-5736."""

    def __init__(self, runtime, bundle, tmp_path):
        import shutil
        import subprocess

        if not shutil.which("gcc"):
            pytest.skip("needs gcc to build the holder")
        binary = os.path.join(bundle.rootfs, "holder")
        built = subprocess.run(["gcc", "-static", "-O2", "-o", binary, HOLDER_SOURCE], capture_output=True, text=True)
        if built.returncode != 0:
            pytest.skip(f"cannot build a static holder: {built.stderr[-300:]}")
        self.runtime, self.bundle = runtime, bundle
        self.stop = os.path.join(bundle.rootfs, "tmp", "stop")
        self.report = os.path.join(bundle.rootfs, "tmp", "report")
        config = bundle.config
        config["root"]["readonly"] = False
        config["process"]["args"] = ["/holder", "/tmp/stop", "/tmp/report", interpreter_id()]
        for kind in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")
        bundle.write()
        runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
        self.pid = runtime.state(bundle.id)["pid"]

    def results(self) -> tuple[dict, list[str]]:
        import time

        with open(self.stop, "w"):
            pass
        deadline = time.monotonic() + 10
        while not os.path.exists(self.report) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        counts, exes = {}, []
        with open(self.report) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition(" ")
                if key == "exe":
                    exes.append(value)
                else:
                    counts[key] = int(value)
        return counts, exes


def assert_no_host_exe(counts: dict, exes: list[str]) -> None:
    assert counts["scans"] > 10, counts
    assert counts["hits"] == 0, (counts, exes)
    # Every exe it could reach is the container's own (busybox, itself) or
    # the sealed stub: never a host file.
    strangers = [e for e in exes if e not in ("/holder", "/bin/busybox") and not e.startswith("/memfd:pyrunc-stub")]
    assert strangers == [], exes


def test_cve_2019_5736_exec_never_shows_the_host_interpreter(runtime, bundle, tmp_path):
    """issue 13, item 2: `pyrunc exec` set the process up as a forked Python
    process inside the container's pid namespace; a holder with
    CAP_SYS_PTRACE got /proc/N/exe of it: the host's python3."""
    holder = Holder(runtime, bundle, tmp_path)
    for i in range(40):
        args = ["exec", bundle.id, "true"] if i % 4 else ["exec", "--cwd", "/tmp", "-e", "X=1", bundle.id, "true"]
        assert runtime(*args).returncode == 0
    assert runtime("exec", bundle.id, "/no/such/program").returncode == 255
    assert_no_host_exe(*holder.results())


@pytest.mark.parametrize("verb", ["run", "create"])
def test_cve_2019_5736_joining_a_pid_namespace_never_shows_the_host_interpreter(runtime, bundle, tmp_path, new_id,
                                                                                verb):
    """issue 13, item 2: a container joining a pid namespace by path (a
    pod's): its init was a forked Python process inside that namespace for
    all of its set-up, in reach of the holder in the sibling container."""
    holder = Holder(runtime, bundle, tmp_path)
    sibling = bundle.copy_config()
    sibling["root"]["readonly"] = True
    sibling["process"]["args"] = ["sh", "-c", "head -c 7 /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'"]
    sibling["process"]["capabilities"] = bundle.config["process"]["capabilities"] | {
        kind: [c for c in bundle.config["process"]["capabilities"][kind] if c != "CAP_SYS_PTRACE"]
        for kind in ("bounding", "effective", "permitted")}
    sibling["linux"]["namespaces"] = [ns for ns in sibling["linux"]["namespaces"] if ns["type"] != "pid"]
    sibling["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{holder.pid}/ns/pid"})
    for i in range(8):
        container_id = new_id()
        sibling["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"].replace(bundle.id, container_id)
        bundle.config, saved = sibling, bundle.config
        bundle.write()
        bundle.config = saved
        if verb == "run":
            result = runtime.ok("run", "--bundle", bundle.path, container_id)
            first, count = result.stdout.splitlines()
            # It is in the pod's pid namespace: the holder is its pid 1,
            # and its own /proc shows that namespace.
            assert first == "/holder" and int(count) >= 2, result
        else:
            runtime.ok("create", "--bundle", bundle.path, container_id)
            assert os.readlink(f"/proc/{runtime.state(container_id)['pid']}/exe").startswith("/memfd:pyrunc-")
            runtime.ok("delete", "--force", container_id)
    assert_no_host_exe(*holder.results())


def test_new_pid_namespace_init_is_alone_there_while_it_is_python(runtime, bundle, tmp_path):
    """The init cloned into a new pid namespace stays Python for its set-up:
    nothing but it (and the createContainer hooks it runs) is in that
    namespace meanwhile, and `exec` is refused until create is done."""
    import subprocess
    import threading
    import time

    ready, go, out = tmp_path / "ready", tmp_path / "go", tmp_path / "seen"
    hook = tmp_path / "hook.sh"
    # Its pid as the host sees it: /proc here is still pyrunc's (before pivot_root).
    # Renamed into place: the test polls for the file and must never read it half written.
    hook.write_text(f"""#!/bin/sh
read pid rest < /proc/self/stat
echo $pid > {ready}.tmp && mv {ready}.tmp {ready}
while [ ! -e {go} ]; do sleep 0.02; done
""")
    hook.chmod(0o755)
    bundle.config["hooks"] = {"createContainer": [{"path": str(hook)}]}
    sh(bundle, "true")
    creating = threading.Thread(target=lambda: runtime.ok("create", "--bundle", bundle.path, bundle.id))
    creating.start()
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        hook_pid = int(ready.read_text())
        pidns = os.readlink(f"/proc/{hook_pid}/ns/pid")
        members = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink(f"/proc/{name}/ns/pid") == pidns:
                        members[int(name)] = os.readlink(f"/proc/{name}/exe")
                except OSError:
                    pass
        # The init is the hook's parent.
        init = int(open(f"/proc/{hook_pid}/stat").read().rsplit(")", 1)[1].split()[1])
        assert runtime("exec", bundle.id, "true").returncode == 255  # as every exec failure, runc's code
    finally:
        go.touch()
        creating.join(30)
    # The init, the hook's shell and its children: no one else.
    pythons = [pid for pid, exe in members.items() if exe == os.path.realpath(sys.executable)]
    assert pythons == [init], members
    others = [pid for pid in members if pid not in (init, hook_pid)]
    for pid in others:  # the hook's sleep, if one was running
        assert members[pid] != os.path.realpath(sys.executable)
    assert runtime.state(bundle.id)["status"] == "created"
    pid = runtime.state(bundle.id)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-")


def test_start_container_hooks_do_not_keep_the_init_python(runtime, bundle):
    """With startContainer (or poststart) hooks the init stayed Python until
    `start`, in reach of anything `exec` put into a created container. Now
    it waits as the stub, and `start` runs the startContainer hooks as
    processes of the container (exec's machinery)."""
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/true"}], "poststart": [{"path": "/bin/true"}]}
    sh(bundle, "sleep 60")
    runtime.ok("create", "--bundle", bundle.path, bundle.id)
    pid = runtime.state(bundle.id)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-")
    runtime.ok("start", bundle.id)
    assert runtime.state(bundle.id)["status"] == "running"


def test_procfs_for_a_joined_pid_namespace_without_the_pidns_option(tmp_path):
    """Kernels before 6.18 have no procfs "pidns" option: a stub forked into
    the pid namespace makes the mount (linux.mounts.mount_proc_in_pid_ns),
    never a Python process there."""
    import subprocess

    from pyrunc.linux import _libc, mounts

    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sleep", "60"])
    target = tmp_path / "proc"
    target.mkdir()
    seen = tmp_path / "seen"
    try:
        import time

        ns = f"/proc/{holder.pid}/ns/pid_for_children"
        ours = os.readlink("/proc/self/ns/pid")

        def holders() -> str:
            try:
                return os.readlink(ns)
            except FileNotFoundError:  # unshare between its fork and exec (seen on 6.1)
                return ours

        deadline = time.monotonic() + 5
        while holders() == ours and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = os.fork()
        if pid == 0:
            try:
                _libc.unshare(_libc.CLONE_NEWNS)
                _libc.mount(None, "/", None, _libc.MS_REC | _libc.MS_PRIVATE)
                pid_ns_fd = os.open(ns, os.O_RDONLY)
                target_fd = os.open(target, os.O_PATH | os.O_DIRECTORY)
                mounts.mount_proc_in_pid_ns(pid_ns_fd, target_fd, _libc.MS_NOSUID | _libc.MS_NODEV, "", "test")
                seen.write_text(" ".join(sorted(n for n in os.listdir(target) if n.isdigit())) + "\n" +
                                os.readlink(target / "1" / "exe"))
                os._exit(0)
            except BaseException as err:  # noqa: BLE001 - report from the child
                seen.write_text(f"error {err!r}")
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, seen.read_text()
    finally:
        holder.kill()
        holder.wait()
    pids, exe = seen.read_text().splitlines()
    # That namespace's procfs: its sleep as pid 1 and nothing of ours.
    assert pids == "1" and exe.endswith("/sleep"), seen.read_text()
    assert os.listdir(target) == []  # the mount lived in the child's namespace only
