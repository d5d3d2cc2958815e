"""Hostile input, a few seconds' worth (tests/stress/test_fuzz.py has the
long runs): seeded config.json documents through `check` and the config
model, process.json documents through exec's loader, command lines and
container ids through the CLI, all in this process. The property: no
traceback, no "internal error", exit code 0 or 1, one line on failure.

Inputs that once broke it live in tests/unit/fuzz_corpus/ and are replayed
here: config-*.json (as config.json), process-*.json (as exec --process),
argv-*.json (a JSON list: the arguments after `pyrunc --root DIR`).
"""

from __future__ import annotations

import json
import os
import random

import pytest

from tests import fuzzgen

SEED = int(os.environ.get("PYRUNC_FUZZ_SEED", "20240601"))
SEEDS = fuzzgen.seed_configs()
# run/exec would make this process a subreaper; they are fuzzed as subprocesses under tests/stress.
IN_PROCESS_VERBS = [v for v in fuzzgen.VERBS if v not in ("run", "exec")]


def corpus(prefix: str) -> list[str]:
    if not os.path.isdir(fuzzgen.CORPUS_DIR):
        return []
    return sorted(n for n in os.listdir(fuzzgen.CORPUS_DIR) if n.startswith(prefix))


def read_corpus(name: str) -> bytes:
    with open(os.path.join(fuzzgen.CORPUS_DIR, name), "rb") as f:
        return f.read()


# ---------------------------------------------------------------- config.json


def check_config_property(data: bytes, bundle) -> None:
    assert fuzzgen.config_problems(data, str(bundle)) == []


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


@pytest.mark.parametrize("chunk", range(4))
def test_fuzz_configs_through_check(bundle, chunk):
    for i in range(150):
        rng = random.Random(SEED + chunk * 1000 + i)
        check_config_property(fuzzgen.config_document(rng, SEEDS), bundle)


@pytest.mark.parametrize("name", corpus("config-"))
def test_corpus_configs(bundle, name):
    check_config_property(read_corpus(name), bundle)


# ---------------------------------------------------------------- process.json


def check_process_property(data: bytes, tmp_path) -> None:
    assert fuzzgen.process_problems(data, str(tmp_path)) == []


@pytest.mark.parametrize("chunk", range(2))
def test_fuzz_process_json(tmp_path, chunk):
    for i in range(150):
        rng = random.Random(SEED + 50000 + chunk * 1000 + i)
        check_process_property(fuzzgen.process_document(rng, SEEDS), tmp_path)


@pytest.mark.parametrize("name", corpus("process-"))
def test_corpus_process_json(tmp_path, name):
    check_process_property(read_corpus(name), tmp_path)


# ---------------------------------------------------------------- command lines and ids


def check_argv_property(args: list[str], scratch) -> None:
    """One command line, with a scratch --root and working directory (run
    and exec in a subprocess: in this one they would make it a subreaper)."""
    import subprocess
    import sys

    cwd = scratch / f"w{len(os.listdir(scratch))}"
    cwd.mkdir()
    argv_ = ["--root", str(cwd / "root"), *args]
    if "run" in args or "exec" in args:
        proc = subprocess.run([sys.executable, "-m", "pyrunc", *argv_], cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60)
        code, out, err = proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        process_code = "exec" in args
    else:
        code, out, err = fuzzgen.run_cli(argv_, str(cwd))
        process_code = False
    assert fuzzgen.problems(code, out, err, process_code=process_code,
                            allowed=range(256) if process_code else (0, 1)) == [], (args, code, err[-500:])
    assert not os.path.isdir(cwd / "root") or os.listdir(cwd / "root") == []


def test_fuzz_command_lines(tmp_path):
    rng = random.Random(SEED + 90000)
    tried = 0
    while tried < 300:
        args = fuzzgen.argv(rng)
        if any(verb in args for verb in ("run", "exec")):
            continue
        check_argv_property(args, tmp_path)
        tried += 1


def test_fuzz_container_ids(tmp_path):
    """Every byte, and lengths past what a directory name can hold, as the
    id of every verb that takes one (no container exists)."""
    ids = fuzzgen.container_ids(random.Random(SEED), 600)
    verbs = [["state"], ["kill"], ["delete"], ["delete", "--force"], ["start"], ["pause"], ["ps"],
             ["events", "--stats"], ["update", "--memory", "1m"]]
    root = str(tmp_path / "root")
    for container_id in ids:
        for verb in verbs:
            code, out, err = fuzzgen.run_cli(["--root", root, *verb, container_id], str(tmp_path))
            assert fuzzgen.problems(code, out, err) == [], (verb, container_id, code, err[-500:])
    assert not os.path.exists(root) or os.listdir(root) == []


@pytest.mark.parametrize("name", corpus("argv-"))
def test_corpus_command_lines(tmp_path, name):
    args = json.loads(read_corpus(name))
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)
    check_argv_property(args, tmp_path)


def test_corpus_is_kept():
    """The regression inputs are there (a deleted corpus would pass silently)."""
    assert len(corpus("config-")) >= 2 and corpus("process-") and len(corpus("argv-")) >= 2
