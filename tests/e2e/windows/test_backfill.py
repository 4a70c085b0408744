"""Backfill as a first-class use (issue #8): 90 days of one workspace's history, sent while its
partition's watermark is current, is stored, and every closed window of it is recomputed from the
stored rows (compared here with an oracle written independently in SQL); engagement_by_time
includes the history; a live alert on the same workspace fires and resolves meanwhile, and the
history's spikes alert nothing (older than alert_max_age_s)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from db.alerts import add_rule
from db.pool import connect
from schemas.alerts import AlertRule
from streams.publish import publish_messages
from tests.support import SMALL, iso, metric, read_topic, sample, wait_for_rows, workspace_messages

pytestmark = pytest.mark.services

DAYS = 90

#: the windows of the history, from the stored rows, by date_bin (not the worker's query)
ORACLE = """
WITH ev AS (SELECT timestamp AS t, value FROM system_performance_metrics
            WHERE workspace_id = $1 AND timestamp < $2),
w AS (SELECT 10.0::float8 AS size, 10.0::float8 AS step, date_bin('10 s', t, 'epoch') AS start, value FROM ev
      UNION ALL SELECT 20.0, 10.0, date_bin('10 s', t, 'epoch'), value FROM ev
      UNION ALL SELECT 20.0, 10.0, date_bin('10 s', t, 'epoch') - interval '10 s', value FROM ev)
SELECT size, start, count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95
FROM w GROUP BY size, start
"""


async def test_ninety_days_of_history_are_rolled_up_exactly_while_a_live_alert_fires(stack, start_worker):
    ws = uuid.uuid4()
    w = str(ws)
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name="live spike",
                                       metric="api_latency.max", condition_op=">", threshold_value=100, window_s=10))
    finally:
        await conn.close()
    worker = start_worker(**SMALL)
    now = time.time()
    topic = stack.topics["performance_sample"]
    await publish_messages(stack.bootstrap, topic, [(w.encode(), orjson.dumps([sample(w, now - 1, 1.0)]))])
    assert await wait_for_rows(stack.dsn, {"system_performance_metrics": 1}) == {"system_performance_metrics": 1}

    # history: a sample every 20 minutes for 90 days (spikes > 100 among them), two samples in some
    # windows; and a post's views scraped every 6 hours
    start = now - DAYS * 86400
    history = []
    for i in range(DAYS * 72):
        t = start + i * 1200 + (i % 7)
        history.append(sample(w, t, float(150 if i % 50 == 0 else i % 90), "api_latency", host="a"))
        if i % 5 == 0:
            history.append(sample(w, t + 3, float(i % 13), "api_latency", host="a"))
    post = str(uuid.uuid4())
    views = [i * 37 for i in range(DAYS * 4)]
    engagement = [{"update_id": str(uuid.uuid4()), "workspace_id": w, "content_id": post, "platform": "tiktok",
                   "recorded_at": iso(start + i * 21600 + 5), "views": v, "likes": v // 10}
                  for i, v in enumerate(views)]

    # the live scenario, ahead of the watermark: one window's spike, then calm windows
    base = (int(time.time()) // 10 + 3) * 10
    live = [sample(w, base + win * 10 + j * 2, value, "api_latency", host="a")
            for win, value in enumerate([50, 500, 50, 50, 50]) for j in range(5)]

    async def backfill() -> None:
        await publish_messages(stack.bootstrap, topic, workspace_messages(history, per=500))
        await publish_messages(stack.bootstrap, stack.topics["engagement_update"], workspace_messages(engagement, per=100))

    async def live_alert() -> list[dict]:
        await publish_messages(stack.bootstrap, topic, [(w.encode(), orjson.dumps(live))])
        return await read_topic(stack.bootstrap, stack.notifications, expect=2, timeout=120)

    _, notes = await asyncio.gather(backfill(), live_alert())
    assert [(n["status"], n["current_value"]) for n in notes][:1] == [("firing", 500.0)]
    assert [n["status"] for n in notes] == ["firing", "resolved"], "history alerted, or the live alert did not"

    want = {"system_performance_metrics": 1 + len(history) + len(live), "content_performance_metrics": len(engagement)}
    assert await wait_for_rows(stack.dsn, want, timeout=120) == want
    cutoff = datetime.fromtimestamp(now - 60, UTC)  # after the history (it ends 20 min back), before the live sample

    conn = await connect(stack.dsn)
    try:
        oracle = {(r["size"], r["start"]): r for r in await conn.fetch(ORACLE, ws, cutoff)}
        deadline = time.monotonic() + 120
        while True:
            got = {(r["window_s"], r["window_start"]): r for r in await conn.fetch(
                "SELECT * FROM performance_rollups WHERE workspace_id = $1 AND window_start < $2", ws, cutoff)}
            if set(got) == set(oracle) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert set(got) == set(oracle), (len(got), len(oracle))
        for key, o in oracle.items():
            g = got[key]
            assert (g["count"], g["min"], g["max"]) == (o["count"], o["min"], o["max"]), key
            assert g["sum"] == pytest.approx(o["sum"]) and g["p95"] == pytest.approx(o["p95"]), key
            assert g["revision"] >= 1
        # engagement: every gain of the history, tumbling windows summed into engagement_by_time
        deadline = time.monotonic() + 60
        while True:
            gained = await conn.fetchval("SELECT coalesce(sum(views_gained), 0) FROM engagement_rollups "
                                         "WHERE workspace_id = $1 AND window_s = step_s", ws)
            if gained >= views[-1] or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert gained == views[-1] - views[0]
        by_time = await conn.fetchrow("SELECT sum(views_gained) AS v, sum(windows) AS n FROM engagement_by_time "
                                      "WHERE workspace_id = $1", ws)
        assert by_time["v"] == views[-1] - views[0]
        assert by_time["n"] == len(engagement)  # one tumbling window per scrape
    finally:
        await conn.close()
    m = worker.metrics()
    assert metric(m, "learnstream_windows_recomputed_total", kind="performance_sample") >= len(oracle)
    assert metric(m, "learnstream_alert_notifications_total", status="firing") == 1
    assert worker.proc.poll() is None
