"""Long-running reliability tests: skipped unless PYRUNC_STRESS=1.

PYRUNC_STRESS_SCALE scales every size (1.0: the full sizes of issue 9,
`make stress`; 0.05: `make stress-ci`, a few minutes). They need root,
namespaces and busybox, as the integration tests do.
"""

from __future__ import annotations

import os

import pytest

from tests import leaks
from tests.busybox import container_skip_reason
from tests.stress import harness


def _skip_reason() -> str | None:
    if os.environ.get("PYRUNC_STRESS") != "1":
        return "stress tests run with PYRUNC_STRESS=1 (make stress, make stress-ci)"
    return container_skip_reason()


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    for item in items:
        if "tests/stress/" in str(item.fspath):
            item.add_marker(pytest.mark.stress)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    return harness.Bundles(str(tmp_path_factory.mktemp("stress-bundles")))


@pytest.fixture
def rt(tmp_path):
    """pyrunc with a private --root; scrubbed afterwards whatever happened."""
    runtime = harness.Pyrunc(str(tmp_path / "state"))
    yield runtime
    harness.scrub(runtime)


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent():
    cached = leaks.seccomp_cache_entries()
    yield
    if _skip_reason() is None:
        leaks.remove_cgroup_parent(harness.CGROUP_PARENT)
        leaks.remove_seccomp_cache_entries(cached)
