"""pyrunc.oslite: os for pyrunc's modules, without os's import cost.

Its path functions must answer exactly as posixpath does, its environ as
os.environ does, and everything else must be the real os's.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import subprocess
import sys

import pytest

from pyrunc import oslite

PIECES = ["", "/", "//", "///", ".", "..", "a", "a/", "/a", "a/b", "a//b/", "./a", "../a", "a/..", "/a/../..",
          "//a/./b", "///a/b/../c/.", "a/b/../../..", "./", "c/./../d//", " ", "a b/c"]


def as_bytes(values):
    return [v.encode() for v in values]


@pytest.mark.parametrize("kind", [str, bytes])
def test_path_functions_answer_as_posixpath_does(kind):
    pieces = PIECES if kind is str else as_bytes(PIECES)
    for p in pieces:
        for name in ("split", "dirname", "basename", "isabs", "normpath"):
            assert getattr(oslite.path, name)(p) == getattr(posixpath, name)(p), (name, p)
        assert oslite.path.abspath(p) == posixpath.abspath(p), p
    for a, b in itertools.product(pieces, repeat=2):
        assert oslite.path.join(a, b) == posixpath.join(a, b), (a, b)
    for parts in itertools.product(pieces[:8], repeat=3):
        assert oslite.path.join(*parts) == posixpath.join(*parts), parts


def test_path_functions_reject_what_posixpath_rejects():
    for call in (lambda m: m.join("a", b"b"), lambda m: m.join(b"a", "b"), lambda m: m.join(3),
                 lambda m: m.split(None), lambda m: m.normpath(7)):
        with pytest.raises(TypeError):
            call(posixpath)
        with pytest.raises(TypeError):
            call(oslite.path)


def test_path_functions_take_path_like_objects(tmp_path):
    assert oslite.path.join(tmp_path, "x") == posixpath.join(tmp_path, "x")
    assert oslite.path.dirname(tmp_path / "x") == str(tmp_path)
    assert oslite.path.isdir(tmp_path)


def test_file_type_tests_answer_as_os_path_does(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link-to-file").symlink_to(tmp_path / "file")
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "dir")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    names = ["file", "dir", "link-to-file", "link-to-dir", "dangling", "missing", "file/below"]
    paths = [str(tmp_path / n) for n in names] + ["", "bad\0path", str(tmp_path / "file").encode()]
    for path in paths:
        for name in ("exists", "lexists", "isdir", "isfile", "islink"):
            assert getattr(oslite.path, name)(path) == getattr(os.path, name)(path), (name, path)


def test_the_rest_of_os_path_is_posixpath():
    assert oslite.path.realpath is posixpath.realpath
    assert oslite.path.relpath("/a/b/c", "/a") == "b/c"
    with pytest.raises(AttributeError):
        oslite.path.__path__


def test_system_calls_are_os_own():
    for name in ("open", "close", "read", "write", "stat", "scandir", "pidfd_open", "waitstatus_to_exitcode",
                 "O_CLOEXEC", "O_PATH", "_exit", "getcwd"):
        assert getattr(oslite, name) is getattr(os, name), name
    assert (oslite.SEEK_SET, oslite.SEEK_CUR, oslite.SEEK_END) == (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END)
    assert (oslite.sep, oslite.devnull, oslite.curdir, oslite.pardir) == (os.sep, os.devnull, os.curdir, os.pardir)


def test_the_rest_of_os_is_os_own():
    assert oslite.walk is os.walk
    assert oslite.fdopen is os.fdopen
    with pytest.raises(AttributeError):
        oslite.__path__
    with pytest.raises(AttributeError):
        oslite.no_such_function


def test_fsencode_and_fsdecode_as_os():
    for value in ("plain", "caf\u00e9", "bad\udcff", b"raw\xff", b"x"):
        assert oslite.fsencode(value) == os.fsencode(value)
        assert oslite.fsdecode(value) == os.fsdecode(value)


def test_environ_reads_what_os_environ_holds(monkeypatch):
    monkeypatch.setenv("PYRUNC_OSLITE_TEST", "one")
    assert oslite.environ.get("PYRUNC_OSLITE_TEST") == "one"
    assert oslite.environ["PYRUNC_OSLITE_TEST"] == "one"
    assert "PYRUNC_OSLITE_TEST" in oslite.environ
    monkeypatch.setenv("PYRUNC_OSLITE_TEST", "caf\u00e9")
    assert oslite.environ.get("PYRUNC_OSLITE_TEST") == "caf\u00e9"
    monkeypatch.delenv("PYRUNC_OSLITE_TEST")
    assert oslite.environ.get("PYRUNC_OSLITE_TEST") is None
    assert oslite.environ.get("PYRUNC_OSLITE_TEST", "default") == "default"
    assert "PYRUNC_OSLITE_TEST" not in oslite.environ
    assert 3 not in oslite.environ
    with pytest.raises(KeyError):
        oslite.environ["PYRUNC_OSLITE_TEST"]
    assert sorted(oslite.environ.items()) == sorted(os.environ.items())
    assert oslite.environ.copy() == dict(os.environ)
    assert sorted(oslite.environ) == sorted(os.environ) and len(oslite.environ) == len(os.environ)


def test_environ_can_be_a_spawned_process_environment(tmp_path):
    # hooks and sdbus hand os.environ to posix_spawn as a mapping.
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    try:
        pid = oslite.posix_spawn("/bin/sh", ["sh", "-c", 'printf %s "$HOME"'], oslite.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1)])
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        os.close(fd)
    assert out.read_text() == os.environ.get("HOME", "")


def test_makedirs_as_os(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    oslite.makedirs(str(target), mode=0o711)
    assert target.is_dir() and (target.stat().st_mode & 0o777) == 0o711 & ~current_umask()
    oslite.makedirs(str(target), exist_ok=True)
    with pytest.raises(FileExistsError):
        oslite.makedirs(str(target))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        oslite.makedirs(str(tmp_path / "file"), exist_ok=True)
    with pytest.raises(NotADirectoryError):
        oslite.makedirs(str(tmp_path / "file" / "below"))
    oslite.makedirs(str(tmp_path / "x" / "y") + "/", exist_ok=True)
    assert (tmp_path / "x" / "y").is_dir()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_importing_it_loads_no_os():
    code = ("import sys\nsys.path[:0] = %r\n"
            "from pyrunc import oslite\n"
            "from pyrunc.oslite import path, environ\n"
            "path.join('/a', 'b'); path.normpath('/a/../b'); path.isdir('/'); environ.get('PATH')\n"
            "oslite.makedirs('/tmp', exist_ok=True)\n"
            "hasattr(oslite, '__path__'), hasattr(path, '__file__')\n"
            "print('os' in sys.modules, 'posixpath' in sys.modules)\n") % sys.path
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
