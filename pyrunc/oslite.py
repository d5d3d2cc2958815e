"""The `os` module without its import cost, for pyrunc's own modules.

`import os` runs os, posixpath, genericpath, stat and _collections_abc:
4.4 million instructions (valgrind), about 1.3 ms here, more than a third
of what `pyrunc state` adds to the interpreter's start, and every command
paid it. Most of it builds what pyrunc never uses (os.environ's mapping
class, the collection ABCs). The system calls are posix's: os re-exports
them and so does this module, the very same functions. What os adds in
Python and pyrunc's common commands use is here:

- the os.path functions they call (`path.join`, `dirname`, `isdir`, ...),
  as posixpath defines them, for str and bytes (tests/unit/test_oslite.py
  compares them with posixpath);
- `environ`, read-only, over the bytes dict that os.environ writes through,
  so it sees every change made through os.environ;
- `makedirs`, `fsencode` and `fsdecode`, as os has them.

Anything else (os.walk, os.fdopen, os.path.realpath, ...) is the real os's,
imported on first use. pyrunc's modules import this as
`from pyrunc import oslite as os`, so their call sites read as os's.
Imports: posix and sys only (a leaf).
"""

import sys as _sys
from posix import *  # noqa: F401,F403  the system calls and constants, as os exports them
from posix import _exit, environ as _environb  # noqa: F401

# What os.py defines in Python that is a constant.
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2
sep = "/"
curdir = "."
pardir = ".."
devnull = "/dev/null"
name = "posix"
_ENCODING = _sys.getfilesystemencoding()
_ERRORS = _sys.getfilesystemencodeerrors()

# st_mode's file type (POSIX's values; the stat module's S_IS* tests).
_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


def __getattr__(attribute: str):
    """The rest of os, loaded the first time a module asks for it."""
    if attribute.startswith("__"):  # the import system's probes (__path__, ...)
        raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
    import os

    return getattr(os, attribute)


def fsencode(filename):
    filename = fspath(filename)  # noqa: F405
    return filename.encode(_ENCODING, _ERRORS) if isinstance(filename, str) else filename


def fsdecode(filename):
    filename = fspath(filename)  # noqa: F405
    return filename.decode(_ENCODING, _ERRORS) if isinstance(filename, bytes) else filename


def makedirs(name, mode: int = 0o777, exist_ok: bool = False) -> None:
    """os.makedirs: `name` and its missing parents."""
    head, tail = _split(name)
    if not tail:
        head, tail = _split(head)
    if head and tail and not _exists(head):
        try:
            makedirs(head, exist_ok=exist_ok)
        except FileExistsError:
            pass  # made meanwhile by someone else
        if tail == (b"." if isinstance(tail, bytes) else "."):
            return
    try:
        mkdir(name, mode)  # noqa: F405
    except OSError:
        if not exist_ok or not _isdir(name):
            raise


class _Environ:
    """os.environ, read-only: posix.environ (bytes) decoded as os decodes it."""

    __slots__ = ()

    def __getitem__(self, key: str) -> str:
        return _environb[key.encode(_ENCODING, _ERRORS)].decode(_ENCODING, _ERRORS)

    def get(self, key: str, default=None):
        value = _environb.get(key.encode(_ENCODING, _ERRORS))
        return default if value is None else value.decode(_ENCODING, _ERRORS)

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and key.encode(_ENCODING, _ERRORS) in _environb

    def __len__(self) -> int:
        return len(_environb)

    def __iter__(self):
        return iter(self.keys())

    def keys(self) -> list:
        return [key.decode(_ENCODING, _ERRORS) for key in _environb]

    def values(self) -> list:
        return [value.decode(_ENCODING, _ERRORS) for value in _environb.values()]

    def items(self) -> list:
        return [(key.decode(_ENCODING, _ERRORS), value.decode(_ENCODING, _ERRORS))
                for key, value in _environb.items()]

    def copy(self) -> dict:
        return dict(self.items())


environ = _Environ()


def _separator(p):
    return b"/" if isinstance(p, bytes) else "/"


def _join(a, *p):
    path = fspath(a)  # noqa: F405
    slash = _separator(path)
    if not p:
        path[:0] + slash  # as posixpath: a type error for a lone non-path
    for b in p:
        b = fspath(b)  # noqa: F405
        if b.startswith(slash):
            path = b
        elif not path or path.endswith(slash):
            path += b
        else:
            path += slash + b
    return path


def _split(p):
    p = fspath(p)  # noqa: F405
    slash = _separator(p)
    i = p.rfind(slash) + 1
    head, tail = p[:i], p[i:]
    if head and head != slash * len(head):
        head = head.rstrip(slash)
    return head, tail


def _dirname(p):
    return _split(p)[0]


def _basename(p):
    p = fspath(p)  # noqa: F405
    return p[p.rfind(_separator(p)) + 1:]


def _isabs(s) -> bool:
    s = fspath(s)  # noqa: F405
    return s.startswith(_separator(s))


def _normpath(p):
    p = fspath(p)  # noqa: F405
    slash, dot, dotdot = (b"/", b".", b"..") if isinstance(p, bytes) else ("/", ".", "..")
    if not p:
        return dot
    # One or two leading slashes are kept (POSIX leaves two to the system), three or more are one.
    leading = 2 if p.startswith(slash * 2) and not p.startswith(slash * 3) else int(p.startswith(slash))
    parts = []
    for part in p.split(slash):
        if not part or part == dot:
            continue
        if part != dotdot or (not leading and not parts) or (parts and parts[-1] == dotdot):
            parts.append(part)
        elif parts:
            parts.pop()
    p = slash * leading + slash.join(parts)
    return p or dot


def _abspath(p):
    p = fspath(p)  # noqa: F405
    if not _isabs(p):
        p = _join(getcwdb() if isinstance(p, bytes) else getcwd(), p)  # noqa: F405
    return _normpath(p)


def _mode_is(path, kind: int, follow: bool = True) -> bool:
    try:
        mode = stat(path, follow_symlinks=follow).st_mode  # noqa: F405
    except (OSError, ValueError):
        return False
    return mode & _S_IFMT == kind


def _isdir(s) -> bool:
    return _mode_is(s, _S_IFDIR)


def _isfile(path) -> bool:
    return _mode_is(path, _S_IFREG)


def _islink(path) -> bool:
    return _mode_is(path, _S_IFLNK, follow=False)


def _exists(path, follow: bool = True) -> bool:
    try:
        stat(path, follow_symlinks=follow)  # noqa: F405
    except (OSError, ValueError):
        return False
    return True


def _lexists(path) -> bool:
    return _exists(path, follow=False)


def _rest_of_posixpath(attribute: str):
    if attribute.startswith("__"):
        raise AttributeError(f"module 'pyrunc.oslite.path' has no attribute {attribute!r}")
    import posixpath

    return getattr(posixpath, attribute)


# os.path: a module object (tests patch its functions as they would os.path's)
# holding the functions above; the rest is posixpath's, loaded on first use.
path = type(_sys)("pyrunc.oslite.path", "os.path's functions for pyrunc's modules (pyrunc.oslite)")
path.__dict__.update(sep=sep, join=_join, split=_split, dirname=_dirname, basename=_basename, isabs=_isabs,
                     normpath=_normpath, abspath=_abspath, exists=_exists, lexists=_lexists, isdir=_isdir,
                     isfile=_isfile, islink=_islink, __getattr__=_rest_of_posixpath)
