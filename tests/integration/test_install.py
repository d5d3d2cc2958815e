"""pyrunc installed as a user installs it: an sdist, a wheel built from that
sdist by pip, installed by pip into a fresh venv of the interpreter running
these tests (make test runs them with 3.11, 3.12 and 3.13). Then, as root:
the command, an invalid config, man pages, a whole container lifecycle, and
a hostile environment that must not reach the root process (for the wheel's
command, through a symlink as engines use it, and for the editable one of
the development venv).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.integration.conftest import Runtime

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSION_DIR = "python%d.%d" % sys.version_info[:2]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)


def _check(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = _run(cmd, **kwargs)
    assert result.returncode == 0, (cmd, result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist (setuptools' PEP 517 hook, in the repo), then a wheel from that
    sdist (pip, in an isolated build environment): what a user downloads."""
    if shutil.which("as") is None and not os.path.exists(os.path.join(REPO, "bin", "pyrunc")):
        pytest.skip("no bin/pyrunc")
    out = tmp_path_factory.mktemp("dist")
    try:
        import setuptools.build_meta  # noqa: F401
    except ImportError:
        pytest.skip("needs setuptools in this venv to build the sdist")
    name = _check([sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"],
                  cwd=REPO).stdout.split()[-1]
    sdist = out / name
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(sdist)])
    wheel = glob.glob(str(out / "*.whl"))
    assert len(wheel) == 1, wheel
    return sdist, wheel[0]


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    """A fresh venv of this interpreter with the wheel installed by plain pip."""
    path = tmp_path_factory.mktemp("venv") / "v"
    base = os.path.realpath(sys.executable)
    _check([base, "-m", "venv", str(path)])
    _check([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", dist[1]])
    return path


def test_sdist_carries_everything_the_wheel_needs(dist):
    with tarfile.open(dist[0]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("setup.cfg", "pyproject.toml", "LICENSE", "README.md", "bin/pyrunc", "share/pyrunc/main.py",
                   "oci-schemas/config-schema.json", "share/man/man8/pyrunc-create.8",
                   "share/bash-completion/completions/pyrunc", "share/zsh/site-functions/_pyrunc"):
        assert needed in names


def test_wheel_carries_schemas_launcher_docs_and_license(dist):
    with zipfile.ZipFile(dist[1]) as whl:
        names = set(whl.namelist())
        launcher = whl.getinfo("pyrunc-0.1.0.data/data/bin/pyrunc")
        assert (launcher.external_attr >> 16) & 0o111 == 0o111
    assert {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "oci-schemas", "*.json"))} == \
        {n.rsplit("/", 1)[1] for n in names if n.startswith("pyrunc/oci_schemas/")}
    assert "pyrunc-0.1.0.dist-info/licenses/LICENSE" in names
    assert "pyrunc-0.1.0.data/data/share/man/man8/pyrunc.8" in names
    # No script for pip to rewrite, so nothing of the launcher is lost.
    assert not any(".data/scripts/" in n for n in names)
    # The C module of system calls, built (setup.py; ctypes is only the fallback).
    assert any(n.startswith("pyrunc/linux/_sys.") and n.endswith(".so") for n in names)
    assert "pyrunc/linux/_libc_ctypes.py" in names


def test_installed_command_runs_isolated_python_from_its_venv(venv):
    command = venv / "bin" / "pyrunc"
    with open(command, "rb") as f:
        assert f.read(4) == b"\x7fELF"  # as built: pip did not touch it
    result = _check([str(command), "--version"])
    lines = result.stdout.splitlines()
    assert lines[0] == "pyrunc version 0.1.0"
    assert not any(line.startswith("commit: v") for line in lines)
    assert f"python: {sys.version.split()[0]}" in lines


def test_installed_command_loads_its_modules_from_the_bytecode_pip_compiled(venv):
    """pip compiles the wheel's modules at install; the command's entry
    script (share/pyrunc/main.py) finds them through pyrunc.fastimport,
    without the path machinery's per-module cost."""
    main = venv / "share" / "pyrunc" / "main.py"
    probe = ("import json, runpy, sys\n"
             f"runpy.run_path({str(main)!r}, run_name='probe')['load_cli']()\n"
             "import pyrunc.ops.run\n"
             "print(json.dumps({n: [type(m.__spec__.loader).__name__, m.__file__] for n, m in sys.modules.items()"
             " if n.startswith('pyrunc.') and n != 'pyrunc.fastimport' and m.__file__.endswith('.py')}))\n")
    modules = json.loads(_check([str(venv / "bin" / "python"), "-I", "-S", "-c", probe]).stdout)
    assert len(modules) > 10
    assert {loader for loader, _ in modules.values()} == {"PycFinder"}, modules
    assert modules["pyrunc.cli"][1] == str(venv / "lib" / VERSION_DIR / "site-packages" / "pyrunc" / "cli.py")


def test_installed_command_reports_an_invalid_config(venv, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "ociVersion": "1.0.0", "process": {"args": [], "cwd": "rel"}, "root": {"path": "rootfs"}}))
    for verb in ("check", "create"):
        args = [str(venv / "bin" / "pyrunc"), "--root", str(tmp_path / "state"), verb, "--bundle", str(tmp_path)]
        result = _run(args + (["c1"] if verb == "create" else []))
        assert result.returncode == 1
        assert "config.json: process.args: must not be empty" in result.stderr
        assert "internal error" not in result.stderr and "Error" not in result.stderr
    assert not os.path.exists(tmp_path / "state" / "c1")


@pytest.mark.skipif(not shutil.which("man"), reason="needs man (man-db)")
def test_installed_man_pages_are_found_by_man(venv):
    # man-db finds <prefix>/share/man for each <prefix>/bin on PATH, and MANPATH works as usual.
    env = {**os.environ, "PATH": f"{venv}/bin:/usr/bin:/bin", "MANPAGER": "cat"}
    env.pop("MANPATH", None)
    assert _check(["man", "-w", "pyrunc-create"], env=env).stdout.strip() == f"{venv}/share/man/man8/pyrunc-create.8"
    result = _check(["man", "pyrunc-exec"], env={**env, "PATH": "/usr/bin:/bin", "MANPATH": f"{venv}/share/man"})
    assert "--process" in result.stdout.replace("\u2010", "-")
    assert os.path.isfile(venv / "share" / "bash-completion" / "completions" / "pyrunc")
    assert os.path.isfile(venv / "share" / "zsh" / "site-functions" / "_pyrunc")


def test_container_lifecycle_through_the_installed_command(venv, runtime, bundle, tmp_path):
    # Through a symlink elsewhere, as engines are given /usr/local/bin/pyrunc.
    link = tmp_path / "bin" / "pyrunc"
    link.parent.mkdir()
    os.symlink(venv / "bin" / "pyrunc", link)
    installed = Runtime(runtime.root)
    installed.cmd = [str(link), "--root", runtime.root]
    bundle.config["process"]["args"] = ["sh", "-c", "echo hello from $(hostname); sleep 30"]
    bundle.write()
    installed.ok("create", "--bundle", bundle.path, bundle.id)
    assert installed.state(bundle.id)["status"] == "created"
    installed.ok("start", bundle.id)
    assert installed.state(bundle.id)["status"] == "running"
    installed.ok("kill", bundle.id, "KILL")
    installed.ok("delete", "--force", bundle.id)
    assert installed.ids() == []


def _hostile_env(tmp_path) -> tuple[dict, str]:
    """Every way the caller's environment could put code into a Python
    process: each leaves a line in the marker file if it runs."""
    marker = tmp_path / "MARKER"
    code = f"open({str(marker)!r}, 'a').write(__name__ + ' ' + __file__ + '\\n')\n"
    pythonpath = tmp_path / "pythonpath"
    user_site = tmp_path / "home" / ".local" / "lib" / VERSION_DIR / "site-packages"
    for directory in (pythonpath, user_site):
        directory.mkdir(parents=True)
        # sitecustomize/usercustomize run from site.py; json, os and pyrunc
        # itself would be shadowed if the directory were on sys.path.
        for module in ("sitecustomize", "usercustomize", "json", "pyrunc", "jsonschema"):
            (directory / f"{module}.py").write_text(code)
    (user_site / "evil.pth").write_text(f"import os; {code}")
    (tmp_path / "startup.py").write_text(code)
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": str(pythonpath),
        "PYTHONHOME": str(pythonpath),
        "PYTHONSTARTUP": str(tmp_path / "startup.py"),
        "PYTHONINSPECT": "1",
        "PYTHONUSERBASE": str(tmp_path / "home" / ".local"),
        "HOME": str(tmp_path / "home"),
        "PYTHONSAFEPATH": "",
        "PYTHONNOUSERSITE": "",
        "PYTHONPLATLIBDIR": "nonexistent",
        "PYTHONWARNINGS": "error",
        "PYTHONDEVMODE": "1",
        "PYTHONMALLOC": "debug",
    }
    return env, str(marker)


def _assert_isolated(command: str, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    env, marker = _hostile_env(tmp_path)
    cwd = tmp_path / "pythonpath"  # json.py and friends in the caller's cwd too
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"ociVersion": "1.0.0", "process": {"args": ["x"], "cwd": "rel"},
                                                    "root": {"path": "rootfs"}}))
    state = _run([command, "--root", str(tmp_path / "state"), "state", "nosuch"], env=env, cwd=cwd)
    assert (state.returncode, state.stdout) == (1, ""), state
    assert state.stderr == "pyrunc: nosuch: container does not exist\n"
    # check loads jsonschema (and json, encodings ...): still nothing from the environment.
    check = _run([command, "check", "--bundle", str(bundle)], env=env, cwd=cwd)
    assert check.returncode == 1 and "process.cwd: must be an absolute path" in check.stderr, check
    assert not os.path.exists(marker), open(marker).read()
    # The same environment does reach a Python started without -I (the test can fail);
    # less the two variables that would keep it from starting at all.
    control = {k: v for k, v in env.items() if k not in ("PYTHONHOME", "PYTHONPLATLIBDIR")}
    _run([sys.executable, "-c", "pass"], env=control, cwd=cwd)
    assert os.path.exists(marker)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the point is a root process")
def test_hostile_python_environment_never_reaches_the_installed_command(venv, tmp_path):
    link = tmp_path / "link" / "pyrunc"
    link.parent.mkdir()
    os.symlink(venv / "bin" / "pyrunc", link)
    _assert_isolated(str(link), tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the point is a root process")
def test_hostile_python_environment_never_reaches_the_editable_command(tmp_path):
    command = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    if not os.path.exists(command):
        pytest.skip(f"no {command}: run through `make test` (make setup installs it)")
    _assert_isolated(command, tmp_path)


@pytest.mark.skipif(not shutil.which("pipx"), reason="needs pipx")
def test_pipx_install_gives_an_isolated_command_through_its_symlink(dist, tmp_path):
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man"), "PIPX_DEFAULT_PYTHON": os.path.realpath(sys.executable)}
    _check(["pipx", "install", dist[1]], env=env)
    command = tmp_path / "bin" / "pyrunc"
    assert os.path.islink(command)
    assert _check([str(command), "--version"]).stdout.startswith("pyrunc version 0.1.0\n")
    if os.geteuid() == 0:
        _assert_isolated(str(command), tmp_path / "hostile")
