"""`pyrunc run`: output, exit codes, and what the container sees."""

from __future__ import annotations

import os
import sys

from tests import cgroupfs
from tests.integration.conftest import cgroup_of, cgroups_path_for


def sh(bundle, script: str, **process):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.config["process"].update(process)
    bundle.write()


def test_run_echo_prints_and_exits_zero(runtime, bundle):
    sh(bundle, "echo hi there")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert result.stdout == "hi there\n"
    assert result.stderr == ""
    assert runtime.ids() == []


def test_run_exit_code_is_the_containers(runtime, bundle):
    sh(bundle, "exit 3")
    assert runtime("run", "--bundle", bundle.path, bundle.id).returncode == 3


def test_run_killed_by_signal_exits_128_plus_signal(runtime, bundle):
    # Without a pid namespace of its own the process is not an init, so the
    # kernel lets it kill itself.
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    sh(bundle, "kill -9 $$")
    assert runtime("run", "--bundle", bundle.path, bundle.id).returncode == 137


def test_run_flag_equals_form_works(runtime, bundle):
    sh(bundle, "echo ok")
    result = runtime("run", f"--bundle={bundle.path}", bundle.id)
    assert result.stdout == "ok\n", result


def test_run_keep_leaves_stopped_container(runtime, bundle):
    sh(bundle, "true")
    runtime.ok("run", "--keep", "--bundle", bundle.path, bundle.id)
    state = runtime.state(bundle.id)
    assert state["status"] == "stopped"
    assert state["pid"] == 0
    runtime.ok("delete", bundle.id)


def test_run_detach_returns_while_container_runs(runtime, bundle):
    sh(bundle, "sleep 30")
    pid_file = os.path.join(bundle.path, "pid")
    runtime.ok("run", "--detach", "--pid-file", pid_file, "--bundle", bundle.path, bundle.id)
    state = runtime.state(bundle.id)
    assert state["status"] == "running"
    assert open(pid_file).read() == str(state["pid"])
    runtime.ok("delete", "--force", bundle.id)


def test_container_sees_pid_1_and_its_hostname(runtime, bundle):
    bundle.config["hostname"] = "box-one"
    sh(bundle, "echo $$; hostname; cat /proc/sys/kernel/hostname")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["1", "box-one", "box-one"]


def test_container_sees_configured_user_cwd_env_umask(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 0o027}
    bundle.config["process"]["env"] = ["PATH=/bin", "GREETING=hello world"]
    bundle.config["process"]["cwd"] = "/srv/dir"
    sh(bundle, 'id -u; id -g; id -G; pwd; echo "$GREETING"; umask')
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.splitlines() == ["1000", "1001", "1001 1002 1003", "/srv/dir", "hello world", "0027"]


def test_container_sees_only_its_own_mounts(runtime, bundle):
    sh(bundle, "cat /proc/self/mountinfo")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    mount_points = [line.split()[4] for line in result.stdout.splitlines()]
    assert mount_points[0] == "/"
    assert "/proc" in mount_points and "/dev" in mount_points and "/sys" in mount_points
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    host_only = [m for m in mount_points if m.startswith((project, "/tmp/", "/run", "/home", "/boot"))]
    assert host_only == [], host_only


def test_container_has_required_dev_entries(runtime, bundle):
    sh(bundle, "for f in null zero full random urandom tty; do [ -c /dev/$f ] && echo $f; done; "
               "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["null", "zero", "full", "random", "urandom", "tty", "/proc/self/fd",
                                     "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


def test_container_runs_in_its_cgroup(runtime, bundle):
    sh(bundle, "sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    pid = runtime.state(bundle.id)["pid"]
    # Every hierarchy: the v1 ones stage1 joined itself and the v2 one it was
    # cloned into (launcher.fork_into).
    lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    has_v2 = os.path.isdir("/sys/fs/cgroup/unified") or os.path.isfile("/sys/fs/cgroup/cgroup.controllers")
    assert any(line.startswith("0::") for line in lines) == has_v2, lines
    assert lines and all(line.endswith(f":{cgroup_of(bundle.id)}") for line in lines), lines
    runtime.ok("delete", "--force", bundle.id)


def test_container_has_own_cgroup_namespace(runtime, bundle):
    sh(bundle, "cat /proc/self/cgroup")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert all(line.endswith(":/") for line in result.stdout.splitlines()), result.stdout


def test_stdin_is_inherited(runtime, bundle):
    sh(bundle, "read line; echo got $line")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id, input="ping\n")
    assert result.stdout == "got ping\n"


def test_readonly_root_refuses_writes(runtime, bundle):
    sh(bundle, "touch /newfile 2>/dev/null && echo wrote || echo refused; touch /tmp/x && echo tmp-ok")
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["refused", "tmp-ok"]


def test_writable_root_when_not_readonly(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    sh(bundle, "touch /newfile && echo wrote")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "wrote\n"
    assert os.path.exists(os.path.join(bundle.rootfs, "newfile"))


def test_no_pivot_runs_the_container(runtime, bundle):
    sh(bundle, "echo $$; ls /bin/busybox")
    result = runtime.ok("run", "--no-pivot", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["1", "/bin/busybox"]


def test_masked_and_readonly_paths(runtime, bundle):
    os.makedirs(os.path.join(bundle.rootfs, "secret-dir"))
    for name in ("secret.txt", "secret-dir/inner.txt"):
        with open(os.path.join(bundle.rootfs, name), "w") as f:
            f.write("secret\n")
    bundle.config["linux"]["maskedPaths"] += ["/secret.txt", "/secret-dir", "/does/not/exist"]
    bundle.config["linux"]["readonlyPaths"] += ["/tmp", "/missing"]
    bundle.config["root"]["readonly"] = False
    sh(bundle, "wc -c < /secret.txt; ls /secret-dir | wc -l; "
               "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly; "
               "touch /tmp/x 2>/dev/null && echo writable || echo readonly; touch /ok && echo root-writable")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["0", "0", "readonly", "readonly", "root-writable"]


def test_capabilities_are_exactly_the_configured_ones(runtime, bundle):
    sh(bundle, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    caps = dict(line.split(":\t") for line in result.stdout.splitlines())
    # CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29)
    expected = f"{(1 << 5) | (1 << 10) | (1 << 29):016x}"
    assert caps == {"CapInh": "0" * 16, "CapPrm": expected, "CapEff": expected, "CapBnd": expected,
                    "CapAmb": "0" * 16}


def test_rlimits_and_no_new_privileges(runtime, bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    sh(bundle, "ulimit -n; ulimit -Hn; ulimit -c; grep NoNewPrivs /proc/self/status")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.split() == ["512", "768", "0", "NoNewPrivs:", "1"]


def test_time_namespace_offsets_shift_boottime(runtime, bundle):
    if not os.path.exists("/proc/self/ns/time"):
        import pytest

        pytest.skip("kernel has no time namespaces")
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0}}
    sh(bundle, "cut -d. -f1 /proc/uptime")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert int(result.stdout) >= 864000


def test_joins_uts_namespace_by_path(runtime, bundle, tmp_path):
    import subprocess

    holder = subprocess.Popen(["unshare", "--uts", "sh", "-c", "hostname joined-uts; echo ready; exec sleep 60"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        bundle.config.pop("hostname")
        for ns in bundle.config["linux"]["namespaces"]:
            if ns["type"] == "uts":
                ns["path"] = f"/proc/{holder.pid}/ns/uts"
        sh(bundle, "hostname")
        result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
        assert result.stdout == "joined-uts\n"
    finally:
        holder.kill()
        holder.wait()


def test_no_network_namespace_shares_host_network(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "network"]
    sh(bundle, "cat /proc/net/dev | wc -l")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    host_lines = len(open("/proc/net/dev").read().splitlines())
    assert int(result.stdout) == host_lines


def test_bind_mount_from_host_dir(runtime, bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "rw"]})
    sh(bundle, "cat /data/in.txt; echo from container > /data/out.txt")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "from host\n"
    assert (shared / "out.txt").read_text() == "from container\n"


def test_readonly_bind_mount_refuses_writes(runtime, bundle, tmp_path):
    shared = tmp_path / "ro"
    shared.mkdir()
    bundle.config["mounts"].append({"destination": "/ro", "type": "bind", "source": str(shared),
                                    "options": ["bind", "ro"]})
    sh(bundle, "touch /ro/x 2>/dev/null && echo wrote || echo refused")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "refused\n"
    assert not (shared / "x").exists()


def test_recursive_readonly_bind_mount_covers_submounts(runtime, bundle, tmp_path):
    """"rro" (mount_setattr with AT_RECURSIVE): read-only down to a mount
    under the source. Its AT_EMPTY_PATH is pyrunc's own constant; os has none
    before Python 3.14, and this crashed with an AttributeError."""
    shared = tmp_path / "rro"
    (shared / "sub").mkdir(parents=True)
    bundle.config["mounts"].append({"destination": "/rro", "type": "bind", "source": str(shared),
                                    "options": ["rbind", "rro"]})
    sh(bundle, "touch /rro/x 2>/dev/null && echo wrote || echo refused;"
               "touch /rro/sub/y 2>/dev/null && echo wrote || echo refused")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout == "refused\nrefused\n"
    assert not (shared / "x").exists() and not (shared / "sub" / "y").exists()


def test_run_no_subreaper_still_returns_exit_code(runtime, bundle):
    sh(bundle, "exit 7")
    assert runtime("run", "--no-subreaper", "--bundle", bundle.path, bundle.id).returncode == 7


def test_delete_force_kills_every_process_without_pid_namespace(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    sh(bundle, "sleep 30 & sleep 30 & exec sleep 30")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    import time

    time.sleep(0.3)
    state = runtime.state(bundle.id)
    procs = os.path.join(cgroupfs.directory("pids", cgroup_of(bundle.id)), "cgroup.procs")
    pids = [int(p) for p in open(procs).read().split()]
    assert len(pids) == 3 and state["pid"] in pids
    runtime.ok("delete", "--force", bundle.id)
    for pid in pids:
        try:
            assert open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            pass


import pytest  # noqa: E402


@pytest.mark.parametrize("propagation", ["shared", "rshared", "slave", "rslave", "private", "unbindable"])
def test_rootfs_propagation_applies_to_container_root(runtime, bundle, propagation):
    bundle.config["linux"]["rootfsPropagation"] = propagation
    sh(bundle, "head -1 /proc/self/mountinfo")
    result = runtime.ok("run", "--bundle", bundle.path, bundle.id)
    optional = result.stdout.split(" - ")[0].split()[6:]
    if "shared" in propagation:
        assert any(o.startswith("shared:") for o in optional), result.stdout
    elif "unbindable" in propagation:
        assert "unbindable" in optional, result.stdout
    else:
        # A slave of a private host mount has no master: private either way.
        assert not any(o.startswith("shared:") for o in optional), result.stdout


def test_tmpfs_tmpcopyup_copies_the_covered_directory(runtime, bundle):
    # podman's --tmpfs default: the tmpfs starts with what the image had there
    rootfs = os.path.join(bundle.path, "rootfs")
    os.makedirs(os.path.join(rootfs, "data", "sub"))
    with open(os.path.join(rootfs, "data", "sub", "file"), "w") as f:
        f.write("from-image\n")
    os.chmod(os.path.join(rootfs, "data", "sub", "file"), 0o604)
    os.chown(os.path.join(rootfs, "data", "sub", "file"), 65534, 65534)
    os.symlink("sub/file", os.path.join(rootfs, "data", "link"))
    os.chmod(os.path.join(rootfs, "data"), 0o750)
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["nosuid", "nodev", "tmpcopyup", "ro"]})
    sh(bundle, "cat /data/link; stat -c '%a %u:%g' /data/sub/file /data; "
               "grep -c ' /data .* - tmpfs ' /proc/self/mountinfo; touch /data/x 2>/dev/null || echo ro")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.returncode == 0, result
    assert result.stdout == "from-image\n604 65534:65534\n750 0:0\n1\nro\n"


def test_tmpfs_without_tmpcopyup_starts_empty(runtime, bundle):
    os.makedirs(os.path.join(bundle.path, "rootfs", "data"))
    open(os.path.join(bundle.path, "rootfs", "data", "file"), "w").close()
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": []})
    sh(bundle, "ls -A /data | wc -l")
    result = runtime("run", "--bundle", bundle.path, bundle.id)
    assert result.stdout.strip() == "0", result


def test_runs_where_clone3_is_refused(runtime, bundle):
    """Docker's default seccomp profile answers clone3 with ENOSYS, so that
    is what pyrunc meets nested in a container: it forks instead, stage1
    makes the namespaces, and the container is the same (pid 1, in every
    cgroup hierarchy)."""
    sh(bundle, "echo $$; cat /proc/self/cgroup")
    refuse_clone3 = ("import errno, os, sys, pyseccomp as s; f = s.SyscallFilter(s.ALLOW); "
                     "f.add_rule(s.ERRNO(errno.ENOSYS), 'clone3'); f.load(); os.execv(sys.argv[1], sys.argv[1:])")
    result = runtime.ok("--debug", "run", "--bundle", bundle.path, bundle.id,
                        wrapper=[sys.executable, "-c", refuse_clone3])
    assert "clone3 into" in result.stderr and "phase forked stage1" in result.stderr
    pid, *cgroups = result.stdout.splitlines()
    assert pid == "1" and cgroups and all(line.endswith(":/") for line in cgroups), result.stdout


def test_joined_pid_namespace_run_returns_the_exit_code_with_and_without_subreaper(runtime, bundle, new_id):
    """Joining a pid namespace, the init is the stub's child: run waits for
    it as subreaper, or (--no-subreaper) through stage1, the stub reaping it."""
    sh(bundle, "sleep 60")
    runtime.ok("run", "--detach", "--bundle", bundle.path, bundle.id)
    holder = runtime.state(bundle.id)["pid"]
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.config["linux"]["namespaces"].append({"type": "pid", "path": f"/proc/{holder}/ns/pid"})
    for flags, script, code in (((), "exit 5", 5), (("--no-subreaper",), "exit 6", 6),
                                (("--no-subreaper",), "kill -TERM $$", 143)):
        other = new_id()
        bundle.config["linux"]["cgroupsPath"] = cgroups_path_for(other)
        sh(bundle, script)
        assert runtime("run", *flags, "--bundle", bundle.path, other).returncode == code, (flags, script)
