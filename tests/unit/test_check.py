"""Semantic checks of config.json (pyrunc.spec.check)."""

import copy
import subprocess
import sys

import pytest

from pyrunc.spec import check as check_module
from pyrunc.linux import sysctl
from pyrunc.spec.check import CHECKS, WARNINGS, check, quote, warnings

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# A minimal valid Linux config, shaped like `runc spec` output.
BASE = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            "bounding": list(CAPS),
            "effective": list(CAPS),
            "permitted": list(CAPS),
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755"]},
    ],
    "linux": {
        "namespaces": [
            {"type": "pid"},
            {"type": "network"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
        ],
        "maskedPaths": ["/proc/kcore", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
    },
}

DELETE = object()
NS = ["linux", "namespaces"]


def mutated(ops):
    """BASE with each (path, value) applied; value DELETE removes the key."""
    config = copy.deepcopy(BASE)
    for path, value in ops:
        target = config
        for part in path[:-1]:
            target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return config


def namespaces(*entries):
    return [(NS, [{"type": t} if isinstance(t, str) else t for t in entries])]


UTS_HINT = 'add {"type": "uts"} to linux.namespaces'
IPC_HINT = 'add {"type": "ipc"} to linux.namespaces'
NET_HINT = 'add {"type": "network"} to linux.namespaces'
USER_HINT = 'add {"type": "user"} to linux.namespaces'
MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]

CASES = [
    # root
    ("root_absent", [(["root"], DELETE)], [("root", "is required on Linux")]),
    ("root_path_empty", [(["root", "path"], "")], [("root.path", "must not be empty")]),
    # process
    (
        "process_absent",
        [(["process"], DELETE)],
        [("process", "is required (pyrunc cannot create a container without a process)")],
    ),
    ("args_empty", [(["process", "args"], [])], [("process.args", "must not be empty")]),
    ("args_absent", [(["process", "args"], DELETE)], [("process.args", "is required")]),
    ("cwd_relative", [(["process", "cwd"], "tmp")], [("process.cwd", 'must be an absolute path, not "tmp"')]),
    ("cwd_empty", [(["process", "cwd"], "")], [("process.cwd", 'must be an absolute path, not ""')]),
    (
        "env_no_equals",
        [(["process", "env"], ["A=1", "B=", "FOO"])],
        [("process.env[2]", 'must be KEY=value, not "FOO"')],
    ),
    ("env_empty_key", [(["process", "env"], ["=x"])], [("process.env[0]", 'must be KEY=value, not "=x"')]),
    (
        "env_nul",
        [(["process", "env"], ["A=b\x00c"])],
        [("process.env[0]", 'must not contain a NUL character, not "A=b\\u0000c"')],
    ),
    ("env_value_with_equals", [(["process", "env"], ["A==b", "B=c=d", "C="])], []),
    # consoleSize is a warning only (the spec says ignore it); see the warnings tests
    ("console_size_no_terminal", [(["process", "consoleSize"], {"height": 24, "width": 80})], []),
    # capabilities
    # unknown capability names are warnings (see the warnings tests)
    ("capability_unknown", [(["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_TEST"])], []),
    ("capability_newest_known", [(["process", "capabilities", "bounding"], ["CAP_CHECKPOINT_RESTORE"])], []),
    # rlimits
    (
        "rlimit_unknown",
        [(["process", "rlimits"], [{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}])],
        [("process.rlimits[0].type", 'unknown rlimit type "RLIMIT_FOO"')],
    ),
    (
        "rlimit_duplicate",
        [
            (
                ["process", "rlimits"],
                [
                    {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                    {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
                    {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096},
                ],
            )
        ],
        [("process.rlimits[2].type", 'duplicate rlimit type "RLIMIT_NOFILE"')],
    ),
    (
        "rlimit_soft_above_hard",
        [(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 4096}])],
        [("process.rlimits[0].soft", "must be at most the hard limit 1024, not 4096")],
    ),
    (
        "rlimit_infinity",
        [(["process", "rlimits"], [{"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1}])],
        [],
    ),
    # hostname / domainname
    (
        "hostname_no_uts",
        namespaces("pid", "network", "ipc", "mount"),
        [("hostname", f"requires a private UTS namespace; {UTS_HINT}")],
    ),
    (
        "hostname_no_linux_section",
        [(["linux"], DELETE)],
        [("hostname", f"requires a private UTS namespace; {UTS_HINT}")],
    ),
    ("hostname_empty_no_uts", [(["hostname"], "")] + namespaces("pid", "mount"), []),
    (
        "domainname_no_uts",
        [(["hostname"], DELETE), (["domainname"], "example.test")] + namespaces("pid", "mount"),
        [("domainname", f"requires a private UTS namespace; {UTS_HINT}")],
    ),
    # a joined UTS namespace is accepted (runc does), with a warning
    ("hostname_uts_joined", namespaces("pid", {"type": "uts", "path": "/proc/1/ns/uts"}), []),
    # mounts
    (
        "mount_destination_empty",
        [(["mounts"], [{"destination": "", "type": "tmpfs", "source": "tmpfs"}])],
        [("mounts[0].destination", "must not be empty")],
    ),
    (
        "mount_bind_type_no_source",
        [(["mounts"], [{"destination": "/data", "type": "bind"}])],
        [("mounts[0].source", "is required for a bind mount")],
    ),
    (
        "mount_rbind_option_no_source",
        [
            (
                ["mounts"],
                [
                    {"destination": "/proc", "type": "proc", "source": "proc"},
                    {"destination": "/x", "options": ["rbind", "ro"]},
                ],
            )
        ],
        [("mounts[1].source", "is required for a bind mount")],
    ),
    ("mount_relative_destination", [(["mounts"], [{"destination": "data", "type": "tmpfs", "source": "tmpfs"}])], []),
    ("mount_tmpfs_no_source", [(["mounts"], [{"destination": "/tmp", "type": "tmpfs"}])], []),
    # hooks
    (
        "hook_path_relative",
        [(["hooks"], {"prestart": [{"path": "/bin/true"}], "poststop": [{"path": "bin/true"}]})],
        [("hooks.poststop[0].path", 'must be an absolute path, not "bin/true"')],
    ),
    (
        "hook_timeout_zero",
        [(["hooks"], {"createRuntime": [{"path": "/bin/true", "timeout": 0}]})],
        [("hooks.createRuntime[0].timeout", "must be greater than 0, not 0")],
    ),
    ("hook_timeout_positive", [(["hooks"], {"startContainer": [{"path": "/bin/true", "timeout": 5}]})], []),
    # annotations
    (
        "annotation_key_empty",
        [(["annotations"], {"org.example": "1", "": "x"})],
        [("annotations", "must not have an empty key")],
    ),
    # namespaces
    (
        "namespace_duplicate",
        namespaces("pid", "network", "ipc", "pid", "uts", "mount"),
        [("linux.namespaces[3].type", 'duplicate namespace type "pid"')],
    ),
    (
        "namespace_path_relative",
        namespaces("pid", {"type": "network", "path": "var/run/netns/a"}, "ipc", "uts", "mount"),
        [("linux.namespaces[1].path", 'must be an absolute path, not "var/run/netns/a"')],
    ),
    ("namespace_path_empty_means_new", namespaces("pid", {"type": "network", "path": ""}, "uts"), []),
    # time namespace
    (
        "time_offsets_no_time_namespace",
        [(["linux", "timeOffsets"], {"monotonic": {"secs": 10}})],
        [("linux.timeOffsets", 'requires a time namespace; add {"type": "time"} to linux.namespaces')],
    ),
    (
        "time_offsets_joined_time_namespace",
        [(["linux", "timeOffsets"], {"monotonic": {"secs": 10}})]
        + namespaces("pid", "uts", {"type": "time", "path": "/proc/9/ns/time"}),
        [
            (
                "linux.timeOffsets",
                "cannot be set for a time namespace joined by path (linux.namespaces[2].path); "
                "remove the path to create a new one, or remove the offsets",
            )
        ],
    ),
    (
        "time_offsets_new_time_namespace",
        [(["linux", "timeOffsets"], {"boottime": {"secs": 1}})] + namespaces("uts", "time"),
        [],
    ),
    # user namespace
    (
        "uid_mappings_no_user_namespace",
        [(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}])],
        [("linux.uidMappings", f"requires a user namespace; {USER_HINT}")],
    ),
    (
        "gid_mappings_no_user_namespace",
        [(["linux", "gidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}])],
        [("linux.gidMappings", f"requires a user namespace; {USER_HINT}")],
    ),
    (
        "new_user_namespace_no_mappings",
        namespaces("pid", "uts", "user"),
        [
            ("linux.uidMappings", "is required for a new user namespace (linux.namespaces[2] has no path)"),
            ("linux.gidMappings", "is required for a new user namespace (linux.namespaces[2] has no path)"),
        ],
    ),
    (
        "new_user_namespace_no_gid_mappings",
        [(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}])] + namespaces("uts", "user"),
        [("linux.gidMappings", "is required for a new user namespace (linux.namespaces[1] has no path)")],
    ),
    (
        "new_user_namespace_both_mappings",
        [
            (["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]),
            (["linux", "gidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]),
        ]
        + namespaces("uts", "user"),
        [],
    ),
    # idmapped mounts (runc 1.2's rules; issue 18 item 5)
    (
        "idmap_mappings_on_a_bind_mount",
        [(["mounts"], [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ridmap"],
                        "uidMappings": MAP, "gidMappings": MAP}])],
        [],
    ),
    (
        "idmap_mappings_without_option_or_user_namespace",
        [(["mounts"], [{"destination": "/data", "type": "none", "source": "/srv", "options": ["bind"],
                        "uidMappings": MAP, "gidMappings": MAP}])],
        [],
    ),
    (
        "idmap_option_takes_the_containers_mappings",
        [(["mounts"], [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["idmap"]}]),
         (["linux", "uidMappings"], MAP), (["linux", "gidMappings"], MAP)] + namespaces("pid", "mount", "uts", "user"),
        [],
    ),
    (
        "idmap_option_without_mappings_or_user_namespace",
        [(["mounts"], [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]}])],
        [("mounts[0]", "idmap without uidMappings and gidMappings takes the container's user namespace's "
                       f"mappings, and there is none; give the mappings or {USER_HINT}")],
    ),
    (
        "idmap_not_a_bind_mount",
        [(["mounts"], [{"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["ridmap"],
                        "uidMappings": MAP, "gidMappings": MAP}])],
        [("mounts[0]", 'uidMappings, gidMappings, ridmap: idmapped mounts are bind mounts only; '
                       'add "bind" or "rbind" to options')],
    ),
    (
        "idmap_empty_mappings",
        [(["mounts"], [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["bind"],
                        "uidMappings": [], "gidMappings": MAP}])],
        [("mounts[0].uidMappings", "must not be empty: an idmapped mount needs both uid and gid mappings")],
    ),
    (
        "idmap_without_a_new_mount_namespace",
        [(["mounts"], [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["bind", "idmap"],
                        "uidMappings": MAP, "gidMappings": MAP}])]
        + namespaces("pid", "uts", {"type": "mount", "path": "/proc/7/ns/mnt"}),
        [("mounts[0]", 'uidMappings, gidMappings, idmap: an idmapped mount needs a new mount namespace; '
                       'add {"type": "mount"} to linux.namespaces')],
    ),
    ("joined_user_namespace_no_mappings", namespaces("uts", {"type": "user", "path": "/proc/7/ns/user"}), []),
    # masked / readonly paths
    (
        "masked_path_relative",
        [(["linux", "maskedPaths"], ["/proc/kcore", "proc/keys"])],
        [("linux.maskedPaths[1]", 'must be an absolute path, not "proc/keys"')],
    ),
    (
        "readonly_path_relative",
        [(["linux", "readonlyPaths"], ["proc/bus"])],
        [("linux.readonlyPaths[0]", 'must be an absolute path, not "proc/bus"')],
    ),
    # devices
    (
        "device_path_relative",
        [(["linux", "devices"], [{"type": "c", "path": "dev/fuse", "major": 10, "minor": 229}])],
        [("linux.devices[0].path", 'must be an absolute path, not "dev/fuse"')],
    ),
    (
        "device_char_no_numbers",
        [(["linux", "devices"], [{"type": "c", "path": "/dev/fuse"}])],
        [
            ("linux.devices[0].major", 'is required for a device of type "c"'),
            ("linux.devices[0].minor", 'is required for a device of type "c"'),
        ],
    ),
    (
        "device_block_no_minor",
        [(["linux", "devices"], [{"type": "b", "path": "/dev/sda", "major": 8}])],
        [("linux.devices[0].minor", 'is required for a device of type "b"')],
    ),
    ("device_fifo_no_numbers", [(["linux", "devices"], [{"type": "p", "path": "/dev/fifo"}])], []),
    # sysctl
    ("sysctl_ipc_with_ipc_namespace", [(["linux", "sysctl"], {"kernel.shmmax": "1", "fs.mqueue.msg_max": "10"})], []),
    (
        "sysctl_ipc_no_ipc_namespace",
        [(["linux", "sysctl"], {"kernel.shmmax": "1", "fs.mqueue.msg_max": "10"})] + namespaces("pid", "uts"),
        [
            ('linux.sysctl["kernel.shmmax"]', f"requires a private IPC namespace; {IPC_HINT}"),
            ('linux.sysctl["fs.mqueue.msg_max"]', f"requires a private IPC namespace; {IPC_HINT}"),
        ],
    ),
    (
        "sysctl_net_no_network_namespace",
        [(["linux", "sysctl"], {"net.ipv4.ip_forward": "1"})] + namespaces("pid", "uts"),
        [('linux.sysctl["net.ipv4.ip_forward"]', f"requires a private network namespace; {NET_HINT}")],
    ),
    (
        "sysctl_net_slash_spelling_no_network_namespace",
        [(["linux", "sysctl"], {"net/ipv4/conf/eth0.100/rp_filter": "1"})] + namespaces("uts"),
        [
            (
                'linux.sysctl["net/ipv4/conf/eth0.100/rp_filter"]',
                'requires a private network namespace; add {"type": "network"} to linux.namespaces',
            )
        ],
    ),
    ("sysctl_net_slash_spelling", [(["linux", "sysctl"], {"net/ipv4/ip_forward": "1"})], []),
    (
        "sysctl_net_joined_network_namespace",
        [(["linux", "sysctl"], {"net.core.somaxconn": "1024"})]
        + namespaces("uts", {"type": "network", "path": "/var/run/netns/a"}),
        [],
    ),
    (
        "sysctl_not_namespaced",
        [(["linux", "sysctl"], {"vm.swappiness": "10", "kernel/panic": "1"})],
        [
            ('linux.sysctl["vm.swappiness"]', "is not namespaced; refusing to set it for a container"),
            ('linux.sysctl["kernel/panic"]', "is not namespaced; refusing to set it for a container"),
        ],
    ),
    ("sysctl_domainname_with_uts", [(["linux", "sysctl"], {"kernel.domainname": "example.test"})], []),
    (
        "sysctl_domainname_no_uts",
        [(["hostname"], DELETE), (["linux", "sysctl"], {"kernel.domainname": "example.test"})] + namespaces("pid"),
        [('linux.sysctl["kernel.domainname"]', f"requires a private UTS namespace; {UTS_HINT}")],
    ),
    (
        "sysctl_hostname",
        [(["linux", "sysctl"], {"kernel.hostname": "x"})],
        [('linux.sysctl["kernel.hostname"]', 'is not allowed; set the "hostname" field instead')],
    ),
    (
        "sysctl_user_no_user_namespace",
        [(["linux", "sysctl"], {"user.max_user_namespaces": "0"})],
        [('linux.sysctl["user.max_user_namespaces"]', f"requires a user namespace; {USER_HINT}")],
    ),
]


def test_check_base_config_no_problems():
    assert check(copy.deepcopy(BASE)) == []
    assert warnings(copy.deepcopy(BASE), 40) == []


def test_check_base_config_not_modified():
    config = copy.deepcopy(BASE)
    check(config)
    warnings(config, 30)
    assert config == BASE


@pytest.mark.parametrize("ops, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_check_mutation_expected_problems(ops, expected):
    assert check(mutated(ops)) == expected


def test_check_case_ids_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))


def test_check_every_rule_has_failing_case():
    """Each function in CHECKS yields something for at least one case."""
    fired = set()
    for _, ops, _ in CASES:
        config = mutated(ops)
        for rule in CHECKS:
            if list(rule(config)):
                fired.add(rule.__name__)
    assert fired == {rule.__name__ for rule in CHECKS}


def test_check_rules_one_line_docstrings():
    for rule in CHECKS + WARNINGS:
        assert rule.__doc__ and "\n" not in rule.__doc__.strip(), rule.__name__


def test_check_several_problems_all_reported_in_order():
    config = mutated(
        [
            (["process", "args"], []),
            (["process", "cwd"], "tmp"),
            (["process", "env"], ["PATH=/bin", "TERM=xterm", "FOO"]),
            (["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_TEST"]),
            (["process", "rlimits"], [{"type": "RLIMIT_FOO", "hard": 1, "soft": 2}]),
            (["mounts"], [{"destination": "/mnt", "options": ["bind"]}]),
            (["linux", "maskedPaths"], ["proc/kcore"]),
        ]
        + namespaces("pid", "network", "ipc", "pid", "mount")
    )
    assert check(config) == [
        ("process.args", "must not be empty"),
        ("process.env[2]", 'must be KEY=value, not "FOO"'),
        ("process.cwd", 'must be an absolute path, not "tmp"'),
        ("process.rlimits[0].type", 'unknown rlimit type "RLIMIT_FOO"'),
        ("process.rlimits[0].soft", "must be at most the hard limit 1, not 2"),
        ("hostname", f"requires a private UTS namespace; {UTS_HINT}"),
        ("mounts[0].source", "is required for a bind mount"),
        ("linux.namespaces[3].type", 'duplicate namespace type "pid"'),
        ("linux.maskedPaths[0]", 'must be an absolute path, not "proc/kcore"'),
    ]


def test_check_empty_document_root_and_process_reported():
    assert check({"ociVersion": "1.2.0"}) == [
        ("process", "is required (pyrunc cannot create a container without a process)"),
        ("root", "is required on Linux"),
    ]


def test_warnings_capability_above_cap_last_cap_ignored():
    config = mutated(
        [
            (["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"]),
            (["process", "capabilities", "ambient"], ["CAP_CHECKPOINT_RESTORE"]),
        ]
    )
    msg = 'capability "CAP_CHECKPOINT_RESTORE" is not supported by this kernel (cap_last_cap 39); ignored'
    assert warnings(config, 39) == [
        ("process.capabilities.bounding[1]", msg),
        ("process.capabilities.ambient[0]", msg),
    ]
    assert check(config) == []


def test_warnings_capability_unknown_names_ignored():
    """runtime-spec 1.1 config.md: capabilities that cannot be mapped are
    warnings; runc's names are exactly "CAP_" and the upper-case name."""
    config = mutated(
        [
            (["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_TEST"]),
            (["process", "capabilities", "ambient"], ["cap_kill"]),
            (["process", "capabilities", "effective"], ["KILL"]),
        ]
    )
    assert warnings(config, 40) == [
        ("process.capabilities.bounding[1]", 'unknown capability "CAP_TEST"; ignored'),
        ("process.capabilities.effective[0]", 'unknown capability "KILL"; ignored'),
        ("process.capabilities.ambient[0]", 'unknown capability "cap_kill"; ignored'),
    ]
    assert check(config) == []


def test_warnings_capability_at_cap_last_cap_nothing():
    config = mutated([(["process", "capabilities", "bounding"], ["CAP_CHECKPOINT_RESTORE"])])
    assert warnings(config, 40) == []


def test_warnings_console_size_without_terminal_ignored():
    config = mutated([(["process", "consoleSize"], {"height": 24, "width": 80})])
    assert warnings(config, 40) == [("process.consoleSize", "ignored because process.terminal is not true")]


def test_warnings_console_size_with_terminal_nothing():
    config = mutated([(["process", "consoleSize"], {"height": 24, "width": 80}), (["process", "terminal"], True)])
    assert warnings(config, 40) == []


def test_warnings_hostname_joined_uts_shared():
    config = mutated(namespaces("pid", {"type": "uts", "path": "/proc/1/ns/uts"}))
    assert warnings(config, 40) == [
        ("hostname", 'sets the hostname of the shared UTS namespace "/proc/1/ns/uts", not one private to the container')
    ]


def test_warnings_joined_user_namespace_mappings_not_applied():
    config = mutated(
        [
            (["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]),
            (["linux", "gidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]),
        ]
        + namespaces("uts", {"type": "user", "path": "/proc/7/ns/user"})
    )
    assert check(config) == []
    reason = 'not applied: the user namespace is joined by path "/proc/7/ns/user" and keeps its own mappings'
    assert warnings(config, 40) == [("linux.uidMappings", reason), ("linux.gidMappings", reason)]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
        ("kernel/shmmax", "kernel.shmmax"),
    ],
)
def test_sysctl_spellings_read_once_as_sysctl_8(name, expected):
    assert sysctl.parse(name).name == expected


@pytest.mark.parametrize("key", [
    # issue 13, item 1: ".." (in either spelling), empty components, and
    # keys outside the namespaced subtrees never get to the kernel.
    "net/../fs/lease-break-time", "fs/mqueue/../../fs/lease-break-time", "net.//.fs.lease-break-time",
    "net/../kernel/core_pattern", "net/./ipv4/ip_forward", "net..ipv4.ip_forward", ".net.ipv4", "net.ipv4.",
    "net//ipv4", "/net/ipv4/ip_forward", "kernel.core_pattern", "kernel/modprobe", "kernel", "net", "fs.mqueue",
    "", "kernel.shmmax.x", "fs.mqueue/..",
])
def test_sysctl_keys_that_leave_the_namespaced_subtrees_are_refused(key):
    with pytest.raises(ValueError):
        sysctl.parse(key)
    config = mutated([(["linux", "sysctl"], {key: "1"})] + namespaces("network", "ipc", "uts"))
    assert [p[0] for p in check(config)] == [f"linux.sysctl[{quote(key)}]"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("tmp", '"tmp"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb\x01", '"a\\nb\\u0001"'),
        ("caf\u00e9", '"caf\u00e9"'),
    ],
)
def test_quote_value_json_literal(value, expected):
    assert quote(value) == expected


def test_check_import_no_heavy_modules():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import pyrunc.spec.check\n"
        "heavy = {'re', 'json', 'typing', 'dataclasses', 'enum', 'collections', 'collections.abc'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_module_tables_from_linux_package():
    from pyrunc.linux.capabilities import CAPABILITIES
    from pyrunc.linux.rlimits import RLIMITS

    assert check_module.CAPABILITIES is CAPABILITIES
    assert check_module.RLIMITS is RLIMITS
