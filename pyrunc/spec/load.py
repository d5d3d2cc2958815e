"""Reading a bundle: `<bundle>/config.json` into a dict.

Errors name the file and say what is wrong: a missing bundle or config names
its path; malformed JSON names line and column; anything but a regular file
of sane size is refused before it is read.
Imports: errors, files, jsonlite.
"""

from __future__ import annotations

from pyrunc import oslite as os
from pyrunc import jsonlite
from pyrunc.errors import PyruncError
from pyrunc.files import read_regular

CONFIG_NAME = "config.json"


def resolve_bundle(bundle: str | None) -> str:
    """The bundle's absolute path (the current directory when not given)."""
    path = os.path.abspath(bundle) if bundle else os.getcwd()
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise PyruncError(f"bundle {path}: not a directory")
        raise PyruncError(f"bundle {path}: no such directory")
    return path


def read_config(bundle_dir: str) -> dict:
    path = os.path.join(bundle_dir, CONFIG_NAME)
    try:
        data = read_regular(path, path)
    except FileNotFoundError:
        raise PyruncError(f"{path}: no such file (a bundle needs a config.json; `pyrunc spec` writes one)") from None
    except IsADirectoryError:
        raise PyruncError(f"{path}: is a directory, not a file") from None
    except OSError as err:
        raise PyruncError(f"{path}: {err.strerror.lower()}") from None
    return parse_config(data, path)


def parse_config(data: bytes, path: str = CONFIG_NAME) -> dict:
    try:
        doc = jsonlite.loads(data, integral_floats_as_int=True)
    except jsonlite.JSONError as err:
        raise PyruncError(f"{path}: {err}") from None
    if not isinstance(doc, dict):
        raise PyruncError(f"{path}: must hold a JSON object, not {type(doc).__name__}")
    reject_lone_surrogates(doc, data, path)
    reject_nul(doc, data, path)
    return doc


NUL_MESSAGE = "must not contain a NUL character (\\u0000)"


def reject_nul(doc, data: bytes, path: str) -> None:
    """A string with an escaped NUL is valid JSON, but no system call takes
    it (a path, an argument, a hostname, a cgroup name all end at the first
    NUL). Only the escape makes one (JSON forbids the raw byte), so
    documents without it are not walked. Annotations only travel as JSON:
    not searched."""
    if b"\\u0000" not in data:
        return
    where = first_bad_string(doc, _has_nul, skip="annotations")
    if where is not None:
        from pyrunc.errors import ConfigError

        raise ConfigError([(where, NUL_MESSAGE)], file=os.path.basename(path))


def reject_lone_surrogates(doc, data: bytes, path: str) -> None:
    """A \\uD800-\\uDFFF escape without its pair is valid JSON but no
    character: no system call could take the string. Only such an escape
    makes one, so documents without "\\ud" are not walked."""
    if b"\\ud" not in data and b"\\uD" not in data:
        return
    where = first_bad_string(doc, _not_unicode)
    if where is not None:
        raise PyruncError(f"{path}: {where or '(top level)'}: not valid Unicode (a \\u escape of half a "
                          f"surrogate pair)")


def _has_nul(text: str) -> bool:
    return "\0" in text


def _not_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def first_bad_string(value, bad, where: str = "", skip: str = "") -> str | None:
    """The JSON path of the first string (or key) `bad` says is bad, a bad
    key's path made printable; the subtree at path `skip` is not searched."""
    if isinstance(value, str):
        return where if bad(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if bad(key):
                return inner.encode("utf-8", "backslashreplace").decode()
            if inner != skip:
                found = first_bad_string(item, bad, inner, skip)
                if found is not None:
                    return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_bad_string(item, bad, f"{where}[{index}]", skip)
            if found is not None:
                return found
    return None
