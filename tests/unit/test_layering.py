"""Imports flow one way: cli → ops → {store, spec, launcher} → {sync, init} → linux.

Walks every module's imports (top level and inside functions) with `ast` and
checks them against the layer table, so a shortcut that makes the layers
depend on each other in a circle fails here, not in review.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import pyrunc

PACKAGE_DIR = os.path.dirname(pyrunc.__file__)

# module prefix → pyrunc modules (prefixes) it may import
ALLOWED = {
    "pyrunc.cli": ("pyrunc.log", "pyrunc.errors", "pyrunc.ops", "pyrunc"),
    "pyrunc.__main__": ("pyrunc.cli",),
    # The Python API: beside the CLI, over ops (the CLI never imports it).
    "pyrunc.api": ("pyrunc.errors", "pyrunc.ops", "pyrunc.store", "pyrunc.spec", "pyrunc.linux.signals", "pyrunc"),
    "pyrunc.ops": ("pyrunc.ops", "pyrunc.errors", "pyrunc.log", "pyrunc.store", "pyrunc.spec", "pyrunc.launcher",
                   "pyrunc.init.context", "pyrunc.linux", "pyrunc.jsonlite", "pyrunc.hooks", "pyrunc.faults",
                   "pyrunc.files", "pyrunc.status", "pyrunc.record", "pyrunc"),
    "pyrunc.hooks": ("pyrunc.errors", "pyrunc.jsonlite"),
    "pyrunc.store": ("pyrunc.status", "pyrunc.record", "pyrunc.errors", "pyrunc.jsonlite", "pyrunc.files", "pyrunc.linux.proc",
                     "pyrunc.linux.cgroups.paused"),
    "pyrunc.spec": ("pyrunc.spec", "pyrunc.errors", "pyrunc.jsonlite", "pyrunc.files", "pyrunc.linux.capabilities",
                    "pyrunc.linux.rlimits", "pyrunc.linux.sysctl", "pyrunc"),
    # pyrunc.hooks: loaded for the init before the fork (launcher.load_init_code).
    "pyrunc.launcher": ("pyrunc.sync", "pyrunc.log", "pyrunc.errors", "pyrunc.init", "pyrunc.linux", "pyrunc.faults",
                        "pyrunc.hooks", "pyrunc"),
    "pyrunc.sync": ("pyrunc.errors", "pyrunc.jsonlite", "pyrunc"),
    "pyrunc.init": ("pyrunc.init", "pyrunc.sync", "pyrunc.errors", "pyrunc.linux", "pyrunc.spec.model", "pyrunc.hooks",
                    "pyrunc.faults", "pyrunc"),
    "pyrunc.linux": ("pyrunc.linux", "pyrunc.errors", "pyrunc.jsonlite", "pyrunc.OCI_VERSION"),
    "pyrunc.log": ("pyrunc.jsonlite",),
    "pyrunc.jsonlite": (),
    "pyrunc.errors": (),
    "pyrunc.status": ("pyrunc.errors",),
    "pyrunc.record": (),
    "pyrunc.faults": (),
    "pyrunc.files": ("pyrunc.errors",),
    "pyrunc.fastimport": (),  # the command's import hook, loaded by main.py before anything else
    "pyrunc.oslite": (),  # the os module for pyrunc's modules: any of them may import it
    "pyrunc": ("pyrunc.api",),
}


def modules():
    for directory, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def imported(path: str, module: str) -> set[str]:
    """Every pyrunc name imported; `from pkg import x` counts as pkg.x (x may
    be a submodule or just an attribute of pkg: the rules accept either)."""
    tree = ast.parse(open(path).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {n for n in found if n.startswith("pyrunc.")}


def rule_for(module: str) -> tuple[str, ...]:
    best = max((k for k in ALLOWED if module == k or module.startswith(k + ".")), key=len)
    return ALLOWED[best]


@pytest.mark.parametrize("module, path", sorted(modules()))
def test_layering_imports_flow_one_way(module, path):
    allowed = rule_for(module)
    bad = []
    for name in imported(path, module):
        if name == module or name.startswith(module + ".") or name == "pyrunc.oslite":
            continue
        parent = name.rsplit(".", 1)[0]
        # `from pyrunc.linux import proc` names the module pyrunc.linux.proc;
        # `from pyrunc.errors import X` an attribute of an allowed module.
        if any(n == a or n.startswith(a + ".") for a in allowed if a != "pyrunc" for n in (name, parent)):
            continue
        if "pyrunc" in allowed and name in ("pyrunc.OCI_VERSION", "pyrunc.__version__"):
            continue
        bad.append(name)
    assert bad == [], f"{module} may not import {bad}"


def stdlib_os_imports(path: str) -> list[str]:
    """`import os`, `from os import ...`, `import posixpath`: what loads the real os."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and not node.level else []
        found += [f"line {node.lineno}: {n}" for n in names if n in ("os", "posixpath", "genericpath", "os.path")]
    return found


@pytest.mark.parametrize("module, path", sorted(modules()))
def test_modules_take_os_from_oslite(module, path):
    """`import os` costs every command 4.4M instructions (pyrunc.oslite):
    pyrunc's modules import `from pyrunc import oslite as os`, which loads
    the real os only for what it does not have."""
    if module == "pyrunc.oslite":
        return
    assert stdlib_os_imports(path) == []


def test_the_command_modules_load_without_os():
    """What state, start, kill, delete, create and run import leaves the
    real os unloaded (the whole command is checked by
    tests/integration/test_no_os_import.py)."""
    code = ("import sys\n"
            "from pyrunc import cli, store, ops\n"
            "from pyrunc.ops import lifecycle, create, run, common\n"
            "from pyrunc.linux.cgroups import manager, fs\n"
            "from pyrunc import launcher\n"
            "from pyrunc.init import stage2\n"
            "from pyrunc.spec import model, check\n"
            "from pyrunc.oslite import environ, path\n"
            "path.join('/a', 'b'), path.isdir('/'), environ.get('HOME')\n"
            "print(' '.join(sorted(sys.modules)))\n")
    loaded = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path[:0] = %r; " % sys.path + code],
                            capture_output=True, text=True, check=True).stdout.split()
    assert "pyrunc.launcher" in loaded and "pyrunc.oslite" in loaded
    assert [m for m in ("os", "posixpath", "genericpath", "_collections_abc") if m in loaded] == []


# What system calls with privilege go through, and the code that runs them.
PRIVILEGED = ("pyrunc.linux._libc", "pyrunc.linux._sys", "pyrunc.linux._libc_ctypes", "pyrunc.linux.syscalls",
              "pyrunc.linux.seccomp", "pyrunc.linux.mounts", "pyrunc.linux.rootfs", "pyrunc.init", "pyrunc.launcher",
              "ctypes", "prctl", "_prctl", "seccomp")


def test_validation_loads_no_privileged_module():
    """spec reads the kernel's name tables (linux.capabilities, rlimits,
    sysctl) but the code that applies them imports _libc and syscalls only
    when called: validating a config that uses all three, and seccomp,
    loads nothing that makes a privileged system call."""
    code = ("import sys, pyrunc\n"
            "cfg = pyrunc.default_spec()\n"
            "cfg['linux']['sysctl'] = {'net.ipv4.ip_forward': '1'}\n"
            "cfg['linux']['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW',"
            " 'syscalls': [{'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO'}]}\n"
            "assert cfg['process']['capabilities'] and cfg['process']['rlimits']\n"
            "assert pyrunc.validate(cfg) == []\n"
            "assert pyrunc.validate({**cfg, 'ociVersion': 1}) != []\n"
            "print(' '.join(sorted(sys.modules)))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "pyrunc.linux.capabilities" in loaded and "pyrunc.linux.sysctl" in loaded
    assert [m for m in loaded if m.startswith(PRIVILEGED)] == []
