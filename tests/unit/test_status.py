"""The status machine: one table says which operation each status allows,
with runc's words for each refusal (engines match on them). Every operation
× status is spelled out here: None is allowed, a string is the exact error."""

from __future__ import annotations

import pytest

from pyrunc import status
from pyrunc.errors import InvalidStatus

NOT_RUNNING = "c1: container not running"
ALREADY_RUNNING = "c1: cannot start an already running container"
EXEC_CREATING = "c1: cannot exec in a container that is still being created"
EXEC_STOPPED = "c1: cannot exec in a stopped container"

# operation → (creating, created, running, paused, stopped)
EXPECTED = {
    "start": ("c1: cannot start a container in the creating state", None, ALREADY_RUNNING, ALREADY_RUNNING,
              "c1: cannot start a container that has stopped"),
    "kill": (NOT_RUNNING, None, None, None, NOT_RUNNING),
    "kill --all": (NOT_RUNNING, None, None, None, None),
    "delete": (None, None, "c1: cannot delete container c1 that is not stopped: running",
               "c1: cannot delete container c1 that is not stopped: paused", None),
    "delete --force": (None, None, None, None, None),
    "pause": (NOT_RUNNING, None, None, "c1: container already paused", NOT_RUNNING),
    "resume": ("c1: container not paused", "c1: container not paused", "c1: container not paused", None,
               "c1: container not paused"),
    "exec": (EXEC_CREATING, None, None, "c1: cannot exec in a paused container (use --ignore-paused)", EXEC_STOPPED),
    "exec --ignore-paused": (EXEC_CREATING, None, None, None, EXEC_STOPPED),
    "update": (None, None, None, None, NOT_RUNNING),
    "events": (None, None, None, None, "c1: container is not running"),
    "events --stats": (None, None, None, None, "c1: container is not running"),
    "checkpoint": ("c1: Container cannot be checkpointed in creating state",
                   "c1: Container cannot be checkpointed in created state", None, None,
                   "c1: Container cannot be checkpointed in stopped state"),
}

CASES = [(operation, state, words) for operation, row in EXPECTED.items()
         for state, words in zip(status.STATUSES, row)]


def test_the_table_has_exactly_these_operations():
    assert status.STATUSES == ("creating", "created", "running", "paused", "stopped")
    assert set(status.REFUSALS) == set(EXPECTED)


@pytest.mark.parametrize("operation, state, words", CASES)
def test_each_operation_in_each_status(operation, state, words):
    if words is None:
        status.require(operation, "c1", state)
        return
    with pytest.raises(InvalidStatus) as err:
        status.require(operation, "c1", state)
    assert str(err.value) == words
    assert err.value.container_id == "c1"
