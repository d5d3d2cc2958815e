"""The pure parts of pyrunc.linux: signal names, /proc parsers, mount options,
time-namespace offsets, the cgroup layout and paths, and the cgroup directory
manager on a tmp_path tree (no real cgroupfs, no root)."""

from __future__ import annotations

import os
import posixpath
import signal as std_signal

import pytest

from pyrunc.errors import KernelError, PyruncError
from pyrunc.linux import _libc, cgroups, mounts, namespaces, proc, signals
from pyrunc.linux.cgroups import fs as cgroup_fs
from pyrunc.linux.cgroups.fs import CgroupDirs
from pyrunc.linux.signals import parse_signal

# ---------------------------------------------------------------- signals


@pytest.mark.parametrize("text, number", [
    ("0", 0), ("00", 0), ("9", 9), ("1", 1), ("15", 15), ("64", 64), (" 9 ", 9), ("09", 9),
    ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("sigkill", 9), ("SigTerm", 15), ("TERM", 15),
    ("HUP", 1), ("SIGUSR1", 10), ("USR2", 12), ("CHLD", 17), ("WINCH", 28), ("SYS", 31),
    ("IOT", 6), ("POLL", 29), ("IO", 29),
    ("RTMIN", 34), ("SIGRTMIN", 34), ("RTMIN+0", 34), ("RTMIN+1", 35), ("rtmin+3", 37), ("SIGRTMIN+30", 64),
    ("RTMAX", 64), ("SIGRTMAX", 64), ("RTMAX-0", 64), ("RTMAX-1", 63), ("rtmax-2", 62), ("SIGRTMAX-30", 34),
])
def test_parse_signal_valid_number(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", [
    "65", "100", "-9", "+9", "", " ", "FOO", "SIGFOO", "SIG", "SIGSIGKILL", "KILL9", "9KILL", "9.0",
    "RTMIN+99", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMAX-31", "RTMIN+", "RTMAX-", "RTMIN+x", "RTMIN 1",
    "RTMIN+-1", "RTMAX-+1",
])
def test_parse_signal_invalid_value_error(text):
    with pytest.raises(ValueError, match="invalid signal"):
        parse_signal(text)


def test_parse_signal_error_names_value():
    with pytest.raises(ValueError, match="'BOGUS'"):
        parse_signal("BOGUS")
    with pytest.raises(ValueError, match="0 to 64"):
        parse_signal("65")


def test_signal_table_matches_host_signal_module():
    for name, number in signals.SIGNALS.items():
        host = getattr(std_signal, "SIG" + name, None)
        if host is not None:
            assert int(host) == number, name


def test_signal_rt_range_matches_libc():
    assert signals.SIGRTMIN == std_signal.SIGRTMIN
    assert signals.SIGRTMAX == std_signal.SIGRTMAX


# ---------------------------------------------------------------- /proc/<pid>/stat

def _stat_line(pid=1234, comm="a) (b c", state="S", starttime=98765):
    # fields 3..22 after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
    rest = [state, "1", str(pid), str(pid), "0", "-1", "4194560", "100", "0", "0", "0", "5", "6", "0", "0",
            "20", "0", "1", "0", str(starttime), "12345678", "100", "18446744073709551615"]
    return f"{pid} ({comm}) " + " ".join(rest) + "\n"


@pytest.mark.parametrize("comm", ["bash", "a b", "a) (b c", ")", "((", "x) S 1 2 3 (y", ""])
def test_parse_stat_odd_command_name_state_and_start(comm):
    assert proc.parse_stat(_stat_line(comm=comm, state="Z", starttime=4242)) == ("Z", 4242)


def test_parse_stat_large_start_time():
    assert proc.parse_stat(_stat_line(starttime=2**40)) == ("S", 2**40)


def test_read_stat_self_running():
    state, start = proc.read_stat(os.getpid())
    assert state == "R"
    assert start > 0
    assert proc.read_start_time(os.getpid()) == start


def test_read_stat_missing_pid_none():
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    assert proc.read_stat(pid_max + 1) is None
    assert proc.read_start_time(pid_max + 1) is None


def _fake_proc(tmp_path, pid, text):
    (tmp_path / str(pid)).mkdir()
    (tmp_path / str(pid) / "stat").write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize("state, alive", [("R", True), ("S", True), ("D", True), ("T", True), ("t", True),
                                          ("Z", False), ("X", False), ("x", False)])
def test_is_alive_by_state_letter(tmp_path, state, alive):
    fake = _fake_proc(tmp_path, 77, _stat_line(pid=77, state=state, starttime=500))
    assert proc.is_alive(77, 500, fake) is alive


def test_is_alive_start_time_mismatch_false(tmp_path):
    fake = _fake_proc(tmp_path, 77, _stat_line(pid=77, starttime=500))
    assert proc.is_alive(77, 501, fake) is False


def test_is_alive_garbage_stat_false(tmp_path):
    fake = _fake_proc(tmp_path, 77, "77 (truncated")
    assert proc.read_stat(77, fake) is None
    assert proc.is_alive(77, 500, fake) is False


@pytest.mark.parametrize("pid", [0, -1])
def test_is_alive_non_positive_pid_false(pid):
    assert proc.is_alive(pid, 0) is False


# ---------------------------------------------------------------- mountinfo

MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "23 22 0:5 / /dev rw,nosuid,relatime shared:2 master:7 propagate_from:3 - devtmpfs udev rw,size=4096k,mode=755\n"
    "24 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "\n"
    "25 22 8:1 /src\\040dir /mnt/with\\040space\\011tab rw - ext4 /dev/sda1 rw\n"
    "26 22 0:40 / /mnt/a\\040-\\040b rw shared:9 - tmpfs my\\134source rw\n"
    "27 22 0:41 / /mnt/nl\\012x rw - fuse.sshfs user@host:/dir rw,user_id=0\n"
)


def test_parse_mountinfo_fields():
    entries = proc.parse_mountinfo(MOUNTINFO)
    assert len(entries) == 6
    root = entries[0]
    assert root == {
        "id": 22, "parent": 1, "root": "/", "mount_point": "/", "options": "rw,relatime",
        "optional": ["shared:1"], "fstype": "ext4", "source": "/dev/sda1", "super_options": "rw,errors=remount-ro",
    }


def test_parse_mountinfo_optional_fields_all_kept():
    dev = proc.parse_mountinfo(MOUNTINFO)[1]
    assert dev["optional"] == ["shared:2", "master:7", "propagate_from:3"]
    assert dev["fstype"] == "devtmpfs"
    assert dev["source"] == "udev"


def test_parse_mountinfo_no_optional_fields_empty():
    assert proc.parse_mountinfo(MOUNTINFO)[2]["optional"] == []


def test_parse_mountinfo_octal_escapes_decoded():
    entries = proc.parse_mountinfo(MOUNTINFO)
    assert entries[3]["root"] == "/src dir"
    assert entries[3]["mount_point"] == "/mnt/with space\ttab"
    assert entries[4]["mount_point"] == "/mnt/a - b"  # an escaped " - " is not the separator
    assert entries[4]["source"] == "my\\source"
    assert entries[4]["fstype"] == "tmpfs"
    assert entries[5]["mount_point"] == "/mnt/nl\nx"
    assert entries[5]["source"] == "user@host:/dir"


def test_parse_mountinfo_self_has_root():
    entries = proc.read_mountinfo("self")
    assert any(e["mount_point"] == "/" for e in entries)
    assert all(isinstance(e["id"], int) for e in entries)


# ---------------------------------------------------------------- /proc/<pid>/cgroup

def test_parse_cgroup_hybrid_lines():
    text = (
        "12:cpu,cpuacct:/user.slice\n"
        "11:name=systemd:/user.slice/session-1.scope\n"
        "10:memory:/a:b:c\n"
        "9:net_cls,net_prio:/\n"
        "0::/user.slice/session-1.scope\n"
    )
    assert proc.parse_cgroup(text) == {
        "cpu": "/user.slice", "cpuacct": "/user.slice",
        "systemd": "/user.slice/session-1.scope",
        "memory": "/a:b:c",
        "net_cls": "/", "net_prio": "/",
        "": "/user.slice/session-1.scope",
    }


def test_parse_cgroup_v2_only():
    assert proc.parse_cgroup("0::/x\n") == {"": "/x"}


def test_parse_cgroup_malformed_lines_skipped():
    assert proc.parse_cgroup("garbage\n\n3:pids\n4:pids:/p\n") == {"pids": "/p"}


def test_read_cgroup_self_has_entries():
    assert proc.read_cgroup("self")


# ---------------------------------------------------------------- mount options

MS = {name: getattr(_libc, name) for name in dir(_libc) if name.startswith("MS_")}


def test_mount_constants_kernel_values():
    assert (mounts.MS_RDONLY, mounts.MS_NOSUID, mounts.MS_NODEV, mounts.MS_NOEXEC) == (1, 2, 4, 8)
    assert (mounts.MS_BIND, mounts.MS_REC, mounts.MS_REMOUNT) == (0x1000, 0x4000, 0x20)
    assert (mounts.MS_PRIVATE, mounts.MS_SLAVE, mounts.MS_SHARED, mounts.MS_UNBINDABLE) == (
        1 << 18, 1 << 19, 1 << 20, 1 << 17)
    assert (mounts.MS_RELATIME, mounts.MS_STRICTATIME, mounts.MS_NOATIME) == (1 << 21, 1 << 24, 0x400)
    assert (_libc.MOUNT_ATTR_RDONLY, _libc.MOUNT_ATTR_NOSUID, _libc.MOUNT_ATTR_NODEV, _libc.MOUNT_ATTR_NOEXEC) == (
        1, 2, 4, 8)
    assert (_libc.MOUNT_ATTR__ATIME, _libc.MOUNT_ATTR_RELATIME, _libc.MOUNT_ATTR_NOATIME,
            _libc.MOUNT_ATTR_STRICTATIME) == (0x70, 0, 0x10, 0x20)
    assert (_libc.MOUNT_ATTR_NODIRATIME, _libc.MOUNT_ATTR_NOSYMFOLLOW) == (0x80, 0x200000)


def test_parse_mount_options_empty_plan():
    plan = mounts.parse_mount_options([])
    assert (plan.flags, plan.propagation, plan.attr_set, plan.attr_clr, plan.data, plan.extensions) == (
        0, [], 0, 0, [], [])
    assert not plan.is_bind


def test_parse_mount_options_flags_set():
    plan = mounts.parse_mount_options(["ro", "nosuid", "nodev", "noexec", "noatime"])
    assert plan.flags == mounts.MS_RDONLY | mounts.MS_NOSUID | mounts.MS_NODEV | mounts.MS_NOEXEC | mounts.MS_NOATIME
    assert plan.data == []


def test_parse_mount_options_later_option_clears_flag():
    plan = mounts.parse_mount_options(["ro", "nosuid", "rw", "suid", "noexec", "exec", "dev"])
    assert plan.flags == 0


def test_parse_mount_options_clear_then_set_wins():
    assert mounts.parse_mount_options(["rw", "ro"]).flags == mounts.MS_RDONLY


@pytest.mark.parametrize("option", ["defaults", "async", "atime", "diratime", "norelatime", "nostrictatime",
                                    "loud", "nomand", "noiversion", "nolazytime", "symfollow"])
def test_parse_mount_options_clearing_alone_no_flags(option):
    plan = mounts.parse_mount_options([option])
    assert plan.flags == 0
    assert plan.data == []


def test_parse_mount_options_bind_and_rbind():
    bind = mounts.parse_mount_options(["bind"])
    assert bind.flags == mounts.MS_BIND
    assert bind.is_bind and not bind.is_recursive_bind
    rbind = mounts.parse_mount_options(["rbind"])
    assert rbind.flags == mounts.MS_BIND | mounts.MS_REC
    assert rbind.is_bind and rbind.is_recursive_bind


def test_parse_mount_options_propagation_list_in_order():
    plan = mounts.parse_mount_options(["rprivate", "shared", "rslave", "unbindable", "private", "rshared",
                                       "slave", "runbindable"])
    assert plan.propagation == [
        mounts.MS_PRIVATE | mounts.MS_REC, mounts.MS_SHARED, mounts.MS_SLAVE | mounts.MS_REC, mounts.MS_UNBINDABLE,
        mounts.MS_PRIVATE, mounts.MS_SHARED | mounts.MS_REC, mounts.MS_SLAVE, mounts.MS_UNBINDABLE | mounts.MS_REC,
    ]
    assert plan.flags == 0


def test_parse_mount_options_recursive_attrs_set():
    plan = mounts.parse_mount_options(["rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"])
    assert plan.attr_set == (_libc.MOUNT_ATTR_RDONLY | _libc.MOUNT_ATTR_NOSUID | _libc.MOUNT_ATTR_NODEV
                             | _libc.MOUNT_ATTR_NOEXEC | _libc.MOUNT_ATTR_NODIRATIME | _libc.MOUNT_ATTR_NOSYMFOLLOW)
    assert plan.attr_clr == 0
    assert plan.flags == 0


def test_parse_mount_options_recursive_attr_clear_overrides_set():
    plan = mounts.parse_mount_options(["rro", "rnosuid", "rrw"])
    assert plan.attr_set == _libc.MOUNT_ATTR_NOSUID
    assert plan.attr_clr == _libc.MOUNT_ATTR_RDONLY


def test_parse_mount_options_recursive_attr_set_overrides_clear():
    plan = mounts.parse_mount_options(["rsuid", "rnosuid"])
    assert plan.attr_set == _libc.MOUNT_ATTR_NOSUID
    assert plan.attr_clr == 0


@pytest.mark.parametrize("options, attr", [
    (["rnoatime"], _libc.MOUNT_ATTR_NOATIME),
    (["rstrictatime"], _libc.MOUNT_ATTR_STRICTATIME),
    (["rrelatime"], _libc.MOUNT_ATTR_RELATIME),
    (["rnoatime", "rstrictatime"], _libc.MOUNT_ATTR_STRICTATIME),
    (["rstrictatime", "rrelatime"], _libc.MOUNT_ATTR_RELATIME),
    (["rrelatime", "rnoatime"], _libc.MOUNT_ATTR_NOATIME),
])
def test_parse_mount_options_atime_group_last_wins(options, attr):
    plan = mounts.parse_mount_options(options + ["rnodev"])
    assert plan.attr_set & _libc.MOUNT_ATTR__ATIME == attr
    assert plan.attr_clr & _libc.MOUNT_ATTR__ATIME == _libc.MOUNT_ATTR__ATIME  # the whole group is replaced
    assert plan.attr_set & _libc.MOUNT_ATTR_NODEV


def test_parse_mount_options_unknown_to_data_in_order():
    plan = mounts.parse_mount_options(["mode=755", "nosuid", "size=65536k", "newinstance", "ptmxmode=0666",
                                       "gid=5", "foo", "lowerdir=/a:/b"])
    assert plan.data == ["mode=755", "size=65536k", "newinstance", "ptmxmode=0666", "gid=5", "foo", "lowerdir=/a:/b"]
    assert plan.flags == mounts.MS_NOSUID


def test_parse_mount_options_extensions_kept_not_data():
    plan = mounts.parse_mount_options(["tmpcopyup", "mode=1777", "idmap", "ridmap"])
    assert plan.extensions == ["tmpcopyup", "idmap", "ridmap"]
    assert plan.data == ["mode=1777"]


def test_parse_mount_options_known_set_covers_everything_but_data():
    for option in mounts.KNOWN_OPTIONS:
        assert mounts.parse_mount_options([option]).data == [], option


def test_parse_mount_options_case_sensitive_unknown_to_data():
    assert mounts.parse_mount_options(["RO"]).data == ["RO"]


# ---------------------------------------------------------------- time namespace offsets

@pytest.mark.parametrize("offsets, text", [
    ({}, ""),
    ({"monotonic": {"secs": 5, "nanosecs": 10}}, "monotonic 5 10\n"),
    ({"boottime": {"secs": -3}}, "boottime -3 0\n"),
    ({"boottime": {"nanosecs": 7}}, "boottime 0 7\n"),
    ({"boottime": {"secs": 1}, "monotonic": {"secs": 2}}, "monotonic 2 0\nboottime 1 0\n"),
    ({"realtime": {"secs": 9}}, ""),
])
def test_format_time_offsets_text(offsets, text):
    assert namespaces.format_time_offsets(offsets) == text


def test_namespace_tables_consistent():
    assert set(namespaces.CLONE_FLAGS) == set(namespaces.PROC_NAMES) == set(namespaces.JOIN_ORDER)
    assert namespaces.JOIN_ORDER[0] == "user"
    assert namespaces.JOIN_ORDER[-1] == "mount"


# ---------------------------------------------------------------- cgroup layout

HYBRID = (  # like this machine, plus the shared:N fields systemd hosts have
    "31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime shared:11 - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime shared:12 - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime shared:14 - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime shared:15 - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime shared:16 - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime shared:17 - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:18 - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:19 - cgroup2 cgroup2 rw\n"
)
UNIFIED = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
)
LEGACY = (
    "25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,name=systemd\n"
    "29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct\n"
    "30 25 0:27 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset\n"
    "31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup "
    "rw,net_cls,net_prio\n"
    "32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory\n"
)


def _layout(text):
    return cgroups.parse_layout(proc.parse_mountinfo(text))


def test_parse_layout_hybrid_v1_and_unified():
    layout = _layout(HYBRID)
    assert layout.mode == "hybrid"
    assert layout.mounts == {
        "cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
        "memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices",
        "freezer": "/sys/fs/cgroup/freezer", "blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids",
        "systemd": "/sys/fs/cgroup/systemd", "": "/sys/fs/cgroup/unified",
    }


def test_parse_layout_pure_v2_unified():
    layout = _layout(UNIFIED)
    assert layout.mode == "unified"
    assert layout.mounts == {"": "/sys/fs/cgroup"}


def test_parse_layout_pure_v1_comounted_legacy():
    layout = _layout(LEGACY)
    assert layout.mode == "legacy"
    assert layout.mounts == {
        "systemd": "/sys/fs/cgroup/systemd",
        "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
        "cpuset": "/sys/fs/cgroup/cpuset",
        "net_cls,net_prio": "/sys/fs/cgroup/net_cls,net_prio",
        "memory": "/sys/fs/cgroup/memory",
    }


def test_parse_layout_no_cgroups_none():
    layout = _layout("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    assert layout.mode == "none"
    assert layout.mounts == {}


def test_parse_layout_first_mount_of_hierarchy_wins():
    text = UNIFIED + "99 22 0:26 / /mnt/again rw - cgroup2 cgroup2 rw\n"
    assert _layout(text).mounts == {"": "/sys/fs/cgroup"}


def test_parse_layout_ro_super_option_not_a_controller():
    text = "32 31 0:29 / /sys/fs/cgroup/pids ro,relatime - cgroup cgroup ro,pids\n"
    assert _layout(text).mounts == {"pids": "/sys/fs/cgroup/pids"}


def test_parse_layout_v1_non_controller_options_ignored():
    text = (
        "26 25 0:23 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup "
        "rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd\n"
        "30 25 0:27 / /sys/fs/cgroup/cpuset rw shared:12 - cgroup cgroup rw,cpuset,clone_children\n"
        "32 25 0:29 / /sys/fs/cgroup/memory rw shared:14 - cgroup cgroup rw,noprefix,memory\n"
    )
    assert _layout(text).mounts == {
        "systemd": "/sys/fs/cgroup/systemd",
        "cpuset": "/sys/fs/cgroup/cpuset",
        "memory": "/sys/fs/cgroup/memory",
    }


def test_parse_layout_this_host_consistent():
    layout = cgroups.detect_layout()
    assert layout.mode in ("legacy", "hybrid", "unified", "none")
    for mount_point in layout.mounts.values():
        assert os.path.isabs(mount_point)


# ---------------------------------------------------------------- cgroup paths

OWN_HYBRID = {"cpu": "/", "cpuacct": "/", "cpuset": "/", "memory": "/process_api/9b33", "devices": "/",
              "freezer": "/", "blkio": "/", "pids": "/", "systemd": "/user.slice/s-1.scope", "": "/u/s-1.scope"}
OWN_LEGACY = {"systemd": "/system.slice/x.service", "cpu": "/system.slice", "cpuacct": "/system.slice",
              "cpuset": "/", "net_cls": "/", "net_prio": "/", "memory": "/system.slice/x.service"}


def _under(path, mount_point) -> bool:
    """`path` names mount_point or something below it, with no '..' left."""
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = normal[1:]
    return ".." not in path.split("/") and (normal == mount_point or normal.startswith(mount_point + "/"))


def _norm(path):
    normal = posixpath.normpath(path)
    return normal[1:] if normal.startswith("//") else normal


@pytest.mark.parametrize("text", [HYBRID, UNIFIED, LEGACY])
def test_resolve_paths_absolute_under_each_mount(text):
    layout = _layout(text)
    paths = cgroups.resolve_paths(layout, "/pyrunc/c1", "c1", own={"": "/ignored", "memory": "/ignored"})
    assert set(paths) == set(layout.mounts)
    for key, mount_point in layout.mounts.items():
        assert _norm(paths[key]) == mount_point + "/pyrunc/c1"


def test_resolve_paths_absolute_exact_string():
    paths = cgroups.resolve_paths(_layout(HYBRID), "/pyrunc/c1", "c1", own={})
    assert paths["cpu"] == "/sys/fs/cgroup/cpu/pyrunc/c1"
    assert cgroups.clean_path("/a/b") == "/a/b"


def test_resolve_paths_relative_under_own_cgroup():
    paths = cgroups.resolve_paths(_layout(HYBRID), "sub/c1", "c1", own=OWN_HYBRID)
    assert _norm(paths["memory"]) == "/sys/fs/cgroup/memory/process_api/9b33/sub/c1"
    assert _norm(paths["cpu"]) == "/sys/fs/cgroup/cpu/sub/c1"
    assert _norm(paths["systemd"]) == "/sys/fs/cgroup/systemd/user.slice/s-1.scope/sub/c1"
    assert _norm(paths[""]) == "/sys/fs/cgroup/unified/u/s-1.scope/sub/c1"


def test_resolve_paths_relative_comounted_uses_first_controller():
    paths = cgroups.resolve_paths(_layout(LEGACY), "c1", "c1", own=OWN_LEGACY)
    assert _norm(paths["cpu,cpuacct"]) == "/sys/fs/cgroup/cpu,cpuacct/system.slice/c1"
    assert _norm(paths["net_cls,net_prio"]) == "/sys/fs/cgroup/net_cls,net_prio/c1"
    assert _norm(paths["systemd"]) == "/sys/fs/cgroup/systemd/system.slice/x.service/c1"


def test_resolve_paths_relative_missing_own_entry_root():
    paths = cgroups.resolve_paths(_layout(UNIFIED), "c1", "c1", own={})
    assert _norm(paths[""]) == "/sys/fs/cgroup/c1"


@pytest.mark.parametrize("text, own", [(HYBRID, OWN_HYBRID), (LEGACY, OWN_LEGACY)])
def test_resolve_paths_empty_own_plus_id(text, own):
    layout = _layout(text)
    paths = cgroups.resolve_paths(layout, "", "my-container", own=own)
    for key, mount_point in layout.mounts.items():
        base = own.get(key.split(",")[0], "/")
        assert _norm(paths[key]) == _norm(mount_point + base + "/my-container")


def test_resolve_paths_unified_relative_under_own_parent():
    # runc fs2: the runtime's own cgroup holds processes, so no controller
    # can be enabled below it; its parent can (pure v2 hosts only).
    layout = _layout(UNIFIED)
    own = {"": "/system.slice/engine.service"}
    assert _norm(cgroups.resolve_paths(layout, "", "c1", own=own)[""]) == "/sys/fs/cgroup/system.slice/c1"
    assert _norm(cgroups.resolve_paths(layout, "a/c1", "c1", own=own)[""]) == "/sys/fs/cgroup/system.slice/a/c1"
    assert _norm(cgroups.resolve_paths(layout, "c1", "c1", own={"": "/"})[""]) == "/sys/fs/cgroup/c1"


def test_resolve_paths_without_own_reads_self(monkeypatch):
    monkeypatch.setattr(cgroups.proc, "read_cgroup", lambda pid="self": {"": "/from/self"})
    paths = cgroups.resolve_paths(_layout(UNIFIED), "", "c1")
    assert _norm(paths[""]) == "/sys/fs/cgroup/from/c1"


@pytest.mark.parametrize("cgroups_path", [
    "/../../etc", "/..", "/../", "/a/../../../b", "/./../x", "//../x",
    "a/../../..", "../..", "..", "../../../../etc/passwd", "a/./../../b/../..",
])
@pytest.mark.parametrize("text, own", [(HYBRID, OWN_HYBRID), (LEGACY, OWN_LEGACY), (UNIFIED, {"": "/u.slice/x"})])
def test_resolve_paths_escaping_stays_under_mount(cgroups_path, text, own):
    layout = _layout(text)
    paths = cgroups.resolve_paths(layout, cgroups_path, "c1", own=own)
    for key, mount_point in layout.mounts.items():
        assert _under(paths[key], mount_point), (key, paths[key])


def test_resolve_paths_escaping_absolute_lands_inside():
    paths = cgroups.resolve_paths(_layout(UNIFIED), "/../../etc", "c1", own={})
    assert _norm(paths[""]) == "/sys/fs/cgroup/etc"


def test_resolve_paths_escaping_relative_clamped_at_its_base():
    paths = cgroups.resolve_paths(_layout(HYBRID), "a/../../../b", "c1", own=OWN_HYBRID)
    assert _norm(paths[""]) == "/sys/fs/cgroup/unified/u/s-1.scope/b"
    paths = cgroups.resolve_paths(_layout(UNIFIED), "a/../../../b", "c1", own={"": "/u.slice/x"})
    assert _norm(paths[""]) == "/sys/fs/cgroup/u.slice/b"


def test_resolve_paths_no_hierarchy_error():
    with pytest.raises(PyruncError, match="no cgroup hierarchy"):
        cgroups.resolve_paths(cgroups.Layout({}, "none"), "/x", "c1", own={})


def test_resolve_paths_relative_mount_root_subtracted():
    text = "32 31 0:29 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    paths = cgroups.resolve_paths(_layout(text), "", "c1", own={"memory": "/docker/abc"})
    assert _norm(paths["memory"]) == "/sys/fs/cgroup/memory/c1"


# ---------------------------------------------------------------- CgroupDirs on a tmp tree

@pytest.fixture()
def hierarchy(tmp_path):
    """Two fake hierarchies: a v1 'memory' and the v2 one."""
    (tmp_path / "memory").mkdir()
    (tmp_path / "unified").mkdir()
    return tmp_path


def test_cgroup_dirs_create_makes_missing_records_only_made(hierarchy):
    (hierarchy / "memory" / "pre").mkdir()
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/pre/a/c1"), "": str(hierarchy / "unified/pre2/c1")})
    dirs.create()
    assert (hierarchy / "memory/pre/a/c1").is_dir()
    assert (hierarchy / "unified/pre2/c1").is_dir()
    assert dirs.created == [
        str(hierarchy / "memory/pre/a"), str(hierarchy / "memory/pre/a/c1"),
        str(hierarchy / "unified/pre2"), str(hierarchy / "unified/pre2/c1"),
    ]


def test_cgroup_dirs_create_existing_records_nothing(hierarchy):
    (hierarchy / "memory/c1").mkdir()
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/c1")})
    dirs.create()
    assert dirs.created == []
    assert dirs.destroy() == []
    assert (hierarchy / "memory/c1").is_dir()


def test_cgroup_dirs_destroy_removes_only_created(hierarchy):
    (hierarchy / "memory/pre").mkdir()
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/pre/a/c1"), "": str(hierarchy / "unified/c1")})
    dirs.create()
    assert dirs.destroy() == []
    assert (hierarchy / "memory/pre").is_dir()  # existed before: survives
    assert not (hierarchy / "memory/pre/a").exists()
    assert not (hierarchy / "unified/c1").exists()
    assert (hierarchy / "unified").is_dir()


def test_cgroup_dirs_destroy_removes_nested_sub_cgroups_children_first(hierarchy):
    # exec --cgroup's (or the container's own) sub-cgroups, nested, go with it.
    dirs = CgroupDirs({"": str(hierarchy / "unified/c1")})
    dirs.create()
    for sub in ("a/b/c", "a/d", "e"):
        (hierarchy / "unified/c1" / sub).mkdir(parents=True)
    (hierarchy / "unified/c1/a/file").write_text("")  # not a cgroup: left for rmdir to refuse
    (hierarchy / "unified/c1/e/link").symlink_to(hierarchy / "memory")  # never followed
    tree = cgroup_fs.subtree(str(hierarchy / "unified/c1"))
    assert tree[0] == str(hierarchy / "unified/c1")
    assert sorted(tree[1:]) == sorted(str(hierarchy / "unified/c1" / s) for s in ("a", "a/b", "a/b/c", "a/d", "e"))
    assert all(tree.index(os.path.dirname(d)) < tree.index(d) for d in tree[1:])
    os.unlink(hierarchy / "unified/c1/a/file")
    os.unlink(hierarchy / "unified/c1/e/link")
    assert dirs.destroy() == []
    assert not (hierarchy / "unified/c1").exists()
    assert (hierarchy / "memory").is_dir()


def test_cgroup_dirs_destroy_parent_in_use_kept_quietly(hierarchy):
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/shared/c1")})
    dirs.create()
    (hierarchy / "memory/shared/other").mkdir()  # another container's cgroup under the same parent
    assert dirs.destroy() == []
    assert not (hierarchy / "memory/shared/c1").exists()
    assert (hierarchy / "memory/shared/other").is_dir()


def test_cgroup_dirs_destroy_busy_leaf_reported(hierarchy):
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/c1")})
    dirs.create()
    (hierarchy / "memory/c1/cgroup.procs").write_text("1\n")  # rmdir: ENOTEMPTY
    problems = dirs.destroy()
    assert problems == [f"remove cgroup {hierarchy / 'memory/c1'}: still busy"]


def test_cgroup_dirs_destroy_already_gone_fine(hierarchy):
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/c1")})
    dirs.create()
    os.rmdir(hierarchy / "memory/c1")
    assert dirs.destroy() == []


def test_cgroup_dirs_state_round_trip(hierarchy):
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/a/c1"), "": str(hierarchy / "unified/c1")})
    dirs.create()
    from pyrunc import jsonlite

    again = CgroupDirs.from_state(jsonlite.loads(jsonlite.dumps(dirs.to_state())))
    assert again.paths == dirs.paths
    assert again.created == dirs.created
    assert again.destroy() == []
    assert not (hierarchy / "memory/a").exists()


@pytest.mark.parametrize("data", [None, {}, {"paths": None, "created": None}])
def test_cgroup_dirs_from_empty_state_empty(data):
    dirs = CgroupDirs.from_state(data)
    assert dirs.paths == {} and dirs.created == []
    assert dirs.pids() == []
    assert dirs.destroy() == []


def test_cgroup_dirs_from_state_copies():
    data = {"paths": {"": "/x"}, "created": ["/x"]}
    dirs = CgroupDirs.from_state(data)
    dirs.created.append("/y")
    dirs.paths["a"] = "/a"
    assert data == {"paths": {"": "/x"}, "created": ["/x"]}


def test_cgroup_dirs_pids_whole_subtree(hierarchy):
    leaf = hierarchy / "unified/c1"
    (leaf / "sub/deeper").mkdir(parents=True)
    (leaf / "cgroup.procs").write_text("10\n11\n")
    (leaf / "sub/cgroup.procs").write_text("12\n\n")
    (leaf / "sub/deeper/cgroup.procs").write_text("")
    (hierarchy / "unified/cgroup.procs").write_text("999\n")  # the parent is not the container's
    (hierarchy / "memory/c1").mkdir()
    (hierarchy / "memory/c1/cgroup.procs").write_text("555\n")
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/c1"), "": str(leaf)})
    assert sorted(dirs.pids()) == [10, 11, 12]  # the v2 hierarchy is preferred


def test_cgroup_dirs_pids_v1_only_first_hierarchy(hierarchy):
    (hierarchy / "memory/c1").mkdir()
    (hierarchy / "memory/c1/cgroup.procs").write_text("7\n")
    assert CgroupDirs({"memory": str(hierarchy / "memory/c1")}).pids() == [7]


def test_cgroup_dirs_pids_missing_dir_empty(hierarchy):
    assert CgroupDirs({"": str(hierarchy / "unified/absent")}).pids() == []


def test_cgroup_dirs_join_self_writes_tasks_in_v1_and_procs_in_v2(hierarchy):
    """v1: "0" into tasks (the lock-free way for a single-threaded process);
    v2: cgroup.procs, unless the process was born there (v2=False)."""
    for key in ("memory", "unified"):
        (hierarchy / key / "c1").mkdir()
        for name in ("tasks", "cgroup.procs"):
            (hierarchy / key / "c1" / name).write_text("")
    dirs = CgroupDirs({"memory": str(hierarchy / "memory/c1"), "": str(hierarchy / "unified/c1")})
    dirs.join_self()
    assert (hierarchy / "memory/c1/tasks").read_text() == "0"
    assert (hierarchy / "memory/c1/cgroup.procs").read_text() == ""
    assert (hierarchy / "unified/c1/cgroup.procs").read_text() == "0"
    (hierarchy / "unified/c1/cgroup.procs").write_text("")
    dirs.join_self(v2=False)
    assert (hierarchy / "unified/c1/cgroup.procs").read_text() == ""
    assert dirs.v2_path == str(hierarchy / "unified/c1")


def test_cgroup_dirs_join_missing_dir_kernel_error(hierarchy):
    with pytest.raises(KernelError, match="join cgroup"):
        CgroupDirs({"": str(hierarchy / "unified/absent")}).join_self()


def test_cgroup_dirs_create_unwritable_kernel_error(hierarchy, monkeypatch):
    def refuse(path, mode=0o777):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(cgroup_fs.os, "mkdir", refuse)
    with pytest.raises(KernelError, match="create cgroup"):
        CgroupDirs({"": str(hierarchy / "unified/c1")}).create()


# ---------------------------------------------------------------- cpuset inheritance

def _cpuset_dir(path, cpus="", mems=""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "cpuset.cpus").write_text(cpus)
    (path / "cpuset.mems").write_text(mems)


def test_inherit_cpuset_empty_copied_from_parent(tmp_path):
    _cpuset_dir(tmp_path / "cpuset", "0-3\n", "0\n")
    _cpuset_dir(tmp_path / "cpuset/c1", "\n", "")
    cgroup_fs._inherit_cpuset(str(tmp_path / "cpuset/c1"))
    assert (tmp_path / "cpuset/c1/cpuset.cpus").read_text() == "0-3"
    assert (tmp_path / "cpuset/c1/cpuset.mems").read_text() == "0"


def test_inherit_cpuset_set_values_kept(tmp_path):
    _cpuset_dir(tmp_path / "cpuset", "0-3", "0-1")
    _cpuset_dir(tmp_path / "cpuset/c1", "2", "")
    cgroup_fs._inherit_cpuset(str(tmp_path / "cpuset/c1"))
    assert (tmp_path / "cpuset/c1/cpuset.cpus").read_text() == "2"
    assert (tmp_path / "cpuset/c1/cpuset.mems").read_text() == "0-1"


def test_inherit_cpuset_missing_files_kernel_error(tmp_path):
    (tmp_path / "cpuset/c1").mkdir(parents=True)
    with pytest.raises(KernelError, match="set up cpuset cgroup"):
        cgroup_fs._inherit_cpuset(str(tmp_path / "cpuset/c1"))


@pytest.fixture()
def kernel_like_mkdir(monkeypatch):
    """os.mkdir as cpusetfs does it: the new directory comes with empty cpuset files."""
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):
        real_mkdir(path, mode)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(path, name), "w"):
                pass

    monkeypatch.setattr(cgroup_fs.os, "mkdir", mkdir)


@pytest.mark.parametrize("key", ["cpuset", "cpu,cpuset"])
def test_cgroup_dirs_create_cpuset_chain_inherits(tmp_path, kernel_like_mkdir, key):
    _cpuset_dir(tmp_path / "cpuset", "0-7", "0")
    dirs = CgroupDirs({key: str(tmp_path / "cpuset/pod/c1")})
    dirs.create()
    for level in ("pod", "pod/c1"):
        assert (tmp_path / "cpuset" / level / "cpuset.cpus").read_text() == "0-7"
        assert (tmp_path / "cpuset" / level / "cpuset.mems").read_text() == "0"


def test_cgroup_dirs_create_non_cpuset_not_touched(tmp_path):
    (tmp_path / "memory").mkdir()
    dirs = CgroupDirs({"memory": str(tmp_path / "memory/c1")})
    dirs.create()
    assert os.listdir(tmp_path / "memory/c1") == []


# ---------------------------------------------------------------- refuse_shared_cgroup

def _hybrid_layout():
    from pyrunc.linux.cgroups import Layout

    return Layout({"memory": "/sys/fs/cgroup/memory", "": "/sys/fs/cgroup/unified"}, "hybrid",
                  {"memory": "/", "": "/"})


@pytest.mark.parametrize("paths", [
    {"memory": "/sys/fs/cgroup/memory", "": "/sys/fs/cgroup/unified/c1"},
    {"memory": "/sys/fs/cgroup/memory/engine", "": "/sys/fs/cgroup/unified/c1"},
    {"memory": "/sys/fs/cgroup/memory/engine/me", "": "/sys/fs/cgroup/unified/c1"},
])
def test_refuse_shared_cgroup_root_or_own_ancestor_refused(paths):
    from pyrunc.errors import PyruncError
    from pyrunc.linux.cgroups import refuse_shared_cgroup

    with pytest.raises(PyruncError, match="linux.cgroupsPath"):
        refuse_shared_cgroup(_hybrid_layout(), paths, own={"memory": "/engine/me", "": "/"})


def test_refuse_shared_cgroup_own_child_allowed():
    from pyrunc.linux.cgroups import refuse_shared_cgroup

    refuse_shared_cgroup(_hybrid_layout(), {"memory": "/sys/fs/cgroup/memory/engine/me/c1",
                                            "": "/sys/fs/cgroup/unified/c1"},
                         own={"memory": "/engine/me", "": "/"})


# ---------------------------------------------------------------- lsm

def test_mount_label_is_quoted_because_categories_hold_commas():
    from pyrunc.linux import lsm

    data = lsm.format_mount_label(["mode=755"], "system_u:object_r:container_file_t:s0:c1,c2")
    assert data == ["mode=755", 'context="system_u:object_r:container_file_t:s0:c1,c2"']


def test_unavailable_labels_name_each_field_the_host_cannot_apply(monkeypatch):
    from pyrunc.linux import lsm

    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    problems = lsm.unavailable_labels("docker-default", "system_u:system_r:container_t:s0", "m")
    assert [path for path, _ in problems] == ["process.apparmorProfile", "process.selinuxLabel", "linux.mountLabel"]
    assert problems[0][1] == '"docker-default": AppArmor is not enabled on this host'
    assert lsm.describe_host() == "LSMs: AppArmor not enabled, SELinux not enabled"
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: True)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: True)
    assert lsm.unavailable_labels("docker-default", "x", "y") == []
    assert lsm.unavailable_labels("", "", "") == []


@pytest.mark.parametrize("how, expected", [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill 9", 137),
                                           ("kill 15", 143)])
def test_exit_code_of_a_real_wait_status(how, expected):
    pid = os.fork()
    if pid == 0:
        kind, number = how.split()
        if kind == "kill":
            os.kill(os.getpid(), int(number))
        os._exit(int(number))
    _, status = os.waitpid(pid, 0)
    assert proc.exit_code(status) == expected


# ---------------------------------------------------------------- uid_map: the uid outside

PODMAN_MAP = "         0       1000          1\n         1     100000      65536\n"


@pytest.mark.parametrize("uid_map, uid, expected", [
    (PODMAN_MAP, 0, 1000),            # rootless Podman's root is the user
    (PODMAN_MAP, 1, 100000),
    (PODMAN_MAP, 65536, 165535),
    (PODMAN_MAP, 65537, None),        # unmapped
    ("         0          0 4294967295\n", 1000, 1000),  # the initial namespace
    ("", 0, None),
    ("garbage\n0 1000\n", 0, None),
])
def test_parse_host_uid(uid_map, uid, expected):
    assert proc.parse_host_uid(uid_map, uid) == expected


def test_host_uid_of_this_process(tmp_path):
    fake = tmp_path / "self"
    fake.mkdir()
    (fake / "uid_map").write_text(f"{os.geteuid()} 4242 1\n")
    assert proc.host_uid(str(tmp_path)) == 4242
    assert proc.host_uid(str(tmp_path / "none")) == os.geteuid()  # no /proc: its own uid
