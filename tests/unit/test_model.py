"""pyrunc.spec.model: typed views of config.json, built from the real engine
configs in tests/unit/configs/good/ and from small hand-made variants."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest

from pyrunc.spec import load
from pyrunc.spec.model import HOOK_KINDS, Config, Mount, Process

GOOD = pathlib.Path(__file__).parent / "configs" / "good"
GOOD_FILES = sorted(p.name for p in GOOD.glob("*.json"))
BUNDLE = "/var/lib/bundles/c1"


def _doc(name: str) -> dict:
    return load.parse_config((GOOD / name).read_bytes(), name)


def test_good_configs_present():
    assert len(GOOD_FILES) >= 10


@pytest.mark.parametrize("name", GOOD_FILES)
def test_config_good_builds(name):
    doc = _doc(name)
    cfg = Config(doc, BUNDLE)
    assert cfg.oci_version == doc["ociVersion"]
    assert cfg.bundle == BUNDLE
    assert cfg.root_path.startswith("/")
    assert cfg.process is not None
    assert cfg.process.args == doc["process"]["args"]
    assert len(cfg.mounts) == len(doc.get("mounts") or ())
    assert all(m.destination.startswith("/") for m in cfg.mounts)
    assert set(cfg.hooks) == set(HOOK_KINDS)
    assert len(cfg.linux.namespaces) == len(doc["linux"].get("namespaces") or ())
    assert cfg.linux.cgroups_path == (doc["linux"].get("cgroupsPath") or "")
    assert cfg.annotations == (doc.get("annotations") or {})


@pytest.mark.parametrize("name", GOOD_FILES)
def test_config_good_does_not_mutate_input(name):
    doc = _doc(name)
    before = copy.deepcopy(doc)
    Config(doc, BUNDLE)
    assert doc == before


@pytest.mark.parametrize("name", GOOD_FILES)
def test_config_good_capabilities_given_lists(name):
    cfg = Config(_doc(name), BUNDLE)
    caps = cfg.process.capabilities
    assert caps is not None
    assert set(caps) == {"bounding", "effective", "inheritable", "permitted", "ambient"}
    assert all(isinstance(v, list) for v in caps.values())


def test_config_runc_spec_spot_check():
    cfg = Config(_doc("runc-spec.json"), BUNDLE)
    assert cfg.root_path == BUNDLE + "/rootfs"
    assert cfg.root_readonly is True
    assert cfg.process.terminal is True
    assert cfg.process.cwd == "/"
    assert cfg.process.user.uid == 0 and cfg.process.user.gid == 0
    assert cfg.process.env_value("TERM") == "xterm"
    assert cfg.process.env_value("PATH").startswith("/usr/local/sbin")
    assert cfg.process.env_value("NOPE") is None
    assert cfg.process.env_value("NOPE", "dflt") == "dflt"
    assert [r.type for r in cfg.process.rlimits] == ["RLIMIT_NOFILE"]
    assert cfg.process.no_new_privileges is True
    assert cfg.linux.namespace("pid") is not None
    assert cfg.linux.namespace("user") is None
    assert cfg.mounts[0].destination == "/proc" and cfg.mounts[0].type == "proc"


def test_config_docker_absolute_root_kept():
    doc = _doc("docker-config.json")
    cfg = Config(doc, BUNDLE)
    assert cfg.root_path == doc["root"]["path"]
    assert cfg.process.env_value("HOSTNAME") == "cc2fb2483962"


def test_config_podman_user_config():
    doc = _doc("podman-log-0015-user-config.json")
    cfg = Config(doc, BUNDLE)
    assert cfg.process.env_value("FOO") == "bar"
    assert cfg.process.user.uid == doc["process"]["user"]["uid"]
    assert cfg.process.user.additional_gids == list(doc["process"]["user"].get("additionalGids") or ())


def test_config_maximal_everything_typed():
    doc = _doc("maximal.json")
    cfg = Config(doc, BUNDLE)
    linux = doc["linux"]
    assert [(m.container_id, m.host_id, m.size) for m in cfg.linux.uid_mappings] == [
        (m["containerID"], m["hostID"], m["size"]) for m in linux.get("uidMappings") or ()]
    assert [d.path for d in cfg.linux.devices] == [d["path"] for d in linux.get("devices") or ()]
    assert cfg.linux.sysctl == (linux.get("sysctl") or {})
    assert cfg.linux.masked_paths == (linux.get("maskedPaths") or [])
    assert cfg.linux.readonly_paths == (linux.get("readonlyPaths") or [])
    for kind in HOOK_KINDS:
        assert [h.to_dict() for h in cfg.hooks[kind]] == (doc.get("hooks") or {}).get(kind, [])


def test_config_hooks_to_dict_round_trip():
    cfgs = [Config(_doc(name), BUNDLE) for name in GOOD_FILES]
    for cfg in cfgs:
        for hooks in cfg.hooks.values():
            for hook in hooks:
                d = hook.to_dict()
                assert d["path"] == hook.path
                assert json.loads(json.dumps(d)) == d


# ---------------------------------------------------------------- hand-made variants

MINIMAL = {"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"}}


def _variant(**changes) -> dict:
    doc = copy.deepcopy(MINIMAL)
    doc.update(changes)
    return doc


def test_mount_relative_destination_gets_slash():
    cfg = Config(_variant(mounts=[{"destination": "tmp", "type": "tmpfs"}, {"destination": "/abs"}]), BUNDLE)
    assert [m.destination for m in cfg.mounts] == ["/tmp", "/abs"]


def test_mount_defaults_empty():
    m = Mount({"destination": "/x"})
    assert (m.type, m.source, m.options) == ("", "", [])
    assert not m.is_bind


@pytest.mark.parametrize("d", [
    {"destination": "/x", "type": "bind", "source": "/s"},
    {"destination": "/x", "type": "none", "source": "/s", "options": ["rbind"]},
    {"destination": "/x", "source": "/s", "options": ["ro", "bind"]},
])
def test_mount_bind_detected(d):
    assert Mount(d).is_bind


@pytest.mark.parametrize("path, expected", [
    ("rootfs", BUNDLE + "/rootfs"),
    ("./rootfs/", BUNDLE + "/rootfs"),
    ("../other/rootfs", "/var/lib/bundles/other/rootfs"),
    ("/abs/rootfs", "/abs/rootfs"),
    ("/abs/../rootfs", "/rootfs"),
])
def test_config_root_path_resolved_against_bundle(path, expected):
    assert Config(_variant(root={"path": path}), BUNDLE).root_path == expected


def test_config_root_missing_defaults_rootfs():
    doc = _variant()
    del doc["root"]
    cfg = Config(doc, BUNDLE)
    assert cfg.root_path == BUNDLE + "/rootfs"
    assert cfg.root_readonly is False


def test_process_env_value_last_entry_wins():
    p = Process({"env": ["A=1", "AB=x", "A=2", "EMPTY=", "EQ=a=b"]})
    assert p.env_value("A") == "2"
    assert p.env_value("AB") == "x"
    assert p.env_value("EMPTY") == ""
    assert p.env_value("EQ") == "a=b"
    assert p.env_value("B") is None


def test_process_capabilities_absent_none():
    assert Process({"args": ["sh"]}).capabilities is None


def test_process_capabilities_empty_object_all_sets_empty():
    caps = Process({"args": ["sh"], "capabilities": {}}).capabilities
    assert caps == {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []}


def test_process_capabilities_given_copied():
    given = {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}
    caps = Process({"capabilities": given}).capabilities
    assert caps["bounding"] == ["CAP_KILL"]
    assert caps["inheritable"] == []
    caps["bounding"].append("CAP_CHOWN")
    assert given["bounding"] == ["CAP_KILL"]


def test_process_defaults():
    p = Process({})
    assert (p.terminal, p.cwd, p.env, p.args, p.rlimits) == (False, "/", [], [], [])
    assert p.console_size is None
    assert p.oom_score_adj is None
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids) == (0, 0, None, [])


def test_process_console_size_height_width():
    assert Process({"consoleSize": {"height": 24, "width": 80}}).console_size == (24, 80)


def test_config_without_process_none():
    doc = _variant()
    del doc["process"]
    assert Config(doc, BUNDLE).process is None


def test_linux_namespace_lookup_first_and_path():
    doc = _variant(linux={"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}]})
    linux = Config(doc, BUNDLE).linux
    assert linux.namespace("pid").path == ""
    assert linux.namespace("network").path == "/proc/1/ns/net"
    assert linux.namespace("ipc") is None


def test_linux_absent_defaults():
    linux = Config(_variant(), BUNDLE).linux
    assert linux.namespaces == [] and linux.cgroups_path == "" and linux.resources == {}
    assert linux.seccomp is None and linux.time_offsets == {}


# ---------------------------------------------------------------- idmapped mounts

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


@pytest.mark.parametrize("entry, idmapped, recursive", [
    ({"options": ["rbind"]}, False, False),
    # Mappings without an option: idmap, the top mount only (runc 1.2).
    ({"options": ["rbind"], "uidMappings": MAP, "gidMappings": MAP}, True, False),
    ({"options": ["bind", "idmap"]}, True, False),
    ({"options": ["rbind", "ridmap"], "uidMappings": MAP, "gidMappings": MAP}, True, True),
    # The last of idmap/ridmap counts, as in runc.
    ({"options": ["rbind", "idmap", "ridmap"]}, True, True),
    ({"options": ["rbind", "ridmap", "idmap"]}, True, False),
])
def test_mount_idmapped_and_recursive(entry, idmapped, recursive):
    mount = Mount({"destination": "/data", "type": "bind", "source": "/srv", **entry})
    assert mount.idmapped is idmapped
    assert mount.idmap_recursive is recursive


def test_mount_mappings_absent_or_given():
    assert Mount({"destination": "/d", "options": ["idmap"]}).uid_mappings is None
    mount = Mount({"destination": "/d", "uidMappings": MAP, "gidMappings": MAP})
    assert [(m.container_id, m.host_id, m.size) for m in mount.gid_mappings] == [(0, 100000, 65536)]
