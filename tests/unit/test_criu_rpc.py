"""The protobuf wire codec CRIU's RPC messages go through, and the pure
parts of checkpoint/restore: runc's flags as criu_opts, external mounts,
and a missing criu named as such."""

from __future__ import annotations

import pytest

from pyrunc.errors import UsageError
from pyrunc.linux import criu
from pyrunc.linux.protowire import WireError, decode, encode
from pyrunc.ops.checkpoint import DESCRIPTORS_FILE, _inherited_stdio, criu_flags, external_mounts
from pyrunc.spec.model import Config

SCALARS = {"n": (1, "int"), "s": (2, "string"), "b": (3, "bool")}


def test_varint_as_protobufs_documentation_encodes_150():
    assert encode(SCALARS, {"n": 150}) == b"\x08\x96\x01"


def test_string_is_length_delimited():
    assert encode(SCALARS, {"s": "testing"}) == b"\x12\x07testing"


def test_negative_int32_takes_ten_bytes_and_comes_back():
    data = encode(SCALARS, {"n": -1})
    assert len(data) == 11
    assert decode(SCALARS, data) == {"n": -1}


def test_unset_fields_are_left_out():
    assert encode(SCALARS, {"n": None, "b": True}) == b"\x18\x01"


def test_nested_and_repeated_round_trip():
    message = {"type": criu.RESTORE, "notify_success": True,
               "opts": {"images_dir_fd": 5, "root": "/run/x/criu-root", "shell_job": True,
                        "ext_mnt": [{"key": "/data", "val": "/srv/data"}, {"key": "/etc/hosts", "val": "/h"}],
                        "external": ["net[4026531992]:extRootNetNS"], "cg_root": [{"path": "/a/b"}]}}
    assert decode(criu.REQ, encode(criu.REQ, message)) == message


def test_response_fields_criu_sends_are_read_and_unknown_ones_skipped():
    notify = encode({"script": (1, "string"), "pid": (2, "int")}, {"script": "post-restore", "pid": 4242})
    extra = encode({"x": (15, "string")}, {"x": "from a newer criu"})
    data = encode({"type": (1, "int"), "success": (2, "bool")}, {"type": criu.NOTIFY, "success": True}) \
        + b"\x2a" + bytes([len(notify)]) + notify + extra
    assert decode(criu.RESP, data) == {"type": criu.NOTIFY, "success": True,
                                       "notify": {"script": "post-restore", "pid": 4242}}


@pytest.mark.parametrize("data", [b"\x08", b"\x12\x05ab", b"\x0b"])
def test_truncated_or_unknown_wire_types_are_errors(data):
    with pytest.raises(WireError):
        decode(SCALARS, data)


def test_an_unknown_field_name_is_refused():
    with pytest.raises(WireError):
        encode(SCALARS, {"nope": 1})


def test_missing_criu_is_one_line_naming_it(tmp_path):
    with pytest.raises(criu.CriuError) as err:
        criu.find_criu(str(tmp_path / "criu"))
    assert "criu not found" in str(err.value) and "\n" not in str(err.value)


def test_flags_become_criu_opts():
    fields = criu_flags({"tcp_established": True, "shell_job": True, "file_locks": False,
                         "manage_cgroups_mode": "strict", "empty_ns": ["network"]})
    assert fields == {"tcp_established": True, "shell_job": True, "manage_cgroups_mode": 5,
                      "empty_ns": criu.CLONE_NEWNET}


@pytest.mark.parametrize("opts, message", [
    ({"manage_cgroups_mode": "hard"}, "--manage-cgroups-mode"),
    ({"empty_ns": ["pid"]}, "only the network namespace"),
    ({"lazy_pages": True}, "--lazy-pages: not supported"),
])
def test_bad_flags_are_usage_errors(opts, message):
    with pytest.raises(UsageError) as err:
        criu_flags(opts)
    assert message in str(err.value)


def _config(mounts, masked=()):
    return Config({"ociVersion": "1.0.2", "mounts": mounts, "linux": {"maskedPaths": list(masked)}}, "/b")


def test_bind_mounts_are_external_by_destination_then_source():
    cfg = _config([{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/data", "type": "none", "source": "/srv/data", "options": ["rbind"]},
                   {"destination": "/etc/hosts", "type": "bind", "source": "/h"}])
    assert external_mounts(cfg, restore=False)[:2] == [{"key": "/data", "val": "/data"},
                                                      {"key": "/etc/hosts", "val": "/etc/hosts"}]
    assert external_mounts(cfg, restore=True)[:2] == [{"key": "/data", "val": "/srv/data"},
                                                     {"key": "/etc/hosts", "val": "/h"}]


def test_device_nodes_are_named_once_each_by_their_path():
    cfg = _config([])
    cfg.linux.devices = []
    paths = [e["key"] for e in external_mounts(cfg, restore=True)]
    assert "/dev/null" in paths and "/dev/urandom" in paths and len(paths) == len(set(paths))


def test_masked_files_are_binds_of_dev_null_but_masked_directories_are_not():
    cfg = _config([], masked=["/proc/kcore", "/proc/acpi"])
    entries = external_mounts(cfg, restore=True, is_file=lambda path: path == "/proc/kcore")
    assert [e for e in entries if e["val"] == "/dev/null" and e["key"] != "/dev/null"] == \
        [{"key": "/proc/kcore", "val": "/dev/null"}]


def test_restore_hands_back_stdio_pipes_and_outside_files_but_not_what_criu_reopens(tmp_path):
    (tmp_path / DESCRIPTORS_FILE).write_text('["file[18:6]", "pipe:[4242]", "/dev/pts/0"]')
    assert _inherited_stdio(str(tmp_path)) == [{"key": "file[18:6]", "fd": 0}, {"key": "pipe:[4242]", "fd": 1}]


def test_restore_of_a_checkpoint_without_descriptors_inherits_nothing(tmp_path):
    assert _inherited_stdio(str(tmp_path)) == []
