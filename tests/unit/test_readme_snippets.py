"""The engine snippets of README.md, which tests/e2e configures the engines
with (tests/e2e/readme-snippet.py): each is there, parses, and the containerd
one added to Debian's stock config.toml is one valid document that keeps runc
beside pyrunc (without it, containerd turns the whole CRI plugin off)."""

from __future__ import annotations

import importlib.util
import json
import os
import tomllib

E2E = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")
_spec = importlib.util.spec_from_file_location("readme_snippet", os.path.join(E2E, "readme-snippet.py"))
readme_snippet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_snippet)


def _snippet(name: str) -> str:
    with open(readme_snippet.README) as f:
        block = readme_snippet.snippet(f.read(), name)
    assert block, f"no snippet {name!r} in README.md"
    return block


def test_containerd_snippet_on_the_stock_config_keeps_runc_and_names_the_default():
    with open(os.path.join(E2E, "stock", "containerd-config.toml")) as f:
        stock = f.read()
    config = tomllib.loads(stock + _snippet("containerd-cri"))  # a table defined twice would raise
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert cri["default_runtime_name"] in cri["runtimes"]
    assert cri["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    options = cri["runtimes"]["pyrunc"]["options"]
    assert options == {"BinaryName": "/usr/local/bin/pyrunc", "Root": "/run/containerd/pyrunc", "SystemdCgroup": False}


def test_podman_snippet_keeps_podmans_json_runtimes_and_adds_pyrunc():
    engine = tomllib.loads(_snippet("podman"))["engine"]
    assert engine["cgroup_manager"] == "cgroupfs"
    assert engine["runtime_supports_json"] == ["crun", "runc", "kata", "runsc", "youki", "krun", "pyrunc"]
    assert engine["runtimes"] == {"pyrunc": ["/usr/local/bin/pyrunc"]}
    assert '# runtime = "pyrunc"' in _snippet("podman")  # e2e-podman.sh uncomments it


def test_docker_snippet_is_json_naming_pyrunc():
    daemon = json.loads(_snippet("docker"))
    assert daemon["runtimes"] == {"pyrunc": {"path": "/usr/local/bin/pyrunc"}}
    assert daemon["default-runtime"] == "pyrunc"


def test_readme_snippet_replaces_and_refuses_what_is_not_there(capsys):
    assert readme_snippet.main(["docker", "/usr/local/bin/pyrunc=/opt/x"]) == 0
    assert '"path": "/opt/x"' in capsys.readouterr().out
    assert readme_snippet.main(["docker", "/nowhere=/x"]) == 1
    assert readme_snippet.main(["nosuch"]) == 1
