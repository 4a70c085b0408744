"""detect_trends on crafted posts (real PostgreSQL): a hashtag and a style whose interactions per
hour jump over those of the same hours on the days before trend, a daily rhythm does not; start,
end and impact exact; the same run twice gives the same rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()
T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _post(conn, hashtags: list[str], published: datetime, snapshots: list[tuple[datetime, int]]) -> uuid.UUID:
    cid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO content (workspace_id, id, platform, hashtags, published_at, first_seen_at, last_seen_at,
               last_event_id) VALUES ($1, $2, 'tiktok', $3, $4, $4, $4, $5)""", W, cid, hashtags, published, uuid.uuid4())
    for at, likes in snapshots:
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   recorded_at) VALUES ($1, $2, $3, 'tiktok', 10000, $4, $5)""", uuid.uuid4(), W, cid, likes, at)
    return cid


async def test_a_rising_hashtag_and_style_are_detected_with_their_start_end_and_impact(stack):
    conn = await connect(stack.dsn)
    try:
        def daily(per_window: int, recent: int) -> list[tuple[datetime, int]]:
            """0 eight days back, then `per_window` more in the same 6 hours of each of the 7 days before,
            then `recent` more in the last 6 hours"""
            points, v = [(T - timedelta(days=8), 0)], 0
            for d in range(7, 0, -1):
                points.append((T - timedelta(days=d, hours=6), v))
                v += per_window
                points.append((T - timedelta(days=d), v))
            return points + [(T - timedelta(hours=6), v), (T, v + recent)]

        # #FYP: 60 a window on the days before (10/h), 3,000 in the last 6 h (500/h)
        a = await _post(conn, ["#FYP"], T - timedelta(days=8), daily(60, 3000))
        # #old: the same every day, an evening rhythm: 1,200 a window before, 1,200 now -> no trend
        await _post(conn, ["#old"], T - timedelta(days=8), daily(1200, 1200))
        await _post(conn, ["#fyp"], T - timedelta(hours=2), [(T - timedelta(hours=1), 600)])
        # #tiny: rises from nothing, but by fewer than MIN_GAIN interactions -> no trend
        await _post(conn, ["#tiny"], T - timedelta(hours=3), [(T - timedelta(hours=1), 900)])
        await conn.execute("""INSERT INTO content_style_analysis (workspace_id, id, content_id, style_tags, created_at)
            VALUES ($1, $2, $3, '{fast-cut}', $4)""", W, uuid.uuid4(), a, T - timedelta(days=7))

        async def run(at: datetime) -> list:
            r = await JobRunner(stack.dsn, JOBS).run("detect_trends", period=(at - timedelta(minutes=30), at))
            assert r.status == "succeeded", r.error
            return [dict(x) for x in await conn.fetch(
                "SELECT * FROM trend_analysis WHERE source = 'detected' ORDER BY trend_type, trend_key")]

        first = await run(T)
        assert first == await run(T)  # the same run twice: the same rows
        assert [(t["trend_type"], t["trend_key"]) for t in first] == [("hashtag", "#fyp"), ("style", "fast-cut")]
        fyp, style = first
        # #fyp: recent 3,000 + 600 = 3,600 in 6 h = 600/h; baseline 7 x 60 in 7 x 6 h = 10/h
        assert fyp["trend_data"]["posts"] == 2 and fyp["trend_data"]["recent_gain"] == 3600
        assert fyp["engagement_impact"] == pytest.approx(100 * (600 / 10 - 1))
        assert (fyp["start_time"], fyp["end_time"]) == (T - timedelta(hours=6), T)
        assert style["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))  # post a alone: 3,000 in 6 h
        # an hour later it still trends: it ends later, starts as before
        later = await run(T + timedelta(hours=1))
        assert (later[0]["start_time"], later[0]["end_time"]) == (T - timedelta(hours=6), T + timedelta(hours=1))
    finally:
        await conn.close()
