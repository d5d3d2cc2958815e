"""Rootless, the pure parts: --rootless, the default state root, which
cgroups a rootless container keeps, id maps, `spec --rootless`."""

from __future__ import annotations

import os

import pytest

from pyrunc import cli, store
from pyrunc.errors import PyruncError, UsageError
from pyrunc.linux import idmap, proc
from pyrunc.linux.cgroups import manager
from pyrunc.ops import common
from pyrunc.spec.defaults import default_config
from pyrunc.spec.model import IDMapping


def test_parse_in_user_namespace_initial_map_false():
    assert proc.parse_in_user_namespace("         0          0 4294967295\n") is False


@pytest.mark.parametrize("text", ["0 1000 1\n", "0 1000 1\n1 100000 65536\n", "0 0 65536\n"])
def test_parse_in_user_namespace_other_maps_true(text):
    assert proc.parse_in_user_namespace(text) is True


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("T", True), ("false", False),
                                             ("0", False), ("False", False)])
def test_rootless_flag_go_booleans(value, expected):
    assert common.rootless_cgroups(cli.parse(["--rootless", value, "list"])) is expected


def test_rootless_flag_auto_follows_caller():
    expected = os.geteuid() != 0 or proc.in_user_namespace()
    assert common.rootless_cgroups(cli.parse(["list"])) is expected
    assert common.rootless_cgroups(cli.parse(["--rootless", "auto", "list"])) is expected


def test_rootless_flag_bad_value_names_flag():
    with pytest.raises(UsageError, match="--rootless: invalid value 'maybe'"):
        common.rootless_cgroups(cli.parse(["--rootless", "maybe", "list"]))


def test_default_root_without_xdg_runtime_dir_is_run_pyrunc(monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert store.default_root() == "/run/pyrunc"


def test_default_root_for_a_user_is_under_xdg_runtime_dir(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(store.os, "geteuid", lambda: 1000)
    assert store.default_root() == "/run/user/1000/pyrunc"


def test_default_root_for_host_root_ignores_xdg_runtime_dir(monkeypatch):
    # runc's rule: root on the host keeps /run/runc whatever /run/user/0 says.
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    monkeypatch.setattr(store.os, "geteuid", lambda: 0)
    monkeypatch.setattr(proc, "in_user_namespace", lambda: False)
    assert store.default_root() == "/run/pyrunc"


def test_make_private_root_sticky_0700(tmp_path):
    root = str(tmp_path / "xdg" / "pyrunc")
    store.make_private_root(root)
    assert os.stat(root).st_mode & 0o7777 == 0o1700


def test_writable_paths_keeps_writable_skips_others(tmp_path, monkeypatch):
    mine, theirs = str(tmp_path / "mine" / "c"), str(tmp_path / "theirs" / "c")
    monkeypatch.setattr(manager, "_can_write_cgroup", lambda path: path == mine)
    assert manager._writable_paths({"memory": theirs, "": mine}, {}) == {"": mine}
    # Device rules are no limit a user could set: still skipped.
    assert manager._writable_paths({"devices": theirs}, {"devices": [{"allow": False}]}) == {}


def test_writable_paths_limit_in_unwritable_hierarchy_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(manager, "_can_write_cgroup", lambda path: False)
    with pytest.raises(PyruncError, match=r"linux.resources: cannot set limits in cgroup /cg/memory/c: "
                                          r"permission denied"):
        manager._writable_paths({"cpu": "/cg/cpu/c", "memory": "/cg/memory/c"}, {"memory": {"limit": 1}})
    # A limit for another controller leaves this hierarchy skippable.
    assert manager._writable_paths({"cpu": "/cg/cpu/c"}, {"memory": {"limit": 1}}) == {}


def test_writable_paths_unified_any_limit_refused(monkeypatch):
    monkeypatch.setattr(manager, "_can_write_cgroup", lambda path: False)
    with pytest.raises(PyruncError, match="/cg/c"):
        manager._writable_paths({"": "/cg/c"}, {"pids": {"limit": 5}})


def test_can_write_cgroup_new_dir_under_writable_parent(tmp_path):
    assert manager._can_write_cgroup(str(tmp_path / "a" / "b")) is True


def _maps(*triples):
    return [IDMapping({"containerID": c, "hostID": h, "size": s}) for c, h, s in triples]


def test_format_id_map_one_line_per_mapping():
    assert idmap.format_id_map(_maps((0, 1000, 1), (1, 100000, 65536))) == "0 1000 1\n1 100000 65536\n"


def test_is_own_id_only():
    assert idmap.is_own_id_only(_maps((0, 1000, 1)), 1000)
    assert not idmap.is_own_id_only(_maps((0, 1000, 2)), 1000)
    assert not idmap.is_own_id_only(_maps((0, 1001, 1)), 1000)
    assert not idmap.is_own_id_only(_maps((0, 1000, 1), (1, 100000, 10)), 1000)


def test_spec_rootless_as_runc():
    config = default_config(rootless=True)
    linux = config["linux"]
    types = [n["type"] for n in linux["namespaces"]]
    assert "network" not in types and types[-1] == "user"
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    assert "resources" not in linux
    sys_mount = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {"destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    # The mounts runc keeps, the cgroup one among them, with no gid= option.
    assert [m["destination"] for m in config["mounts"]] == [m["destination"] for m in default_config()["mounts"]]
    assert not any(o.startswith("gid=") for m in config["mounts"] for o in m.get("options", ()))


def test_rootless_refuses_idmapped_mounts():
    """As runc 1.2: the mount's user namespace and its maps need the host's root."""
    from pyrunc.errors import ConfigError
    from pyrunc.ops import create
    from pyrunc.spec.model import Config

    doc = default_config(rootless=True)
    doc["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]})
    with pytest.raises(ConfigError) as info:
        create._check_unprivileged(Config(doc, "/b"))
    assert info.value.lines() == [
        f"config.json: mounts[{len(doc['mounts']) - 1}]: idmapped mounts are not supported for rootless containers"]
    doc["mounts"].pop()
    create._check_unprivileged(Config(doc, "/b"))
