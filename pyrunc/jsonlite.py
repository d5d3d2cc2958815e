"""JSON without the `json` package's import cost.

`import json` pulls in `re` and `enum` (about 5 ms here), more than `pyrunc state`
may spend in total. The C accelerator `_json` that `json` itself uses is cheap to
import, so decode with its scanner and encode with a small writer.

Only the happy path lives here: when a document does not parse, `loads` falls
back to the real `json` module so the error names line and column.
"""

from __future__ import annotations

import _json

__all__ = ["loads", "dumps", "JSONError"]


class JSONError(ValueError):
    """Malformed JSON; `str()` reads like `line 3 column 5: Expecting ',' delimiter`."""

    def __init__(self, msg: str, lineno: int = 0, colno: int = 0):
        self.lineno = lineno
        self.colno = colno
        super().__init__(f"line {lineno} column {colno}: {msg}" if lineno else msg)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class _Context:
    # The attributes `_json.make_scanner` reads from a `json.JSONDecoder`.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)
    memo: dict = {}


def _int_if_integral(literal: str):
    value = float(literal)
    return int(value) if value.is_integer() else value


class _IntegralContext(_Context):
    parse_float = staticmethod(_int_if_integral)


_scan = _json.make_scanner(_Context())
_scan_integral = _json.make_scanner(_IntegralContext())
_WS = " \t\n\r"


def loads(text: str | bytes, integral_floats_as_int: bool = False):
    """Parse one JSON document; raise JSONError with line and column if malformed.

    integral_floats_as_int: 1.0, -0.0 and 1e3 come back as ints. For
    documents validated by JSON Schema, where they are integers and so may
    reach system calls that take no floats (config.json, process.json)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            line, column = _position(text[: err.start].decode("utf-8", "replace"), None)
            raise JSONError(f"not valid UTF-8 at byte {err.start}", line, column) from None
    try:
        start = len(text) - len(text.lstrip(_WS))
        value, end = (_scan_integral if integral_floats_as_int else _scan)(text, start)
        if text[end:].strip(_WS):
            raise ValueError("trailing data")
    except (StopIteration, ValueError, RecursionError, SystemError):
        # Malformed (the C scanner signals some errors only half-way, as a
        # bare SystemError): let the json module find and describe the error.
        return _slow_loads(text, integral_floats_as_int)
    # Counting brackets is cheap and bounds the depth: only a document that
    # could be deeper than MAX_DEPTH is walked.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JSONError(f"too deeply nested (more than {MAX_DEPTH} levels)")
    return value


# The deepest document accepted, the same on every Python: the C scanner's own
# limit follows the interpreter's (about 1000 levels on 3.11, far more on
# 3.12 and 3.13), and the code that walks a document recursively (validation,
# checks) must stay well inside Python's recursion limit.
MAX_DEPTH = 500


def _depth(value) -> int:
    """How deeply `value` nests arrays and objects (iteratively: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def _slow_loads(text: str, integral_floats_as_int: bool = False):
    import json

    try:
        return json.loads(text, parse_constant=_reject_constant,
                          parse_float=_int_if_integral if integral_floats_as_int else None)
    except json.JSONDecodeError as err:
        raise JSONError(err.msg, err.lineno, err.colno) from None
    except RecursionError:
        raise JSONError(f"too deeply nested (more than {MAX_DEPTH} levels)") from None
    except ValueError as err:
        # NaN/Infinity: parse_constant is not told where the token was.
        line, column = _position(text, _bare_constant_offset(text))
        raise JSONError(str(err), line, column) from None


def _position(text: str, offset: int | None) -> tuple[int, int]:
    """(line, column), 1-based, of `offset` in `text` (its end when None)."""
    if offset is None:
        offset = len(text)
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _bare_constant_offset(text: str) -> int | None:
    """Offset of the first NaN/Infinity outside a string literal."""
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith(("NaN", "Infinity", "-Infinity"), i):
            return i
    return None


_encode_str = _json.encode_basestring_ascii


def dumps(value, indent: int | None = None) -> str:
    """Serialise dicts, lists, str, int, float, bool and None as JSON.

    indent=None gives runc's compact form (`{"a":1}`); an int gives one
    member per line, like Go's json.MarshalIndent.
    """
    parts: list[str] = []
    _write(value, parts, indent, 0)
    return "".join(parts)


def _write(value, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("cannot encode NaN or infinity as JSON")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        sep, close = _separators(indent, level)
        out.append("{")
        first = True
        for key, item in value.items():
            out.append(sep if first else "," + sep)
            first = False
            out.append(_encode_str(str(key)))
            out.append(": " if indent is not None else ":")
            _write(item, out, indent, level + 1)
        out.append(close + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        sep, close = _separators(indent, level)
        out.append("[")
        for i, item in enumerate(value):
            out.append(sep if i == 0 else "," + sep)
            _write(item, out, indent, level + 1)
        out.append(close + "]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _separators(indent: int | None, level: int) -> tuple[str, str]:
    if indent is None:
        return "", ""
    return "\n" + " " * (indent * (level + 1)), "\n" + " " * (indent * level)
