"""Fixtures of the alert e2e tests."""

from __future__ import annotations

import pytest

from tests.e2e.alerts.test_delivery import Receiver


@pytest.fixture
async def receiver():
    """A local webhook receiver (test_delivery.Receiver), started and stopped around the test."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()
