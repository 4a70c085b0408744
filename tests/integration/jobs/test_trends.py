"""detect_trends on crafted posts (real PostgreSQL): a hashtag and a style whose interactions per
hour jump over those of the same hours on the days before trend, a daily rhythm does not; start,
end and impact exact; the same run twice gives the same rows. Gains are 0028's (a post's first
snapshot gains 0): old posts first scraped now are no trend; a baseline under MIN_BASELINE_GAIN
is labelled 'new' with no percentage (issue 25 item 2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics import read
from db.pool import connect
from streams.analytics.cli import show
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


def _daily(at: datetime, per_window: int, recent: int) -> list[tuple[datetime, int]]:
    """0 eight days before `at`, then `per_window` more in the same 6 hours of each of the 7 days
    before, then `recent` more in the last 6 hours"""
    points, v = [(at - timedelta(days=8), 0)], 0
    for d in range(7, 0, -1):
        points.append((at - timedelta(days=d, hours=6), v))
        v += per_window
        points.append((at - timedelta(days=d), v))
    return points + [(at - timedelta(hours=6), v), (at, v + recent)]


async def test_a_rising_hashtag_and_style_are_detected_with_their_start_end_and_impact(stack):
    conn = await connect(stack.dsn)
    try:
        # #FYP: 60 a window on the days before (10/h), 3,000 in the last 6 h (500/h)
        a = await _post(conn, ["#FYP"], T - timedelta(days=8), _daily(T, 60, 3000))
        # #old: the same every day, an evening rhythm: 1,200 a window before, 1,200 now -> no trend
        await _post(conn, ["#old"], T - timedelta(days=8), _daily(T, 1200, 1200))
        # a new #fyp post first scraped an hour ago: its first snapshot gains 0 (its 600 were gained
        # before anyone looked; they used to count as 600 gained in the last 6 h)
        await _post(conn, ["#fyp"], T - timedelta(hours=2), [(T - timedelta(hours=1), 600)])
        # #tiny: rises from nothing, but by fewer than MIN_GAIN interactions (900) -> no trend
        await _post(conn, ["#tiny"], T - timedelta(hours=5), [(T - timedelta(hours=5), 0), (T - timedelta(hours=1), 900)])
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
        # #fyp: recent 3,000 + 0 (the new post's first snapshot) = 3,000 in 6 h = 500/h; baseline 7 x 60
        # in 7 x 6 h = 10/h: +4,900 % (it was 3,600 and +5,900 % with the first snapshot's 600 counted)
        assert fyp["trend_data"]["posts"] == 2 and fyp["trend_data"]["recent_gain"] == 3000
        assert fyp["trend_data"]["status"] == "rising" and fyp["trend_data"]["baseline_gain"] == 420
        assert fyp["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))
        assert (fyp["start_time"], fyp["end_time"]) == (T - timedelta(hours=6), T)
        assert style["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))  # post a alone: 3,000 in 6 h
        # an hour later it still trends: it ends later, starts as before
        later = await run(T + timedelta(hours=1))
        assert (later[0]["start_time"], later[0]["end_time"]) == (T - timedelta(hours=6), T + timedelta(hours=1))
    finally:
        await conn.close()


async def _detected(conn, at: datetime, stack) -> dict[str, dict]:
    r = await JobRunner(stack.dsn, JOBS).run("detect_trends", period=(at - timedelta(minutes=30), at))
    assert r.status == "succeeded", r.error
    return {x["trend_key"]: dict(x) for x in await conn.fetch(
        "SELECT * FROM trend_analysis WHERE workspace_id = $1 AND source = 'detected'", W)}


async def test_old_posts_first_scraped_now_are_no_trend(stack):
    """An onboarding (or a backfill): ten posts published 60 days ago, first scraped an hour ago
    with 500 likes each, again now with 510. Their first snapshot gains 0 (0028's definition), the
    second 510 - 500 = 10: 10 x 10 = 100 in the last 6 h, under MIN_GAIN -> no trend.
    Before (interactions_at(T) - interactions_at(T - 6 h)): 10 x (510 - 0) = 5,100 over a zero
    baseline -> #backlog detected."""
    conn = await connect(stack.dsn)
    try:
        for _ in range(10):
            await _post(conn, ["#backlog"], T - timedelta(days=60), [(T - timedelta(hours=1), 500), (T, 510)])
        assert await _detected(conn, T, stack) == {}
    finally:
        await conn.close()


async def test_a_near_zero_baseline_is_labelled_new_not_a_percentage(stack):
    """#quiet gained 1 interaction in its 7 baseline windows (42 h: 1/42 per hour), then 1,500 in
    the last 6 h (250/h): 250 / (1/42) = 10,500 x the baseline, which was reported as
    100 x (10,500 - 1) = +1,049,900 %. A baseline of fewer than MIN_BASELINE_GAIN (100) interactions
    is too small to divide by: the trend is kept (1,500 >= MIN_GAIN, and >= 3 x its baseline) with
    status 'new' and engagement_impact NULL. #steady: 60 a window on the days before (7 x 60 = 420
    in 42 h = 10/h, over the floor), 1,200 in the last 6 h (200/h): 'rising', +1,900 % exactly.
    Seed 001 key query 3 averaged both into (1,049,900 + 1,900) / 2 = 525,900 %; now 1,900 %."""
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # key query 3 reads the last 30 days
    conn = await connect(stack.dsn)
    try:
        await _post(conn, ["#quiet"], at - timedelta(days=8),
                    [(at - timedelta(days=8), 0), (at - timedelta(days=3, hours=6), 0), (at - timedelta(days=3), 1),
                     (at - timedelta(hours=6), 1), (at, 1501)])
        await _post(conn, ["#steady"], at - timedelta(days=8), _daily(at, 60, 1200))
        got = await _detected(conn, at, stack)
        assert sorted(got) == ["#quiet", "#steady"]
        quiet, steady = got["#quiet"], got["#steady"]
        assert quiet["engagement_impact"] is None
        assert quiet["trend_data"] == {"status": "new", "posts": 1, "recent_gain": 1500, "baseline_gain": 1,
                                       "recent_per_hour": 1500 / 6, "baseline_per_hour": 1 / 42,
                                       "recent_hours": 6, "baseline_days": 7}
        assert steady["engagement_impact"] == pytest.approx(100 * (200 / 10 - 1)) == pytest.approx(1900)
        assert steady["trend_data"]["status"] == "rising"
        assert (steady["trend_data"]["recent_gain"], steady["trend_data"]["baseline_gain"]) == (1200, 420)
        # seed 001 key query 3, as written: the new key counts as a trend, not in the average
        q3 = await conn.fetch("""SELECT trend_type, platform, AVG(engagement_impact) as avg_impact FROM trend_analysis
            WHERE start_time >= NOW() - INTERVAL '30 days' GROUP BY trend_type, platform ORDER BY avg_impact DESC""")
        assert [(r["trend_type"], r["platform"], r["avg_impact"]) for r in q3] == [("hashtag", "tiktok", pytest.approx(1900))]
        view = await conn.fetch("SELECT trend_count, avg_impact FROM trend_analysis_view WHERE workspace_id = $1", W)
        assert [(r["trend_count"], r["avg_impact"]) for r in view] == [(2, pytest.approx(1900))]
        # `learnstream analytics trends` (and the demo, which prints it): the measured rise first, then the
        # new one, labelled new with its impact shown as undefined (the demo's old line raised TypeError)
        shown = await read.trends(conn, W, source="detected")
        got = [dict(zip(shown.columns, row)) for row in shown.rows]
        assert [(r["trend_key"], r["status"], r["impact_pct"], r["recent_gain"]) for r in got] == [
            ("#steady", "rising", 1900.0, 1200), ("#quiet", "new", None, 1500)]
        table = show(shown, "table", hide=("workspace_id",)).splitlines()
        assert table[2].split()[:6] == ["tiktok", "hashtag", "#quiet", "detected", "new", "—"]
    finally:
        await conn.close()
