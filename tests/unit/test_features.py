"""`pyrunc features` and `--version`: what engines read back."""

from __future__ import annotations

import json

from pyrunc import cli


def test_features_json_describes_what_pyrunc_supports(capsys):
    assert cli.main(["features"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ociVersionMin"] == "1.0.0" and doc["ociVersionMax"].startswith("1.2.")
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                            "poststop"]
    assert {"pid", "network", "mount", "ipc", "uts", "user", "cgroup"} <= set(doc["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert "SCMP_ACT_NOTIFY" in doc["linux"]["seccomp"]["actions"]
    assert "rro" in doc["mountOptions"] and "tmpcopyup" in doc["mountOptions"]
    # Not implemented, so not claimed: engines gate user-namespace pods on it.
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is False
    assert doc["linux"]["cgroup"]["systemd"] is False


def test_version_in_runc_line_format(capsys):
    assert cli.main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pyrunc version ")
    assert any(line.startswith("commit: ") for line in lines)
    assert any(line.startswith("spec: 1.") for line in lines)
