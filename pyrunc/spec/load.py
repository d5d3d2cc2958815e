"""Reading a bundle: `<bundle>/config.json` into a dict.

Errors name the file and say what is wrong: a missing bundle or config names
its path; malformed JSON names line and column.
Imports: errors, jsonlite.
"""

from __future__ import annotations

import os

from pyrunc import jsonlite
from pyrunc.errors import PyruncError

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
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PyruncError(f"{path}: no such file (a bundle needs a config.json; `pyrunc spec` writes one)") from None
    except IsADirectoryError:
        raise PyruncError(f"{path}: is a directory, not a file") from None
    except OSError as err:
        raise PyruncError(f"{path}: {err.strerror.lower()}") from None
    return parse_config(data, path)


def parse_config(data: bytes, path: str = CONFIG_NAME) -> dict:
    try:
        doc = jsonlite.loads(data)
    except jsonlite.JSONError as err:
        raise PyruncError(f"{path}: {err}") from None
    if not isinstance(doc, dict):
        raise PyruncError(f"{path}: must hold a JSON object, not {type(doc).__name__}")
    return doc
