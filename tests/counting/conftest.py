"""Shared fixtures: one fake EBS direct server per module and boto3 clients for it."""

import pytest

from testing.fakes.ebs_direct import FakeEbsDirect
from tests.counting._support import make_client


@pytest.fixture(scope="module")
def fake():
    with FakeEbsDirect() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fake(request):
    """Each test starts with the module's fake in its default behaviour."""
    if "fake" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("fake")
    server.scan_window = None
    server.max_page_blocks = None
    server.latency = 0.0
    server.fault_rate = 0.0
    server.set_quota(None)
    server.set_quota(None, operation="GetSnapshotBlock")
    server.clock_offset = 0.0
    server.clear_faults()
    server.reset_stats()
    yield


@pytest.fixture(scope="module")
def client(fake):
    return make_client(fake.url)
