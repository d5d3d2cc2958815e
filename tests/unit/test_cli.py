"""The command line (pyrunc.cli): parse() and main(argv), run in-process.

Nothing here needs root or creates a container: the verbs that reach
operations are the ones that fail (or succeed) before any kernel work, or
work only on a temporary --root / --bundle.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import subprocess
import sys

import pytest

from pyrunc import OCI_VERSION, __version__, cli, log
from pyrunc.errors import UsageError
from pyrunc.spec import check, schema

VERBS = ("create", "start", "state", "kill", "delete", "run", "list", "spec", "check")
ID_VERBS = ("create", "start", "state", "kill", "delete", "run")


@pytest.fixture(autouse=True)
def _reset_log():
    """main() configures the module-level logger; keep each test independent."""
    log.configure()
    yield
    log.configure()


def run(argv, capfd):
    """main(argv) → (exit code, stdout, stderr lines)."""
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err.splitlines()


# ---------------------------------------------------------------- parse: globals

def test_parse_global_flags_before_verb_stored():
    p = cli.parse(["--debug", "--root", "/tmp/r", "--log", "/tmp/l", "--log-format", "json", "state", "c1"])
    assert p.command.name == "state"
    assert p.args == ["c1"]
    assert p.globals["debug"] is True
    assert p.globals["root"] == "/tmp/r"
    assert p.globals["log"] == "/tmp/l"
    assert p.globals["log_format"] == "json"


def test_parse_global_defaults_runc_values():
    p = cli.parse(["list"])
    assert p.globals["root"] is None  # store.default_root decides (XDG_RUNTIME_DIR for a user)
    assert p.globals["log_format"] == "text"
    assert p.globals["log"] is None
    assert p.globals["debug"] is False
    assert p.globals["systemd_cgroup"] is False


def test_parse_flag_equals_value_same_as_separate():
    a = cli.parse(["--root=/x", "--log-format=json", "state", "c"])
    b = cli.parse(["--root", "/x", "--log-format", "json", "state", "c"])
    assert a.globals == b.globals
    assert a.globals["root"] == "/x"


def test_parse_value_containing_equals_kept_whole():
    p = cli.parse(["--root=/a=b", "state", "c"])
    assert p.globals["root"] == "/a=b"


def test_parse_hidden_runc_globals_accepted():
    p = cli.parse(["--rootless", "true", "--criu", "/usr/sbin/criu", "--systemd-cgroup", "list"])
    assert p.globals["rootless"] == "true"
    assert p.globals["criu"] == "/usr/sbin/criu"
    assert p.globals["systemd_cgroup"] is True


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("t", True),
    ("false", False), ("False", False), ("0", False), ("f", False),
])
def test_parse_bool_flag_explicit_value_parsed(value, expected):
    p = cli.parse([f"--debug={value}", "list"])
    assert p.globals["debug"] is expected


def test_parse_bool_flag_bad_value_usage_error():
    with pytest.raises(UsageError, match="invalid boolean value 'maybe' for --debug"):
        cli.parse(["--debug=maybe", "list"])


def test_parse_bool_flag_does_not_consume_next_arg():
    p = cli.parse(["--debug", "list"])
    assert p.globals["debug"] is True
    assert p.command.name == "list"
    # "false" after a bool flag is the verb, not the flag's value.
    with pytest.raises(UsageError, match="no such command: 'false'"):
        cli.parse(["--debug", "false", "list"])


def test_parse_unknown_global_flag_usage_error():
    with pytest.raises(UsageError, match="flag provided but not defined: --nope"):
        cli.parse(["--nope", "list"])


def test_parse_global_flag_missing_value_usage_error():
    with pytest.raises(UsageError, match="flag needs an argument: --root"):
        cli.parse(["--root"])


def test_parse_global_short_aliases_help_version():
    assert cli.parse(["-h"]).globals["help"] is True
    assert cli.parse(["-v"]).globals["version"] is True


def test_parse_no_arguments_no_command():
    p = cli.parse([])
    assert p.command is None
    assert p.args == []


def test_parse_global_after_verb_usage_error():
    # As with runc, global flags go before the verb.
    with pytest.raises(UsageError, match="state: flag provided but not defined: --root"):
        cli.parse(["state", "--root", "/x", "c"])


# ---------------------------------------------------------------- parse: verbs

def test_parse_unknown_verb_usage_error():
    with pytest.raises(UsageError, match="no such command: 'bogus'"):
        cli.parse(["bogus", "c"])


@pytest.mark.parametrize("verb", VERBS)
def test_parse_every_verb_known(verb):
    assert cli.parse([verb]).command.name == verb


@pytest.mark.parametrize("argv, dest, value", [
    (["create", "-b", "/bundle", "c"], "bundle", "/bundle"),
    (["create", "--bundle", "/bundle", "c"], "bundle", "/bundle"),
    (["create", "--bundle=/bundle", "c"], "bundle", "/bundle"),
    (["create", "-b=/bundle", "c"], "bundle", "/bundle"),
    (["delete", "-f", "c"], "force", True),
    (["delete", "--force", "c"], "force", True),
    (["kill", "-a", "c"], "all", True),
    (["kill", "--all", "c"], "all", True),
    (["run", "-d", "c"], "detach", True),
    (["run", "--detach", "c"], "detach", True),
    (["list", "-q"], "quiet", True),
    (["list", "--quiet"], "quiet", True),
    (["list", "-f", "json"], "format", "json"),
    (["list", "--format=json"], "format", "json"),
])
def test_parse_command_option_long_and_short_same_dest(argv, dest, value):
    assert cli.parse(argv).options[dest] == value


def test_parse_command_option_defaults_present():
    p = cli.parse(["create", "c"])
    assert p.options["bundle"] is None
    assert p.options["pid_file"] is None
    assert p.options["no_pivot"] is False
    assert p.options["preserve_fds"] == 0
    assert cli.parse(["list"]).options["format"] == "table"


def test_parse_options_after_container_id_parsed():
    p = cli.parse(["create", "c1", "--bundle", "/b", "--pid-file=/p", "--no-pivot"])
    assert p.args == ["c1"]
    assert p.options["bundle"] == "/b"
    assert p.options["pid_file"] == "/p"
    assert p.options["no_pivot"] is True


def test_parse_options_interleaved_with_args_parsed():
    p = cli.parse(["kill", "c1", "--all", "KILL"])
    assert p.args == ["c1", "KILL"]
    assert p.options["all"] is True


def test_parse_command_bool_flag_explicit_false():
    p = cli.parse(["delete", "--force=false", "c"])
    assert p.options["force"] is False


def test_parse_double_dash_ends_options():
    p = cli.parse(["delete", "--", "-f"])
    assert p.args == ["-f"]
    assert p.options["force"] is False


def test_parse_double_dash_rest_kept_verbatim():
    p = cli.parse(["kill", "-a", "--", "c1", "--all", "--"])
    assert p.options["all"] is True
    assert p.args == ["c1", "--all", "--"]


def test_parse_single_dash_is_an_argument():
    assert cli.parse(["state", "-"]).args == ["-"]


def test_parse_negative_number_is_an_argument():
    p = cli.parse(["kill", "c1", "-9"])
    assert p.args == ["c1", "-9"]


def test_parse_int_option_parsed():
    assert cli.parse(["create", "--preserve-fds", "3", "c"]).options["preserve_fds"] == 3
    assert cli.parse(["create", "--preserve-fds=0", "c"]).options["preserve_fds"] == 0


@pytest.mark.parametrize("value, message", [("x", "must be an integer"), ("-1", "must not be negative")])
def test_parse_int_option_bad_value_usage_error(value, message):
    with pytest.raises(UsageError, match=message):
        cli.parse(["create", f"--preserve-fds={value}", "c"])


def test_parse_option_missing_value_usage_error():
    with pytest.raises(UsageError, match="flag needs an argument: --bundle"):
        cli.parse(["create", "c", "--bundle"])


def test_parse_option_value_looking_like_flag_taken_as_value():
    # Go's flag package does the same: a string flag takes the next word.
    assert cli.parse(["create", "-b", "--x", "c"]).options["bundle"] == "--x"


def test_parse_unknown_command_flag_usage_error_names_verb():
    with pytest.raises(UsageError, match="create: flag provided but not defined: --bogus"):
        cli.parse(["create", "--bogus", "c"])


def test_parse_other_verbs_flag_rejected():
    with pytest.raises(UsageError, match="flag provided but not defined: --force"):
        cli.parse(["state", "--force", "c"])


def test_parse_command_help_flag_set():
    assert cli.parse(["kill", "--help"]).options["help"] is True
    assert cli.parse(["kill", "-h"]).options["help"] is True


def test_parse_help_verb_targets_command():
    p = cli.parse(["help", "kill"])
    assert p.command.name == "kill"
    assert p.globals["help"] is True


# ---------------------------------------------------------------- main: usage errors

@pytest.mark.parametrize("argv", [
    ["--nope"],
    ["--nope", "state", "c"],
    ["exec"],
    ["create", "--bogus", "c"],
    ["--debug=maybe", "list"],
    ["--root"],
    ["create", "--preserve-fds", "x", "c"],
])
def test_main_usage_error_exit_1_one_stderr_line(argv, capfd):
    code, out, err = run(argv, capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 1, err
    assert err[0].startswith("pyrunc: ")


def test_main_unknown_verb_message_names_verb(capfd):
    _, _, err = run(["frobnicate"], capfd)
    assert "frobnicate" in err[0]


@pytest.mark.parametrize("verb", ID_VERBS)
def test_main_missing_container_id_exit_1_names_verb(verb, capfd):
    code, out, err = run([verb], capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 1, err
    assert err[0].startswith(f"pyrunc: {verb}: ")
    assert "container id" in err[0]


def test_main_extra_arguments_exit_1(capfd, tmp_path):
    code, _, err = run(["--root", str(tmp_path), "state", "a", "b"], capfd)
    assert code == 1
    assert len(err) == 1
    assert "unexpected arguments" in err[0]


def test_main_bad_log_format_exit_1(capfd):
    code, out, err = run(["--log-format", "bogus", "list"], capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 1
    assert "bogus" in err[0]


def test_main_no_arguments_help_exit_1(capfd):
    code, out, _ = run([], capfd)
    assert code == 1
    assert "commands:" in out


# ---------------------------------------------------------------- main: version and help

def test_main_version_format(capfd):
    code, out, err = run(["--version"], capfd)
    assert code == 0
    assert err == []
    lines = out.splitlines()
    assert lines[0] == f"pyrunc version {__version__}"
    assert f"spec: {OCI_VERSION}" in lines
    assert all(": " in line for line in lines[1:])


def test_main_version_short_alias_same_output(capfd):
    _, long_out, _ = run(["--version"], capfd)
    _, short_out, _ = run(["-v"], capfd)
    assert short_out == long_out


def test_main_help_lists_verbs_and_globals(capfd):
    code, out, err = run(["--help"], capfd)
    assert code == 0
    assert err == []
    for verb in VERBS:
        assert any(line.split()[:1] == [verb] for line in out.splitlines()), verb
    for flag in ("--debug", "--log FILE", "--log-format", "--root DIR", "--help, -h", "--version, -v"):
        assert flag in out
    # runc-compatibility flags stay out of the help text; --criu is used
    # (checkpoint and restore), so it is shown.
    assert "--rootless" not in out
    assert "--criu PATH" in out


def test_main_short_help_same_as_long(capfd):
    _, long_out, _ = run(["--help"], capfd)
    _, short_out, _ = run(["-h"], capfd)
    assert short_out == long_out


@pytest.mark.parametrize("verb", VERBS)
def test_main_verb_help_exit_0_lists_options(verb, capfd):
    code, out, err = run([verb, "--help"], capfd)
    assert code == 0
    assert err == []
    assert out.startswith(f"pyrunc {verb} - ")
    assert f"usage: pyrunc {verb}" in out
    for option in cli.COMMANDS[verb].options:
        if not option.hidden:
            assert ", ".join(option.names) in out


@pytest.mark.parametrize("verb", sorted(cli.COMMANDS))
def test_main_verb_short_help_same_as_long_everywhere(verb, capfd):
    """Issue 15 item 19: -h wherever --help works: after the verb, after
    an id, and as `help VERB`."""
    code, long_out, _ = run([verb, "--help"], capfd)
    assert code == 0
    for argv in ([verb, "-h"], [verb, "c1", "-h"], ["help", verb]):
        if argv[1] == "c1" and cli.COMMANDS[verb].rest >= 0:
            continue  # exec and ps pass what follows the id on (to the command, to ps)
        code, out, err = run(argv, capfd)
        assert (code, out, err) == (0, long_out, []), argv


@pytest.mark.parametrize("argv", [["-h", "create"], ["--help", "nosuch"], ["-h", "nosuch"], ["help", "help"]])
def test_main_global_help_wins_over_what_follows(argv, capfd):
    # runc: a global -h shows the global help whatever the verb, and `help help` too.
    _, global_out, _ = run(["--help"], capfd)
    assert run(argv, capfd) == (0, global_out, [])


@pytest.mark.parametrize("argv", [["--version", "create", "x"], ["-v", "nosuch"]])
def test_main_global_version_wins_over_what_follows(argv, capfd):
    # runc prints its version whatever follows; the verb is never run.
    _, version_out, _ = run(["--version"], capfd)
    assert run(argv, capfd) == (0, version_out, [])


@pytest.mark.parametrize("argv", [["--help", "--version"], ["-v", "-h"]])
def test_main_help_wins_over_version(argv, capfd):
    _, help_out, _ = run(["--help"], capfd)
    assert run(argv, capfd) == (0, help_out, [])


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_main_unknown_verb_with_help_exits_3_in_one_line(flag, capfd):
    code, out, err = run(["nosuch", flag], capfd)
    assert (code, out) == (3, "") and len(err) == 1 and "no such command: 'nosuch'" in err[0]


def test_main_verb_help_shows_short_aliases(capfd):
    _, out, _ = run(["create", "--help"], capfd)
    assert "--bundle, -b DIR" in out
    _, out, _ = run(["delete", "-h"], capfd)
    assert "--force, -f" in out


def test_main_verb_help_with_id_still_help(capfd):
    code, out, _ = run(["state", "c1", "--help"], capfd)
    assert code == 0
    assert out.startswith("pyrunc state - ")


def test_main_help_verb_shows_command_help(capfd):
    code, out, err = run(["help", "kill"], capfd)
    assert code == 0
    assert err == []
    assert out.startswith("pyrunc kill - ")
    assert "--all, -a" in out


def test_main_help_verb_alone_shows_global_help(capfd):
    code, out, _ = run(["help"], capfd)
    assert code == 0
    assert "commands:" in out


# ---------------------------------------------------------------- main: logging

def test_main_json_log_error_in_file_and_stderr(capfd, tmp_path):
    logfile = tmp_path / "pyrunc.log"
    code, out, err = run(["--log", str(logfile), "--log-format", "json", "--root", str(tmp_path / "root"),
                          "state", "nope"], capfd)
    assert code == 1
    assert out == ""
    assert err == ["pyrunc: nope: container does not exist"]
    lines = logfile.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"level", "msg", "time"}
    assert record["level"] == "error"
    assert record["msg"] == "nope: container does not exist"
    stamp = datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - stamp).total_seconds()) < 60


def test_main_text_log_error_in_file_logrus_style(capfd, tmp_path):
    logfile = tmp_path / "pyrunc.log"
    code, _, err = run(["--log", str(logfile), "--root", str(tmp_path / "root"), "state", "nope"], capfd)
    assert code == 1
    assert err == ["pyrunc: nope: container does not exist"]
    (line,) = logfile.read_text().splitlines()
    assert line.startswith('time="')
    assert 'level=error msg="nope: container does not exist"' in line


def test_main_success_does_not_create_log_file(capfd, tmp_path):
    logfile = tmp_path / "pyrunc.log"
    code, _, _ = run(["--log", str(logfile), "--root", str(tmp_path / "root"), "list"], capfd)
    assert code == 0
    assert not logfile.exists()


# ---------------------------------------------------------------- main: verbs on a temporary root

def test_main_state_empty_root_not_exist(capfd, tmp_path):
    code, out, err = run(["--root", str(tmp_path), "state", "c1"], capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 1
    assert "container does not exist" in err[0]


def test_main_state_missing_root_not_exist(capfd, tmp_path):
    code, _, err = run(["--root", str(tmp_path / "absent"), "state", "c1"], capfd)
    assert code == 1
    assert "container does not exist" in err[0]


def test_main_delete_missing_without_force_exit_1(capfd, tmp_path):
    code, _, err = run(["--root", str(tmp_path), "delete", "c1"], capfd)
    assert code == 1
    assert "container does not exist" in err[0]


def test_main_delete_force_missing_exit_0(capfd, tmp_path):
    code, out, err = run(["--root", str(tmp_path), "delete", "--force", "c1"], capfd)
    assert (code, out, err) == (0, "", [])
    code, out, err = run(["--root", str(tmp_path), "delete", "c1", "-f"], capfd)
    assert (code, out, err) == (0, "", [])


def test_main_invalid_id_exit_1(capfd, tmp_path):
    code, _, err = run(["--root", str(tmp_path), "state", "../etc"], capfd)
    assert code == 1
    assert len(err) == 1
    assert "invalid container id" in err[0]


def test_main_list_empty_root_header_only(capfd, tmp_path):
    code, out, err = run(["--root", str(tmp_path), "list"], capfd)
    assert code == 0
    assert err == []
    assert out.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]


def test_main_list_empty_root_json_null(capfd, tmp_path):
    code, out, _ = run(["--root", str(tmp_path), "list", "--format", "json"], capfd)
    assert code == 0
    assert out == "null\n"


def test_main_list_empty_root_quiet_nothing(capfd, tmp_path):
    code, out, _ = run(["--root", str(tmp_path), "list", "-q"], capfd)
    assert (code, out) == (0, "")


def test_main_list_bad_format_exit_1(capfd, tmp_path):
    code, _, err = run(["--root", str(tmp_path), "list", "-f", "yaml"], capfd)
    assert code == 1
    assert len(err) == 1
    assert "yaml" in err[0]


# ---------------------------------------------------------------- spec and check

def _load(path):
    with open(path) as f:
        return json.load(f)


def test_main_spec_writes_valid_config(capfd, tmp_path):
    code, out, err = run(["spec", "--bundle", str(tmp_path)], capfd)
    assert (code, out, err) == (0, "", [])
    doc = _load(tmp_path / "config.json")
    assert doc["ociVersion"] == OCI_VERSION
    assert doc["process"]["terminal"] is True
    assert schema.validate(doc) == []
    assert check.check(doc) == []


def test_main_spec_terminal_false_still_valid(capfd, tmp_path):
    assert run(["spec", "-b", str(tmp_path)], capfd)[0] == 0
    doc = _load(tmp_path / "config.json")
    for terminal in (True, False):
        variant = copy.deepcopy(doc)
        variant["process"]["terminal"] = terminal
        assert schema.validate(variant) == []
        assert check.check(variant) == []


def test_main_spec_rootless_valid(capfd, tmp_path):
    assert run(["spec", "--rootless", "--bundle", str(tmp_path)], capfd)[0] == 0
    doc = _load(tmp_path / "config.json")
    assert {"type": "user"} in doc["linux"]["namespaces"]
    assert schema.validate(doc) == []
    assert check.check(doc) == []


def test_main_spec_indented_output(capfd, tmp_path):
    run(["spec", "--bundle", str(tmp_path)], capfd)
    text = (tmp_path / "config.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


def test_main_spec_twice_refuses_overwrite(capfd, tmp_path):
    assert run(["spec", "--bundle", str(tmp_path)], capfd)[0] == 0
    config = tmp_path / "config.json"
    config.write_text('{"sentinel": true}')
    code, out, err = run(["spec", "--bundle", str(tmp_path)], capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 1
    assert "already exists" in err[0]
    assert config.read_text() == '{"sentinel": true}'


def test_main_spec_positional_argument_exit_1(capfd, tmp_path):
    code, _, err = run(["spec", str(tmp_path)], capfd)
    assert code == 1
    assert len(err) == 1


def _good_bundle(tmp_path, capfd):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "rootfs").mkdir()
    assert run(["spec", "--bundle", str(bundle)], capfd)[0] == 0
    return bundle


def test_main_check_good_bundle_exit_0(capfd, tmp_path):
    bundle = _good_bundle(tmp_path, capfd)
    code, out, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 0
    assert out == ""
    assert not any("error" in line for line in err)


def test_main_check_bad_bundle_every_problem_one_line(capfd, tmp_path):
    bundle = _good_bundle(tmp_path, capfd)
    doc = _load(bundle / "config.json")
    doc["process"]["rlimits"][0]["soft"] = 4096
    doc["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "uts"]
    (bundle / "config.json").write_text(json.dumps(doc))
    assert schema.validate(doc) == []  # semantic problems only
    code, out, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert out == ""
    assert len(err) == 3, err
    assert all(line.startswith("pyrunc: config.json: ") for line in err)
    joined = "\n".join(err)
    for path in ("process.rlimits[0].soft", "process.rlimits[1].type",
                 "config.json: hostname"):
        assert path in joined


def test_main_check_schema_problems_each_listed(capfd, tmp_path):
    bundle = _good_bundle(tmp_path, capfd)
    doc = _load(bundle / "config.json")
    doc["process"]["args"] = "sh"
    doc["hostname"] = 7
    (bundle / "config.json").write_text(json.dumps(doc))
    code, _, err = run(["check", "--bundle", str(bundle)], capfd)
    assert code == 1
    assert len(err) == 2, err
    assert any("process.args" in line for line in err)
    assert any("hostname" in line for line in err)


def test_main_check_missing_rootfs_exit_1(capfd, tmp_path):
    bundle = _good_bundle(tmp_path, capfd)
    (bundle / "rootfs").rmdir()
    code, _, err = run(["check", "-b", str(bundle)], capfd)
    assert code == 1
    assert len(err) == 1
    assert "root.path" in err[0]


def test_main_check_malformed_json_names_line(capfd, tmp_path):
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.2.0",\n  "process": {\n')
    code, _, err = run(["check", "--bundle", str(tmp_path)], capfd)
    assert code == 1
    assert len(err) == 1
    assert "config.json" in err[0] and "line " in err[0]


def test_main_check_missing_config_exit_1(capfd, tmp_path):
    code, _, err = run(["check", "--bundle", str(tmp_path)], capfd)
    assert code == 1
    assert len(err) == 1
    assert "config.json" in err[0]


def test_main_check_missing_bundle_exit_1(capfd, tmp_path):
    code, _, err = run(["check", "--bundle", str(tmp_path / "absent")], capfd)
    assert code == 1
    assert len(err) == 1
    assert "no such directory" in err[0]


# ---------------------------------------------------------------- import cost

HEAVY_MODULES = ("argparse", "json", "re", "typing", "dataclasses", "jsonschema")


def _newly_imported(statement: str) -> list[str]:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules and m not in before))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return result.stdout.split()


def test_cli_import_no_heavy_modules():
    assert _newly_imported("import pyrunc.cli") == []


def test_cli_parse_and_help_no_heavy_modules():
    assert _newly_imported("import pyrunc.cli as c; c.parse(['--root', '/x', 'kill', '-a', 'c', 'KILL']); "
                           "c.format_help(None); c.format_help(c.COMMANDS['create'])") == []


def test_main_usage_error_reaches_log_file(tmp_path, capfd):
    import json

    log_file = tmp_path / "log.json"
    assert cli.main(["--log", str(log_file), "--log-format", "json", "create", "--bogus", "x"]) == 1
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(records) == 1 and "flag provided but not defined: --bogus" in records[0]["msg"]


def test_main_help_unknown_topic_fails_with_runcs_exit_code(capfd):
    assert cli.main(["help", "nope"]) == 3
    assert "no help topic" in capfd.readouterr().err


# ---------------------------------------------------------------- runc's exit codes where callers look

def test_main_unknown_command_exits_3_as_runc(capfd):
    code, out, err = run(["nosuch"], capfd)
    assert code == 3 and out == ""
    assert err == ["pyrunc: no such command: 'nosuch'; run `pyrunc --help` to see the commands"]


def test_main_exec_of_unknown_id_exits_255_as_runc(tmp_path, capfd):
    code, out, err = run(["--root", str(tmp_path), "exec", "nosuch", "true"], capfd)
    assert code == 255 and out == ""
    assert err == ["pyrunc: nosuch: container does not exist"]


def test_main_exec_without_an_id_exits_1_and_without_a_command_255(tmp_path, capfd):
    # As runc: a missing id is its CLI's usage error (1); past that, every
    # failure is exec's (255), the container looked up first.
    code, _, err = run(["--root", str(tmp_path), "exec"], capfd)
    assert code == 1 and "requires a container id" in err[0]
    code, _, err = run(["--root", str(tmp_path), "exec", "nosuch"], capfd)
    assert code == 255 and err == ["pyrunc: nosuch: container does not exist"]
