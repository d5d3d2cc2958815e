"""runc 1.1.5's command line beside pyrunc's (issue 15 items 19 and "the
rest of the class"): every verb and flag `runc --help` and `runc VERB
--help` list is accepted by pyrunc's parser, and help's exit codes are
runc's. Reads runc's own help text, so it is skipped where runc is not
installed. Needs no root: nothing here creates a container."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from pyrunc import cli
from pyrunc.errors import UsageError

RUNC = shutil.which("runc")
pytestmark = pytest.mark.skipif(RUNC is None, reason="needs runc (the reference)")

# runc's verbs pyrunc does not have, on purpose (README: "Where pyrunc differs from runc").
NOT_IN_PYRUNC: set[str] = set()


def _runc_help(*args: str) -> str:
    return subprocess.run([RUNC, *args, "--help"], capture_output=True, text=True, timeout=30).stdout


def runc_verbs() -> list[str]:
    section = _runc_help().split("COMMANDS:")[1].split("GLOBAL OPTIONS:")[0]
    return [line.split()[0].rstrip(",") for line in section.splitlines() if line.strip()]


def runc_flags(*verb: str) -> list[tuple[str, bool]]:
    """(name, takes a value) for each flag runc's help lists: a line like
    `   --bundle value, -b value  path to ...`."""
    text = _runc_help(*verb)
    section = text.split("GLOBAL OPTIONS:" if not verb else "OPTIONS:")[-1]
    flags = []
    for line in section.splitlines():
        match = re.match(r"\s+(-\S.*?)(?:\s{2,}|\t|$)", line)
        if not match:
            continue
        for part in match.group(1).split(","):
            words = part.split()
            if words and words[0] not in ("--help", "-h"):
                flags.append((words[0], len(words) > 1))
    return flags


def _verbs_in_both() -> list[str]:
    if RUNC is None:
        return []
    return [v for v in runc_verbs() if v != "help" and v not in NOT_IN_PYRUNC]


def test_runc_verbs_are_pyruncs_but_the_documented_ones():
    missing = [v for v in runc_verbs() if v != "help" and v not in cli.COMMANDS]
    assert sorted(missing) == sorted(NOT_IN_PYRUNC)


def _value_for(option) -> list[str]:
    return [] if option.kind == "bool" else ["1"]


def test_every_runc_global_flag_is_accepted():
    flags = runc_flags()
    assert len(flags) >= 7, flags  # the help text was understood
    for name, takes_value in flags:
        parsed = cli.parse([name, *(["1"] if takes_value else []), "state", "c1"])
        if name in ("--version", "-v"):  # wins over the verb, as runc's
            assert parsed.command is None and parsed.globals["version"], name
        else:
            assert parsed.command.name == "state", name


# Flags of runc's that pyrunc does not have, on purpose (README: "Where
# pyrunc differs from runc"): CRIU's page server and status fd, and the
# restored process's LSM labels, are not implemented; an unknown flag is
# refused in runc's words.
NOT_TAKEN = {"checkpoint": {"--status-fd", "--page-server"}, "restore": {"--lsm-profile", "--lsm-mount-context"}}


@pytest.mark.parametrize("verb", _verbs_in_both())
def test_every_runc_flag_of_the_verb_is_accepted(verb):
    for name, takes_value in runc_flags(verb):
        if name in NOT_TAKEN.get(verb, ()):
            with pytest.raises(UsageError, match="flag provided but not defined"):
                cli.parse([verb, name, *(["1"] if takes_value else []), "c1"])
            continue
        argv = [verb, name, *(["1"] if takes_value else []), "c1"]
        try:
            parsed = cli.parse(argv)
        except UsageError as err:
            pytest.fail(f"runc {verb} takes {name}, pyrunc refuses it: {err}")
        option = next(o for o in parsed.command.options if name in o.names)
        assert (option.kind != "bool") == takes_value, f"{verb} {name}: a value in one, not the other"


def _exit_code(command: list[str], argv: list[str]) -> int:
    return subprocess.run([*command, *argv], capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("argv", [
    ["-h"], ["--help"], ["help"], ["help", "help"], ["-h", "nosuch"], ["--help", "create"],
    ["nosuch", "-h"], ["nosuch", "--help"], ["help", "nosuch"], ["--nosuch"], ["create", "--nosuch"],
    ["--version", "create", "x"], ["-v", "nosuch"],
], ids=" ".join)
def test_help_exit_codes_are_runcs(argv, tmp_path):
    # Item 19: the global -h, `help`, an unknown verb or topic: runc's exit codes.
    assert _exit_code([sys.executable, "-m", "pyrunc"], argv) == _exit_code([RUNC], argv)


def test_every_verbs_short_help_exits_as_runcs():
    pyrunc = [sys.executable, "-m", "pyrunc"]
    for verb in _verbs_in_both():
        for flag in ("-h", "--help"):
            assert _exit_code(pyrunc, [verb, flag]) == _exit_code([RUNC], [verb, flag]) == 0, (verb, flag)
