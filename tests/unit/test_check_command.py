"""`pyrunc check`: every problem of a bundle in one run (schema, semantic,
host), each with its JSON path; exit 1 if any; --format json for tools."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import cli
from pyrunc.linux import lsm


def run(argv, capfd):
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err.splitlines()


@pytest.fixture
def bundle(tmp_path, capfd):
    path = tmp_path / "bundle"
    (path / "rootfs").mkdir(parents=True)
    assert run(["spec", "--bundle", str(path)], capfd)[0] == 0
    return path


def edit(bundle, change):
    doc = json.loads((bundle / "config.json").read_text())
    change(doc)
    (bundle / "config.json").write_text(json.dumps(doc))


def six_faults(doc):
    doc["process"]["cwd"] = 7                                            # schema
    doc["process"]["env"].append("BOGUS")                                 # schema
    doc["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "uts"]
    doc["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent/pyrunc-src",
                          "options": ["rbind"]})                          # host


def test_check_reports_six_faults_of_three_kinds_in_one_run(bundle, capfd):
    edit(bundle, six_faults)
    (bundle / "rootfs").rmdir()
    (bundle / "rootfs").write_text("not a directory")                   # host
    code, out, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1 and out == ""
    assert all(line.startswith("pyrunc: config.json: ") for line in err), err
    assert [line.split(": ")[2] for line in err] == [
        "process.cwd", "process.env[2]", "process.rlimits[1].type", "hostname",
        "root.path", "mounts[7].source"]
    assert '"/nonexistent/pyrunc-src" does not exist (bind mount on "/data")' in err[5]
    assert "is not a directory but a regular file" in err[4]


def test_check_json_format_lists_kind_path_and_message(bundle, capfd):
    edit(bundle, six_faults)
    code, out, err = run(["check", "--format", "json", "--bundle", str(bundle)], capfd)
    assert code == 1 and err == []
    report = json.loads(out)
    assert report["valid"] is False
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("schema", "process.cwd"), ("schema", "process.env[2]"),
        ("config", "process.rlimits[1].type"), ("config", "hostname"), ("host", "mounts[7].source")]
    assert all(p["message"] for p in report["problems"])


def test_check_json_format_of_a_good_bundle_and_of_an_unreadable_one(bundle, tmp_path, capfd):
    code, out, _ = run(["check", "-f", "json", "--bundle", str(bundle)], capfd)
    assert code == 0 and json.loads(out) == {"valid": True, "problems": [], "warnings": []}
    code, out, err = run(["check", "--format=json", "--bundle", str(tmp_path / "absent")], capfd)
    report = json.loads(out)
    assert code == 1 and err == [] and report["valid"] is False
    assert report["problems"][0]["kind"] == "file" and "no such directory" in report["problems"][0]["message"]


def test_check_rejects_an_unknown_format(bundle, capfd):
    code, out, err = run(["check", "--format", "yaml", "--bundle", str(bundle)], capfd)
    assert code == 1 and out == "" and err == ["pyrunc: check: invalid format 'yaml': must be text or json"]


def test_check_semantic_rules_skip_fields_the_schema_already_names(bundle, capfd):
    def change(doc):
        doc["process"]["capabilities"]["bounding"] = "CAP_CHOWN"   # a string, not a list
        doc["linux"]["namespaces"] = {"type": "pid"}                # an object, not a list
    edit(bundle, change)
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert len(err) == 2, err
    assert "internal error" not in "\n".join(err)


def test_check_namespace_paths_must_be_namespaces_of_their_type(bundle, tmp_path, capfd):
    (tmp_path / "plain").write_text("")

    def change(doc):
        doc["linux"]["namespaces"] = [
            {"type": "pid"}, {"type": "mount"},
            {"type": "network", "path": "/proc/self/ns/uts"},
            {"type": "ipc", "path": str(tmp_path / "plain")},
            {"type": "uts", "path": str(tmp_path / "missing")},
            {"type": "cgroup", "path": "/proc/self/ns/cgroup"},
            {"type": "time", "path": "/dev/null"},
        ]
    edit(bundle, change)
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert err == [
        'pyrunc: config.json: linux.namespaces[2].path: "/proc/self/ns/uts" is a uts namespace, '
        'not a net namespace (type "network")',
        f'pyrunc: config.json: linux.namespaces[3].path: "{tmp_path}/plain" is not a namespace file',
        f'pyrunc: config.json: linux.namespaces[4].path: "{tmp_path}/missing": no such file or directory',
        'pyrunc: config.json: linux.namespaces[6].path: "/dev/null" is not a namespace file',
    ]


def test_check_hook_paths_must_be_executable_files(bundle, tmp_path, capfd):
    (tmp_path / "not-exec").write_text("#!/bin/sh\n")
    (tmp_path / "ok").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "ok", 0o755)

    def change(doc):
        doc["hooks"] = {"prestart": [{"path": str(tmp_path / "ok")}, {"path": str(tmp_path / "missing")}],
                        "poststop": [{"path": str(tmp_path / "not-exec")}, {"path": str(tmp_path)}]}
    edit(bundle, change)
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert err == [
        f'pyrunc: config.json: hooks.prestart[1].path: "{tmp_path}/missing": no such file or directory',
        f'pyrunc: config.json: hooks.poststop[0].path: "{tmp_path}/not-exec" is not executable',
        f'pyrunc: config.json: hooks.poststop[1].path: "{tmp_path}" is not a file but a directory',
    ]


def test_check_cgroups_path_as_create_reads_it(bundle, capfd):
    edit(bundle, lambda doc: doc["linux"].__setitem__("cgroupsPath", "/"))
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1 and len(err) == 1
    assert err[0].startswith("pyrunc: config.json: linux.cgroupsPath: resolves to the root of the ")
    edit(bundle, lambda doc: doc["linux"].__setitem__("cgroupsPath", "/pyrunc-check/c1"))
    assert run(["check", "--bundle", str(bundle)], capfd)[0] == 0
    code, _, err = run(["--systemd-cgroup", "check", "--bundle", str(bundle)], capfd)
    assert code == 1 and err == ['pyrunc: config.json: linux.cgroupsPath: with --systemd-cgroup it must be '
                                 '"slice:prefix:name" (e.g. "system.slice:pyrunc:web"), not "/pyrunc-check/c1"']


@pytest.mark.skipif(lsm.apparmor_enabled(), reason="this host has AppArmor")
def test_check_lsm_labels_need_the_lsm(bundle, capfd):
    edit(bundle, lambda doc: doc["process"].__setitem__("apparmorProfile", "docker-default"))
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert err == ['pyrunc: config.json: process.apparmorProfile: "docker-default": AppArmor is not enabled '
                   'on this host']
