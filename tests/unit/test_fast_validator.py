"""The generated validator (pyrunc/spec/_validator.py, written by tools/gen-validator)
against jsonschema, which it stands in for on `create`'s hot path.

- the committed module is exactly what the generator makes of oci-schemas/ now;
- it gives jsonschema's verdict on every document of a deterministic corpus:
  5392 configs (the good ones, pieces of them, systematic and random mutations),
  3614 targeted configs (every number/string pool value in every bounded member),
  41 conditional structures, 3305 state documents;
- the keywords our schemas do not use agree with jsonschema on a synthetic schema;
- the generator refuses keywords it does not know;
- the pattern equivalents in pyrunc/spec/patterns.py agree with `re.search` on
  14,000 to 152,000 strings each;
- importing the module loads none of re, json, typing, jsonschema.
Whole file: about 2 s.
"""

from __future__ import annotations

import json
import pathlib
import random
import re
import subprocess
import sys
import types

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from pyrunc.spec import _validator as fast
from pyrunc.spec.patterns import PATTERNS
from pyrunc.spec.schema import CONFIG_SCHEMA, STATE_SCHEMA, _validator, schema_dir

REPO = pathlib.Path(__file__).resolve().parents[2]
GOOD = pathlib.Path(__file__).parent / "configs" / "good"
GENERATOR = REPO / "tools" / "gen-validator"
GENERATED = REPO / "pyrunc" / "spec" / "_validator.py"
DRAFT7_URI = "http://json-schema.org/draft-07/schema#"


def _load_generator():
    """tools/gen-validator as a module (no .py suffix; no bytecode written)."""
    module = types.ModuleType("gen_validator")
    module.__file__ = str(GENERATOR)
    exec(compile(GENERATOR.read_text(), str(GENERATOR), "exec"), module.__dict__)
    return module


gen = _load_generator()


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _good_configs():
    return {p.name: json.loads(p.read_text()) for p in sorted(GOOD.glob("*.json"))}


def _schema_strings():
    """Every enum string, const string and property name in oci-schemas/."""
    enums, names = set(), set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum":
                    enums.update(v for v in value if isinstance(v, str))
                elif key == "const" and isinstance(value, str):
                    enums.add(value)
                elif key in ("properties", "dependencies", "definitions"):
                    names.update(value)
                    for sub in value.values():
                        walk(sub)
                elif key == "required":
                    names.update(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(pathlib.Path(schema_dir()).glob("*.json")):
        walk(json.loads(path.read_text()))
    return sorted(enums), sorted(names)


# --- the committed module is current --------------------------------------------------


def test_committed_module_is_what_the_generator_makes_now():
    """Edit a schema (or patterns.py) without running tools/gen-validator, and this fails."""
    produced = gen.generate(schema_dir())
    assert GENERATED.read_text() == produced, "_validator.py is stale: run .venv/bin/python tools/gen-validator"


def test_generation_is_deterministic():
    assert gen.generate(schema_dir()) == gen.generate(schema_dir())


def test_generator_check_mode_passes(tmp_path):
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    stale = tmp_path / "stale.py"
    stale.write_text("# old\n")
    result = subprocess.run([sys.executable, str(GENERATOR), "--check", "-o", str(stale)], capture_output=True,
                            text=True)
    assert result.returncode == 1 and "stale" in result.stderr
    assert stale.read_text() == "# old\n"


def test_every_schema_pattern_has_a_plain_python_equivalent():
    """Else the generated module would import `re` (~4 ms) on the hot path."""
    text = GENERATED.read_text()
    assert "_search(" not in text
    patterns = set()

    def walk(node, in_names=False):
        if isinstance(node, dict):
            for key, value in node.items():
                if in_names:
                    walk(value)
                elif key == "pattern":
                    patterns.add(value)
                else:
                    walk(value, key in ("properties", "definitions", "dependencies"))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in pathlib.Path(schema_dir()).glob("*.json"):
        walk(json.loads(path.read_text()))
    assert len(patterns) == 7
    assert patterns <= set(PATTERNS)


# --- agreement with jsonschema: configs -----------------------------------------------

ENUM_STRINGS, PROPERTY_NAMES = _schema_strings()

INTS = [0, 1, -1, 2, 5, 6, 7, 8, 100, 101, 102, 255, 1000, 1001, -1000, -1001, 65535, 65536, 999999999, 1000000000,
        2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64,
        -2**64, 10**30]
FLOATS = [0.0, -0.0, 1.0, 1.5, -1.0, 7.0, 7.5, 100.0, 101.0, 0.5, 1e9, 1e300, -1e300, float(2**31), float(2**63),
          float(2**64 - 1), float(2**64), 4294967295.0, 4294967296.0, 2.5e-300]
STRINGS = ["", " ", "x", "/", "//", "/abs/path", "rootfs", "a=b", "=b", "A=", "\n=", "=", "rwm", "rwm\n", "rwmx", "r w",
           "2MB", "2MB\n", "2mb", "1GB", "0B", "KB", "١MB", "²B", "MB:0=20", "MB:\n", "MB:a\nb", "mb:1", "0-3,7",
           "0-3,7\n", "0-15:2/4", "0-15:2", "0-", ",", "0,,1", "١", "1.0.0", "1.2.9", "1.3.0", "1.0.0\n", "1.0.0\n\n",
           "1.0.00",
           "1.0.0-rc.1+b.5", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", "1.١.0", "0.1.0", "v1.0.0", "1.0", "\n",
           "p", "c", "b", "u", "a", "true", "null", "1", "0", "-1", "é", "\x00", "SCHED_OTHER ", "pid\n"]
SCALARS = INTS + FLOATS + STRINGS + [True, False, None]
CONTAINERS = [[], {}, [1], ["x"], [None], {"a": "b"}, {"a": 1}, [[]], [{}], ["x", "x"], [1, 1], [1, 1.0], [True, 1],
              {"type": "p"}, {"major": 1, "minor": 2}, {"deep": {"deeper": {"deepest": [1, {"x": [True]}]}}}]
UNKNOWN_KEYS = ["unknown", "x-vendor", "", " ", "type ", "Type", "org.example/key", "\n", "١", "weight"]


def _random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 3 and roll < 0.08:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and roll < 0.16:
        keys = UNKNOWN_KEYS + PROPERTY_NAMES
        return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if roll < 0.25:
        return _copy(rng.choice(CONTAINERS))
    if roll < 0.35:
        return rng.choice(ENUM_STRINGS)
    return rng.choice(SCALARS)


def _positions(doc, rng):
    """(container, key) for values in doc, and dict and list containers: mostly
    those at least two levels down (the subtree a corpus document is about)."""
    values, dicts, lists = [], [], []
    deep = [], [], []
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        into = (values, dicts, lists) if depth < 2 else deep
        if isinstance(node, dict):
            into[1].append(node)
            for key, value in node.items():
                into[0].append((node, key))
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            into[2].append(node)
            for i, value in enumerate(node):
                into[0].append((node, i))
                stack.append((value, depth + 1))
    if rng.random() < 0.8 and deep[0]:
        return deep[0], deep[1] or dicts, deep[2] or lists
    return values + deep[0], dicts + deep[1], lists + deep[2]


def _string_variant(rng, s):
    return rng.choice([s + "\n", s + "\n\n", " " + s, s + " ", s[:-1], s[1:], s.upper(), s.lower(), s + "x", "", s * 2,
                       s.replace("0", "١"), s + "=", "/" + s, rng.choice(STRINGS), rng.choice(ENUM_STRINGS)])


def _number_variant(rng, n):
    if isinstance(n, bool):
        return not n
    options = [n + 1, n - 1, -n, n * 2**32, float(n), n + 0.5, True, False, str(n), 0, -1, rng.choice(INTS),
               rng.choice(FLOATS)]
    if isinstance(n, float):
        options.append(int(n) if n == n and abs(n) != float("inf") else 0)
    return rng.choice(options)


def mutate(doc, rng: random.Random):
    """One random edit somewhere in doc (in place)."""
    values, dicts, lists = _positions(doc, rng)
    op = rng.choice(["delete", "retype", "retype", "scalar", "scalar", "scalar", "unknown", "known", "list", "wrap",
                     "enum"])
    if op == "delete" and any(isinstance(c, dict) for c, _ in values):
        container, key = rng.choice([(c, k) for c, k in values if isinstance(c, dict)])
        del container[key]
    elif op == "retype" and values:
        container, key = rng.choice(values)
        container[key] = _random_value(rng)
    elif op == "scalar" and values:
        container, key = rng.choice(values)
        value = container[key]
        if isinstance(value, str):
            container[key] = _string_variant(rng, value)
        elif isinstance(value, (int, float)):
            container[key] = _number_variant(rng, value)
        else:
            container[key] = rng.choice(SCALARS)
    elif op == "unknown":
        target = rng.choice(dicts)
        target[rng.choice(UNKNOWN_KEYS)] = _random_value(rng)
    elif op == "known":
        target = rng.choice(dicts)
        target[rng.choice(PROPERTY_NAMES)] = _random_value(rng)
    elif op == "list" and lists:
        target = rng.choice(lists)
        how = rng.randrange(5)
        if how == 0 and target:
            target.append(_copy(rng.choice(target)))
        elif how == 1:
            target.clear()
        elif how == 2:
            target.append(_random_value(rng))
        elif how == 3 and target:
            target.pop(rng.randrange(len(target)))
        else:
            target.reverse()
    elif op == "wrap" and values:
        container, key = rng.choice(values)
        value = container[key]
        container[key] = value[0] if isinstance(value, list) and value else [value]
    elif op == "enum" and values:
        container, key = rng.choice(values)
        container[key] = rng.choice(ENUM_STRINGS)


def _shrink(value, rng):
    """Lists cut to at most 3 items: jsonschema is slow on docker's 300-rule seccomp
    profile, and no list in our schemas has a maximum length or unique items."""
    if isinstance(value, dict):
        return {k: _shrink(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 3:
            start = rng.randrange(len(value) - 2)
            value = value[start:start + 3]
        return [_shrink(v, rng) for v in value]
    return value


def config_bases(rng):
    """Small valid documents carved out of the good configs: the required members
    plus one subtree (one process member, one linux member, one resources
    controller, ...), each list cut to 3 items; plus each whole config, cut."""
    bases = {}
    for doc in _good_configs().values():
        core = {"ociVersion": doc["ociVersion"], "root": doc["root"]}
        pieces = [_copy(doc)]
        for key, value in doc.items():
            if key not in ("process", "linux"):
                pieces.append({**core, key: value})
        process = doc.get("process", {})
        for key, value in process.items():
            pieces.append({**core, "process": {"cwd": process["cwd"], "args": process["args"], key: value}})
        linux = doc.get("linux", {})
        for key, value in linux.items():
            if key != "resources":
                pieces.append({**core, "linux": {key: value}})
        for key, value in linux.get("resources", {}).items():
            pieces.append({**core, "linux": {"resources": {key: value}}})
        for piece in pieces:
            piece = _shrink(piece, rng)
            bases.setdefault(json.dumps(piece, sort_keys=True), piece)
    return [bases[k] for k in sorted(bases)]


def _paths(value, path=()):
    """The key path of every value below `value`."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield path + (key,)
        yield from _paths(child, path + (key,))


def _edits(rng, container, key):
    """The edits to try at container[key], each a function (container, key) that
    edits in place (applied to a fresh copy of the document)."""
    value = container[key]
    edits = [
        lambda c, k: c.__setitem__(k, _random_value(rng)),
        lambda c, k: c.__setitem__(k, _random_value(rng)),
        lambda c, k: c.__setitem__(k, [c[k]]),
        # The sharpest probes of a type check: an empty container of the other kind.
        lambda c, k: c.__setitem__(k, {} if isinstance(c[k], list) else []),
    ]
    if isinstance(container, dict):
        edits.append(lambda c, k: c.__delitem__(k))
    if isinstance(value, str):
        edits += [lambda c, k: c.__setitem__(k, _string_variant(rng, c[k]))] * 2
    elif isinstance(value, (int, float)):
        edits += [lambda c, k: c.__setitem__(k, _number_variant(rng, c[k]))] * 3
    elif isinstance(value, dict):
        edits += [lambda c, k: c[k].__setitem__(rng.choice(PROPERTY_NAMES), _random_value(rng)),
                  lambda c, k: c[k].__setitem__(rng.choice(UNKNOWN_KEYS), _random_value(rng))]
    elif isinstance(value, list):
        edits += [lambda c, k: c[k].clear(), lambda c, k: c[k].append(_copy(c[k][0]) if c[k] else None),
                  lambda c, k: c[k].append(_random_value(rng))]
    return edits


def systematic_mutants(bases, rng):
    """For every distinct place in the bases (list indexes merged: 295 of them),
    4 to 8 single edits there: delete, retype, wrap in a list, an empty container
    of the other kind, string/number variants, extra members, list surgery."""
    places = {}
    by_size = sorted(range(len(bases)), key=lambda i: (len(json.dumps(bases[i])), i))
    for i in by_size:  # each place in the smallest base that has it
        for path in _paths(bases[i]):
            places.setdefault(tuple("*" if isinstance(p, int) else p for p in path), (i, path))
    mutants = []
    for place in sorted(places, key=repr):
        i, path = places[place]
        node = bases[i]
        for key in path[:-1]:
            node = node[key]
        for edit in _edits(rng, node, path[-1]):
            doc = _copy(bases[i])
            node = doc
            for key in path[:-1]:
                node = node[key]
            edit(node, path[-1])
            mutants.append(doc)
    return mutants


def config_corpus():
    rng = random.Random(20240607)
    bases = config_bases(rng)
    corpus = list(_good_configs().values()) + [_copy(b) for b in bases] + systematic_mutants(bases, rng)
    for i in range(3000):
        doc = _copy(rng.choice(bases))
        for _ in range(1 + (i % 3 == 0) + (i % 7 == 0)):
            mutate(doc, rng)
        corpus.append(doc)
    return corpus


def test_fast_validator_agrees_with_jsonschema_on_configs():
    """Corpus: 5392 documents, 2301 of them valid. The 12 good configs; 223 valid
    pieces of them (see config_bases); 2157 single edits, 4 to 8 at each of the
    295 distinct places in those pieces (see systematic_mutants); 3000 seeded
    random mutations of the pieces with 1 to 3 edits each (deleted keys, changed
    types, out-of-range and float numbers, pattern edge cases, bad enum values,
    unknown and known-but-misplaced members, duplicated and emptied lists, nested
    values). Every verdict must match jsonschema's."""
    corpus = config_corpus()
    assert len(corpus) == 5392
    slow = _validator(CONFIG_SCHEMA)
    disagreements = []
    valid = 0
    for doc in corpus:
        expected = slow.is_valid(doc)
        valid += expected
        if fast.is_valid_config(doc) != expected:
            disagreements.append((expected, doc))
    assert not disagreements, f"{len(disagreements)} disagreements; first: {disagreements[0]}"
    assert len(corpus) * 0.15 < valid < len(corpus) * 0.85, valid


def targeted_configs():
    """Each value of the pools (numbers around every bound, pattern edge cases, ...)
    in each numeric or pattern-bound member, and as the whole document."""
    base = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}}
    slots = [
        lambda v: {"ociVersion": v, "root": {"path": "rootfs"}},
        lambda v: {**base, "process": {"cwd": v, "args": ["sh"]}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "env": [v]}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "oomScoreAdj": v}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "user": {"uid": v, "gid": 0}}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "rlimits": [{"type": "RLIMIT_CORE", "soft": v,
                                                                                 "hard": 0}]}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "ioPriority": {"class": "IOPRIO_CLASS_BE",
                                                                                   "priority": v}}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "execCPUAffinity": {"final": v}}},
        lambda v: {**base, "hooks": {"poststop": [{"path": "/bin/true", "timeout": v}]}},
        lambda v: {**base, "linux": {"resources": {"memory": {"swappiness": v}}}},
        lambda v: {**base, "linux": {"resources": {"memory": {"limit": v}}}},
        lambda v: {**base, "linux": {"resources": {"cpu": {"cpus": v, "shares": 1024}}}},
        lambda v: {**base, "linux": {"resources": {"devices": [{"allow": True, "access": v}]}}},
        lambda v: {**base, "linux": {"resources": {"hugepageLimits": [{"pageSize": v, "limit": 0}]}}},
        lambda v: {**base, "linux": {"resources": {"blockIO": {"weightDevice": [{"major": 1, "minor": 2,
                                                                                 "weight": v}]}}}},
        lambda v: {**base, "linux": {"timeOffsets": {"boottime": {"secs": v, "nanosecs": v}}}},
        lambda v: {**base, "linux": {"intelRdt": {"memBwSchema": v}}},
        lambda v: {**base, "linux": {"devices": [{"type": "c", "path": "/dev/x", "major": v, "minor": 0}]}},
        lambda v: {**base, "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": v, "value": v, "op": "SCMP_CMP_EQ"}]}]}}},
    ]
    slots += [
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0, "username": v}}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "commandLine": v}},
        lambda v: {**base, "process": {"cwd": "/", "args": ["sh"], "scheduler": {"policy": "SCHED_RR", "nice": v}}},
        lambda v: {**base, "linux": {"resources": {"blockIO": {"weightDevice": v}}}},
        lambda v: {**base, "linux": {"resources": {"rdma": {"mlx5_0": {"hcaHandles": v}}}}},
        lambda v: {**base, "mounts": [{"destination": "/d", "uidMappings": v}]},
        lambda v: v,
    ]
    return [slot(_copy(value)) for slot in slots for value in SCALARS + CONTAINERS]


def test_fast_validator_agrees_on_targeted_number_and_pattern_cases():
    """3614 documents: 26 slots (25 members and the whole document) × 139 values."""
    slow = _validator(CONFIG_SCHEMA)
    corpus = targeted_configs()
    assert len(corpus) == 3614
    for doc in corpus:
        assert fast.is_valid_config(doc) == slow.is_valid(doc), doc


ID_MAP = [{"containerID": 0, "hostID": 1000, "size": 1}]
STRUCTURAL = [
    {"linux": {"resources": {"blockIO": {"weightDevice": [device]}}}}
    for device in ({"major": 1, "minor": 2}, {"major": 1, "minor": 2, "weight": 10},
                   {"major": 1, "minor": 2, "leafWeight": 10}, {"major": 1, "minor": 2, "weight": 10, "leafWeight": 10},
                   {"major": 1, "weight": 1}, {"weight": 10}, {"major": 1, "minor": 2, "weight": None, "leafWeight": 1})
] + [
    {"linux": {"resources": {"rdma": rdma}}}
    for rdma in ({}, {"d": {}}, {"d": {"hcaHandles": 1}}, {"d": {"hcaObjects": 1}}, {"d": {"other": 1}}, {"d": []},
                 {"d": {"hcaHandles": -1, "hcaObjects": 1}})
] + [
    {"mounts": [mount]}
    for mount in ({"destination": "/d"}, {"destination": "/d", "uidMappings": ID_MAP},
                  {"destination": "/d", "gidMappings": ID_MAP}, {"destination": "/d", "uidMappings": ID_MAP,
                                                                  "gidMappings": ID_MAP},
                  {"destination": "/d", "uidMappings": ID_MAP, "gidMappings": [{}]},
                  {"destination": "/d", "uidMappings": [1], "gidMappings": ID_MAP},
                  {"destination": "/d", "uidMappings": None, "gidMappings": None})
] + [
    {"linux": {"devices": [device]}}
    for device in ({"type": "p", "path": "/p"}, {"type": "c", "path": "/p"}, {"type": "c", "path": "/p", "major": 1},
                   {"type": "c", "path": "/p", "major": 1, "minor": 1}, {"type": "p", "path": "/p", "major": 1.0},
                   {"type": "u", "path": "p", "major": 1, "minor": 1}, {"path": "/p"}, {"type": ["p"], "path": "/p"})
] + [
    {"linux": {"resources": {"memory": {"swappiness": value}}}}
    for value in (0, 100, 100.0, 101, 2**64 - 1, 2**64 - 2, float(2**64 - 1), 2**64, -1, True, "10", None)
]


def test_fast_validator_agrees_on_conditional_structures():
    """anyOf (weightDevice, rdma), dependencies (ID-mapped mounts), if/else (FIFO
    devices), allOf with if/then (swappiness): each branch taken and not."""
    slow = _validator(CONFIG_SCHEMA)
    base = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}}
    verdicts = set()
    for piece in STRUCTURAL:
        doc = {**base, **piece}
        expected = slow.is_valid(doc)
        verdicts.add(expected)
        assert fast.is_valid_config(doc) == expected, doc
    assert verdicts == {True, False}


# --- agreement with jsonschema: state -------------------------------------------------

STATE = {"ociVersion": "1.2.0", "id": "web-1", "status": "running", "pid": 4242, "bundle": "/run/bundles/web-1",
         "rootfs": "/run/bundles/web-1/rootfs", "created": "2024-06-07T10:00:00.000000000Z", "owner": "",
         "annotations": {"org.example": "x"}}


def state_corpus():
    rng = random.Random(7)
    corpus = []
    for status in ["creating", "created", "running", "stopped", "paused", "Running", "", None, 1, "unknown"]:
        for pid in [None, 0, 1, -1, 2, 1.0, 0.0, 1.5, True, False, "1", 2**31 - 1, 2**31, [], "absent"]:
            doc = dict(STATE, status=status, pid=pid)
            if pid == "absent":
                del doc["pid"]
            corpus.append(doc)
            missing = dict(doc)
            del missing["status"]
            corpus.append(missing)
    corpus += [None, [], "running", 1, [STATE]]
    for _ in range(3000):
        doc = _copy(STATE)
        for _ in range(rng.randrange(1, 4)):
            mutate(doc, rng)
        corpus.append(doc)
    return corpus


def test_fast_validator_agrees_with_jsonschema_on_state():
    """Corpus: 300 status × pid combinations (with and without status), 5 non-objects
    and 3000 seeded random mutations of a runc-like state document: 3305 documents."""
    corpus = state_corpus()
    assert len(corpus) == 3305
    slow = _validator(STATE_SCHEMA)
    valid = 0
    for doc in corpus:
        expected = slow.is_valid(doc)
        valid += expected
        assert fast.is_valid_state(doc) == expected, doc
    assert len(corpus) * 0.1 < valid < len(corpus) * 0.9, valid


# --- the keywords our schemas do not use (yet) -----------------------------------------

SYNTHETIC = {
    "$schema": DRAFT7_URI,
    "definitions": {
        "pos": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.5},
        "tag": {"type": ["string", "null"], "minLength": 1, "maxLength": 3},
    },
    "type": "object",
    "properties": {
        "a": {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
        "b": {"not": {"type": "string"}},
        "c": {"type": "array", "uniqueItems": True, "maxItems": 3},
        "d": {"type": "array", "items": [{"type": "integer"}, {"const": [1, {"x": True}]}],
              "additionalItems": {"type": "string"}},
        "e": {"items": [{"type": "boolean"}], "additionalItems": False},
        "f": {"contains": {"const": 1}},
        "g": {"patternProperties": {"^x": {"type": "integer"}, "y$": {"type": "string"}},
              "additionalProperties": False},
        "h": {"minProperties": 1, "maxProperties": 2, "propertyNames": {"pattern": "^[a-c]+$", "maxLength": 2}},
        "i": {"enum": [1, "1", True, None, [1], {"k": 1}, 2.5, 0, "a"]},
        "j": {"const": None},
        "j2": {"const": False},
        "j3": {"const": 1},
        "j4": {"const": {"a": [True]}},
        "k": {"dependencies": {"p": ["q", "r"], "s": {"required": ["t"]}, "u": []}},
        "l": {"$ref": "#/definitions/pos"},
        "m": {"$ref": "other.json#/properties/x"},
        "n": True,
        "o": False,
        "p": {"if": {"type": "string"}, "then": {"maxLength": 1}},
        "q": {"if": {"type": "string"}, "else": {"type": "integer", "maximum": 3}},
        "r": {"properties": {"z": {}}, "additionalProperties": {"type": "integer"}},
        "s": {"anyOf": [{"type": "array", "minItems": 2}, {"type": "object", "required": ["a"]}]},
        "t": {"items": False},
        "u": {"items": True, "maxItems": 2},
        "v": {"allOf": [{"minimum": 1}, {"maximum": 5}, True]},
        "w": {"type": "array", "items": {"type": "array", "items": {"$ref": "#"}}},
        "x": {"uniqueItems": True},
        "y": {"pattern": "a{2}"},
        "z": {"not": False, "$comment": "always valid"},
        "tag": {"$ref": "#/definitions/tag"},
        "pp": {"patternProperties": {"^(a)\\1$": False}, "additionalProperties": {"const": 0}},
        "noadd": {"additionalProperties": False},
        "mixed": {"type": ["integer", "boolean"], "minimum": 3},
    },
}
OTHER = {"$schema": DRAFT7_URI, "properties": {"x": {"type": "string", "pattern": "^/"}}}
SYNTHETIC_ATOMS = [0, 1, 2, 3, 4, 5, 6, 1.0, 0.0, 2.5, -1, 10.5, 10.4, 11, True, False, None, "", "a", "aa", "aaa",
                   "aaaa",                    "1", "ab", "abc", "/", "x", "xy", "y", "p"]
SYNTHETIC_KEYS = ["a", "b", "c", "ab", "abc", "d", "x", "xa", "xy", "y", "ay", "z", "p", "q", "r", "s", "t", "u", "k",
                  "aa", "bb"]
SYNTHETIC_CONTAINERS = [[], {}, [1], [1, 1], [1, 1.0], [1, True], [0, False], [[1, True], [1, 1], [1, True]],
                        [{"a": 1}, {"a": 1}], [{"a": 1}, {"a": True}], [1, [1, {"x": True}]], [1, [1, {"x": 1}]],
                        [1, [1, {"x": True}], "s"], [1, [1, {"x": True}], 2], [True], [True, 1], {"k": 1}, {"k": True},
                        {"a": [True]}, {"a": [1]}, {"p": 1, "q": 1}, {"p": 1, "q": 1, "r": 1}, {"s": 1},
                        {"s": 1, "t": 1}, {"x": 1, "xy": "s"}, {"xy": 1}, {"y": "s"}, {"aa": 1}, {"aa": 0}, {"b": 0},
                        [[{}]], [[{"a": "x"}]],
                        [["x"]], {"z": 1, "w": 2}, {"z": "s"}, [1, 2, 3, 4], ["a", "b", "c", "d"],
                        [True, [1, {"x": True}]], {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 2}, {"ab": 1, "abc": 2},
                        {"x": True}, {"xa": 1.0, "ay": ""}]


def _synthetic_value(rng, depth=0):
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return [_synthetic_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 2 and roll < 0.3:
        return {rng.choice(SYNTHETIC_KEYS): _synthetic_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if roll < 0.5:
        return _copy(rng.choice(SYNTHETIC_CONTAINERS))
    return rng.choice(SYNTHETIC_ATOMS)


def _generated_module(tmp_path, schemas, entry="main.json"):
    for name, schema in schemas.items():
        (tmp_path / name).write_text(json.dumps(schema))
    source = gen.generate(str(tmp_path), entry_points=(("is_valid", entry),))
    module = types.ModuleType("synthetic_validator")
    exec(compile(source, "synthetic_validator", "exec"), module.__dict__)
    return source, module


def test_other_keywords_agree_with_jsonschema(tmp_path):
    """Every keyword the generator supports, on 3000 seeded random instances (plus
    each member alone with every atom and container)."""
    source, module = _generated_module(tmp_path, {"main.json": SYNTHETIC, "other.json": OTHER})
    assert "_search('a{2}'" in source  # no equivalent: the lazy `re` fallback
    registry = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT7))
        for name, schema in (("main.json", SYNTHETIC), ("other.json", OTHER)))
    slow = jsonschema.Draft7Validator(SYNTHETIC, registry=registry)
    rng = random.Random(99)
    instances = [{key: value} for key in SYNTHETIC["properties"] for value in SYNTHETIC_ATOMS + SYNTHETIC_CONTAINERS]
    instances += SYNTHETIC_ATOMS + SYNTHETIC_CONTAINERS
    for _ in range(3000):
        members = rng.sample(sorted(SYNTHETIC["properties"]), rng.randrange(1, 4))
        instances.append({member: _synthetic_value(rng) for member in members})
    valid = 0
    for instance in instances:
        expected = slow.is_valid(instance)
        valid += expected
        assert module.is_valid(instance) == expected, instance
    assert len(instances) * 0.1 < valid < len(instances) * 0.9


@pytest.mark.parametrize("schema, complaint", [
    ({"type": "string", "format": "uri"}, "'format' is not supported"),
    ({"type": "number", "multipleOf": 2}, "'multipleOf' is not supported"),
    ({"type": "object", "requried": ["a"]}, "'requried' is not supported"),
    ({"$id": "http://example.com/x"}, "'$id' is not supported"),
    ({"properties": {"a": {"$ref": "#/definitions/b", "minimum": 1}}, "definitions": {"b": {}}},
     "draft-07 ignores keywords next to $ref"),
    ({"properties": {"a": {"$ref": "#/definitions/missing"}}}, "does not resolve"),
    ({"properties": {"a": {"$ref": "elsewhere.json"}}}, "bare name of a file"),
    ({"then": {"type": "string"}}, "then without if"),
    ({"type": "decimal"}, "bad type"),
    ({"pattern": "(unclosed"}, "does not compile"),
    ({"items": True, "additionalItems": False}, "boolean items"),
    ({"properties": {"a": {"$schema": DRAFT7_URI}}}, "$schema only at the top"),
])
def test_generator_refuses_what_it_does_not_know(tmp_path, schema, complaint):
    with pytest.raises(gen.SchemaError, match=re.escape(complaint)):
        _generated_module(tmp_path, {"main.json": {"$schema": DRAFT7_URI, **schema}})


def test_generator_refuses_other_drafts(tmp_path):
    with pytest.raises(gen.SchemaError, match="only draft-07"):
        _generated_module(tmp_path, {"main.json": {"$schema": "http://json-schema.org/draft-04/schema#"}})


def test_generator_command_fails_loudly(tmp_path):
    (tmp_path / "config-schema.json").write_text(json.dumps({"$schema": DRAFT7_URI, "format": "uri"}))
    (tmp_path / "state-schema.json").write_text(json.dumps({"$schema": DRAFT7_URI}))
    out = tmp_path / "out.py"
    result = subprocess.run([sys.executable, str(GENERATOR), "-o", str(out), str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert "config-schema.json#/format: keyword 'format' is not supported" in result.stderr
    assert not out.exists()


# --- pattern equivalents --------------------------------------------------------------

NOISE = ["\n", " ", "\t", "١", "²", "é", "\x00", "Ａ"]
# pattern → (alphabet for exhaustive short strings, longest length, seeds, tokens)
PATTERN_CORPUS = {
    "^/": ("/a\n =١", 6, ["/", "/a/b", "a/", "\n/"], ["/", "a", "\n", " "]),
    "^[^=]+=": ("=a\n ١", 6, ["A=", "A=b", "=b", "AB==", "\n="], ["=", "A", "\n", "PATH", "x y"]),
    "^[rwm]*$": ("rwmx\nR ", 5, ["", "r", "rwm", "mmm", "rw\n"], ["r", "w", "m", "\n", "x", "R"]),
    "^[0-9]+[KMGTPE]?B$": ("09KEBb\n١", 5, ["2MB", "64KB", "1GB", "0B", "10TB", "3PB", "1EB", "5GB\n"],
                           ["0", "12", "K", "M", "G", "T", "P", "E", "B", "b", "\n", "١", "²", "KB", "MB"]),
    "^MB:[^\\n]*$": ("MB:x\n ", 5, ["MB:", "MB:0=20;1=70", "MB:\n", "MB:x\nMB:y"],
                     ["MB:", "M", "B", ":", "\n", "x", "mb"]),
    "^([0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?)*)?$": (
        "09-:/,\n١", 5, ["", "0", "0-3,7", "0-15:2/4", "1,2,3", "0-3,8-11:1/2", "7\n"],
        ["0", "15", "-", ":", "/", ",", "\n", "١", "2/4", "0-3", " "]),
    "^1\\.[0-3]\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    "(\\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$": (
        "10.-+a\n", 6, ["1.0.0", "1.2.9", "1.1.10", "1.0.2-dev", "1.0.0-rc.1+build.5", "1.0.0-0.3.7", "1.0.0-x-y.01a",
                        "1.2.0+20130313144700", "1.0.0-alpha+001", "1.0.0-", "1.0.01", "1.3.0", "1.4.0", "1.0.0\n"],
        ["1.", "0.", "2.", "3.", "1", "0", "00", "01", "10", ".", "-", "+", "a", "Z", "rc", "x-y", "-1", "\n", "١", " ",
         "_", "é"]),
}


def _pattern_strings(pattern):
    alphabet, longest, seeds, tokens = PATTERN_CORPUS[pattern]
    rng = random.Random(pattern)
    strings = {""}
    level = [""]
    for _ in range(longest):
        level = [s + c for s in level for c in alphabet]
        strings.update(level)
    edit_chars = sorted(set(alphabet + "".join(tokens) + "".join(NOISE) + "0123456789.-+=:/,BMKrwm"))
    for seed in seeds:
        for variant in (seed, seed + "\n", seed + "\n\n", "\n" + seed, seed + " ", " " + seed, seed * 2,
                        seed + "\r", seed + "\n" + seed):
            strings.add(variant)
        for i in range(len(seed) + 1):
            strings.add(seed[:i] + seed[i + 1:])
            for c in edit_chars:
                strings.add(seed[:i] + c + seed[i:])
                strings.add(seed[:i] + c + seed[i + 1:])
    for _ in range(4000):
        strings.add("".join(rng.choice(tokens + NOISE[:2]) for _ in range(rng.randrange(1, 10))))
        seed = rng.choice(seeds)
        strings.add(seed + "".join(rng.choice(tokens) for _ in range(rng.randrange(1, 4))))
    return sorted(strings)


def test_every_pattern_equivalent_has_a_corpus():
    assert set(PATTERN_CORPUS) == set(PATTERNS)


@pytest.mark.parametrize("pattern", sorted(PATTERNS), ids=lambda p: PATTERNS[p].__name__)
def test_pattern_equivalent_agrees_with_re_search(pattern):
    """Per pattern: every string up to 5 or 6 characters over a pattern-specific
    alphabet, every one-character edit of the seeds, seeds with leading and trailing
    newlines and spaces, and 8000 random token strings (10,000 to 140,000 strings)."""
    equivalent = PATTERNS[pattern]
    regex = re.compile(pattern)
    strings = _pattern_strings(pattern)
    assert len(strings) > 9000
    wrong = [s for s in strings if equivalent(s) != (regex.search(s) is not None)]
    assert not wrong, f"{equivalent.__name__} disagrees with re.search on {wrong[:10]!r}"
    matches = sum(regex.search(s) is not None for s in strings)
    assert 0 < matches < len(strings)


# --- import cost ----------------------------------------------------------------------


def test_importing_the_validator_loads_nothing_heavy():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import pyrunc.spec._validator, pyrunc.spec.patterns; "
            "print(' '.join(sorted({'re', 'json', 'typing', 'jsonschema', 'enum', 'collections'} & set(sys.modules))))")
    result = subprocess.run([sys.executable, "-S", "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_validator_is_fast_on_a_typical_config():
    import time

    doc = json.loads((GOOD / "docker-config.json").read_text())
    fast.is_valid_config(doc)
    start = time.perf_counter()
    for _ in range(20):
        assert fast.is_valid_config(doc)
    per_call = (time.perf_counter() - start) / 20
    assert per_call < 0.001, f"{per_call * 1e3:.3f} ms"


# --- wiring in pyrunc.ops.common ------------------------------------------------------


def test_validate_config_uses_jsonschema_only_for_messages(monkeypatch):
    from pyrunc.ops import common
    from pyrunc.spec import schema

    good = json.loads((GOOD / "runc-spec.json").read_text())
    calls = []
    real_validate = schema.validate
    monkeypatch.setattr(schema, "validate", lambda doc: calls.append(doc) or real_validate(doc))
    common.validate_config(good)
    assert calls == []
    bad = dict(good, ociVersion=1)
    problems = common.validate_config(bad)
    assert calls == [bad] and problems and problems[0][0] == "ociVersion"


def test_validate_config_reports_a_fast_validator_bug(monkeypatch):
    from pyrunc.ops import common

    monkeypatch.setattr(fast, "is_valid_config", lambda doc: False)
    good = json.loads((GOOD / "runc-spec.json").read_text())
    with pytest.raises(RuntimeError, match="the fast validator rejected a config jsonschema accepts"):
        common.validate_config(good)
