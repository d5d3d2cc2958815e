"""LISTEN_FDS as runc reads it (go-systemd's activation.Files): counted
only when LISTEN_PID names this process."""

from __future__ import annotations

import os

from pyrunc.ops.create import CreateOptions, listen_fds_from_env


def test_listen_fds_count_when_listen_pid_is_ours(monkeypatch):
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    assert listen_fds_from_env() == 2
    assert CreateOptions.from_flags({}).listen_fds == 2


def test_listen_fds_ignored_without_listen_pid_or_with_another(monkeypatch):
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.delenv("LISTEN_PID", raising=False)
    assert listen_fds_from_env() == 0
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    assert listen_fds_from_env() == 0
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "two")
    assert listen_fds_from_env() == 0


def test_options_made_by_hand_take_no_listen_fds(monkeypatch):
    # The API builds CreateOptions itself: the caller's environment is not the container's.
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    assert CreateOptions(bundle="b").listen_fds == 0
