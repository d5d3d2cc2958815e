"""Reading a bundle: `<bundle>/config.json` into a dict.

Errors name the file and say what is wrong: a missing bundle or config names
its path; malformed JSON names line and column; anything but a regular file
of sane size is refused before it is read.
Imports: errors, files, jsonlite.
"""

from __future__ import annotations

import os

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


def reject_nul(doc, data: bytes, path: str) -> None:
    """A string with an escaped NUL is valid JSON, but no system call takes
    it. Only the escape makes one (JSON forbids the raw byte), so documents
    without it are not walked."""
    if b"\\u0000" not in data:
        return
    from pyrunc.spec.check import NUL_MESSAGE, find_nul

    where = find_nul(doc)
    if where is not None:
        from pyrunc.errors import ConfigError

        raise ConfigError([(where, NUL_MESSAGE)], file=os.path.basename(path))


def reject_lone_surrogates(doc, data: bytes, path: str) -> None:
    """A \\uD800-\\uDFFF escape without its pair is valid JSON but no
    character: no system call could take the string. Only such an escape
    makes one, so documents without "\\ud" are not walked."""
    if b"\\ud" not in data and b"\\uD" not in data:
        return
    where = _lone_surrogate(doc, "")
    if where is not None:
        raise PyruncError(f"{path}: {where or '(top level)'}: not valid Unicode (a \\u escape of half a "
                          f"surrogate pair)")


def _lone_surrogate(value, where: str) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if _lone_surrogate(key, inner) is not None:
                return inner.encode("utf-8", "backslashreplace").decode()
            found = _lone_surrogate(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None
