"""The systemd cgroup driver's pure parts: cgroupsPath → slice, unit and
paths; linux.resources, `unified` and annotations → unit properties; and
the D-Bus client's messages, sent through a private dbus-daemon and read
back with dbus-monitor (skipped where those are not installed). The driver
itself runs against a real systemd in the VM lane (tests/integration/test_systemd.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux.cgroups import Layout
from pyrunc.linux.cgroups import systemd as sd

INFINITY = (1 << 64) - 1


# ---------------------------------------------------------------- names and paths


@pytest.mark.parametrize("value, expected", [
    ("", ("system.slice", "pyrunc", "c1")),
    ("machine.slice:libpod:abc", ("machine.slice", "libpod", "abc")),
    (":docker:abc", ("system.slice", "docker", "abc")),
    ("kubepods-besteffort-pod1.slice:cri-containerd:abc", ("kubepods-besteffort-pod1.slice", "cri-containerd", "abc")),
    ("system.slice::abc", ("system.slice", "", "abc")),
])
def test_parse_cgroups_path_runc_forms(value, expected):
    assert sd.parse_cgroups_path(value, "c1") == expected


@pytest.mark.parametrize("value, message", [
    ("/abs/path", 'must be "slice:prefix:name"'),
    ("a.slice:b", 'must be "slice:prefix:name"'),
    ("a:b:c:d", 'must be "slice:prefix:name"'),
    ("system:p:x", '"system" is not a systemd slice'),
    ("x.service:p:x", '"x.service" is not a systemd slice'),
    ("a.slice:p:", "the name (the third field) is empty"),
])
def test_parse_cgroups_path_refusals_name_the_field(value, message):
    with pytest.raises(PyruncError) as err:
        sd.parse_cgroups_path(value, "c1")
    assert "linux.cgroupsPath" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("name, path", [
    ("system.slice", "/system.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("kubepods-besteffort.slice", "/kubepods.slice/kubepods-besteffort.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(name, path):
    assert sd.expand_slice(name) == path


@pytest.mark.parametrize("name", ["", ".slice", "system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice",
                                  "sys tem.slice", "system.service"])
def test_expand_slice_refuses_what_names_no_slice(name):
    with pytest.raises(PyruncError, match="is not a systemd slice"):
        sd.expand_slice(name)


def test_unit_name_scope_slice_and_bad_characters():
    assert sd.unit_name("docker", "abc") == "docker-abc.scope"
    assert sd.unit_name("", "abc") == "abc.scope"
    assert sd.unit_name("cri", "pod1.slice") == "pod1.slice"
    for bad in ("a b", "a/b", "é", "x" * 250):
        with pytest.raises(PyruncError, match="is not a valid systemd unit name"):
            sd.unit_name("p", bad)


def test_unit_paths_on_v2_and_on_v1_with_systemd_in_a_container():
    v2 = Layout({"": "/sys/fs/cgroup"}, "unified")
    assert sd.unit_paths(v2, "a-b.slice", "p-c.scope", {"": "/"}) == {
        "": "/sys/fs/cgroup/a.slice/a-b.slice/p-c.scope"}
    v1 = Layout({"memory": "/sys/fs/cgroup/memory", "systemd": "/sys/fs/cgroup/systemd"}, "legacy")
    roots = {"memory": "/lxc/guest", "systemd": "/lxc/guest"}
    assert sd.unit_paths(v1, "system.slice", "p-c.scope", roots) == {
        "memory": "/sys/fs/cgroup/memory/lxc/guest/system.slice/p-c.scope",
        "systemd": "/sys/fs/cgroup/systemd/lxc/guest/system.slice/p-c.scope"}


# ---------------------------------------------------------------- properties


def _props(props):
    return {name: (signature, value) for name, signature, value in props}


def test_base_properties_scope_delegates_and_holds_the_pid():
    props = _props(sd.base_properties("system.slice", "p-c.scope", "c", 1234, v2=True))
    assert props["Slice"] == ("s", "system.slice") and props["Delegate"] == ("b", True)
    assert props["PIDs"] == ("au", [1234]) and props["DefaultDependencies"] == ("b", False)
    assert props["IOAccounting"] == ("b", True) and props["Description"] == ("s", "pyrunc container c")
    v1 = _props(sd.base_properties("system.slice", "pod.slice", "c", 0, v2=False))
    assert v1["Wants"] == ("as", ["system.slice"]) and "Delegate" not in v1 and "PIDs" not in v1
    assert "BlockIOAccounting" in v1


def test_resource_properties_v2():
    resources = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
                 "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
                 "pids": {"limit": -1}, "blockIO": {"weight": 10}}
    assert _props(sd.resource_properties(resources, v2=True)) == {
        "MemoryMax": ("t", 64 << 20), "MemoryLow": ("t", 32 << 20), "MemorySwapMax": ("t", 32 << 20),
        "CPUWeight": ("t", 100), "IOWeight": ("t", 1), "CPUQuotaPeriodUSec": ("t", 100000),
        "CPUQuotaPerSecUSec": ("t", 500000), "TasksMax": ("t", INFINITY), "AllowedCPUs": ("ay", b"\x03"),
        "AllowedMemoryNodes": ("ay", b"\x01")}


def test_resource_properties_v1_and_unset_values():
    resources = {"memory": {"limit": -1}, "cpu": {"shares": 512}, "pids": {"limit": 0}, "blockIO": {"weight": 300}}
    assert _props(sd.resource_properties(resources, v2=False)) == {
        "MemoryLimit": ("t", INFINITY), "CPUShares": ("t", 512), "BlockIOWeight": ("t", 300)}
    assert sd.resource_properties({}, v2=True) == []


@pytest.mark.parametrize("quota, period, version, expected", [
    (12345, 100000, 252, {"CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 130000)}),
    (50000, 0, 252, {"CPUQuotaPerSecUSec": ("t", 500000)}),
    (-1, 100000, 252, {"CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", INFINITY)}),
    (20000, 100000, 241, {"CPUQuotaPerSecUSec": ("t", 200000)}),  # no period property before systemd 242
    (0, 0, 252, {}),
])
def test_cpu_quota_rounds_up_to_whole_percents(quota, period, version, expected):
    assert _props(sd.cpu_quota_properties(quota, period, lambda: version)) == expected


def test_cpuset_properties_need_systemd_244():
    assert sd.cpuset_properties("0", "", lambda: 243) == []
    assert _props(sd.cpuset_properties("0", "", lambda: 244)) == {"AllowedCPUs": ("ay", b"\x01")}


@pytest.mark.parametrize("text, mask", [("0", b"\x01"), ("0-3,7", b"\x8f"), ("8", b"\x00\x01"),
                                        (" 1 , 9-10 ,", b"\x02\x06")])
def test_range_to_bits_little_endian(text, mask):
    assert sd.range_to_bits(text, "x") == mask


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", ","])
def test_range_to_bits_refuses(text):
    with pytest.raises(PyruncError):
        sd.range_to_bits(text, "linux.resources.cpu.cpus")


def test_unified_properties_known_keys_and_the_rest():
    props = _props(sd.unified_properties({"cpu.max": "max 100000", "cpu.weight": "50", "memory.high": "max",
                                          "memory.min": "1024", "pids.max": "7", "cpuset.cpus": "1",
                                          "io.max": "8:0 rbps=1", "memory.oom.group": "1"}))
    assert props == {"CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", INFINITY),
                     "CPUWeight": ("t", 50), "MemoryHigh": ("t", INFINITY), "MemoryMin": ("t", 1024),
                     "TasksMax": ("t", 7), "AllowedCPUs": ("ay", b"\x02")}


@pytest.mark.parametrize("unified, message", [
    ({"cpu.max": "1 2 3"}, "invalid value"),
    ({"cpu.weight": "x"}, "is not a number"),
    ({"memory.max": "-5"}, "must not be negative"),
    ({"a/b": "1"}, "no slashes"),
])
def test_unified_properties_refusals(unified, message):
    with pytest.raises(PyruncError, match=message):
        sd.unified_properties(unified)


def test_annotation_properties():
    props = _props(sd.annotation_properties({
        "org.systemd.property.TimeoutStopSec": "uint64 5",
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.RuntimeMaxUSec": "uint64 1000",
        "org.systemd.property.After": "['a.service', 'b.service']",
        "other": "ignored",
    }))
    assert props == {"TimeoutStopUSec": ("t", 5_000_000), "CollectMode": ("s", "inactive-or-failed"),
                     "RuntimeMaxUSec": ("t", 1000), "After": ("as", ["a.service", "b.service"])}


@pytest.mark.parametrize("annotations, message", [
    ({"org.systemd.property.X1": "1"}, "invalid systemd property name"),
    ({"org.systemd.property.ab": "1"}, "invalid systemd property name"),
    ({"org.systemd.property.TimeoutStopSec": "'x'"}, "must be a number of seconds"),
    ({"org.systemd.property.Foo": "[1, 'a']"}, "mixed types"),
])
def test_annotation_refusals_name_the_annotation(annotations, message):
    with pytest.raises(PyruncError) as err:
        sd.annotation_properties(annotations)
    assert message in str(err.value) and "annotations[" in str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("true", ("b", True)), ("false", ("b", False)), ("42", ("i", 42)), ("uint64 42", ("t", 42)),
    ("int64 -3", ("x", -3)), ("1.5", ("d", 1.5)), ("'a b'", ("s", "a b")), ('"it\\"s"', ("s", 'it"s')),
    ("@as []", ("as", [])), ("[1, 2]", ("ai", [1, 2])), ("@au [1]", ("au", [1])), ("byte 255", ("y", 255)),
])
def test_parse_gvariant(text, expected):
    assert sd.parse_gvariant(text) == expected


@pytest.mark.parametrize("text", ["[]", "byte 256", "nope", "[1", "'open"])
def test_parse_gvariant_refuses(text):
    with pytest.raises(PyruncError):
        sd.parse_gvariant(text)


# ---------------------------------------------------------------- the D-Bus client, against dbus-daemon


@pytest.fixture
def private_bus(tmp_path):
    """A dbus-daemon of this test's own (no systemd on it) and a monitor
    printing every message it carries."""
    daemon, monitor = shutil.which("dbus-daemon"), shutil.which("dbus-monitor")
    if not daemon or not monitor:
        pytest.skip("needs dbus-daemon and dbus-monitor (apt-get install dbus-daemon dbus-bin)")
    socket = tmp_path / "bus"
    config = tmp_path / "bus.conf"
    config.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={socket}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/><allow user="*"/></policy></busconfig>
""")
    bus = subprocess.Popen([daemon, f"--config-file={config}", "--nofork", "--nopidfile"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = open(tmp_path / "monitor.out", "w+")
    watcher = None
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert time.monotonic() < deadline and bus.poll() is None, "dbus-daemon did not start"
            time.sleep(0.01)
        watcher = subprocess.Popen([monitor, "--address", f"unix:path={socket}"], stdout=out,
                                   stderr=subprocess.DEVNULL)
        while "NameAcquired" not in open(tmp_path / "monitor.out").read():
            assert time.monotonic() < deadline, "dbus-monitor did not start"
            time.sleep(0.01)
        yield str(socket), tmp_path / "monitor.out"
    finally:
        for process in (watcher, bus):
            if process is not None:
                process.kill()
                process.wait()
        out.close()


def test_sdbus_sends_start_transient_unit_as_systemd_reads_it(private_bus):
    from pyrunc.linux import sdbus

    socket, monitor_out = private_bus
    bus = sdbus.connect([(socket, True)])
    try:
        props = sd.base_properties("system.slice", "p-c.scope", "c", 4321, v2=True)
        props += [("MemoryMax", "t", 64 << 20), ("AllowedCPUs", "ay", b"\x03"), ("After", "as", ["a", "b"]),
                  ("CPUQuotaPerSecUSec", "t", INFINITY)]
        with pytest.raises(sdbus.BusError) as err:  # no systemd on this bus
            bus.start_transient_unit("p-c.scope", props)
        assert err.value.name == "org.freedesktop.DBus.Error.ServiceUnknown"
    finally:
        bus.close()
    deadline = time.monotonic() + 5
    # dbus-monitor writes the call in pieces: wait for its last property.
    while "CPUQuotaPerSecUSec" not in monitor_out.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    text = " ".join(monitor_out.read_text().split())
    call = text[text.index("member=StartTransientUnit"):]
    for expected in ('string "p-c.scope" string "replace"',
                     'string "Slice" variant string "system.slice"',
                     'string "Delegate" variant boolean true',
                     'string "PIDs" variant array [ uint32 4321 ]',
                     f'string "MemoryMax" variant uint64 {64 << 20}',
                     'string "AllowedCPUs" variant array of bytes [ 03 ]',
                     'string "After" variant array [ string "a" string "b" ]',
                     f'string "CPUQuotaPerSecUSec" variant uint64 {INFINITY}'):
        assert expected in call, (expected, call[:2000])


def test_sdbus_unreachable_names_every_socket_tried(tmp_path):
    from pyrunc.linux import sdbus

    with pytest.raises(sdbus.Unreachable) as err:
        sdbus.connect([(str(tmp_path / "none"), False), (str(tmp_path / "nor-this"), True)])
    assert str(tmp_path / "none") in str(err.value) and str(tmp_path / "nor-this") in str(err.value)


# ---------------------------------------------------------------- rootless: the user's own manager


@pytest.mark.parametrize("rootless, host_uid, expected", [
    (False, 1000, None),   # --rootless=false: the system's manager, whoever asks
    (True, 0, None),       # root in a namespace whose uid 0 is the host's root
    (True, 1000, 1000),    # a user, or rootless Podman's uid 0 mapped to user 1000
])
def test_user_manager_uid(rootless, host_uid, expected):
    assert sd.user_manager_uid(rootless, host_uid) == expected


@pytest.mark.parametrize("value, expected", [
    ("", ("user.slice", "pyrunc", "c1")),
    (":libpod:abc", ("user.slice", "libpod", "abc")),
    ("user.slice:libpod:abc", ("user.slice", "libpod", "abc")),
    ("app.slice:x:y", ("app.slice", "x", "y")),
])
def test_rootless_default_slice_is_user_slice_as_runc(value, expected):
    assert sd.parse_cgroups_path(value, "c1", sd.DEFAULT_USER_SLICE) == expected


@pytest.mark.parametrize("path, mount_root, expected", [
    ("/user.slice/user-1000.slice/user@1000.service", "/", "/user.slice/user-1000.slice/user@1000.service"),
    ("/user.slice/user-1000.slice/user@1000.service", "/user.slice", "/user-1000.slice/user@1000.service"),
    ("/user.slice", "/user.slice", "/"),
    ("/user.slicex/a", "/user.slice", "/user.slicex/a"),  # not under it: left as it is
])
def test_under_mount_root(path, mount_root, expected):
    assert sd.under_mount_root(path, mount_root) == expected


def test_rootless_unit_is_under_the_user_managers_cgroup():
    layout = Layout({"": "/sys/fs/cgroup"}, "unified")
    paths = sd.unit_paths(layout, "user.slice", "libpod-abc.scope",
                          {"": "/user.slice/user-1000.slice/user@1000.service"})
    assert paths == {"": "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-abc.scope"}


@pytest.mark.parametrize("env, expected", [
    # $DBUS_SESSION_BUS_ADDRESS first (any address), then the session bus and
    # the manager's private socket in $XDG_RUNTIME_DIR ...
    ({"DBUS_SESSION_BUS_ADDRESS": "unix:abstract=/tmp/x", "XDG_RUNTIME_DIR": "/run/user/1000"},
     [("unix:abstract=/tmp/x", True), ("/run/user/1000/bus", True), ("/run/user/1000/systemd/private", False)]),
    # ... the same socket once ...
    ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus", "XDG_RUNTIME_DIR": "/run/user/1000"},
     [("unix:path=/run/user/1000/bus", True), ("/run/user/1000/systemd/private", False)]),
    # ... an empty variable is unset; Podman passes $XDG_RUNTIME_DIR only ...
    ({"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": "/home/u/run"},
     [("/home/u/run/bus", True), ("/home/u/run/systemd/private", False)]),
    # ... and without either, /run/user/UID of the uid given.
    ({}, [("/run/user/1000/bus", True), ("/run/user/1000/systemd/private", False)]),
])
def test_user_bus_targets(env, expected):
    from pyrunc.linux import sdbus

    assert sdbus.user_bus_targets(env, 1000) == expected


@pytest.mark.parametrize("target, expected", [
    ("/run/user/1000/bus", ("unix:path=/run/user/1000/bus", "/run/user/1000/bus")),
    ("unix:path=/run/user/1000/bus", ("unix:path=/run/user/1000/bus", "/run/user/1000/bus")),
    ("unix:path=/a,guid=0123", ("unix:path=/a,guid=0123", "")),  # an address with keys: socket_addresses reads it
    ("unix:abstract=/tmp/x;unix:path=/b", ("unix:abstract=/tmp/x;unix:path=/b", "")),
])
def test_sdbus_address_of_a_target(target, expected):
    from pyrunc.linux import sdbus

    assert sdbus._address(target) == expected


def test_user_manager_unreachable_is_one_line_naming_the_sockets_and_what_to_check(tmp_path):
    from pyrunc.linux import sdbus

    with pytest.raises(sdbus.Unreachable) as err:
        sdbus.connect_user(4242, {"XDG_RUNTIME_DIR": str(tmp_path)})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("--systemd-cgroup: cannot reach the systemd user manager of uid 4242 (")
    assert f"{tmp_path}/bus: no such socket; {tmp_path}/systemd/private: no such socket" in message
    assert "user@4242.service" in message and "enable-linger" in message


def test_rootless_on_a_cgroup_v1_host_refused_before_any_connection():
    layout = Layout({"memory": "/sys/fs/cgroup/memory", "": "/sys/fs/cgroup/unified"}, "hybrid")
    with pytest.raises(PyruncError) as err:
        sd.SystemdManager.for_new_container(layout, "", "c1", {}, user_uid=4242)
    assert str(err.value) == ('--systemd-cgroup: a rootless container needs a pure cgroup v2 host (this one is '
                              'cgroup v1 "hybrid"); run it without --systemd-cgroup')


def test_rootless_session_bus_without_a_user_manager_is_one_line(private_bus, monkeypatch):
    """The session bus reached through $DBUS_SESSION_BUS_ADDRESS (a real
    dbus-daemon, authenticated and Hello'd) where no systemd answers: the
    manager's cgroup cannot be asked, which is one line naming the bus."""
    socket, monitor_out = private_bus
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={socket}")
    layout = Layout({"": "/sys/fs/cgroup"}, "unified")
    with pytest.raises(PyruncError) as err:
        sd.SystemdManager.for_new_container(layout, "user.slice:libpod:abc", "abc", {}, user_uid=4242)
    message = str(err.value)
    assert message.startswith(f"--systemd-cgroup: the systemd user manager of uid 4242 did not answer on "
                              f"{socket}: "), message
    assert "\n" not in message
    deadline = time.monotonic() + 5
    while "ControlGroup" not in monitor_out.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    text = " ".join(monitor_out.read_text().split())
    assert 'member=Get string "org.freedesktop.systemd1.Manager" string "ControlGroup"' in text, text[-2000:]


def test_rootless_unit_record_names_the_user_manager_and_reads_back():
    from pyrunc.linux.cgroups.fs import CgroupDirs

    path = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/pyrunc-c1.scope"
    manager = sd.SystemdManager(CgroupDirs({"": path}), "pyrunc-c1.scope", "user.slice", user_uid=1000)
    record = manager.to_state()
    assert (record["unit"], record["slice"], record["userManagerUid"]) == ("pyrunc-c1.scope", "user.slice", 1000)
    assert manager.partial_state()["userManagerUid"] == 1000
    again = sd.SystemdManager.from_record(record, CgroupDirs.from_state(record))
    assert (again.user_uid, again.unit, again.paths) == (1000, "pyrunc-c1.scope", {"": path})
    system = sd.SystemdManager(CgroupDirs({"": path}), "pyrunc-c1.scope", "system.slice")
    assert "userManagerUid" not in system.to_state()
    assert sd.SystemdManager.from_record(system.to_state(), CgroupDirs({})).user_uid is None
