"""optimal_posting_times on a crafted month (real PostgreSQL): hours in the account's zone, the
latest snapshot's engagement, the window, the shrinkage that keeps a three-post cell from winning,
and a second run giving the same rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics.posting_times import PRIOR_POSTS
from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner, parse_period

pytestmark = pytest.mark.services

W = uuid.uuid4()
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
# Berlin is UTC+1 in November: Monday 16 Nov 18:xx Berlin = 17:xx UTC
MON_18 = datetime(2026, 11, 16, 17, 0, tzinfo=UTC)
TUE_09 = datetime(2026, 11, 17, 8, 0, tzinfo=UTC)
WED_12 = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


async def _post(conn, published: datetime, likes: int, connector: str = "me", snapshots: tuple = ()) -> None:
    cid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO content (workspace_id, id, platform, connector_id, published_at, first_seen_at, last_seen_at,
               last_event_id) VALUES ($1, $2, 'tiktok', $3, $4, $4, $4, $5)""", W, cid, connector, published, uuid.uuid4())
    for hours, views, n_likes in (*snapshots, (48, 1000, likes)):  # the last (latest) snapshot counts
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   recorded_at) VALUES ($1, $2, $3, 'tiktok', $4, $5, $6)""",
            uuid.uuid4(), W, cid, views, n_likes, published + timedelta(hours=hours))


async def test_the_best_hours_of_a_crafted_month_in_the_accounts_zone(stack):
    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, timezone, first_seen_at, last_seen_at)
            VALUES ($1, 'me', 'tiktok', 'Europe/Berlin', $2, $2)""", W, UNTIL)
        for i in range(20):  # Monday 18:00 Berlin, 20 posts at 12%; one had 90% in an earlier snapshot
            await _post(conn, MON_18 + timedelta(minutes=2 * i), 120, snapshots=((1, 10, 9),) if i == 0 else ())
        for i in range(3):  # Tuesday 09:00: three posts at 14%, a better mean on few posts
            await _post(conn, TUE_09 + timedelta(minutes=i), 140)
        for i in range(7):  # Wednesday 12:00: 7 posts at 5%
            await _post(conn, WED_12 + timedelta(minutes=i), 50)
        await _post(conn, UNTIL - timedelta(days=100), 1000)  # outside the 90-day window
        await _post(conn, TUE_09, 300, connector="other")      # an account without a known zone: UTC

        runner = JobRunner(stack.dsn, JOBS)
        first = await runner.run("optimal_posting_times", period=parse_period(f"2026-11-30/{UNTIL.isoformat()}"))
        assert (first.status, first.rows) == ("succeeded", 4)
        rows1 = await conn.fetch("SELECT * FROM optimal_posting_times ORDER BY connector_id, day_of_week, hour_of_day")
        second = await runner.run("optimal_posting_times", period=parse_period(f"2026-11-30/{UNTIL.isoformat()}"))
        assert second.rows == 4
        rows2 = await conn.fetch("SELECT * FROM optimal_posting_times ORDER BY connector_id, day_of_week, hour_of_day")
        assert [tuple(r) for r in rows1] == [tuple(r) for r in rows2]  # the same rows

        me = {(r["day_of_week"], r["hour_of_day"]): r for r in rows1 if r["connector_id"] == "me"}
        assert set(me) == {(1, 18), (2, 9), (3, 12)}  # Monday 18h, Tuesday 9h, Wednesday 12h, Berlin time
        k = PRIOR_POSTS
        account = (20 * 0.12 + 3 * 0.14 + 7 * 0.05) / 30
        shrunk = {(1, 18): (20 * 0.12 + k * account) / (20 + k), (2, 9): (3 * 0.14 + k * account) / (3 + k),
                  (3, 12): (7 * 0.05 + k * account) / (7 + k)}
        best = max(shrunk.values())
        assert best == shrunk[(1, 18)]  # the 20-post cell wins over the 3-post cell with the higher mean
        for cell, r in me.items():
            n = {(1, 18): 20, (2, 9): 3, (3, 12): 7}[cell]
            assert r["sample_size"] == n and r["timezone"] == "Europe/Berlin"
            assert r["avg_engagement"] == pytest.approx({(1, 18): 0.12, (2, 9): 0.14, (3, 12): 0.05}[cell])
            assert r["confidence"] == pytest.approx(n / (n + k))
            assert r["optimization_score"] == pytest.approx(100 * shrunk[cell] / best)
        (other,) = [r for r in rows1 if r["connector_id"] == "other"]
        assert (other["day_of_week"], other["hour_of_day"], other["timezone"]) == (2, 8, "UTC")
        assert other["optimization_score"] == 100.0
    finally:
        await conn.close()
