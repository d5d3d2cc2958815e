"""Seeded generators of hostile input: config.json documents, process.json
documents, command lines and container ids. No dependencies beyond the
standard library: a `random.Random(seed)` drives everything, so a failure
is reproduced by its seed (and kept in tests/unit/fuzz_corpus/).

Values never name a path outside the caller's scratch directory: the
command lines are run with a scratch --root and cwd, and must not be able
to touch anything else on the host.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_CONFIGS = os.path.join(HERE, "unit", "configs", "good")
CORPUS_DIR = os.path.join(HERE, "unit", "fuzz_corpus")

# ---------------------------------------------------------------- scalars

_UNICODE = ["é", "ß", "ｆｕｌｌ", "\u200b", "\u202e", "日本語", "😀", "\ufeff", "\x7f", "\x1b[31m", "\t", "\n", "\r",
            " ", "\\", '"', "'", "%s", "{}", "$PATH", "`id`", "$(id)", "*", "?", "~", "\x01"]
_WORDS = ["", "-", "--", "=", "==", "a=b", "=x", "x=", "true", "false", "null", "0", "-1", "1", "07", "0x10",
          "1e9", "9" * 30, "NaN", "inf", "KILL", "SIGKILL", "SIGTERM", "9", "64", "999", "rw", "ro", "bind",
          "rbind", "tmpfs", "proc", "nosuid", "mode=755", "size=1k", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NOPE",
          "RLIMIT_NOFILE", "pid", "network", "mount", "user", "uts", "ipc", "cgroup", "time", "json", "table",
          "text", "1.0.2", "1.2.0", "2.0.0", "rootfs", "sh", "true", "/", "/proc", "/dev/null", "/tmp", "/a/b",
          "relative", "./x", "../x", "a/../../b", "/x/../..", "//", "/./", "slice:prefix:name"]
SURROGATES = ["\udcff", "\udc80", "\ud800"]  # argv bytes that are not UTF-8 (surrogateescape) and lone surrogates


def random_string(rng: random.Random, allow_surrogates: bool = True) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(_WORDS)
    if kind < 0.55:
        return "".join(rng.choice(_UNICODE) for _ in range(rng.randint(1, 4)))
    if kind < 0.65:
        return rng.choice("ab.-_+x") * rng.choice([100, 1024, 1025, 4096, 70000])
    if kind < 0.75 and allow_surrogates:
        return rng.choice(["x", ""]) + rng.choice(SURROGATES) + rng.choice(["", "y"])
    if kind < 0.9:
        return "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 12)))
    return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 8)))


def random_number(rng: random.Random):
    return rng.choice([0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1,
                       10 ** 100, 0.5, -0.0, 1e308, 1e-308, 3.0, math.nan, math.inf, -math.inf,
                       rng.randint(-1000, 100000)])


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.random()
    if kind < 0.15:
        return None
    if kind < 0.25:
        return rng.random() < 0.5
    if kind < 0.45:
        return random_number(rng)
    if kind < 0.7 or depth > 3:
        return random_string(rng)
    if kind < 0.85:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


# ---------------------------------------------------------------- documents

def seed_configs() -> list[dict]:
    """The real configs of tests/unit/configs/good, rooted at ./rootfs (so a
    bundle with an empty rootfs directory passes the root.path check)."""
    docs = []
    for name in sorted(os.listdir(SEED_CONFIGS)):
        with open(os.path.join(SEED_CONFIGS, name)) as f:
            doc = json.load(f)
        if isinstance(doc.get("root"), dict):
            doc["root"]["path"] = "rootfs"
        docs.append(doc)
    return docs


def _paths(doc, prefix=()):
    """Every (container, key) location in a document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield prefix + (index,)
            yield from _paths(value, prefix + (index,))


def _parent(doc, path):
    for step in path[:-1]:
        doc = doc[step]
    return doc


def _nest(depth: int) -> str:
    """A placeholder that serialize() expands to `depth` nested arrays and
    objects (the json module cannot encode them that deep itself)."""
    return f"@@nest{depth}@@"


def _expand_nests(text: str) -> str:
    import re

    def nested(match):
        depth = int(match.group(1))
        opens = "".join('{"a":' if i % 2 else "[" for i in range(depth))
        closes = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
        return opens + "0" + closes

    return re.sub(r'"@@nest(\d+)@@"', nested, text)


def mutate(rng: random.Random, doc: dict, rounds: int | None = None) -> dict:
    """A copy of `doc` with a few structural mutations."""
    doc = copy.deepcopy(doc)
    for _ in range(rounds if rounds is not None else rng.randint(1, 4)):
        paths = list(_paths(doc))
        if not paths:
            doc[random_string(rng)] = random_value(rng)
            continue
        path = rng.choice(paths)
        parent = _parent(doc, path)
        key = path[-1]
        op = rng.random()
        if op < 0.35:  # odd type or value
            parent[key] = random_value(rng)
        elif op < 0.45:  # drop
            del parent[key]
        elif op < 0.55 and isinstance(parent[key], list):  # huge array
            item = parent[key][0] if parent[key] else random_value(rng)
            parent[key] = [copy.deepcopy(item) for _ in range(rng.choice([1000, 20000]))]
        elif op < 0.58:  # deep nesting
            parent[key] = _nest(rng.choice([50, 500, 5000]))
        elif op < 0.7 and isinstance(parent, dict):  # a new, unknown or known-elsewhere key
            parent[random_string(rng, allow_surrogates=False)] = random_value(rng)
        elif op < 0.8 and isinstance(parent[key], str):  # very long or odd string
            parent[key] = random_string(rng)
        elif op < 0.9 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = random_number(rng)
        else:  # swap in a subtree from elsewhere
            other = rng.choice(paths)
            parent[key] = copy.deepcopy(_parent(doc, other)[other[-1]])
    return doc


def serialize(rng: random.Random, doc) -> bytes:
    """JSON text of `doc`, sometimes damaged on the way: duplicate keys,
    invalid UTF-8, truncation, BOM, NaN tokens, comments, flipped bytes."""
    text = _expand_nests(json.dumps(doc, ensure_ascii=rng.random() < 0.5, allow_nan=True))
    data = text.encode("utf-8", "surrogatepass")
    op = rng.random()
    if op < 0.55:
        return data
    if op < 0.62 and text.startswith("{") and len(text) > 2:  # duplicate keys
        key = rng.choice(list(doc)) if isinstance(doc, dict) and doc else "ociVersion"
        dup = json.dumps(key) + ": " + json.dumps(random_value(rng), allow_nan=True) + ", "
        return b"{" + dup.encode("utf-8", "surrogatepass") + data[1:]
    if op < 0.72:  # invalid UTF-8 inside a string or anywhere
        bad = rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"])
        quotes = [i for i, c in enumerate(data) if c == 0x22]
        at = rng.choice(quotes) + 1 if quotes and rng.random() < 0.8 else rng.randint(0, len(data))
        return data[:at] + bad + data[at:]
    if op < 0.8:
        return data[: rng.randint(0, len(data))]
    if op < 0.84:
        return b"\xef\xbb\xbf" + data
    if op < 0.88:
        return data + rng.choice([b" // comment", b"\n,", b"{}", b"\x00", b" " * 10])
    if op < 0.94 and data:
        out = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    return rng.choice([b"", b"null", b"[]", b"1", b'"x"', b"{", b"[" * 100000, b'{"a":' * 50000,
                       b"NaN", b"-Infinity", b"{}" * 2, b"\x00" * 10])


def config_document(rng: random.Random, seeds: list[dict]) -> bytes:
    """One config.json: mostly a mutated real config, sometimes one that stays
    valid apart from a value, sometimes noise."""
    base = rng.choice(seeds)
    if rng.random() < 0.1:
        return serialize(rng, random_value(rng))
    return serialize(rng, mutate(rng, base, rounds=rng.choice([0, 1, 1, 2, 3, 6])))


def process_document(rng: random.Random, seeds: list[dict]) -> bytes:
    """One process.json for `exec --process`."""
    base = copy.deepcopy(rng.choice(seeds).get("process") or {"args": ["true"], "cwd": "/"})
    base["terminal"] = False
    base["args"] = rng.choice([["true"], ["sh", "-c", "exit 3"], ["no-such-program"], ["/etc/passwd"], []])
    if rng.random() < 0.1:
        return serialize(rng, random_value(rng))
    return serialize(rng, mutate(rng, base, rounds=rng.choice([0, 1, 1, 2, 3])))


# ---------------------------------------------------------------- ids

def container_ids(rng: random.Random, count: int) -> list[str]:
    """Every byte (as argv delivers bytes: invalid UTF-8 via surrogateescape)
    alone and inside a valid id, plus lengths and look-alikes."""
    ids = []
    for b in range(1, 256):
        ch = os.fsdecode(bytes([b]))
        ids += [ch, f"a{ch}b"]
    ids += ["", ".", "..", "...", "-", "--", "-a", "a" * 1024, "a" * 1025, "a" * 70000, "é", "ａ", "a\u200bb",
            "a/b", "/a", "a\nb", " a", "a ", "+", "_", ".hidden", "seccomp:cache", "a:b", "0", "-1", "9" * 40]
    rng.shuffle(ids)
    while len(ids) < count:
        ids.append(random_string(rng, allow_surrogates=True))
    return ids[:count]


# ---------------------------------------------------------------- command lines

GLOBAL_FLAGS = ["--debug", "--log", "--log-format", "--root", "--systemd-cgroup", "--rootless", "--criu", "--help",
                "-h", "--version", "-v"]
VERBS = ["create", "start", "state", "kill", "delete", "run", "exec", "list", "ps", "pause", "resume", "update",
         "events", "spec", "features", "check", "help", "nosuch", "", "-", "CREATE", "run\x00"[:3]]


def command_flags(verb: str) -> list[str]:
    from pyrunc import cli

    command = cli.COMMANDS.get(verb)
    names = [n for o in command.options for n in o.names] if command else []
    return names + ["--help", "-h", "--nosuch", "-x", "---", "--=", "--bundle", "-b", "--force", "--all"]


def _safe_value(rng: random.Random) -> str:
    """A flag value or positional that cannot name anything outside the
    scratch dir: relative, no "..", no leading "/"."""
    value = random_string(rng)
    if len(value) > 5000:
        value = value[:5000]
    value = value.replace("..", "_")
    if value.startswith("/"):
        value = "x" + value
    return value


def argv(rng: random.Random) -> list[str]:
    """One command line, without the program name and the leading
    `--root <scratch>` the caller adds. `--root` never appears again, and no
    value is an absolute path: nothing outside the scratch dir is reachable."""
    out = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        flag = rng.choice([f for f in GLOBAL_FLAGS if f != "--root"])
        out += _flag_forms(rng, flag)
    out.append(rng.choice(VERBS))
    flags = command_flags(out[-1])
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.5:
            out += _flag_forms(rng, rng.choice(flags))
        elif r < 0.85:
            out.append(rng.choice(container_ids(rng, 40)) if rng.random() < 0.5 else _safe_value(rng))
        elif r < 0.9:
            out.append("--")
        else:
            out.append(rng.choice(["-", "-1", "-9", "--9", "-KILL"]))
    out = ["x" + a if a.startswith("/") else a.replace("..", "_") for a in out]
    # argv holds bytes: a lone surrogate other than surrogateescape's cannot be passed.
    return [os.fsdecode(a.encode("utf-8", "surrogateescape") if _encodable(a) else a.encode("utf-8", "replace"))
            for a in out]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def _flag_forms(rng: random.Random, flag: str) -> list[str]:
    r = rng.random()
    if r < 0.4:
        return [flag]
    if r < 0.7:
        return [f"{flag}={_safe_value(rng)}"]
    if r < 0.8:
        return [f"{flag}="]
    return [flag, _safe_value(rng)]


# ---------------------------------------------------------------- the property

# runc's codes for an unknown verb (3) and an exec that fails before its process runs (255).
RUNC_CODES = (3, 255)


def problems(returncode: int, stdout: str, stderr: str, allowed=(0, 1), many_lines_ok: bool = False,
             process_code: bool = False) -> list[str]:
    """What is wrong with a command's outcome: a traceback, an internal
    error, an unexpected exit code, or a failure that is not one line.
    process_code: the exit code may be the container process's own (exec),
    so a 1 without a line is that process failing quietly."""
    found = []
    if returncode in RUNC_CODES and not process_code:
        allowed = (*allowed, returncode)
    if "Traceback" in stderr:
        found.append("traceback")
    if "internal error" in stderr:
        found.append("internal error")
    if returncode not in allowed:
        found.append(f"exit code {returncode}")
    if returncode in (1, *RUNC_CODES) and not many_lines_ok and not (process_code and returncode == 255):
        # Lines end in "\n" only: a control character from the input (\v,
        # \x1c) inside the one line does not make it two.
        errors = [line for line in stderr.split("\n")[:-1] if not line.startswith(_NOT_ERRORS)]
        no_command = not stderr and stdout.startswith("pyrunc: an OCI container runtime")  # help, exit 1
        if len(errors) != 1 and not no_command and not (process_code and not errors):
            found.append(f"{len(errors)} error lines")
        if not stderr.endswith("\n") and not no_command and not (process_code and not stderr):
            found.append("no newline at the end")
    return found


# --debug adds its own lines; warnings are not the error.
_NOT_ERRORS = ("pyrunc: warning:", "time=")


def save_to_corpus(kind: str, data: bytes, ext: str) -> str:
    """Keep an input that broke the property, as a regression test."""
    import hashlib

    os.makedirs(CORPUS_DIR, exist_ok=True)
    name = f"{kind}-{hashlib.sha256(data).hexdigest()[:12]}.{ext}"
    with open(os.path.join(CORPUS_DIR, name), "wb") as f:
        f.write(data)
    return name


# ---------------------------------------------------------------- running pyrunc in this process

def run_cli(argv_: list[str], cwd: str) -> tuple[int, str, str]:
    """pyrunc's main() in this process, as a command line would run it: fd 0
    is /dev/null, fds 1 and 2 go to files, the working directory is `cwd`.
    Returns (exit code, stdout, stderr). Much faster than a subprocess, for
    the verbs that fork nothing (the callers keep `run` and `exec` out: they
    would make this process a subreaper)."""
    import sys
    import tempfile

    from pyrunc import cli, log

    saved = [os.dup(fd) for fd in (0, 1, 2)]
    saved_stdout = sys.stdout
    old_cwd = os.getcwd()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            sys.stdout.flush()
            os.dup2(null, 0)
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            os.chdir(cwd)
            # Under pytest sys.stdout is not fd 1: write where main() would.
            sys.stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
            try:
                code = cli.main(list(argv_))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException as exc:  # the property's worst case: main() must never raise
                os.write(2, f"Traceback (main raised) {type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
                code = 99
            sys.stdout.flush()
        finally:
            if sys.stdout is not saved_stdout:
                sys.stdout.close()
                sys.stdout = saved_stdout
            os.chdir(old_cwd)
            for fd, copy_ in zip((0, 1, 2), saved):
                os.dup2(copy_, fd)
                os.close(copy_)
            os.close(null)
            log.configure()
        out.seek(0)
        err.seek(0)
        return code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")


def integral_floats(value, where: str = "") -> list[str]:
    """Paths of floats with an integral value (1.0): JSON Schema calls them
    integers, so they must reach the model as ints (system calls take no floats)."""
    if isinstance(value, float) and value.is_integer():
        return [where]
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += integral_floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += integral_floats(item, f"{where}[{index}]")
    return found


def config_problems(data: bytes, bundle: str) -> list[str]:
    """The property for one config.json, in this process: `check` answers
    cleanly; a config it accepts also models cleanly (integers as ints) and
    its seccomp profile compiles or is refused cleanly. `bundle` is a
    scratch directory with an empty rootfs/."""
    import traceback

    from pyrunc.errors import PyruncError
    from pyrunc.ops import create
    from pyrunc.ops.common import load_config

    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(data)
    code, out, err = run_cli(["check", "--bundle", bundle], bundle)
    found = problems(code, out, err, many_lines_ok=True)
    if found or code != 0:
        return [f"check: {p}: {err[-300:]!r}" for p in found]
    from pyrunc import log

    log.configure(os.path.join(bundle, "log"))  # warnings of load_config go to a file
    try:
        cfg = load_config(bundle)
        found += [f"integral float at {p}" for p in integral_floats(cfg.process_dict)]
        create._compile_seccomp(cfg, os.path.join(bundle, "state"))
    except PyruncError as err_:
        if "\n" in str(err_):
            found.append(f"error of several lines: {err_}")
    except Exception:  # noqa: BLE001 - what the property forbids
        found.append("raised: " + traceback.format_exc().strip().splitlines()[-1])
    finally:
        log.configure()
    return found


def process_problems(data: bytes, scratch: str) -> list[str]:
    """The property for one process.json, in this process: exec's loader
    refuses it in one line, or models it with integers as ints."""
    import traceback

    from pyrunc.errors import PyruncError
    from pyrunc.ops import exec as exec_op
    from pyrunc.record import ContainerRecord

    path = os.path.join(scratch, "process.json")
    with open(path, "wb") as f:
        f.write(data)
    record = ContainerRecord("c", oci_version="1.2.0", process={"args": ["sh"], "cwd": "/"})
    try:
        process = exec_op._load_process(record, {"process": path}, [])
    except PyruncError as err:
        return [f"error of several lines: {err}"] if "\n" in str(err) else []
    except Exception:  # noqa: BLE001
        return ["raised: " + traceback.format_exc().strip().splitlines()[-1]]
    user = process.user
    return [f"not an int: {v!r}" for v in (user.uid, user.gid, *user.additional_gids) if type(v) is not int]
