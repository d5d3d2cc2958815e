"""Every name pyrunc takes from a module it imports (os.AT_EMPTY_PATH,
signal.pidfd_send_signal, fcntl.F_SEAL_SEAL ...) exists on the Python
running the tests: `make test` runs this file under each Python setup.cfg
claims (3.11, 3.12, 3.13). An `os.X` that exists only on a newer Python
crashes with AttributeError on the older one, and only on the path that
uses it (issue 15: "rro" mounts on 3.11)."""

from __future__ import annotations

import ast
import importlib
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pyrunc")


def _sources() -> list[str]:
    found = []
    for directory, _, files in os.walk(PACKAGE):
        found.extend(os.path.join(directory, f) for f in files if f.endswith(".py"))
    return sorted(found)


def _module_attributes(path: str) -> set[tuple[str, str, int]]:
    """(module, attribute, line) for each `module.attribute` where `module`
    is a name bound by `import module` (or `import a.b as module`)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                    alias.name.split(".")[0]
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
            module = imported[node.value.id]
            if not module.startswith("pyrunc"):
                uses.add((module, node.attr, node.lineno))
    return uses


def _is_submodule(module: str, name: str) -> bool:
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("path", _sources(), ids=lambda p: os.path.relpath(p, PACKAGE))
def test_every_module_attribute_exists_on_this_python(path):
    missing = []
    for module, attribute, line in sorted(_module_attributes(path)):
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            continue  # an optional dependency (pyseccomp without libseccomp): its own tests say so
        if not hasattr(loaded, attribute) and not _is_submodule(module, attribute):
            missing.append(f"line {line}: {module}.{attribute}")
    assert not missing, missing
