"""detect_trends on crafted posts (real PostgreSQL): a hashtag and a style whose interactions per
hour jump over their baseline trend, a steady one does not; start, end and impact exact; the same
run twice gives the same rows."""

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
        a = await _post(conn, ["#FYP"], T - timedelta(days=8),
                        [(T - timedelta(days=8), 0), (T - timedelta(hours=6), 84), (T, 384)])
        await _post(conn, ["#old"], T - timedelta(days=8),
                    [(T - timedelta(days=8), 0), (T - timedelta(hours=6), 840), (T, 870)])
        await _post(conn, ["#fyp"], T - timedelta(hours=2), [(T - timedelta(hours=1), 60)])
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
        # #fyp: recent (384 - 84) + 60 = 360 in 6 h = 60/h; baseline 84 in 168 h = 0.5/h
        assert fyp["trend_data"]["posts"] == 2 and fyp["trend_data"]["recent_gain"] == 360
        assert fyp["engagement_impact"] == pytest.approx(100 * (60 / 0.5 - 1))
        assert (fyp["start_time"], fyp["end_time"]) == (T - timedelta(hours=6), T)
        assert style["engagement_impact"] == pytest.approx(100 * (50 / 0.5 - 1))  # post a alone: 300 in 6 h
        # an hour later it still trends (no newer snapshot: the same gains): it ends later, starts as before
        later = await run(T + timedelta(hours=1))
        assert (later[0]["start_time"], later[0]["end_time"]) == (T - timedelta(hours=6), T + timedelta(hours=1))
    finally:
        await conn.close()
