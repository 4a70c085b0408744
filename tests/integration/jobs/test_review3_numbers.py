"""Third fresh-eyes review of issue #25: the fixes of review 2 (e2608eb..d364767), read as a user,
an operator and a hostile tenant would. Each test is one finding, on a real PostgreSQL with
hand-made rows, asserting the hand-computed right answer. Each failed on the code as reviewed (it was
committed xfail strict) and passes with its fix (F1-F8 of the closing note of #25)."""

from __future__ import annotations

import json
import math
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from db.databases import drop_database, dsn_for
from db.migrate import MIGRATIONS_DIR, migrate
from db.pool import connect
from db.reports.query import fetch
from schemas.reports import ReportQuery
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner, parse_period
from tests.support import admin_dsn

pytestmark = pytest.mark.services


async def test_f1_throughput_and_uptime_are_better_when_higher(stack):
    conn = await connect(stack.dsn)
    try:
        names = ["tokens_per_second", "throughput_tokens_per_sec", "uptime_seconds", "mean_time_between_failures"]
        got = {m: await conn.fetchval("SELECT metric_improvement_percentage($1, 100, 200)", m) for m in names}
        # as merged: -100 for all four (head word 'tokens' / last word 'tokens', 'seconds', 'time' are
        # lower-is-better); 0041 had throughput_tokens_per_sec and uptime_seconds right (+100)
        # right: doubling throughput, uptime or MTBF is (200 - 100) / 100 = +100 %
        assert got == {m: 100.0 for m in names}
    finally:
        await conn.close()


@pytest.fixture
async def db_at_0043(services):
    """A database migrated through 0043 only (the code before review 2's fixes); -> (dsn, upgrade)."""
    base = admin_dsn(services)
    name = f"rev3_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = dsn_for(base, name)
    old = Path(f"/tmp/{name}")
    old.mkdir()
    for f in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(f.name[:4]) <= 43:
            shutil.copy(f, old / f.name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, old)
    finally:
        await conn.close()

    async def upgrade() -> None:
        c = await asyncpg.connect(dsn)
        try:
            await migrate(c)
        finally:
            await c.close()

    try:
        yield dsn, upgrade
    finally:
        shutil.rmtree(old, ignore_errors=True)
        await drop_database(base, name)


async def test_f2_upgrade_keeps_a_right_stored_improvement(db_at_0043):
    dsn, upgrade = db_at_0043
    w, t = uuid.uuid4(), datetime(2026, 11, 30, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        # a model_evaluation row stored by 0043-era code: throughput 100 -> 200 tokens/s, +100 % (0041's rule:
        # 'throughput' is higher-is-better, and it wins)
        await conn.execute("""INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type, metric,
            before_metrics, after_metrics, improvement_percentage, source_event_type, recorded_at)
            VALUES ($1, $2, 'model', 'throughput_tokens_per_sec', '{"throughput_tokens_per_sec": 100}',
                    '{"throughput_tokens_per_sec": 200}',
                    metric_improvement_percentage('throughput_tokens_per_sec', 100, 200), 'model_evaluation', $3)""",
                           w, uuid.uuid4(), t)
        before = await conn.fetchval("SELECT improvement_percentage FROM ai_improvement_tracking")
        assert before == 100.0
        await upgrade()
        after = await conn.fetchval("SELECT improvement_percentage FROM ai_improvement_tracking")
        # as merged: 0048 re-signs it to -100 (its new rule calls 'tokens' the head); right: +100 kept
        assert after == 100.0
    finally:
        await conn.close()


async def _sale_two_episodes(conn, w, t1, t2):
    from db.analytics.trends import detect_trends

    cid = uuid.uuid4()
    await conn.execute("""INSERT INTO content (workspace_id, id, platform, hashtags, published_at, first_seen_at,
        last_seen_at, last_event_id) VALUES ($1, $2, 'tiktok', '{#sale}', $3, $3, $3, $4)""",
                       w, cid, t1 - timedelta(days=9), uuid.uuid4())
    # flat, +3,000 likes in the 6 h before t1, flat for a week, +3,000 in the 6 h before t2
    for at, likes in ((t1 - timedelta(days=8), 0), (t1 - timedelta(hours=6), 0), (t1, 3000),
                      (t2 - timedelta(hours=6), 3000), (t2, 6000)):
        await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views,
            likes, recorded_at) VALUES ($1, $2, $3, 'tiktok', 10000, $4, $5)""", uuid.uuid4(), w, cid, likes, at)
    for at in (t1, t1 + timedelta(days=3), t2):
        await detect_trends(conn, at)


async def test_f3_trends_by_week_count_each_weeks_episode(stack):
    w = uuid.uuid4()
    t1 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)   # Tuesday of the week of Monday 2026-11-30
    t2 = t1 + timedelta(days=7)                       # Tuesday of the week of Monday 2026-12-07
    conn = await connect(stack.dsn)
    try:
        await _sale_two_episodes(conn, w, t1, t2)
        episodes = await conn.fetch("SELECT start_time, end_time FROM trend_analysis WHERE workspace_id = $1 "
                                    "ORDER BY start_time", w)
        assert [(e["start_time"], e["end_time"]) for e in episodes] == [
            (t1 - timedelta(hours=6), t1), (t2 - timedelta(hours=6), t2)]
        q = ReportQuery(source="trends", dimensions=["week"], metrics=["trends"],
                        period={"start": "2026-11-30", "end": "2026-12-14"})
        got = (await fetch(conn, w, q, *q.resolve(t2 + timedelta(days=6))))[1]
        # as merged: [(2026-12-07, 1)] -- the DISTINCT ON keeps the key's latest episode in the whole
        # period before grouping, so the week of Nov 30, when #sale trended, shows no trend.
        # right: one trend in each week
        assert [tuple(r) for r in got] == [(datetime(2026, 11, 30).date(), 1), (datetime(2026, 12, 7).date(), 1)]
    finally:
        await conn.close()


async def test_f4_weekly_scraped_competitor_has_a_growth(stack):
    start, end = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, relationship, first_seen_at,
            last_seen_at) VALUES ($1, 'me', 'tiktok', 'own', $2, $2)""", w, start)
        for day, n in enumerate(range(1000, 1080, 10)):  # own: daily at 12:00, start - 12 h .. end - 12 h
            await conn.execute("""INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at,
                follower_count, snapshot_id) VALUES ($1, 'me', 'tiktok', $2, $3, $4)""",
                               w, start - timedelta(hours=12) + timedelta(days=day), n, uuid.uuid4())
        await conn.execute("""INSERT INTO competitor_profiles (workspace_id, id, name, platform, first_seen_at,
            last_seen_at) VALUES ($1, 'r1', 'r1', 'tiktok', $2, $2)""", w, start)
        # the competitor is scraped weekly, Mondays 00:00: exactly at the period's start and end
        for at, n in ((start - timedelta(days=7), 900), (start, 1000), (end, 1100)):
            await conn.execute("""INSERT INTO competitor_metrics (workspace_id, competitor_id, recorded_date,
                recorded_at, followers, snapshot_id) VALUES ($1, 'r1', $2, $3, $4, $5)""",
                               w, at.date(), at, n, uuid.uuid4())
        r = await JobRunner(stack.dsn, JOBS).run("benchmarks", period=parse_period(f"{start.isoformat()}/{end.isoformat()}"))
        assert r.status == "succeeded", r
        g = await conn.fetchrow("SELECT user_value, competitor_count, competitor_average FROM benchmark_comparisons "
                                "WHERE workspace_id = $1 AND metric = 'follower_growth'", w)
        # own: (1070 - 1000) / 1000 = +7 % (start - 12 h .. end - 12 h, 7 days)
        # as merged: (7.0, 0, NULL) -- r1 is left out: its count at the end must be recorded before END and
        # within a day of it, and its only one in [start, end) is the start itself (first_at = last_at); any
        # account scraped less often than daily (and not in the day before an edge) never has a growth
        # right: r1 grew (1100 - 1000) / 1000 = +10 % over exactly the period (snapshots at both edges)
        assert g is not None and (g["user_value"], g["competitor_count"], g["competitor_average"]) == (
            pytest.approx(7.0), 1, pytest.approx(10.0))
    finally:
        await conn.close()


async def test_f5_a_reported_trend_is_not_active_between_two_reports(stack):
    from db.domain.insights import TREND_DETECTED

    w = uuid.uuid4()
    t1 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    t2 = t1 + timedelta(days=7)
    conn = await connect(stack.dsn)
    try:
        # a producer reports #sale trending Dec 1 06:00-12:00, and again Dec 8 06:00-12:00
        for t in (t1, t2):
            await conn.execute(TREND_DETECTED[0], [{
                "workspace_id": str(w), "ts": t.isoformat(), "platform": "tiktok", "trend_type": "hashtag",
                "trend_key": "#sale", "trend_data": {"posts": 3}, "engagement_impact": 50.0,
                "start_time": (t - timedelta(hours=6)).isoformat(), "end_time": t.isoformat()}])
        q = ReportQuery(source="trends", metrics=["trends"], period={"start": "2026-12-03", "end": "2026-12-06"})
        active = (await fetch(conn, w, q, *q.resolve(t2)))[1]
        # as merged: [(1,)] -- the reported row runs Dec 1 06:00 .. Dec 8 12:00 (least start, greatest end),
        # exactly R4's example; right: no trend was reported active on Dec 3-5
        assert active == [(0,)]
    finally:
        await conn.close()


async def test_f6_equal_daily_growth_is_not_ranked_above(stack):
    start, end = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    w, day = uuid.uuid4(), timedelta(days=1)
    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, relationship, first_seen_at,
            last_seen_at) VALUES ($1, 'me', 'tiktok', 'own', $2, $2)""", w, start)
        await conn.execute("""INSERT INTO competitor_profiles (workspace_id, id, name, platform, first_seen_at,
            last_seen_at) VALUES ($1, 'r1', 'r1', 'tiktok', $2, $2)""", w, start)
        # both gain 10 followers a day from 1000. me: snapshots at start - 1 day and end - 1 s (within the
        # 1-day tolerance: 8 days, +80); r1: at start and end - 1 day (6 days, +60)
        for at, n in ((start - day, 1000), (end - timedelta(seconds=1), 1080)):
            await conn.execute("""INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at,
                follower_count, snapshot_id) VALUES ($1, 'me', 'tiktok', $2, $3, $4)""", w, at, n, uuid.uuid4())
        for at, n in ((start, 1010), (end - day, 1070)):
            await conn.execute("""INSERT INTO competitor_metrics (workspace_id, competitor_id, recorded_date,
                recorded_at, followers, snapshot_id) VALUES ($1, 'r1', $2, $3, $4, $5)""",
                               w, at.date(), at, n, uuid.uuid4())
        r = await JobRunner(stack.dsn, JOBS).run("benchmarks", period=parse_period(f"{start.isoformat()}/{end.isoformat()}"))
        assert r.status == "succeeded", r
        g = await conn.fetchrow("SELECT user_value, competitor_average, percentile, ratio FROM benchmark_comparisons "
                                "WHERE workspace_id = $1 AND metric = 'follower_growth'", w)
        # as merged: me +8.0 % (1000 -> 1080) against r1 +5.94 % (1010 -> 1070): percentile 100, ratio 1.347,
        # though both grew 10 a day. Right: growths over the same span, e.g. each scaled to the period's 7 days
        # (me 8 % x 7/8 = 7.0 %, r1 5.94 % x 7/6 = 6.93 %: ratio 1.01) or counts interpolated at the edges
        assert g["ratio"] == pytest.approx(1.0, abs=0.02)
    finally:
        await conn.close()


async def test_f7_imported_history_gets_posting_times(stack):
    w, until = uuid.uuid4(), datetime(2026, 12, 7, tzinfo=UTC)
    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, timezone, first_seen_at, last_seen_at)
            VALUES ($1, 'me', 'tiktok', 'UTC', $2, $2)""", w, until)
        # a new tenant imports 80 days of history today: posts on Mondays 09:00 (100 likes per 1,000 views)
        # and Tuesdays 18:00 (50 per 1,000), each with the one snapshot the import took an hour ago
        posts = 0
        for k in range(2, 82):
            pub = until - timedelta(days=k)
            if pub.weekday() not in (0, 1):
                continue
            pub = pub.replace(hour=9 if pub.weekday() == 0 else 18)
            cid = uuid.uuid4()
            await conn.execute("""INSERT INTO content (workspace_id, id, platform, connector_id, published_at,
                first_seen_at, last_seen_at, last_event_id) VALUES ($1, $2, 'tiktok', 'me', $3, $4, $4, $5)""",
                               w, cid, pub, until - timedelta(hours=1), uuid.uuid4())
            await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views,
                likes, recorded_at) VALUES ($1, $2, $3, 'tiktok', 1000, $4, $5)""",
                               uuid.uuid4(), w, cid, 100 if pub.weekday() == 0 else 50, until - timedelta(hours=1))
            posts += 1
        assert posts == 22  # 11 Mondays, 11 Tuesdays
        r = await JobRunner(stack.dsn, JOBS).run("optimal_posting_times", period=(until - timedelta(days=7), until))
        assert r.status == "succeeded", r
        cells = await conn.fetch("""SELECT day_of_week, hour_of_day, sample_size, metric, avg_engagement, confidence,
            optimization_score FROM optimal_posting_times WHERE workspace_id = $1 ORDER BY day_of_week, hour_of_day""", w)
        # as merged: no row at all, nothing logged or counted (r.rows 0): no post has a snapshot at age 24-48 h.
        # Before R7: two cells of 11 posts, Monday 09:00 first. Now: no post is measured at 24 h, so the account
        # falls back to the lifetime basis: posts at least 7 days old at their latest snapshot (here the import's,
        # until - 1 h), measured on it. A post k days before until at 09:00 / 18:00 is k days - 10 h / - 19 h old
        # then: k >= 8. Mondays k = 7, 14, ..., 77 (11) lose k = 7; Tuesdays k = 6, 13, ..., 76 (11) lose k = 6:
        # 10 posts each. Rates 100 / 1,000 = 0.1 and 50 / 1,000 = 0.05; account mean 0.075, sd = sqrt(20 * 0.025^2
        # / 19); each cell shrunk with 10 prior posts: Monday (10 * 0.1 + 10 * 0.075) / 20 = 0.0875, Tuesday
        # 0.0625, both minus 1.645 * sd / sqrt(20); score 100 for Monday, Tuesday lower / Monday's lower.
        sd = math.sqrt(20 * 0.025 ** 2 / 19)
        mon, tue = 0.0875 - 1.645 * sd / math.sqrt(20), 0.0625 - 1.645 * sd / math.sqrt(20)
        assert [(c["day_of_week"], c["hour_of_day"], c["sample_size"], c["metric"]) for c in cells] == [
            (1, 9, 10, "engagement_rate (lifetime, posts >= 7 days)"),
            (2, 18, 10, "engagement_rate (lifetime, posts >= 7 days)")]
        assert [c["avg_engagement"] for c in cells] == [pytest.approx(0.1), pytest.approx(0.05)]
        assert [c["confidence"] for c in cells] == [pytest.approx(0.5), pytest.approx(0.5)]
        assert [c["optimization_score"] for c in cells] == [pytest.approx(100), pytest.approx(100 * tue / mon)]
        # the readers show the basis: the CLI's measure, the report source's measure, the Grafana panel's
        from db.analytics import read
        from tests.integration.analytics.test_grafana import DASHBOARDS, _expand

        lifetime = "engagement_rate (lifetime, posts >= 7 days)"
        t = await read.posting_times(conn, w)
        assert [(r[t.columns.index("day")], r[t.columns.index("measure")]) for r in t.rows] == [
            ("Mon", lifetime), ("Tue", lifetime)]
        q = ReportQuery(source="posting_times", metrics=["cells", "posts"], dimensions=["measure"],
                        period={"start": "2026-11-30", "end": "2026-12-08"})
        assert (await fetch(conn, w, q, *q.resolve(until)))[1] == [(lifetime, 2, 20)]
        panel = next(t["rawSql"] for d in DASHBOARDS for p in json.loads(d.read_text())["panels"]
                     for t in p.get("targets", []) if "optimal_posting_times" in t.get("rawSql", ""))
        assert [(r["day"], r["measure"]) for r in await conn.fetch(_expand(panel, str(w)))] == [
            ("Mon", lifetime), ("Tue", lifetime)]
    finally:
        await conn.close()
