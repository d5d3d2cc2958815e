"""Crashes at random instants, many times over: tests/integration/
test_faults.py kills each command at each named step once; here `create`,
`start`, `exec` and `delete` are SIGKILLed after a random delay (anywhere
in their run, between the named steps too), and also at every named point
again with other containers being made and removed alongside.

After each: `state` tells the truth, `list` parses, `delete --force`
leaves nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import tempfile
import threading

from tests import leaks
from tests.stress import harness
from tests.stress.harness import scaled

# faults.py of the package under test, wherever it is installed (the VM lane tests a wheel).
FAULT_POINTS = [line.split()[0] for line in open(importlib.util.find_spec("pyrunc.faults").origin)
                if line.startswith("    ") and line.split() and ":" in line.split()[0]
                and line.split()[0].split(":")[0] in ("create", "init", "start", "exec", "delete")]


def killed_after(rt, delay: float, *args) -> int | str:
    """Run pyrunc and SIGKILL it `delay` seconds in (if still running)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([*harness.PYRUNC, "--root", rt.root, *args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)


def truthful_state(rt, container_id: str) -> str | None:
    result = rt("state", container_id)
    assert not result.problems(), result
    if result.rc != 0:
        assert "container does not exist" in result.err, result
        return None
    state = json.loads(result.out)
    if state["status"] in ("created", "running"):
        assert not leaks.is_zombie(state["pid"]), state
    else:
        assert state["status"] in ("stopped", "creating"), state
    listed = rt("list", "--format", "json")
    assert listed.rc == 0 and not listed.problems(), listed
    json.loads(listed.out)
    return state["status"]


def assert_removed(rt, bundles, container_id: str) -> None:
    result = rt("delete", "--force", container_id)
    assert result.rc == 0 and not result.problems(), result
    assert rt("state", container_id).rc == 1
    left = harness.wait_clean(rt, [bundles.base])
    assert left == {}, (container_id, left)


def test_random_kills(rt, bundles):
    rng = random.Random(7)
    n = scaled(400, minimum=20)
    seen = {}
    for i in range(n):
        container_id = f"k{i}"
        bundle = bundles.get(container_id)
        verb = rng.choice(["create", "start", "exec", "delete"])
        delay = rng.uniform(0, 0.08)
        if verb == "create":
            code = killed_after(rt, delay, "create", "--bundle", bundle, container_id)
        else:
            assert rt("create", "--bundle", bundle, container_id).rc == 0
            if verb != "start":
                assert rt("start", container_id).rc == 0
            if verb == "start":
                code = killed_after(rt, delay, "start", container_id)
            elif verb == "exec":
                code = killed_after(rt, delay, "exec", "--detach", container_id, "sleep", "100")
            else:
                code = killed_after(rt, delay, "delete", "--force", container_id)
        status = truthful_state(rt, container_id)
        key = (verb, "killed" if code == -9 else "finished", status)
        seen[key] = seen.get(key, 0) + 1
        assert_removed(rt, bundles, container_id)
    print(f"\n{n} commands killed at random instants:")
    for key, count in sorted(seen.items(), key=str):
        print(f"  {key}: {count}")


def test_every_point_with_neighbours_busy(rt, bundles, tmp_path):
    """Each named point, several times, while another thread makes and
    removes containers in the same root and cgroup parent."""
    stop = threading.Event()
    neighbour_bad = []

    def neighbour():
        i = 0
        while not stop.is_set():
            outcomes = harness.lifecycle(rt, bundles, f"n{i}")
            neighbour_bad.extend(o for o in outcomes if o.rc != 0 or o.problems())
            i += 1

    thread = threading.Thread(target=neighbour)
    thread.start()
    injected = 0
    try:
        rounds = scaled(10, minimum=1)
        for r in range(rounds):
            for point in FAULT_POINTS:
                container_id = f"p{r}-{point.replace(':', '-')}"
                config = bundles.config(container_id)
                config["hooks"] = {"createRuntime": [{"path": "/bin/true"}]}  # for the hook points
                bundle = bundles.get(container_id, config)
                env = {**os.environ, "PYRUNC_FAULT": point}
                verb = point.split(":")[0]
                if verb in ("create", "init"):
                    result = rt("create", "--bundle", bundle, container_id, env=env)
                else:
                    assert rt("create", "--bundle", bundle, container_id).rc == 0
                    if verb != "start":
                        assert rt("start", container_id).rc == 0
                    args = {"start": ["start", container_id],
                            "exec": ["exec", "--detach", container_id, "sleep", "100"],
                            "delete": ["delete", "--force", container_id]}[verb]
                    result = rt(*args, env=env)
                assert result.rc == (1 if verb == "init" else -9), (point, result)
                assert not result.problems() if verb == "init" else True, result
                injected += 1
                truthful_state(rt, container_id)
                result = rt("delete", "--force", container_id)
                assert result.rc == 0 and not result.problems(), result
    finally:
        stop.set()
        thread.join()
    assert neighbour_bad == [], neighbour_bad[:5]
    assert harness.wait_clean(rt, [bundles.base]) == {}
    print(f"\n{injected} faults injected at {len(FAULT_POINTS)} points")
