"""pyrunc.jsonlite: the json-compatible encoder/decoder that avoids importing json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyrunc import jsonlite
from pyrunc.jsonlite import JSONError

CORPUS = [
    None, True, False, 0, 1, -1, 2**63, -(2**63) - 1, 10**40, 2**200,
    0.0, -0.0, 1.5, -2.25, 1e100, 1e-300, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 123456789.125,
    "", "plain", "é", "日本語", "emoji 😀", "\u2028\u2029", "tab\t nl\n cr\r", 'quote " backslash \\ slash /',
    "\x00\x01\x1f\x7f", "\ud800",  # a lone surrogate survives both modules
    [], {}, [[]], {"": {}}, [None, True, False],
    {"a": 1, "b": [1, 2, {"c": None}], "d": {"e": {"f": ["g", 1.5, -3]}}},
    {"ü": "ö", "key with spaces": [], "k\"q": "\\"},
    [{"type": "bind", "options": ["rbind", "ro"]}, {"destination": "/proc"}],
    {"big": [2**64, -(2**64)], "floats": [1e-7, 1e21, 1e22]},
]

# Documents as engines write them (Go encoding/json escapes <, >, & and U+2028).
TEXT_CORPUS = [
    '{"a":"\\u003cb\\u003e \\u0026 \\u2028"}',
    '  {"x" : [ 1 , 2 ] , "y" : { } }  \n',
    '\n\t{\r\n"nested": {"deeper": [[[[{"z": null}]]]]}}\n',
    '"\\ud83d\\ude00"',
    '[1e5, 1E-2, -0, 0.5e+3]',
    '12345678901234567890123456789',
]


@pytest.mark.parametrize("value", CORPUS, ids=repr)
def test_dumps_compact_matches_json(value):
    assert jsonlite.dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", CORPUS, ids=repr)
def test_loads_of_json_dumps_matches_json(value):
    text = json.dumps(value)
    assert _same(jsonlite.loads(text), json.loads(text))


@pytest.mark.parametrize("value", CORPUS, ids=repr)
def test_round_trip_value_preserved(value):
    assert _same(jsonlite.loads(jsonlite.dumps(value)), value)


@pytest.mark.parametrize("text", TEXT_CORPUS)
def test_loads_engine_text_matches_json(text):
    assert _same(jsonlite.loads(text), json.loads(text))
    assert _same(jsonlite.loads(text.encode()), json.loads(text))


def _same(a, b) -> bool:
    """Equality that also tells -0.0 from 0.0, 1 from 1.0 and True from 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("value", [v for v in CORPUS if isinstance(v, (dict, list))], ids=repr)
def test_dumps_indent_matches_json(value):
    assert jsonlite.dumps(value, indent=2) == json.dumps(value, indent=2)
    assert jsonlite.dumps(value, indent=4) == json.dumps(value, indent=4)


def test_dumps_indent_realistic_state_matches_json():
    state = {"ociVersion": "1.2.0", "id": "c1", "pid": 4242, "status": "running", "bundle": "/b",
             "rootfs": "/b/rootfs", "created": "2023-11-14T22:13:20.5Z", "annotations": {"a": "b"}, "owner": ""}
    assert jsonlite.dumps(state, indent=2) == json.dumps(state, indent=2)


def test_dumps_compact_has_no_spaces():
    text = jsonlite.dumps({"a": [1, 2, {"b": None, "c": [True, False]}], "d": {}})
    assert " " not in text
    assert "\n" not in text
    assert text == '{"a":[1,2,{"b":null,"c":[true,false]}],"d":{}}'


def test_dumps_non_ascii_escaped():
    assert jsonlite.dumps("é😀") == '"\\u00e9\\ud83d\\ude00"'


def test_dumps_tuple_as_array():
    assert jsonlite.dumps((1, (2, 3))) == "[1,[2,3]]"


def test_dumps_key_order_kept():
    assert jsonlite.dumps({"z": 1, "a": 2, "m": 3}) == '{"z":1,"a":2,"m":3}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), [1, float("nan")]])
def test_dumps_nan_infinity_value_error(value):
    with pytest.raises(ValueError):
        jsonlite.dumps(value)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", [1, object()]], ids=repr)
def test_dumps_unsupported_type_type_error(value):
    with pytest.raises(TypeError):
        jsonlite.dumps(value)


def test_loads_bytes_and_str_same():
    text = '{"a": ["é", 1]}'
    assert jsonlite.loads(text.encode()) == jsonlite.loads(text) == {"a": ["é", 1]}


def test_loads_bytearray_accepted():
    assert jsonlite.loads(bytearray(b"[1]")) == [1]


def test_loads_duplicate_keys_last_wins_like_json():
    text = '{"a": 1, "a": 2}'
    assert jsonlite.loads(text) == json.loads(text) == {"a": 2}


# ---------------------------------------------------------------- malformed

@pytest.mark.parametrize("text, line, column", [
    ('{"a": [1, 2', 1, 12),                       # truncated nested
    ('{\n  "a": {\n    "b": [1,\n', 4, 1),         # truncated over lines
    ('{"a": {"b": {"c": "unterminated', 1, 19),    # truncated inside a string
    # Python 3.13's json names a trailing comma itself, where 3.11 and 3.12
    # point past it (the line and column come from the json module).
    ("[1,]", 1, 3 if sys.version_info >= (3, 13) else 4),
    ('{"a":1,}', 1, 7 if sys.version_info >= (3, 13) else 8),
    ('{"a" 1}', 1, 6),
    ("[1 2]", 1, 4),
    ('{"a":1} x', 1, 9),                          # trailing data
    ('{"a":1}\n{"b":2}', 2, 1),                   # two documents
    ("[1]]", 1, 4),
    ("", 1, 1),
    ("   \n  ", 2, 3),
    ("01", 1, 2),
    ('"\\x"', 1, 2),
    ('"a\x01b"', 1, 3),
    ("{'a': 1}", 1, 2),
    ("tru", 1, 1),
    ('\n\n  {"a":\n tru}', 4, 2),
    ("\ufeff{}", 1, 1),
])
def test_loads_malformed_error_line_column(text, line, column):
    with pytest.raises(JSONError) as info:
        jsonlite.loads(text)
    assert (info.value.lineno, info.value.colno) == (line, column)
    assert str(info.value).startswith(f"line {line} column {column}: ")


def test_json_error_is_value_error():
    with pytest.raises(ValueError):
        jsonlite.loads("{")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]", '{"a": Infinity}', "[-Infinity]"])
def test_loads_nan_infinity_rejected(text):
    with pytest.raises(JSONError, match="is not valid JSON"):
        jsonlite.loads(text)


@pytest.mark.parametrize("text, line, column", [("[1,\n NaN]", 2, 2), ('{"a": Infinity}', 1, 7)])
def test_loads_nan_infinity_error_has_line_column(text, line, column):
    with pytest.raises(JSONError) as info:
        jsonlite.loads(text)
    assert (info.value.lineno, info.value.colno) == (line, column)


@pytest.mark.parametrize("data", [b'{"a": "\xff"}', b"\xc3", b'["\xed\xa0\x80"]', b"\x80[]"])
def test_loads_invalid_utf8_json_error(data):
    with pytest.raises(JSONError, match="not valid UTF-8"):
        jsonlite.loads(data)


def test_loads_invalid_utf8_error_names_byte_offset():
    with pytest.raises(JSONError, match="at byte 7"):
        jsonlite.loads(b'{"ab": \xff}')


def test_loads_invalid_utf8_error_has_line_column():
    with pytest.raises(JSONError) as info:
        jsonlite.loads(b'{\n  "a": "\xff"\n}')
    assert (info.value.lineno, info.value.colno) == (2, 9)


def test_loads_too_many_digits_json_error():
    # Python refuses int() of more than 4300 digits: still a JSONError, not a bare ValueError.
    with pytest.raises(JSONError):
        jsonlite.loads("1" * 5000)


# ---------------------------------------------------------------- deep nesting

def _deep_documents(depth):
    return [
        "[" * depth + "]" * depth,
        '{"a":' * depth + "1" + "}" * depth,
        "[" * depth,
        '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2),
    ]


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_loads_deep_nesting_clean_error_or_result(depth):
    for text in _deep_documents(depth):
        try:
            jsonlite.loads(text)
        except JSONError:
            pass


def test_loads_deep_nesting_near_recursion_limit_clean():
    def nested_call(n):
        if n == 0:
            for text in _deep_documents(10_000):
                try:
                    jsonlite.loads(text)
                except JSONError:
                    pass
            return
        nested_call(n - 1)

    nested_call(sys.getrecursionlimit() - 60)


def test_loads_moderate_nesting_parsed():
    depth = 200
    assert jsonlite.loads("[" * depth + "]" * depth) == json.loads("[" * depth + "]" * depth)


# ---------------------------------------------------------------- import cost

def test_jsonlite_import_no_json_or_re():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from pyrunc import jsonlite\n"
        "jsonlite.loads('{\"a\": [1, 2.5, \"x\", null]}')\n"
        "jsonlite.dumps({'a': [1, 2.5]}, indent=2)\n"
        "print(' '.join(m for m in ('json', 're', 'enum') if m in sys.modules and m not in before))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.split() == []


# ---------------------------------------------------------------- depth

def _nested(depth: int) -> str:
    return "".join('{"a":' if i % 2 else "[" for i in range(depth)) + "0" + \
        "".join("}" if i % 2 else "]" for i in reversed(range(depth)))


def test_loads_accepts_the_deepest_allowed_document():
    assert jsonlite.loads(_nested(jsonlite.MAX_DEPTH)) is not None
    assert jsonlite._depth(jsonlite.loads(_nested(jsonlite.MAX_DEPTH))) == jsonlite.MAX_DEPTH


@pytest.mark.parametrize("depth", [jsonlite.MAX_DEPTH + 1, 2000, 5000, 100000])
def test_loads_refuses_deeper_documents_on_every_python(depth):
    """On 3.12 and 3.13 the C scanner parses 5000 levels that 3.11's refused,
    and a recursive walk of the result then crashed (RecursionError)."""
    with pytest.raises(JSONError) as info:
        jsonlite.loads('{"x": ' + _nested(depth) + "}")
    assert str(info.value) == f"too deeply nested (more than {jsonlite.MAX_DEPTH} levels)"


def test_loads_walks_only_documents_with_enough_brackets():
    wide = "[" + ",".join(["[0]"] * 3000) + "]"
    assert len(jsonlite.loads(wide)) == 3000
