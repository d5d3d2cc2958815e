"""The pyrunc command, run as its launcher runs it (the venv's python -I -S
share/pyrunc/main.py), never loads the standard library's os module itself:
pyrunc's modules take it from pyrunc.oslite, which saves every command 4.4M
instructions (issue 20). A module that imports os again, or a call that falls
back to the real os on a common path, fails here, and so does one that loads
ctypes (which needs os): the cgroup v2 device filter calls bpf(2) through the
C module _sys, and the systemd driver speaks D-Bus itself."""

from __future__ import annotations

import os
import sys
import time

import pytest

from tests.integration.conftest import SYSTEMD, cgroups_path_for

MAIN = os.path.join(sys.prefix, "share", "pyrunc", "main.py")
PYTHON = os.path.join(sys.prefix, "bin", "python")
OS_MODULES = ("os", "posixpath", "genericpath", "_collections_abc")

pytestmark = pytest.mark.skipif(not os.path.exists(MAIN), reason=f"no installed command ({MAIN})")


def imported_by(runtime, tmp_path, *args: str) -> list[tuple[str, str]]:
    """(module, the module whose import imported it, "" at top level) for
    every module the command (and the init it forks) imported, from -X
    importtime's report: a module's line comes after those it imported, one
    level less indented."""
    import subprocess

    err_path = tmp_path / "importtime"
    with open(err_path, "w") as err:
        result = subprocess.run([PYTHON, "-I", "-S", "-X", "importtime", MAIN, "--root", runtime.root,
                                 *(["--systemd-cgroup"] if SYSTEMD else []), *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=60)
    report = err_path.read_text()
    assert result.returncode == 0, report[-2000:]
    rows = []  # (depth, name) in report order
    for line in report.splitlines()[1:]:
        if line.startswith("import time:"):
            field = line.rsplit("|", 1)[1]
            name = field.strip()
            rows.append(((len(field) - len(field.lstrip(" ")) - 1) // 2, name))
    found = []
    for i, (depth, name) in enumerate(rows):
        importer = next((n for d, n in rows[i + 1:] if d < depth), "") if depth else ""
        found.append((name, importer))
    return found


def test_no_command_of_a_container_lifecycle_loads_os(runtime, bundle, tmp_path, new_id):
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    loaded = {}
    for verb, args in (("create", ("--bundle", bundle.path, bundle.id)), ("state", (bundle.id,)),
                       ("start", (bundle.id,)), ("exec", (bundle.id, "true")), ("list", ()),
                       ("kill", (bundle.id, "KILL"))):
        loaded[verb] = imported_by(runtime, tmp_path, verb, *args)
    deadline = time.monotonic() + 10
    while runtime.state(bundle.id)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    loaded["delete"] = imported_by(runtime, tmp_path, "delete", bundle.id)
    run_id = new_id()
    bundle.config["process"]["args"] = ["true"]
    bundle.config["linux"]["cgroupsPath"] = cgroups_path_for(run_id)
    bundle.write()
    loaded["run"] = imported_by(runtime, tmp_path, "run", "--bundle", bundle.path, run_id)
    assert runtime.ids() == []
    assert all(any(m == "pyrunc.oslite" for m, _ in modules) for modules in loaded.values()), loaded
    assert {verb: [(m, by) for m, by in modules if m in OS_MODULES + ("ctypes",)]
            for verb, modules in loaded.items()} == {verb: [] for verb in loaded}
