"""The status machine: one table says which operation each status allows,
with runc's words for each refusal (engines match on them)."""

from __future__ import annotations

import pytest

from pyrunc import status
from pyrunc.errors import InvalidStatus

ALLOWED = {  # operation → the statuses it is allowed in
    "start": {"created"},
    "kill": {"created", "running", "paused"},
    "kill --all": {"created", "running", "paused", "stopped"},
    "delete": {"creating", "created", "stopped"},
    "delete --force": set(status.STATUSES),
    "pause": {"created", "running"},
    "resume": {"paused"},
    "exec": {"created", "running"},
    "exec --ignore-paused": {"created", "running", "paused"},
    "update": {"creating", "created", "running", "paused"},
    "events": {"creating", "created", "running", "paused"},
    "events --stats": {"creating", "created", "running", "paused"},
}


def test_the_table_covers_every_operation_and_status():
    assert set(status.REFUSALS) == set(ALLOWED)
    for operation, statuses in ALLOWED.items():
        assert {s for s in status.STATUSES if status.allowed(operation, s)} == statuses, operation


@pytest.mark.parametrize("operation, state, words", [
    ("start", "stopped", "c1: cannot start a container that has stopped"),
    ("start", "paused", "c1: cannot start an already running container"),
    ("start", "creating", "c1: cannot start a container in the creating state"),
    ("kill", "stopped", "c1: container not running"),
    ("delete", "running", "c1: cannot delete container c1 that is not stopped: running"),
    ("delete", "paused", "c1: cannot delete container c1 that is not stopped: paused"),
    ("pause", "paused", "c1: container already paused"),
    ("pause", "stopped", "c1: container not running"),
    ("resume", "running", "c1: container not paused"),
    ("exec", "paused", "c1: cannot exec in a paused container (use --ignore-paused)"),
    ("exec --ignore-paused", "stopped", "c1: cannot exec in a stopped container"),
    ("update", "stopped", "c1: container not running"),
    ("events", "stopped", "c1: container is not running"),
    ("events --stats", "stopped", "c1: container is not running"),
])
def test_refusals_are_worded_as_runc_words_them(operation, state, words):
    with pytest.raises(InvalidStatus) as err:
        status.require(operation, "c1", state)
    assert str(err.value) == words


def test_an_allowed_operation_passes():
    status.require("start", "c1", "created")
    status.require("delete --force", "c1", "running")
