"""The status machine: which operation is allowed in which status, and the
words of each refusal (runc's, where engines match on them).

    creating → created → running ⇄ paused
                  ↘        ↓
                    stopped

A status comes from the kernel, for a container's record
(store.Store.status); every verb checks it with `require` before acting, and
one that finds the init gone after that check (start, kill) is refused as
stopped through `require` too: the words of every refusal are here. An
operation not refused a status here is allowed in it. A leaf module: errors only.
"""

from __future__ import annotations

from pyrunc.errors import InvalidStatus

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
STATUSES = (CREATING, CREATED, RUNNING, PAUSED, STOPPED)

_NOT_RUNNING = "container not running"
_ALREADY_RUNNING = "cannot start an already running container"
_NOT_STOPPED = "cannot delete container {id} that is not stopped: {status}"

# operation (as the command line spells it) → {status: refusal}. {id} and
# {status} in a refusal are filled in.
REFUSALS: dict[str, dict[str, str]] = {
    "start": {CREATING: "cannot start a container in the creating state",
              RUNNING: _ALREADY_RUNNING, PAUSED: _ALREADY_RUNNING,
              STOPPED: "cannot start a container that has stopped"},
    "kill": {CREATING: _NOT_RUNNING, STOPPED: _NOT_RUNNING},
    # --all signals whatever is left in the cgroup, also once the init is gone.
    "kill --all": {CREATING: _NOT_RUNNING},
    # A created container is deleted without --force, as runc does.
    "delete": {RUNNING: _NOT_STOPPED, PAUSED: _NOT_STOPPED},
    "delete --force": {},
    "pause": {CREATING: _NOT_RUNNING, PAUSED: "container already paused", STOPPED: _NOT_RUNNING},
    "resume": {status: "container not paused" for status in STATUSES if status != PAUSED},
    "exec": {CREATING: "cannot exec in a container that is still being created",
             PAUSED: "cannot exec in a paused container (use --ignore-paused)",
             STOPPED: "cannot exec in a stopped container"},
    "exec --ignore-paused": {CREATING: "cannot exec in a container that is still being created",
                             STOPPED: "cannot exec in a stopped container"},
    "update": {STOPPED: _NOT_RUNNING},
    "checkpoint": {status: "Container cannot be checkpointed in {status} state"
                   for status in (CREATING, CREATED, STOPPED)},
    # runc's words for events, with or without --stats.
    "events": {STOPPED: "container is not running"},
    "events --stats": {STOPPED: "container is not running"},
}


def require(operation: str, container_id: str, status: str) -> None:
    """Raise InvalidStatus, worded for the operation, unless it is allowed in `status`."""
    refusal = REFUSALS[operation].get(status)
    if refusal is not None:
        raise InvalidStatus(container_id, refusal.format(id=container_id, status=status))
