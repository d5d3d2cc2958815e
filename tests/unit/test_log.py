"""pyrunc.log: record formats, where records go, levels, one line per record."""

from __future__ import annotations

import datetime
import json
import re

import pytest

from pyrunc import log


@pytest.fixture(autouse=True)
def _reset_log():
    log.configure()
    yield
    log.configure()  # closes the log file it opened


def _parse_time(stamp: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    return parsed


# ---------------------------------------------------------------- format_record

def test_format_record_json_fields():
    line = log.format_record("error", 'bad "thing"', True, "2024-01-02T03:04:05Z")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {"level": "error", "msg": 'bad "thing"', "time": "2024-01-02T03:04:05Z"}


def test_format_record_json_key_order_level_msg_time():
    line = log.format_record("warning", "m", True, "T")
    assert line == '{"level":"warning","msg":"m","time":"T"}\n'


def test_format_record_text_logrus_style():
    line = log.format_record("warning", 'a "quoted" \\ word', False, "2024-01-02T03:04:05Z")
    assert line == 'time="2024-01-02T03:04:05Z" level=warning msg="a \\"quoted\\" \\\\ word"\n'


def test_format_record_newline_escaped_one_line():
    for as_json in (True, False):
        line = log.format_record("error", "one\ntwo\ttab", as_json, "T")
        assert line.count("\n") == 1 and line.endswith("\n")


def test_timestamp_rfc3339_utc_now():
    stamp = log._timestamp()
    assert stamp.endswith("Z")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - _parse_time(stamp)).total_seconds()) < 5


# ---------------------------------------------------------------- destinations

def test_error_no_log_file_plain_stderr_line(capfd):
    log.error("boom")
    out, err = capfd.readouterr()
    assert out == ""
    assert err == "pyrunc: boom\n"


def test_warning_no_log_file_labelled(capfd):
    log.warning("careful")
    assert capfd.readouterr().err == "pyrunc: warning: careful\n"


def test_json_format_no_log_file_json_on_stderr(capfd):
    log.configure(None, "json")
    log.error("boom")
    err = capfd.readouterr().err
    record = json.loads(err)
    assert record["level"] == "error" and record["msg"] == "boom"
    _parse_time(record["time"])


def test_error_with_log_file_in_file_and_stderr(tmp_path, capfd):
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    log.error("it failed")
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert set(record) == {"level", "msg", "time"}
    assert (record["level"], record["msg"]) == ("error", "it failed")
    _parse_time(record["time"])
    assert capfd.readouterr().err == "pyrunc: it failed\n"


def test_error_with_text_log_file_in_file_and_stderr(tmp_path, capfd):
    path = tmp_path / "log.txt"
    log.configure(str(path), "text")
    log.error("it failed")
    (line,) = path.read_text().splitlines()
    assert line.startswith('time="') and line.endswith('level=error msg="it failed"')
    assert capfd.readouterr().err == "pyrunc: it failed\n"


def test_warning_with_log_file_only_in_file(tmp_path, capfd):
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    log.warning("just so you know")
    assert json.loads(path.read_text())["level"] == "warning"
    assert capfd.readouterr().err == ""


def test_log_file_appended_not_truncated(tmp_path):
    path = tmp_path / "log.json"
    path.write_text('{"level":"info","msg":"earlier","time":"2024-01-01T00:00:00Z"}\n')
    log.configure(str(path), "json")
    log.warning("one")
    log.warning("two")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["msg"] for r in lines] == ["earlier", "one", "two"]


def test_log_file_not_created_until_used(tmp_path):
    path = tmp_path / "log.json"
    log.configure(str(path), "json", debug=False)
    log.debug("nothing")
    log.info("nothing")
    assert not path.exists()


def test_log_file_unopenable_falls_back_to_stderr(tmp_path, capfd):
    log.configure(str(tmp_path / "absent-dir" / "log"), "text")
    log.error("still shown")
    err = capfd.readouterr().err.splitlines()
    assert err[0].startswith("pyrunc: warning: cannot open log file ")
    assert err[0].endswith("/absent-dir/log: no such file or directory")
    assert err[1:] == ["pyrunc: still shown"]


# ---------------------------------------------------------------- levels

def test_debug_suppressed_by_default(capfd):
    log.debug("hidden")
    log.info("hidden")
    log.phase("hidden")
    assert capfd.readouterr().err == ""
    assert log.debug_enabled() is False


def test_debug_shown_when_enabled(capfd):
    log.configure(debug=True)
    assert log.debug_enabled() is True
    log.debug("shown")
    log.info("also")
    lines = capfd.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ['level=debug msg="shown"', 'level=info msg="also"']
    assert all(line.startswith('time="') for line in lines), lines


def test_debug_on_stderr_as_json_lines(capfd):
    """--debug --log-format json: runc's JSON lines on stderr."""
    log.configure(fmt="json", debug=True)
    log.debug("shown")
    record = json.loads(capfd.readouterr().err)
    assert record["level"] == "debug" and record["msg"] == "shown" and record["time"].endswith("Z")


def test_debug_enabled_goes_to_file(tmp_path, capfd):
    path = tmp_path / "log.json"
    log.configure(str(path), "json", debug=True)
    log.debug("detail")
    assert json.loads(path.read_text())["level"] == "debug"
    assert capfd.readouterr().err == ""


def test_phase_under_debug_reports_time(capfd):
    log.configure(debug=True)
    log.phase("first")
    log.phase("second")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 2
    assert ' level=debug msg="phase second: ' in lines[1] and lines[1].endswith(' ms)"')
    assert re.search(r'phase second: [0-9.]+ ms, cpu [0-9.]+ ms \(total [0-9.]+ ms\)', lines[1])


# ---------------------------------------------------------------- one line per record

@pytest.mark.parametrize("msg", ["a\nb", "a\r\nb", "a\n\nb\n", "trace:\n  line 1\n  line 2"])
def test_multiline_message_collapses_stderr(msg, capfd):
    log.error(msg)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("pyrunc: a") or err.startswith("pyrunc: trace:")


def test_multiline_message_collapses_in_file(tmp_path, capfd):
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    log.error("first\nsecond\nthird")
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["msg"] == "first second third"
    assert capfd.readouterr().err == "pyrunc: first second third\n"


def test_non_ascii_message_utf8_on_stderr(capfd):
    log.error("héllo ✓")
    assert capfd.readouterr().err == "pyrunc: héllo ✓\n"


def test_lone_surrogate_message_does_not_raise(capfd, tmp_path):
    log.error("bad \udcff byte")
    assert capfd.readouterr().err.startswith("pyrunc: bad ")
    path = tmp_path / "log.json"
    log.configure(str(path), "json")
    log.error("bad \udcff byte")
    assert json.loads(path.read_text())["msg"] == "bad \udcff byte"
