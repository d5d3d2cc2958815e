"""bin/pyrunc, the installed command: a static x86_64 program that execs the
python beside its real path, isolated (-I -S), with share/pyrunc/main.py.

Run here on a stand-in "python" (a shell script printing its argv), laid out
as in a venv, directly and through symlinks; the real thing, installed from
the wheel and run as root with a hostile environment, is in
tests/integration/test_install.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "bin", "pyrunc")
GENERATOR = os.path.join(REPO, "tools", "gen-launcher")

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the launcher is an x86_64 program")


def _venv(tmp_path, python: str | None = "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\"\n"):
    """tmp/venv/bin/{pyrunc,python}: the launcher and a python that prints its argv."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(LAUNCHER, bin_dir / "pyrunc")
    if python is not None:
        (bin_dir / "python").write_text(python)
        (bin_dir / "python").chmod(0o755)
    return bin_dir


def _run(path, *args, **kwargs):
    return subprocess.run([str(path), *args], capture_output=True, text=True, **kwargs)


def test_launcher_execs_the_venv_python_isolated_with_main_py(tmp_path):
    bin_dir = _venv(tmp_path)
    result = _run(bin_dir / "pyrunc", "state", "an id", "", "--x=y")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == [
        f"{bin_dir}/python", "-I", "-S", f"{bin_dir}/../share/pyrunc/main.py", "state", "an id", "", "--x=y"]


def test_launcher_without_arguments(tmp_path):
    bin_dir = _venv(tmp_path)
    result = _run(bin_dir / "pyrunc")
    assert result.stdout.split("\n")[:-1] == [
        f"{bin_dir}/python", "-I", "-S", f"{bin_dir}/../share/pyrunc/main.py"]


def test_launcher_through_symlinks_finds_its_real_directory(tmp_path):
    # /usr/local/bin/pyrunc -> venv (engines), ~/.local/bin/pyrunc -> pipx's venv:
    # a chain of two symlinks in other directories, one of them relative.
    bin_dir = _venv(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    os.symlink(bin_dir / "pyrunc", tmp_path / "a" / "pyrunc")
    os.symlink("../a/pyrunc", tmp_path / "b" / "pyrunc")
    (tmp_path / "b" / "python").write_text("#!/bin/sh\necho wrong python\n")
    (tmp_path / "b" / "python").chmod(0o755)
    result = _run(tmp_path / "b" / "pyrunc", "list")
    assert result.stdout.split("\n")[0] == f"{bin_dir}/python"


def test_launcher_passes_the_environment_through(tmp_path):
    bin_dir = _venv(tmp_path, "#!/bin/sh\necho \"$PYRUNC_TEST_VALUE\"\n")
    result = _run(bin_dir / "pyrunc", env={"PYRUNC_TEST_VALUE": "kept", "PATH": "/usr/bin:/bin"})
    assert result.stdout == "kept\n"


def test_launcher_without_a_python_beside_it_says_so_and_exits_127(tmp_path):
    bin_dir = _venv(tmp_path, python=None)
    result = _run(bin_dir / "pyrunc", "state", "x")
    assert result.returncode == 127
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("pyrunc: cannot run the python beside this launcher")


def test_launcher_with_an_unexecutable_python_exits_126(tmp_path):
    bin_dir = _venv(tmp_path)
    (bin_dir / "python").chmod(0o644)
    result = _run(bin_dir / "pyrunc")
    assert result.returncode == 126
    assert "cannot run the python" in result.stderr


def test_launcher_is_what_gnu_as_makes_of_its_source():
    if not (shutil.which("as") and shutil.which("objcopy")):
        pytest.skip("needs GNU as and objcopy (binutils)")
    result = subprocess.run([sys.executable, GENERATOR, "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_main_py_resolves_pth_lines_against_site_packages_not_the_cwd(tmp_path):
    """A relative .pth line is site-packages-relative (as site.py reads it): a
    directory of that name in the caller's cwd must not reach sys.path."""
    venv = tmp_path / "venv"
    site_packages = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    site_packages.mkdir(parents=True)
    (site_packages / "x.pth").write_text("evil\n")
    (venv / "share" / "pyrunc").mkdir(parents=True)
    main = venv / "share" / "pyrunc" / "main.py"
    source = open(os.path.join(REPO, "share", "pyrunc", "main.py")).read()
    main.write_text(source.split('\nif __name__ == "__main__":')[0]
                    + "\n_add_site_packages()\nimport os\nprint([os.path.abspath(p) for p in sys.path])\n")
    cwd = tmp_path / "cwd"
    (cwd / "evil").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-I", "-S", str(main)], cwd=cwd, capture_output=True, text=True,
                            check=True)
    assert str(cwd / "evil") not in result.stdout
    assert str(site_packages) in result.stdout


def test_main_py_loads_pyrunc_through_the_pyc_finder():
    """The command's modules come through pyrunc.fastimport (its docstring
    says why). Run twice: the first run writes any .pyc the tree lacks."""
    main = os.path.join(REPO, "share", "pyrunc", "main.py")
    probe = ("import runpy, sys\n"
             f"runpy.run_path({main!r}, run_name='probe')['load_cli']()\n"
             "import pyrunc.ops.lifecycle\n"
             "print(sorted({type(m.__spec__.loader).__name__ for n, m in sys.modules.items()"
             " if n.startswith('pyrunc.') and n != 'pyrunc.fastimport' and hasattr(m, '__file__')"
             " and m.__file__.endswith('.py')}))\n")
    for _ in range(2):
        result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['PycFinder']"
