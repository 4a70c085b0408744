"""Extreme sample values end to end on real Kafka and PostgreSQL (issue #23, item 1): four valid
samples of one series in one window, 1e300, -1e300, 1e-300 and -1e-300, made the pane's quantile
sketch span every bucket between them; its changelog record (2.2 MB) no longer fitted a message and
the flush crashed the worker (`Crashed reason=ItemTooLarge`), and the next owner of the partition
the same way. The sketch is bounded now (streams/windows/panes.py): the worker stays up and the
window is stored with its exact count, min and max."""

from __future__ import annotations

import math
import random
import urllib.request
import uuid

import pytest

from streams.publish import publish_messages
from tests.support import SMALL, sample
from tests.support import fetch_rollups as _rollups
from tests.support import window_base as _base
from tests.support import workspace_messages as _msgs

pytestmark = pytest.mark.services

EXTREMES = [1e300, -1e300, 1e-300, -1e-300]


async def test_extreme_values_do_not_crash_the_worker(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    base = _base()
    rng = random.Random(23)
    normal = [round(rng.uniform(1, 500), 3) for _ in range(40)]
    values = normal[:20] + EXTREMES + normal[20:]
    events = [sample(ws, base + 0.2 * i, v, host="x") for i, v in enumerate(values)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(events))

    # one tumbling window (10 s) and the two hopping ones (20 s every 10 s) holding it
    rows = await _rollups(stack.dsn, "performance_rollups", 3)
    log = worker.log()
    assert "Crashed" not in log, log[-4000:]
    assert worker.proc.poll() is None, log[-4000:]
    assert len(rows) == 3, log[-4000:]
    ordered = sorted(values)
    exact_p50 = ordered[math.floor(0.5 * (len(ordered) - 1))]
    for r in rows:
        assert (r["count"], r["min"], r["max"]) == (len(values), -1e300, 1e300)
        assert abs(r["p50"] - exact_p50) <= 0.01 * abs(exact_p50) * 1.0001
        assert r["p99"] is not None and math.isfinite(r["p99"])
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/readyz", timeout=10) as resp:
        assert resp.status == 200
    assert worker.proc.poll() is None
