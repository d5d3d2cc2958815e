"""pyrunc.fastimport.PycFinder: a package's modules from their compiled
bytecode, and everything it is not sure of left to the normal import system.
Each test makes its own package in tmp_path and imports it in this process,
removing it from sys.modules and sys.meta_path afterwards."""

from __future__ import annotations

import compileall
import importlib
import os
import py_compile
import subprocess
import sys
import uuid

import pytest

from pyrunc.fastimport import PycFinder


@pytest.fixture
def package(tmp_path):
    """A fresh package (name, directory) with a module, a subpackage and a
    module in it, compiled as pip and compileall do; imported only through
    a PycFinder first on sys.meta_path, and the directory on sys.path for
    the normal import system's turn."""
    name = "fastimport_probe_" + uuid.uuid4().hex[:8]
    root = tmp_path / name
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("VALUE = 'a'\n")
    (root / "sub" / "__init__.py").write_text("VALUE = 'sub'\n")
    (root / "sub" / "b.py").write_text("from . import VALUE as PARENT\nVALUE = 'b'\n")
    assert compileall.compile_dir(str(root), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    finder = PycFinder(name, str(root))
    sys.path.insert(0, str(tmp_path))
    sys.meta_path.insert(0, finder)
    try:
        yield name, root
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]
        importlib.invalidate_caches()


def loader_name(module) -> str:
    return type(module.__spec__.loader).__name__


def test_modules_and_subpackages_load_from_their_pyc(package):
    name, root = package
    a = importlib.import_module(name + ".a")
    b = importlib.import_module(name + ".sub.b")
    sub = sys.modules[name + ".sub"]
    assert (a.VALUE, b.VALUE, b.PARENT) == ("a", "b", "sub")
    assert {loader_name(a), loader_name(b), loader_name(sub)} == {"PycFinder"}
    # The top-level package is the normal import system's: the finder only
    # knows its submodules.
    assert loader_name(sys.modules[name]) == "SourceFileLoader"
    # Attributes as the path machinery sets them (tracebacks, linecache,
    # relative imports and importlib.resources rely on them).
    assert a.__file__ == str(root / "a.py")
    assert a.__cached__ == str(root / "__pycache__" / f"a.{sys.implementation.cache_tag}.pyc")
    assert sub.__file__ == str(root / "sub" / "__init__.py")
    assert sub.__path__ == [str(root / "sub")]
    assert b.__package__ == name + ".sub"
    assert a.__spec__.loader_state is None  # the code is not kept once run


def test_code_names_the_source_where_it_is_now(package):
    """As the path machinery does: a .pyc compiled under another path (a
    relative one, as `compileall pyrunc` records) reports the real file in
    tracebacks."""
    name, root = package
    (root / "c.py").write_text("def where():\n    return where.__code__.co_filename\n")
    cwd = os.getcwd()
    os.chdir(root.parent)
    try:
        assert compileall.compile_file(os.path.join(name, "c.py"), quiet=1)
    finally:
        os.chdir(cwd)
    module = importlib.import_module(name + ".c")
    assert loader_name(module) == "PycFinder"
    assert module.where() == str(root / "c.py")


def test_the_pyc_is_what_runs_when_its_header_matches_the_source(package):
    """It runs the bytecode, as the path machinery would, without compiling
    the source: a .pyc of other code under a matching header is executed."""
    name, root = package
    source = root / "a.py"
    pyc = root / "__pycache__" / f"a.{sys.implementation.cache_tag}.pyc"
    header = pyc.read_bytes()[:16]
    other = root / "other.py"
    other.write_text("VALUE = 'from the pyc'\n")
    py_compile.compile(str(other), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    pyc.write_bytes(header + pyc.read_bytes()[16:])
    assert os.stat(source).st_size == len("VALUE = 'a'\n")
    assert importlib.import_module(name + ".a").VALUE == "from the pyc"


@pytest.mark.parametrize("change", ["edited source", "touched source", "no pyc", "hash-based pyc", "not a pyc"])
def test_anything_but_a_current_timestamp_pyc_goes_to_the_normal_import_system(package, change):
    name, root = package
    source = root / "a.py"
    pyc = root / "__pycache__" / f"a.{sys.implementation.cache_tag}.pyc"
    expected = "a"
    if change == "edited source":
        source.write_text("VALUE = 'edited'\n")
        expected = "edited"
    elif change == "touched source":
        stat = os.stat(source)
        os.utime(source, (stat.st_atime, stat.st_mtime + 10))
    elif change == "no pyc":
        pyc.unlink()
    elif change == "hash-based pyc":
        py_compile.compile(str(source), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    else:
        pyc.write_bytes(b"not bytecode at all")
    module = importlib.import_module(name + ".a")
    assert module.VALUE == expected
    assert loader_name(module) == "SourceFileLoader"


def test_other_packages_and_missing_modules_are_not_its_business(package):
    name, root = package
    finder = PycFinder(name, str(root))
    assert finder.find_spec(name) is None  # the package itself
    assert finder.find_spec(name + "x.a") is None  # a name that only starts alike
    assert finder.find_spec("os") is None
    assert finder.find_spec(name + ".missing") is None
    (root / "_ext.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert finder.find_spec(name + "._ext") is None  # a C extension
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name + ".missing")


def test_optimized_runs_are_left_to_the_path_machinery(package):
    """Under -O the path machinery reads .opt-1.pyc, whose asserts are gone:
    the finder must not run the plain .pyc instead."""
    name, root = package
    code = ("import sys\n"
            f"sys.path.insert(0, {str(root.parent)!r})\n"
            "from pyrunc.fastimport import PycFinder\n"
            f"sys.meta_path.insert(0, PycFinder({name!r}, {str(root)!r}))\n"
            f"import {name}.a as a\n"
            "print(type(a.__spec__.loader).__name__)\n")
    for flags, expected in (([], "PycFinder"), (["-O"], "SourceFileLoader")):
        result = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        assert result.stdout.strip() == expected, (flags, result.stdout)
