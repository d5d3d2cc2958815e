"""A small protobuf (proto2) wire-format encoder and decoder.

Enough for CRIU's RPC messages (images/rpc.proto): varints (int32, uint32,
bool, enums), length-delimited fields (strings, nested messages) and repeated
fields, driven by a schema: {field name: (number, kind)}, where kind is
"int", "bool", "string", a nested schema (dict), or a one-element list of one
of these for a repeated field. The format is Google's documented encoding
(https://protobuf.dev/programming-guides/encoding/); pyrunc writes the few
messages it needs by hand instead of depending on the protobuf package.
"""

from __future__ import annotations

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    pass


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative int32s are sign-extended to 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(schema: dict, message: dict) -> bytes:
    """`message` ({name: value}, unset fields left out) as wire bytes."""
    out = bytearray()
    for name, value in message.items():
        if value is None:
            continue
        if name not in schema:
            raise WireError(f"unknown field {name!r}")
        number, kind = schema[name]
        values = value if isinstance(kind, list) else [value]
        kind = kind[0] if isinstance(kind, list) else kind
        for item in values:
            if kind in ("int", "bool"):
                out += _varint(number << 3 | _VARINT) + _varint(int(item))
            else:
                data = item.encode() if kind == "string" else encode(kind, item)
                out += _varint(number << 3 | _LEN) + _varint(len(data)) + data
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def decode(schema: dict, data: bytes) -> dict:
    """Wire bytes as {name: value}; fields the schema does not name are skipped."""
    by_number = {number: (name, kind) for name, (number, kind) in schema.items()}
    result: dict = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            raw, pos = _read_varint(data, pos)
        elif wire == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise WireError("truncated field")
            raw, pos = data[pos:pos + length], pos + length
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
            continue
        else:
            raise WireError(f"unsupported wire type {wire}")
        if number not in by_number:
            continue
        name, kind = by_number[number]
        repeated = isinstance(kind, list)
        kind = kind[0] if repeated else kind
        if kind == "int":
            value = raw - (1 << 64) if raw >= 1 << 63 else raw
        elif kind == "bool":
            value = bool(raw)
        elif kind == "string":
            value = bytes(raw).decode(errors="replace")
        else:
            value = decode(kind, bytes(raw))
        if repeated:
            result.setdefault(name, []).append(value)
        else:
            result[name] = value
    return result
