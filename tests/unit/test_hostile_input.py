"""Input that used to end in a traceback or `internal error:` (issue 13):
the real command line, with its stdio and log in odd states, and configs a
schema accepts but no system call can take. Every case: one line naming
what is wrong, exit 1 (141 for a broken pipe, as a SIGPIPE'd runc), and
nothing written.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import check, load
from pyrunc.spec.defaults import default_config

PYRUNC = [sys.executable, "-m", "pyrunc"]


def pyrunc(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(), preexec_fn=None,
           timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([*PYRUNC, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                          pass_fds=pass_fds, preexec_fn=preexec_fn, timeout=timeout)


def no_traceback(proc) -> None:
    err = proc.stderr.decode() if isinstance(proc.stderr, bytes) else (proc.stderr or "")
    assert "Traceback" not in err and "internal error" not in err, err


def close_stdout():
    os.close(1)


# ---------------------------------------------------------------- stdout and the log

@pytest.mark.parametrize("args", [("list",), ("--help",), ("--version",), ("spec", "--help")])
def test_closed_stdout_is_one_line_exit_1(tmp_path, args):
    proc = pyrunc("--root", str(tmp_path / "root"), *args, stdout=None, preexec_fn=close_stdout)
    no_traceback(proc)
    assert proc.returncode == 1, proc
    assert proc.stderr.decode() == "pyrunc: cannot write the output: stdout is closed\n"


@pytest.mark.parametrize("args", [("list",), ("--help",), ("features",)])
def test_full_stdout_is_one_line_exit_1(tmp_path, args):
    with open("/dev/full", "wb") as full:
        proc = pyrunc("--root", str(tmp_path / "root"), *args, stdout=full)
    no_traceback(proc)
    assert proc.returncode == 1, proc
    assert proc.stderr.decode() == "pyrunc: cannot write the output: no space left on device\n"


@pytest.mark.parametrize("args", [("list",), ("--help",), ("features",)])
def test_broken_pipe_stdout_exits_quietly_as_sigpipe(tmp_path, args):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = pyrunc("--root", str(tmp_path / "root"), *args, stdout=write_end)
    finally:
        os.close(write_end)
    no_traceback(proc)
    assert proc.returncode == 141 and proc.stderr == b"", proc


@pytest.mark.parametrize("args", [("state", "nope"), ("delete", "nope"), ("create", "-b", "/nonexistent", "c1"),
                                  ("list", "--format", "yaml")])
def test_full_log_file_still_reports_the_error(tmp_path, args):
    proc = pyrunc("--log", "/dev/full", "--root", str(tmp_path / "root"), *args)
    no_traceback(proc)
    assert proc.returncode == 1, proc
    lines = proc.stderr.decode().splitlines()
    assert lines[0] == "pyrunc: warning: cannot write log file /dev/full: no space left on device", lines
    assert len(lines) == 2 and lines[1].startswith("pyrunc: "), lines


def test_closed_stderr_and_stdout_give_no_traceback_anywhere(tmp_path):
    log = tmp_path / "log"
    proc = pyrunc("--log", str(log), "--root", str(tmp_path / "root"), "state", "nope", stdout=None, stderr=None,
                  preexec_fn=lambda: (os.close(1), os.close(2)))
    assert proc.returncode == 1
    # The log got the error, and was not mistaken for stdout or stderr.
    assert log.read_text().count("\n") == 1 and "container does not exist" in log.read_text()


def test_root_that_is_a_file_is_one_line(tmp_path):
    root = tmp_path / "root"
    root.write_text("")
    for args in (("list",), ("state", "c"), ("delete", "--force", "c"), ("kill", "c")):
        proc = pyrunc("--root", str(root), *args)
        no_traceback(proc)
        assert proc.returncode == 1, proc
        assert proc.stderr.decode().count("\n") == 1, proc


# ---------------------------------------------------------------- config.json that is not a file

def limited_memory():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo", "big", "dir"])
def test_config_json_must_be_a_regular_file_of_sane_size(tmp_path, target):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    config = bundle / "config.json"
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        config.symlink_to(tmp_path / "fifo")
        why = "not a regular file (a fifo)"
    elif target == "big":
        with open(config, "wb") as f:
            f.truncate(17 << 20)
        why = "larger than 16 MiB"
    elif target == "dir":
        config.mkdir()
        why = "is a directory, not a file"
    else:
        config.symlink_to(target)
        why = "not a regular file (a character device)"
    for verb in ("check", "create"):
        args = ("check", "--bundle", str(bundle)) if verb == "check" else ("create", "--bundle", str(bundle), "c1")
        proc = pyrunc("--root", str(tmp_path / "root"), *args, preexec_fn=limited_memory, timeout=30)
        no_traceback(proc)
        assert proc.returncode == 1, proc
        assert proc.stderr.decode() == f"pyrunc: {config}: {why}\n"
    assert not (tmp_path / "root").exists() or os.listdir(tmp_path / "root") == []


# ---------------------------------------------------------------- what no system call can take

def config_with(edit) -> dict:
    config = default_config()
    config["linux"]["cgroupsPath"] = "/pyrunc-unit/c"
    edit(config)
    return config


def nul_problem(config: dict, file: str = "config.json") -> str:
    """The one-line error load gives for `config` as a JSON file."""
    with pytest.raises(ConfigError) as info:
        load.parse_config(json.dumps(config).encode(), f"/some/bundle/{file}")
    return str(info.value)


@pytest.mark.parametrize("path, shown", [
    (["process", "args", 0], "process.args[0]"),
    (["process", "args", 1], "process.args[1]"),
    (["process", "cwd"], "process.cwd"),
    (["process", "env", 0], "process.env[0]"),
    (["mounts", 0, "destination"], "mounts[0].destination"),
    (["mounts", 1, "source"], "mounts[1].source"),
    (["mounts", 2, "options", 0], "mounts[2].options[0]"),
    (["linux", "cgroupsPath"], "linux.cgroupsPath"),
    (["hostname"], "hostname"),
    (["root", "path"], "root.path"),
    (["linux", "maskedPaths", 0], "linux.maskedPaths[0]"),
])
def test_nul_in_a_string_for_the_kernel_is_refused_naming_the_field(path, shown):
    def edit(config):
        config["hostname"] = "h"
        config["process"]["args"] = ["sh", "-c", "true"]
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = "/a\0b"

    assert nul_problem(config_with(edit)) == f"config.json: {shown}: must not contain a NUL character (\\u0000)"


def test_nul_in_a_sysctl_key_is_refused():
    config = config_with(lambda c: c["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward\0x": "1"}))
    assert nul_problem(config).startswith("config.json: linux.sysctl.net.ipv4.ip_forward")


def test_nul_in_annotations_is_only_data():
    config = config_with(lambda c: c.__setitem__("annotations", {"a": "b\0c"}))
    assert load.parse_config(json.dumps(config).encode(), "config.json")["annotations"] == {"a": "b\0c"}


@pytest.mark.parametrize("field, value", [("major", -1), ("minor", -1), ("major", 4096), ("minor", 1 << 20),
                                          ("major", 1 << 40)])
def test_device_numbers_out_of_range_are_refused(field, value):
    device = {"path": "/dev/x", "type": "c", "major": 1, "minor": 3}
    device[field] = value
    config = config_with(lambda c: c["linux"].__setitem__("devices", [device]))
    problems = check.check(config)
    assert any(path == f"linux.devices[0].{field}" for path, _ in problems), problems


def test_check_and_create_report_a_nul_in_args_as_one_line(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    config = config_with(lambda c: c["process"].__setitem__("args", ["sh\0", "-c", "true"]))
    (bundle / "config.json").write_text(json.dumps(config))
    for args in (("check", "--bundle", str(bundle)), ("create", "--bundle", str(bundle), "c1")):
        proc = pyrunc("--root", str(tmp_path / "root"), *args)
        no_traceback(proc)
        assert proc.returncode == 1, proc
        assert "process.args[0]: must not contain a NUL character" in proc.stderr.decode(), proc
    assert not (tmp_path / "root").exists() or os.listdir(tmp_path / "root") == []


def test_nul_in_process_json_for_exec_is_refused_by_the_same_check():
    process = copy.deepcopy(default_config()["process"])
    process["cwd"] = "/tmp\0x"
    with pytest.raises(ConfigError) as info:
        load.parse_config(json.dumps(process).encode(), "/x/process.json")
    assert str(info.value) == "process.json: cwd: must not contain a NUL character (\\u0000)"


# ---------------------------------------------------------------- the state root: pyrunc's own, and corrupt entries

def test_list_shows_good_containers_and_warns_about_the_rest(tmp_path):
    root = tmp_path / "root"
    for name, state in (("good", {"runtime": "pyrunc", "id": "good", "pid": 0, "bundle": "/b", "cgroups": {}}),
                        ("empty", {}),
                        ("badpid", {"runtime": "pyrunc", "id": "badpid", "pid": "12x"}),
                        ("runc", {"id": "runc", "init_process_pid": 1, "config": {}})):
        (root / name).mkdir(parents=True)
        (root / name / "state.json").write_text(json.dumps(state))
    (root / "crun").mkdir()
    (root / "crun" / "status").write_text("{}")
    proc = pyrunc("--root", str(root), "list", "--format", "json")
    no_traceback(proc)
    assert proc.returncode == 0, proc
    assert [c["id"] for c in json.loads(proc.stdout)] == ["good"]
    warnings = proc.stderr.decode().splitlines()
    assert len(warnings) == 4 and all(w.startswith("pyrunc: warning: list: ") for w in warnings), warnings
    for args in (("state", "badpid"), ("kill", "badpid"), ("delete", "badpid"), ("state", "empty"),
                 ("delete", "--force", "runc"), ("delete", "crun"), ("state", "runc")):
        proc = pyrunc("--root", str(root), *args)
        no_traceback(proc)
        assert proc.returncode == 1 and proc.stderr.decode().count("\n") == 1, (args, proc)
    # Another runtime's directories are never touched, not even by delete --force.
    assert sorted(os.listdir(root)) == ["badpid", "crun", "empty", "good", "runc"]
    assert (root / "runc" / "state.json").exists() and (root / "crun" / "status").exists()
