"""Rootless: pyrunc run by an unprivileged user the tests create, beside runc.

The user (with /etc/subuid and /etc/subgid ranges) exists for this module
only; it, its subordinate-id lines and its directory (bundles, its
XDG_RUNTIME_DIR) are removed afterwards, whatever happened. Its commands run
through setpriv with a clean environment, so they have no capability and
nothing of root's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from tests.busybox import make_rootfs

PYRUNC = os.path.join(os.path.dirname(sys.executable), "pyrunc")
RUNC = shutil.which("runc")
USER = f"pyrl{os.getpid() % 100000}"
SUB_SIZE = 65536


def _free_subid_start() -> int:
    """A subordinate range no line of /etc/subuid or /etc/subgid uses."""
    end = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        end = max(end, int(parts[1]) + int(parts[2]))
        except FileNotFoundError:
            pass
    return (end // SUB_SIZE + 2) * SUB_SIZE


def _drop_lines(path: str, name: str) -> None:
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        return
    kept = [line for line in lines if not line.startswith(name + ":")]
    if kept != lines:
        with open(path, "w") as f:
            f.writelines(kept)


class User:
    def __init__(self, name: str, uid: int, gid: int, home: str, sub_start: int):
        self.name, self.uid, self.gid, self.home, self.sub_start = name, uid, gid, home, sub_start
        self.xdg = os.path.join(home, "run")

    def run(self, *argv: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        """`argv` as this user: no capability, a clean environment."""
        clean = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.home, "USER": self.name,
                 "XDG_RUNTIME_DIR": self.xdg, **(env or {})}
        # Output into files, not pipes: a created container holds them open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                                   "--", "env", "-i", *(f"{k}={v}" for k, v in clean.items()), *argv],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, cwd="/")
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))

    def pyrunc(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(PYRUNC, *args, **kwargs)

    def runc(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(RUNC, *args, **kwargs)


def _end_podman_pause_process(home: str) -> None:
    """Rootless Podman (started by a test) leaves its user namespace's pause
    process; end exactly that pid, after checking it is the test user's."""
    import pwd

    try:
        uid = pwd.getpwnam(USER).pw_uid
        with open(os.path.join(home, "run", "libpod", "tmp", "pause.pid")) as f:
            pid = int(f.read().strip())
        if os.stat(f"/proc/{pid}").st_uid == uid:
            os.kill(pid, 9)
    except (OSError, ValueError, KeyError):
        pass


# useradd and userdel leave shadow's backups of the files they edit, with
# the test user's lines in them: the fixture puts them back as they were.
SHADOW_BACKUPS = [f"/etc/{name}-" for name in ("passwd", "group", "shadow", "gshadow", "subuid", "subgid")]


def _snapshot(paths: list[str]) -> dict:
    saved = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                saved[path] = (f.read(), os.stat(path))
        except FileNotFoundError:
            saved[path] = None
    return saved


def _restore(saved: dict) -> None:
    for path, kept in saved.items():
        if kept is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        data, st = kept
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, st.st_mode & 0o7777)


@pytest.fixture(scope="module")
def user():
    if not os.access(PYRUNC, os.X_OK):
        pytest.skip(f"needs the pyrunc command beside the venv's python ({PYRUNC})")
    for tool in ("useradd", "userdel", "setpriv", "newuidmap", "newgidmap"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (packages passwd, util-linux, uidmap)")
    home = f"/tmp/{USER}"
    sub_start = _free_subid_start()
    created = False
    backups = _snapshot(SHADOW_BACKUPS)
    try:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin",
                        "--user-group", USER], check=True, capture_output=True)
        created = True
        for path in ("/etc/subuid", "/etc/subgid"):
            with open(path, "a") as f:
                f.write(f"{USER}:{sub_start}:{SUB_SIZE}\n")
        import pwd

        entry = pwd.getpwnam(USER)
        os.mkdir(home, 0o755)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        u = User(USER, entry.pw_uid, entry.pw_gid, home, sub_start)
        os.mkdir(u.xdg, 0o700)
        os.chown(u.xdg, u.uid, u.gid)
        probe = u.run(sys.executable, "-I", "-c", "import pyrunc")
        if probe.returncode != 0:
            pytest.skip(f"the venv is not reachable by an unprivileged user: {probe.stderr.strip()}")
        yield u
    finally:
        if created:
            _end_podman_pause_process(home)
            subprocess.run(["userdel", "--force", USER], capture_output=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            _drop_lines(path, USER)
        _restore(backups)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def ubundle(user, request):
    """A bundle of the user's, from `pyrunc spec --rootless` run as the user
    (so the spec's own defaults are under test), not a terminal. The test
    edits `config` and calls write(). Afterwards the user's containers are
    force-deleted and none may be left."""
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    path = os.path.join(user.home, name)
    os.mkdir(path)
    make_rootfs(os.path.join(path, "rootfs"))
    for directory, dirs, files in os.walk(path):
        for entry in [directory] + [os.path.join(directory, n) for n in dirs + files]:
            os.lchown(entry, user.uid, user.gid)
    result = user.pyrunc("spec", "--rootless", "--bundle", path)
    assert result.returncode == 0, result.stderr
    b = _UserBundle(path, user)
    yield b
    state_root = os.path.join(user.xdg, "pyrunc")
    for cid in (os.listdir(state_root) if os.path.isdir(state_root) else []):
        user.pyrunc("delete", "--force", cid)
    left = os.listdir(state_root) if os.path.isdir(state_root) else []
    shutil.rmtree(path, ignore_errors=True)
    assert left == [], f"state dirs left behind: {left}"


class _UserBundle:
    def __init__(self, path: str, user: User):
        self.path = path
        self.user = user
        with open(os.path.join(path, "config.json")) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False

    def write(self, args: list[str] | None = None) -> "_UserBundle":
        if args is not None:
            self.config["process"]["args"] = args
        config_path = os.path.join(self.path, "config.json")
        with open(config_path, "w") as f:
            json.dump(self.config, f)
        os.chown(config_path, self.user.uid, self.user.gid)
        return self


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------- running


def test_rootless_run_single_mapping_same_as_runc(user, ubundle):
    ubundle.write(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"])
    mine = user.pyrunc("run", "--bundle", ubundle.path, "r1")
    assert mine.returncode == 0, mine.stderr
    lines = mine.stdout.split()
    assert lines[:2] == ["0", "0"]
    assert lines[2:] == ["0", str(user.uid), "1", "0", str(user.gid), "1"]
    if RUNC:
        theirs = user.runc("run", "--bundle", ubundle.path, "r1")
        assert theirs.returncode == 0, theirs.stderr
        assert theirs.stdout == mine.stdout


def test_rootless_state_root_defaults_to_xdg_runtime_dir(user, ubundle):
    ubundle.write(["sleep", "30"])
    result = user.pyrunc("create", "--bundle", ubundle.path, "r2")
    assert result.returncode == 0, result.stderr
    state_dir = os.path.join(user.xdg, "pyrunc")
    st = os.stat(state_dir)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.uid, 0o1700)
    assert os.path.isdir(os.path.join(state_dir, "r2"))
    listed = user.pyrunc("list", "--quiet")
    assert listed.stdout.split() == ["r2"]


def test_rootless_lifecycle_and_exec(user, ubundle):
    ubundle.write(["sleep", "30"])
    assert user.pyrunc("create", "--bundle", ubundle.path, "r3").returncode == 0
    assert json.loads(user.pyrunc("state", "r3").stdout)["status"] == "created"
    assert user.pyrunc("start", "r3").returncode == 0
    state = json.loads(user.pyrunc("state", "r3").stdout)
    assert state["status"] == "running"
    # The init is the user's, on the host.
    assert os.stat(f"/proc/{state['pid']}").st_uid == user.uid
    ex = user.pyrunc("exec", "r3", "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert ex.returncode == 0, ex.stderr
    assert ex.stdout.split() == ["0", "0", str(user.uid), "1"]
    assert user.pyrunc("exec", "r3", "sh", "-c", "exit 7").returncode == 7
    assert user.pyrunc("kill", "r3", "KILL").returncode == 0
    for _ in range(100):
        if json.loads(user.pyrunc("state", "r3").stdout)["status"] == "stopped":
            break
    assert json.loads(user.pyrunc("state", "r3").stdout)["status"] == "stopped"
    assert user.pyrunc("delete", "r3").returncode == 0
    assert user.pyrunc("list", "--quiet").stdout.split() == []


def test_rootless_terminal(user, ubundle):
    if not shutil.which("script"):
        pytest.skip("needs script (bsdutils) for a terminal")
    ubundle.config["process"]["terminal"] = True
    ubundle.write(["sh", "-c", "tty; id -u"])
    result = user.run("script", "-qec", f"{PYRUNC} run --bundle {ubundle.path} r4", "/dev/null")
    assert result.returncode == 0, result.stdout + result.stderr
    # script's stdin is /dev/null: at its EOF script puts a byte into the
    # session (the caller's input, which pyrunc relays to the container's
    # terminal, whose echo shows it as ^@ if it comes before the output).
    out = result.stdout.replace("\r", "").replace("^@", "")
    assert "/dev/pts/0\n0\n" in out


def test_rootless_several_mappings_through_newuidmap(user, ubundle):
    start = user.sub_start
    ubundle.config["root"]["readonly"] = False
    for kind in ("bounding", "effective", "permitted"):
        ubundle.config["process"]["capabilities"][kind].append("CAP_CHOWN")
    for field, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
        ubundle.config["linux"][field] = [{"containerID": 0, "hostID": own, "size": 1},
                                          {"containerID": 1, "hostID": start, "size": SUB_SIZE - 1}]
    ubundle.write(["sh", "-c", "cat /proc/self/uid_map; touch /tmp/f && chown 1000:1001 /tmp/f"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", str(user.uid), "1", "1", str(start), str(SUB_SIZE - 1)]
    # Container id 1000 is host id start+999.
    st = os.stat(os.path.join(ubundle.path, "rootfs", "tmp", "f"))
    assert (st.st_uid, st.st_gid) == (start + 999, start + 1000)


def test_rootless_mapping_outside_subuid_refused_in_one_line(user, ubundle):
    ubundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                              {"containerID": 1, "hostID": user.sub_start + SUB_SIZE,
                                               "size": 1000}]
    ubundle.write(["true"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r6")
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("pyrunc: linux.uidMappings: newuidmap refused the mapping"), line
    assert user.pyrunc("list", "--quiet").stdout.split() == []


def test_rootless_limits_without_a_writable_cgroup_refused_naming_it(user, ubundle):
    ubundle.config["linux"]["resources"] = {"memory": {"limit": 100 * 1024 * 1024}}
    ubundle.write(["true"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r7")
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("pyrunc: linux.resources: cannot set limits in cgroup /sys/fs/cgroup/"), line
    assert "permission denied" in line
    assert user.pyrunc("list", "--quiet").stdout.split() == []


def test_rootless_flag_false_uses_cgroups_and_fails_as_runc(user, ubundle):
    ubundle.write(["true"])
    result = user.pyrunc("--rootless", "false", "run", "--bundle", ubundle.path, "r8")
    assert result.returncode == 1
    assert "create cgroup" in _one_line(result.stderr)
    bad = user.pyrunc("--rootless", "maybe", "run", "--bundle", ubundle.path, "r8")
    assert bad.returncode == 1
    assert "--rootless" in _one_line(bad.stderr)
    ok = user.pyrunc("--rootless", "true", "run", "--bundle", ubundle.path, "r8")
    assert ok.returncode == 0, ok.stderr


def _pure_cgroup_v2() -> bool:
    from pyrunc.linux import cgroups

    return cgroups.detect_layout().mode == "unified"


@pytest.mark.parametrize("in_userns", [False, True], ids=["as-the-user", "as-root-of-a-user-namespace"])
def test_rootless_systemd_cgroup_goes_to_the_users_manager(user, ubundle, in_userns):
    """--systemd-cgroup rootless is the user's own systemd's (runc's rootless
    systemd driver), also for root of a user namespace the user made (as
    in rootless Podman: the uid outside, from the uid_map, names the
    manager). This user has none (no login session, no linger): one line
    naming the uid and the sockets tried, exit 1, nothing left; on a host
    with cgroup v1 hierarchies, refused as runc does. --rootless=false
    means the system's manager."""
    ubundle.write(["true"])
    wrap = ("unshare", "--user", "--map-root-user") if in_userns else ()
    result = user.run(*wrap, PYRUNC, "--systemd-cgroup", "run", "--bundle", ubundle.path, "r-sd")
    assert result.returncode == 1, result
    line = _one_line(result.stderr)
    if _pure_cgroup_v2():
        assert line.startswith(f"pyrunc: --systemd-cgroup: cannot reach the systemd user manager of uid {user.uid} "
                               f"({user.xdg}/bus: no such socket; {user.xdg}/systemd/private: no such socket): "
                               f"is user@{user.uid}.service running?"), line
    else:
        assert line == ('pyrunc: --systemd-cgroup: a rootless container needs a pure cgroup v2 host (this one is '
                        'cgroup v1 "hybrid"); run it without --systemd-cgroup'), line
    assert user.pyrunc("list", "--quiet").stdout.split() == []
    system = user.run(*wrap, PYRUNC, "--rootless", "false", "--systemd-cgroup", "run", "--bundle", ubundle.path,
                      "r-sd")
    assert system.returncode == 1, system
    assert "user manager" not in _one_line(system.stderr)
    if not os.path.isdir("/run/systemd/system"):
        assert "cannot reach systemd (systemd is not running on this host;" in _one_line(system.stderr)
    assert user.pyrunc("list", "--quiet").stdout.split() == []


# ---------------------------------------------------------------- boundaries


def test_rootless_other_users_state_root_untouchable(user, ubundle, runtime, bundle):
    """root's container, in root's state root: the user can neither list,
    kill nor delete it."""
    bundle.config["process"]["args"] = ["sleep", "30"]
    bundle.write()
    assert runtime("run", "-d", "--bundle", bundle.path, bundle.id).returncode == 0
    os.chmod(os.path.dirname(runtime.root), 0o755)  # the way to it is open; the root itself is not
    for verb in (("list",), ("kill", bundle.id, "KILL"), ("delete", "--force", bundle.id), ("state", bundle.id)):
        result = user.pyrunc("--root", runtime.root, *verb)
        assert result.returncode != 0, (verb, result)
        assert "internal error" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    # The state root itself open too (not pyrunc's way: a hand-made root):
    # the container's own directory still keeps the user out, in one line.
    os.chmod(runtime.root, 0o711)
    for verb in (("kill", bundle.id, "KILL"), ("delete", "--force", bundle.id), ("state", bundle.id),
                 ("exec", bundle.id, "true"), ("pause", bundle.id)):
        result = user.pyrunc("--root", runtime.root, *verb)
        assert result.returncode == (255 if verb[0] == "exec" else 1), (verb, result)  # exec: runc's 255
        assert "internal error" not in result.stderr and len(result.stderr.splitlines()) == 1, (verb, result)
    assert json.loads(runtime("state", bundle.id).stdout)["status"] == "running"


def test_rootless_bundle_owned_by_someone_else_cannot_be_written(user, tmp_path):
    """A bundle of root's the user can read: the container's root is not
    the files' owner, so nothing in it can be changed."""
    other = f"/tmp/{USER}-root-bundle"
    try:
        os.mkdir(other, 0o755)
        make_rootfs(os.path.join(other, "rootfs"))
        os.chmod(os.path.join(other, "rootfs", "tmp"), 0o755)
        spec = user.pyrunc("spec", "--rootless", "--bundle", user.home)
        assert spec.returncode == 0, spec.stderr
        config_path = os.path.join(user.home, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        os.unlink(config_path)
        config["root"] = {"path": os.path.join(other, "rootfs"), "readonly": False}
        config["process"].update(terminal=False, args=["sh", "-c", "echo x > /tmp/owned; echo x > /etc/passwd; "
                                                                     "echo ran"])
        with open(os.path.join(other, "config.json"), "w") as f:
            json.dump(config, f)
        result = user.pyrunc("run", "--bundle", other, "r9")
        assert result.stdout == "ran\n", result.stderr  # the container ran, and could write nothing
        assert result.stderr.count("Permission denied") == 2, result.stderr
        assert not os.path.exists(os.path.join(other, "rootfs", "tmp", "owned"))
        with open(os.path.join(other, "rootfs", "etc", "passwd")) as f:
            assert f.read().startswith("root:x:0:0")
        # And one the user cannot even reach: refused in one line, nothing left.
        os.chmod(other, 0o700)
        result = user.pyrunc("run", "--bundle", other, "r9")
        assert result.returncode == 1
        assert "config.json" in _one_line(result.stderr)
    finally:
        user.pyrunc("delete", "--force", "r9")
        shutil.rmtree(other, ignore_errors=True)
    assert user.pyrunc("list", "--quiet").stdout.split() == []


def test_rootless_config_without_user_namespace_refused(user, ubundle):
    ubundle.config["linux"]["namespaces"] = [n for n in ubundle.config["linux"]["namespaces"]
                                             if n["type"] != "user"]
    ubundle.config["linux"].pop("uidMappings")
    ubundle.config["linux"].pop("gidMappings")
    ubundle.write(["true"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r10")
    assert result.returncode == 1
    assert "a rootless container requires a user namespace" in _one_line(result.stderr)


def test_rootless_host_namespace_by_path_refused(user, ubundle):
    """Joining the host's network namespace (pid 1's): not the user's to enter."""
    ubundle.config["linux"]["namespaces"].append({"type": "network", "path": "/proc/1/ns/net"})
    ubundle.write(["true"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r11")
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert "/proc/1/ns/net" in line or "network" in line, line


def test_rootless_host_device_the_user_may_not_read(user, ubundle):
    """A host device only root may open (/dev/loop0, 0600): asked for in
    linux.devices, a rootless container still cannot read it."""
    device = next((d for d in ("/dev/loop0", "/dev/hwrng", "/dev/mem") if os.path.exists(d)
                   and not os.stat(d).st_mode & stat.S_IROTH), None)
    if device is None:
        pytest.skip("needs a device only root may read")
    st = os.stat(device)
    ubundle.config["linux"]["devices"] = [{"path": device, "type": "b" if stat.S_ISBLK(st.st_mode) else "c",
                                           "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                                           "fileMode": 0o666, "uid": 0, "gid": 0}]
    ubundle.write(["sh", "-c", f"head -c 1 {device} >/dev/null && echo READ"])
    result = user.pyrunc("run", "--bundle", ubundle.path, "r12")
    assert "READ" not in result.stdout
    assert result.returncode == 1
    # The container ran, and the kernel refused the open.
    assert f"head: {device}: Permission denied" in result.stderr, result.stderr
    # Nor did anything change the host's node.
    assert stat.S_IMODE(os.stat(device).st_mode) == stat.S_IMODE(st.st_mode)


def test_rootless_delegated_cgroup_used_with_limits(user, ubundle):
    """A cgroup root made and handed to the user (what delegation is): the
    container is limited in it, and delete removes only what it made."""
    from pyrunc.linux import cgroups

    mount = cgroups.detect_layout().mounts.get("memory")
    if mount is None:
        pytest.skip("needs a cgroup v1 memory hierarchy")
    delegated = os.path.join(mount, f"pyrunc-test-rl-{os.getpid()}")
    os.mkdir(delegated)
    try:
        for name in ("", "cgroup.procs", "tasks"):
            os.chown(os.path.join(delegated, name), user.uid, user.gid)
        ubundle.config["linux"]["cgroupsPath"] = f"/{os.path.basename(delegated)}/d1"
        ubundle.config["linux"]["resources"] = {"memory": {"limit": 100 * 1024 * 1024}}
        ubundle.write(["sleep", "30"])
        assert user.pyrunc("run", "-d", "--bundle", ubundle.path, "d1").returncode == 0
        pid = json.loads(user.pyrunc("state", "d1").stdout)["pid"]
        with open(os.path.join(delegated, "d1", "tasks")) as f:
            assert str(pid) in f.read().split()
        with open(os.path.join(delegated, "d1", "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 100 * 1024 * 1024
        assert user.pyrunc("delete", "--force", "d1").returncode == 0
        assert not os.path.exists(os.path.join(delegated, "d1"))
    finally:
        user.pyrunc("delete", "--force", "d1")
        os.rmdir(delegated)


def test_rootless_kill_all_without_cgroup_signals_init(user, ubundle):
    ubundle.write(["sleep", "30"])
    assert user.pyrunc("run", "-d", "--bundle", ubundle.path, "r13").returncode == 0
    result = user.pyrunc("kill", "--all", "r13", "KILL")
    assert result.returncode == 0, result.stderr
    for _ in range(200):
        if json.loads(user.pyrunc("state", "r13").stdout)["status"] == "stopped":
            break
    assert json.loads(user.pyrunc("state", "r13").stdout)["status"] == "stopped"


PODMAN_IMAGE = "/var/lib/pyrunc-e2e/images/busybox.docker.tar"  # tests/e2e/setup-engines.sh saves it


def test_rootless_podman_run_ps_exec_stop(user):
    """Rootless Podman driving pyrunc: the runtime runs as root of Podman's
    user namespace, with no privilege over the host."""
    if not shutil.which("podman") or not os.path.exists(PODMAN_IMAGE):
        pytest.skip(f"needs podman and {PODMAN_IMAGE} (make e2e sets them up)")
    image = os.path.join(user.home, "busybox.tar")
    shutil.copyfile(PODMAN_IMAGE, image)
    os.chown(image, user.uid, user.gid)
    podman = ("podman", "--runtime", PYRUNC)
    try:
        loaded = user.run("podman", "load", "-i", image, timeout=120)
        assert loaded.returncode == 0, loaded.stderr
        # No network: slirp4netns needs /dev/net/tun, which this host may deny.
        hi = user.run(*podman, "run", "--rm", "--network", "none", "busybox", "echo", "hi", "there", timeout=120)
        assert (hi.returncode, hi.stdout) == (0, "hi there\n"), hi.stderr
        started = user.run(*podman, "run", "-d", "--network", "none", "--name", "rl-long", "busybox",
                           "sleep", "1000", timeout=120)
        assert started.returncode == 0, started.stderr
        ps = user.run(*podman, "ps", "--all", "--format", "{{.Names}} {{.Status}}")
        assert "rl-long Up" in ps.stdout, ps
        ex = user.run(*podman, "exec", "rl-long", "sh", "-c", "id -u; cat /proc/self/uid_map")
        assert ex.returncode == 0, ex.stderr
        assert ex.stdout.split()[:1] == ["0"]
        # Container root is the user on the host (first line of the map).
        assert ex.stdout.split()[1:4] == ["0", str(user.uid), "1"]
        stopped = user.run(*podman, "stop", "-t", "1", "rl-long", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        ps = user.run(*podman, "ps", "--all", "--format", "{{.Names}} {{.Status}}")
        assert "rl-long Exited" in ps.stdout, ps
    finally:
        user.run(*podman, "rm", "--force", "rl-long", timeout=120)


def test_rootless_update_and_ps_without_cgroup_refused_in_one_line(user, ubundle):
    ubundle.write(["sleep", "30"])
    assert user.pyrunc("run", "-d", "--bundle", ubundle.path, "r14").returncode == 0
    for verb in (("update", "--memory", "100m", "r14"), ("ps", "r14")):
        result = user.pyrunc(*verb)
        assert result.returncode == 1
        assert "r14: " in _one_line(result.stderr) and "has no cgroup" in result.stderr, result.stderr
