"""detect_trends on crafted posts (real PostgreSQL): a hashtag and a style whose interactions per
hour jump over those of the same hours on the days before trend, a daily rhythm does not; start,
end and impact exact; the same run twice gives the same rows. A post's interactions at t, C(t),
are its high-water-mark interactions interpolated between its snapshots around t (before its first
snapshot the first's value, so the first snapshot gains 0; after its last the last's); a window
gains C(end) - C(start). Old posts first scraped now are no trend; a baseline under
MIN_BASELINE_GAIN is labelled 'new' with no percentage (issue 25 item 2); a post scraped every 3
days at a steady rate is no rise, a hashtag in two cases counts its post once, counters near 2^63
do not fail the job (issue 25 review findings 3, 2, 6).

_daily's snapshots lie on the window bounds (T - d days - 6 h and T - d days) and C is flat between
T - d days and the next window's start (two snapshots at the same value), so its windows gain
exactly what its snapshots say: C(T - d days) - C(T - d days - 6 h) = per_window, recent = recent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics import read
from db.analytics.trends import detect_trends
from db.pool import connect
from db.reports.query import fetch
from schemas.reports import ReportQuery
from streams.analytics.cli import show
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()
T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _post(conn, hashtags: list[str], published: datetime, snapshots: list[tuple[datetime, int]],
                ws: uuid.UUID = W) -> uuid.UUID:
    cid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO content (workspace_id, id, platform, hashtags, published_at, first_seen_at, last_seen_at,
               last_event_id) VALUES ($1, $2, 'tiktok', $3, $4, $4, $4, $5)""", ws, cid, hashtags, published, uuid.uuid4())
    for at, likes in snapshots:
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   recorded_at) VALUES ($1, $2, $3, 'tiktok', 10000, $4, $5)""", uuid.uuid4(), ws, cid, likes, at)
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
        # #fyp: recent 3,000 (post a: C(T) - C(T - 6 h) = 3,420 - 420) + 0 (the new post: one snapshot,
        # C = 600 at every t) = 3,000 in 6 h = 500/h; baseline 7 x 60 in 7 x 6 h = 10/h: +4,900 % (it
        # was 3,600 and +5,900 % with the first snapshot's 600 counted). #old: 1,200 recent, 7 x 1,200
        # baseline: 1 x, no trend. #tiny: C(T - 6 h) = 0 (before its first snapshot, at 0), C(T) = 900
        # (after its last): 900 < 1,000
        assert fyp["trend_data"]["posts"] == 2 and fyp["trend_data"]["recent_gain"] == 3000
        assert fyp["trend_data"]["status"] == "rising" and fyp["trend_data"]["baseline_gain"] == 420
        assert fyp["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))
        assert (fyp["start_time"], fyp["end_time"]) == (T - timedelta(hours=6), T)
        assert style["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))  # post a alone: 3,000 in 6 h
        # an hour later it still trends: it ends later, starts as before. Post a: C(T + 1 h) = 3,420 (after
        # its last snapshot), C(T - 5 h) = 420 + 3,000 x 1/6 = 920: recent 2,500 (416.7/h); baseline
        # windows (T - d - 5 h, T - d + 1 h]: C goes v + 10 -> v + 60: 7 x 50 = 350 (8.33/h): 50 x
        later = await run(T + timedelta(hours=1))
        assert (later[0]["start_time"], later[0]["end_time"]) == (T - timedelta(hours=6), T + timedelta(hours=1))
        assert (later[0]["trend_data"]["recent_gain"], later[0]["trend_data"]["baseline_gain"]) == (2500, 350)
        assert later[0]["engagement_impact"] == pytest.approx(100 * ((2500 / 6) / (350 / 42) - 1)) == pytest.approx(4900)
    finally:
        await conn.close()


async def _detected(conn, at: datetime, stack) -> dict[str, dict]:
    r = await JobRunner(stack.dsn, JOBS).run("detect_trends", period=(at - timedelta(minutes=30), at))
    assert r.status == "succeeded", r.error
    return {x["trend_key"]: dict(x) for x in await conn.fetch(
        "SELECT * FROM trend_analysis WHERE workspace_id = $1 AND source = 'detected'", W)}


async def test_old_posts_first_scraped_now_are_no_trend(stack):
    """An onboarding (or a backfill): ten posts published 60 days ago, first scraped an hour ago
    with 500 likes each, again now with 510. C(T - 6 h) = 500 (before the first snapshot: its
    value; the first snapshot gains 0), C(T) = 510: 10 x 10 = 100 in the last 6 h, under MIN_GAIN
    -> no trend.
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
    """#quiet (snapshots 0 at at - 8 d and at - 3 d - 6 h, 1 at at - 3 d and at - 6 h, 1,501 at at:
    on the window bounds) gained 1 interaction in its 7 baseline windows (the one of day 3; 42 h:
    1/42 per hour), then 1,501 - 1 = 1,500 in the last 6 h (250/h): 250 / (1/42) = 10,500 x the baseline, which was reported as
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


async def test_a_hashtag_repeated_in_another_case_counts_its_post_once(stack):
    """One post tagged {#Sale, #sale} gained 600 in the last 6 h over a zero baseline: #sale has 1
    post and 600 gained, under MIN_GAIN (1,000) -> no trend. It was counted twice (issue 25 review
    finding 2): 2 posts, 2 x 600 = 1,200 -> #sale detected, status new."""
    conn = await connect(stack.dsn)
    try:
        # C(T - 6 h) = 0 (the first snapshot), C(T) = 600: recent 600; baseline: C is 0 before T - 6 h
        await _post(conn, ["#Sale", "#sale"], T - timedelta(days=8), [(T - timedelta(hours=6), 0), (T, 600)])
        assert await _detected(conn, T, stack) == {}
        # the same with MIN_GAIN 0 shows what the key gained: 1 post, 600
        assert await detect_trends(conn, T, min_gain=0) == 1
        got = (await _detected_rows(conn))["#sale"]["trend_data"]
        assert (got["posts"], got["recent_gain"], got["baseline_gain"], got["status"]) == (1, 600, 0, "new")
    finally:
        await conn.close()


async def _detected_rows(conn) -> dict[str, dict]:
    return {x["trend_key"]: dict(x) for x in await conn.fetch(
        "SELECT * FROM trend_analysis WHERE workspace_id = $1 AND source = 'detected'", W)}


async def test_posts_scraped_every_three_days_at_a_steady_rate_are_no_trend(stack):
    """Ten posts each gaining exactly 50 interactions an hour, scraped every 3 days at 09:00 (issue
    25 review finding 3). A run at 09:00, just after a scrape: each post's interactions C(t) run
    linearly between its snapshots (50 an hour), so each 6-hour window gains 10 x 50 x 6 = 3,000:
    recent 3,000 (500/h), baseline 7 x 3,000 = 21,000 in 42 h (500/h): ratio 1 -> no trend.
    Before, each scrape's 72 h x 50 = 3,600 landed in the window holding it: recent 10 x 3,600 =
    36,000, baseline the two windows holding the scrapes of Nov 28 and Nov 25: 72,000 (1,714/h) ->
    'rising', 100 x (6,000 / (72,000 / 42) - 1) = +250 %."""
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    scrapes = [at - timedelta(days=3 * k) for k in range(4, -1, -1)]  # Nov 19, 22, 25, 28, Dec 1, 09:00
    conn = await connect(stack.dsn)
    try:
        for _ in range(10):
            await _post(conn, ["#steady"], at - timedelta(days=20),
                        [(s, 50 * 72 * k) for k, s in enumerate(scrapes)])
        assert await _detected(conn, at, stack) == {}
        # with RATIO 1 and MIN_GAIN 0 it shows its gains: recent = baseline per window, +0 %
        assert await detect_trends(conn, at, ratio=1.0, min_gain=0) == 1
        got = (await _detected_rows(conn))["#steady"]
        assert {k: got["trend_data"][k] for k in ("posts", "recent_gain", "baseline_gain", "status")} == {
            "posts": 10, "recent_gain": 10 * 50 * 6, "baseline_gain": 7 * 10 * 50 * 6, "status": "rising"}
        assert got["engagement_impact"] == pytest.approx(0)
        # three hours later, at 12:00, nothing is known after the 09:00 scrape: C(12:00) = C(09:00),
        # so the recent window (06:00, 12:00] gained 10 x 50 x 3 = 1,500 (250/h); each baseline
        # window still 3,000 (its 6 h lie between scrapes): 21,000 (500/h) -> 100 x (250 / 500 - 1) = -50 %
        # (before: recent 36,000 with the 09:00 scrape, baseline 72,000: +250 %, rising)
        noon = at + timedelta(hours=3)
        await conn.execute("DELETE FROM trend_analysis")
        assert await _detected(conn, noon, stack) == {}
        assert await detect_trends(conn, noon, ratio=0.5, min_gain=0) == 1
        got = (await _detected_rows(conn))["#steady"]
        assert (got["trend_data"]["recent_gain"], got["trend_data"]["baseline_gain"]) == (1500, 21000)
        assert got["engagement_impact"] == pytest.approx(-50)
    finally:
        await conn.close()


async def test_counters_near_the_bigint_limit_do_not_fail_the_job(stack):
    """likes = shares = 5e18 (a Count allows up to 2^63 - 1 = 9.22e18): their sum, 1e19, does not
    fit a bigint; the job failed "bigint out of range" at that workspace, and no workspace after it
    got its trends (issue 25 review finding 6). The interactions are summed in numeric: the job
    succeeds, the big post's key trends 'new' with recent_gain 10^19 (over a zero baseline), and
    another workspace's #fyp (3,000 in the last 6 h over 60 a window) is detected as usual."""
    conn = await connect(stack.dsn)
    try:
        big = await _post(conn, ["#huge"], T - timedelta(days=8), [(T - timedelta(hours=6), 0)])
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, likes, shares,
                   recorded_at) VALUES ($1, $2, $3, 'tiktok', 5000000000000000000, 5000000000000000000, $4)""",
            uuid.uuid4(), W, big, T)
        await _post(conn, ["#fyp"], T - timedelta(days=8), _daily(T, 60, 3000), ws=uuid.uuid4())
        r = await JobRunner(stack.dsn, JOBS).run("detect_trends", period=(T - timedelta(minutes=30), T))
        assert r.status == "succeeded", r.error
        rows = {(x["trend_key"], x["workspace_id"] == W): dict(x) for x in await conn.fetch(
            "SELECT * FROM trend_analysis WHERE source = 'detected'")}
        assert sorted(rows) == [("#fyp", False), ("#huge", True)]
        huge = rows["#huge", True]
        assert huge["engagement_impact"] is None
        assert {k: huge["trend_data"][k] for k in ("status", "posts", "recent_gain", "baseline_gain")} == {
            "status": "new", "posts": 1, "recent_gain": 2 * 5 * 10**18, "baseline_gain": 0}
        assert huge["trend_data"]["recent_per_hour"] == pytest.approx(1e19 / 6)
        assert rows["#fyp", False]["engagement_impact"] == pytest.approx(100 * (500 / 10 - 1))
    finally:
        await conn.close()


async def test_interactions_between_snapshots_are_interpolated_over_the_high_water_mark(stack):
    """C(t), a post's interactions at t: the high-water marks (each counter's running max, summed)
    interpolated linearly between its snapshot at or before t and its first after t. Shown with
    RATIO 0 and MIN_GAIN 0 (every key is written):
    * #dip: 1,000 at T - 9 h (its first snapshot), 400 at T - 3 h (a bad scrape: the mark stays
      1,000), 2,200 at T + 3 h (a run for a past T reads it). C(T - 6 h) = 1,000;
      C(T) = 1,000 + (2,200 - 1,000) x 3 h / 6 h = 1,600: recent 600; baseline 1,000 - 1,000 = 0
      (before its first snapshot C is its first value) -> 'new'. Before: 0 (the bad scrape gained 0
      in (T - 6 h, T]).
    * #gap: 0 at T - 8 days, 2,160 at T + 1 day, nothing between (216 h: 10 an hour): every 6-hour
      window gains 60: recent 60, baseline 7 x 60 = 420 -> 'rising', 100 x (10 / 10 - 1) = 0 %.
      Before: no row (no snapshot in (T - 7 days - 6 h, T])."""
    conn = await connect(stack.dsn)
    try:
        await _post(conn, ["#dip"], T - timedelta(days=1),
                    [(T - timedelta(hours=9), 1000), (T - timedelta(hours=3), 400), (T + timedelta(hours=3), 2200)])
        await _post(conn, ["#gap"], T - timedelta(days=9), [(T - timedelta(days=8), 0), (T + timedelta(days=1), 2160)])
        assert await detect_trends(conn, T, ratio=0.0, min_gain=0) == 2
        got = {k: (v["trend_data"]["status"], v["trend_data"]["posts"], v["trend_data"]["recent_gain"],
                   v["trend_data"]["baseline_gain"], v["engagement_impact"]) for k, v in (await _detected_rows(conn)).items()}
        assert got == {"#dip": ("new", 1, 600, 0, None), "#gap": ("rising", 1, 60, 420, 0.0)}
    finally:
        await conn.close()


async def test_a_run_bridging_two_episodes_merges_them_and_a_key_counts_once(stack):
    """A detected key has a row per episode (issue 25 review 2 R4): a window that overlaps or
    touches an episode extends it, after a gap a new row starts. One #wave post gains 500/h from
    T - 12 h to T (C: 0 at T - 12 h, 6,000 at T, linear), nothing before (baseline 0: 'new').
    Run at T - 6 h: window (T - 12 h, T - 6 h] gains 3,000 -> episode [T - 12 h, T - 6 h].
    Run at T + 1 h: (T - 5 h, T + 1 h] gains 6,000 - 3,500 = 2,500 -> starts after the first ended:
    a second row [T - 5 h, T + 1 h]. The `trends` report over the day counts #wave once (its latest
    episode). Run at T (a late run): (T - 6 h, T] gains 3,000 and touches both (T - 6 h >= T - 6 h,
    T - 5 h <= T): one row [T - 12 h, T + 1 h] with the latest run's (T + 1 h) data, recent 2,500."""
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _post(conn, ["#wave"], T - timedelta(days=9),
                    [(T - timedelta(days=8), 0), (T - timedelta(hours=12), 0), (T, 6000)], ws=w)

        async def rows() -> list[tuple]:
            return [(r["start_time"], r["end_time"], r["trend_data"]["recent_gain"]) for r in await conn.fetch(
                "SELECT * FROM trend_analysis WHERE workspace_id = $1 ORDER BY start_time", w)]

        assert await detect_trends(conn, T - timedelta(hours=6)) == 1
        assert await detect_trends(conn, T + timedelta(hours=1)) == 1
        two = [(T - timedelta(hours=12), T - timedelta(hours=6), 3000), (T - timedelta(hours=5), T + timedelta(hours=1), 2500)]
        assert await rows() == two
        assert await detect_trends(conn, T + timedelta(hours=1)) == 1 and await rows() == two  # a re-run: the same
        q = ReportQuery(source="trends", metrics=["trends", "recent_gain"], period={"start": "2026-12-01", "end": "2026-12-02"})
        # a row per episode counted: (2, 3,000 + 2,500)
        assert (await fetch(conn, w, q, *q.resolve(T + timedelta(days=1))))[1] == [(1, 2500)]
        assert await detect_trends(conn, T) == 1
        assert await rows() == [(T - timedelta(hours=12), T + timedelta(hours=1), 2500)]
    finally:
        await conn.close()


async def test_the_view_counts_a_trend_once_by_its_latest_episode(stack):
    """trend_analysis_view (seed 001, 0035, 0048): #a trended 20 days ago (impact 10) and again 2
    days ago (impact 30), #b 3 days ago (impact 50): 2 trends, (30 + 50) / 2 = 40 (a row per
    episode counted: 3 trends averaging (10 + 30 + 50) / 3 = 30)."""
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        for key, days, impact in (("#a", 20, 10.0), ("#a", 2, 30.0), ("#b", 3, 50.0)):
            await conn.execute("""INSERT INTO trend_analysis (workspace_id, platform, trend_type, trend_key,
                engagement_impact, start_time, end_time, source, created_at, last_event_at)
                VALUES ($1, 'tiktok', 'hashtag', $2, $3, now() - make_interval(days => $4, hours => 6),
                        now() - make_interval(days => $4), 'detected', now(), now())""", w, key, impact, days)
        view = await conn.fetch("SELECT trend_count, avg_impact FROM trend_analysis_view WHERE workspace_id = $1", w)
        assert [(r["trend_count"], r["avg_impact"]) for r in view] == [(2, pytest.approx(40.0))]
    finally:
        await conn.close()
