"""`pyrunc features` and `--version`: what engines read back."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import cli
from pyrunc.ops import features


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
    # Idmapped mounts (linux.idmapped): engines gate user-namespace pods on it.
    assert doc["linux"]["mountExtensions"]["idmap"]["enabled"] is True
    assert {"idmap", "ridmap"} <= set(doc["mountOptions"])
    assert doc["linux"]["cgroup"]["systemd"] is True


def test_version_in_runc_line_format(capsys):
    assert cli.main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pyrunc version ")
    assert any(line.startswith("spec: 1.") for line in lines)
    # From a checkout (these tests run from one): its HEAD commit, never the version.
    commits = [line[8:] for line in lines if line.startswith("commit: ")]
    assert commits == [features.checkout_commit()]
    assert not commits[0].startswith("v")


def test_version_commit_is_the_checkouts_head():
    import shutil
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not shutil.which("git") or not os.path.exists(os.path.join(root, ".git")):
        pytest.skip("needs git and a git checkout")
    head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert features.checkout_commit() == head


SHA = "0123456789abcdef0123456789abcdef01234567"


def test_checkout_commit_reads_loose_packed_detached_and_worktree_heads(tmp_path):
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert features.checkout_commit(str(tmp_path / "repo")) is None  # an unborn branch
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/main\n")
    assert features.checkout_commit(str(tmp_path / "repo")) == SHA
    (git / "refs" / "heads" / "main").write_text(SHA.replace("0", "f") + "\n")
    assert features.checkout_commit(str(tmp_path / "repo")) == SHA.replace("0", "f")
    # A worktree: .git is a file naming its directory, whose commondir is the main one.
    worktree_git = git / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/main\n")
    (worktree_git / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert features.checkout_commit(str(tmp_path / "wt")) == SHA.replace("0", "f")
    (worktree_git / "HEAD").write_text(SHA + "\n")  # detached
    assert features.checkout_commit(str(tmp_path / "wt")) == SHA


def test_checkout_commit_is_none_outside_a_checkout_or_on_garbage(tmp_path):
    assert features.checkout_commit(str(tmp_path)) is None
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("not a ref\n")
    assert features.checkout_commit(str(tmp_path)) is None
