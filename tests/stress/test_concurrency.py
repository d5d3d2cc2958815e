"""Concurrent lifecycles: two streams of create/start/kill/delete, with
distinct and with colliding ids, bursts of creates at once, and readers
(`list`, `state`) running all the while.

Every command succeeds or fails cleanly (exit 1, one line, no traceback);
one create wins per id; a reader never sees a half-written state; nothing
is left: no state dir, fifo, cgroup, mount, process, or fd of ours.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import threading

from tests import leaks
from tests.stress import harness
from tests.stress.harness import scaled

STATUSES = {"creating", "created", "running", "stopped", "paused"}


class Readers:
    """Threads running `list` and `state` in a loop until stopped; every
    output must parse."""

    def __init__(self, rt, ids, threads: int = 1):
        self.rt = rt
        self.ids = list(ids)
        self.stop = threading.Event()
        self.bad: list = []
        self.count = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            self.count += 1
            if rng.random() < 0.4:
                result = self.rt("list", "--format", "json")
                try:
                    entries = json.loads(result.out)
                    ok = result.rc == 0 and not result.err and (entries is None or all(
                        e["status"] in STATUSES for e in entries))
                except (ValueError, KeyError, TypeError):
                    ok = False
            else:
                result = self.rt("state", rng.choice(self.ids))
                if result.rc == 0:
                    try:
                        ok = json.loads(result.out)["status"] in STATUSES and not result.problems()
                    except (ValueError, KeyError):
                        ok = False
                else:
                    ok = result.rc == 1 and "container does not exist" in result.err and not result.problems()
            if not ok:
                self.bad.append(result)


def run_streams(rt, bundles, streams: list[list[str]], scratch=None) -> list:
    """Each stream is a list of ids, run as lifecycles one after another;
    the streams run side by side. Returns every outcome. With `scratch`
    (distinct ids only), this process is the inits' subreaper and reaps
    them, and a start that finds its init dead says how it died."""
    outcomes: list = []
    lock = threading.Lock()

    def stream(index, ids):
        pid_file = os.path.join(scratch, f"pid{index}") if scratch else None
        for container_id in ids:
            results = harness.lifecycle(rt, bundles, container_id, pid_file=pid_file, reap=bool(scratch))
            with lock:
                outcomes.extend(results)

    threads = [threading.Thread(target=stream, args=(i, ids)) for i, ids in enumerate(streams)]
    with harness.subreaper() if scratch else contextlib.nullcontext():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


def assert_clean(outcomes) -> None:
    bad = [o for o in outcomes if o.problems()]
    assert bad == [], f"{len(bad)} unclean outcomes, first: {bad[:5]}"


def test_two_streams_distinct_ids(rt, bundles, tmp_path):
    fds = leaks.open_fds()
    n = scaled(500)
    streams = [[f"d{s}-{i}" for i in range(n)] for s in range(2)]
    with Readers(rt, streams[0][:20] + streams[1][:20]) as readers:
        outcomes = run_streams(rt, bundles, streams, scratch=str(tmp_path))
    assert_clean(outcomes)
    failed = [o for o in outcomes if o.rc != 0]
    assert failed == [], f"{len(failed)} failed with distinct ids, first: {failed[:5]}"
    assert readers.bad == [], readers.bad[:5]
    assert readers.count > 0
    assert harness.wait_clean(rt, [bundles.base]) == {}
    assert leaks.open_fds() <= fds
    print(f"\n{2 * n} lifecycles, {len(outcomes)} commands, {readers.count} reads")


def test_two_streams_colliding_ids(rt, bundles):
    """Both streams walk the same few ids: one create wins, the other fails
    cleanly ("already exists"), and the loser's start/kill/delete act on the
    winner's container or fail cleanly."""
    fds = leaks.open_fds()
    n = scaled(500)
    pool = [f"x{i}" for i in range(5)]
    streams = [[pool[i % len(pool)] for i in range(n)] for _ in range(2)]
    with Readers(rt, pool) as readers:
        outcomes = run_streams(rt, bundles, streams)
    assert_clean(outcomes)
    creates = collections.Counter(o.args[-1] for o in outcomes if o.args[0] == "create" and o.rc == 0)
    deletes = collections.Counter(o.args[-1] for o in outcomes if o.args[0] == "delete" and o.rc == 0)
    for container_id in pool:
        left = 1 if container_id in rt.ids() else 0
        # Every container made was deleted once, but one that may remain.
        assert creates[container_id] == deletes[container_id] + left, (container_id, creates, deletes)
    lost = [o for o in outcomes if o.args[0] == "create" and o.rc != 0]
    assert all("already exists" in o.err or "being created" in o.err for o in lost), lost[:5]
    assert readers.bad == [], readers.bad[:5]
    rt.force_delete_all()
    assert harness.wait_clean(rt, [bundles.base]) == {}
    assert leaks.open_fds() <= fds
    print(f"\n{2 * n} lifecycles on {len(pool)} ids: {sum(creates.values())} creates won, {len(lost)} lost")


def burst(rt, bundles, ids: list[str]) -> list:
    """A create per id, all released at the same instant."""
    barrier = threading.Barrier(len(ids))
    outcomes = [None] * len(ids)

    def one(index, container_id):
        bundle = bundles.get(container_id)
        barrier.wait()
        outcomes[index] = rt("create", "--bundle", bundle, container_id)

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_burst_of_creates(rt, bundles):
    fds = leaks.open_fds()
    n = scaled(50, minimum=5)
    distinct = [f"b{i}" for i in range(n)]
    with Readers(rt, distinct, threads=2) as readers:
        outcomes = burst(rt, bundles, distinct)
        assert_clean(outcomes)
        assert [o for o in outcomes if o.rc != 0] == []
        states = {c: json.loads(rt("state", c).out)["status"] for c in distinct}
        assert set(states.values()) == {"created"}, states
        deleted = burst_delete(rt, distinct)
        assert_clean(deleted)
        assert [o for o in deleted if o.rc != 0] == []
    assert readers.bad == [], readers.bad[:5]
    assert harness.wait_clean(rt, [bundles.base]) == {}

    # The same ids, each wanted by several creates at once: one wins each.
    colliding = [f"c{i % max(1, n // 5)}" for i in range(n)]
    outcomes = burst(rt, bundles, colliding)
    assert_clean(outcomes)
    winners = collections.Counter(o.args[-1] for o in outcomes if o.rc == 0)
    assert winners == collections.Counter(set(colliding)), winners
    assert all("already exists" in o.err for o in outcomes if o.rc != 0)
    assert sorted(rt.ids()) == sorted(set(colliding))
    assert_clean(burst_delete(rt, sorted(set(colliding))))
    assert harness.wait_clean(rt, [bundles.base]) == {}
    assert leaks.open_fds() <= fds


def burst_delete(rt, ids: list[str]) -> list:
    barrier = threading.Barrier(len(ids))
    outcomes = [None] * len(ids)

    def one(index, container_id):
        barrier.wait()
        outcomes[index] = rt("delete", "--force", container_id)

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
