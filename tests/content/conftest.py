"""Fixtures for the content tests: one fake EBS direct server per module, reset per test."""

import pytest

from backup_anomaly import changed_blocks as cb
from testing.fakes.ebs_direct import GET_SNAPSHOT_BLOCK, FakeEbsDirect
from tests.counting._support import make_client


@pytest.fixture(scope="module")
def fake():
    with FakeEbsDirect() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fake(request):
    if "fake" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("fake")
    server.latency = 0.0
    server.fault_rate = 0.0
    server.clock_offset = 0.0
    server.set_quota(None)
    server.set_quota(None, operation=GET_SNAPSHOT_BLOCK)
    server.clear_faults()
    server.reset_stats()
    yield


@pytest.fixture(scope="module")
def client(fake):
    return make_client(fake.url)


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch):
    """Retry sleeps stay tiny; what matters is that retries happen, not how long they wait."""
    monkeypatch.setattr(cb, "_BACKOFF_BASE", 0.001)
    monkeypatch.setattr(cb, "_BACKOFF_CAP", 0.01)
