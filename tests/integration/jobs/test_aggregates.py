"""The daily and weekly aggregates (materialized views analytics_aggregated_daily/_weekly, migration
0030) on crafted snapshots (real PostgreSQL), refreshed by the refresh_materialized_views job as the
worker: engagement gained per UTC day / week (sums of content_gains), not sums of cumulative
snapshots (issue #25 item 3). The fixtures lie in last week (Monday to Wednesday), inside the views'
90- and 365-day windows."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

TODAY = datetime.now(UTC).date()
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 7)  # last week's


def day(n: int) -> date:
    """Day n of the fixture: day 1 is last week's Monday."""
    return MONDAY + timedelta(days=n - 1)


def noon(d: date) -> datetime:
    return datetime.combine(d, time(12), UTC)


async def _insert(conn, ws: uuid.UUID, platform: str, rows: list[tuple]) -> None:
    """rows: (post, time, views, likes, shares)."""
    await conn.executemany(
        """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes, shares,
               recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [(uuid.uuid4(), ws, post, platform, views, likes, shares, at) for post, at, views, likes, shares in rows])


async def _refresh(stack) -> None:
    r = await JobRunner(stack.worker_dsn or stack.dsn, JOBS).run("refresh_materialized_views")
    assert (r.status, r.rows) == ("succeeded", 5), r.error


_COLS = "content_count, views, likes, shares, comments, saves, engagement_rate"


async def test_the_daily_and_weekly_aggregates_sum_what_the_posts_gained(stack):
    """The issue's fixture: post A scraped on days 1 and 3 (1,000, 1,500 views), post B daily (200,
    300, 400); likes are views / 10. Gained (a post's first snapshot gains 0): day 1 0 (both first
    snapshots; no views gained, so the rate is NULL), day 2 300 - 200 = 100 (B), day 3
    (1,500 - 1,000) + (400 - 300) = 500 + 100 = 600; the week 0 + 100 + 600 = 700. Before the fix
    (each post's latest cumulative snapshot of the day summed): 1,000 + 200 = 1,200 / 300 /
    1,500 + 400 = 1,900 a day, 1,900 the week."""
    ws, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _insert(conn, ws, "tiktok", [(post, noon(day(d)), views, views // 10, 0) for post, d, views in (
            (a, 1, 1000), (a, 3, 1500), (b, 1, 200), (b, 2, 300), (b, 3, 400))])
        await _refresh(stack)
        daily = [tuple(r) for r in await conn.fetch(
            f"SELECT day, {_COLS} FROM analytics_aggregated_daily WHERE workspace_id = $1 AND platform = 'tiktok' "
            "ORDER BY day", ws)]
        assert daily == [(day(1), 2, 0, 0, 0, 0, 0, None),
                         (day(2), 1, 100, 10, 0, 0, 0, 0.1),
                         (day(3), 2, 500 + 100, 50 + 10, 0, 0, 0, 0.1)]
        weekly = [tuple(r) for r in await conn.fetch(
            f"SELECT week, {_COLS} FROM analytics_aggregated_weekly WHERE workspace_id = $1", ws)]
        assert weekly == [(MONDAY, 2, 0 + 100 + 600, 0 + 10 + 60, 0, 0, 0, 0.1)]
    finally:
        await conn.close()


async def test_a_previous_snapshot_before_the_window_and_a_decrease(stack):
    """Post C on instagram: a snapshot 100 days before day 1 (1,000 views, 100 likes: outside the
    daily view's 90 days, inside the weekly's 365), then day 1 1,300 views, 130 likes, 5 shares
    (gained from the old one: 300 views, 30 + 5 = 35 interactions), day 2 1,250 views (a bad scrape:
    a decrease gains 0) and 140 likes (+10: no views gained, so the rate is NULL), day 3 1,400 views
    (1,400 - 1,300 = 100, over the high-water mark: the recovery from the bad scrape is not new),
    140 likes (0): rate 0 / 100 = 0.0.
    Week: 300 + 0 + 100 = 400 views, 40 likes, 5 shares, 45 / 400 = 0.1125; the old snapshot's week:
    1 post, its first snapshot, 0 gained. Before the fix: 1,300 / 1,250 / 1,400 a day, 1,400 the week,
    1,000 in the old week."""
    ws, c = uuid.uuid4(), uuid.uuid4()
    old = noon(day(1)) - timedelta(days=100)
    conn = await connect(stack.dsn)
    try:
        await _insert(conn, ws, "instagram", [(c, old, 1000, 100, 0), (c, noon(day(1)), 1300, 130, 5),
                                              (c, noon(day(2)), 1250, 140, 5), (c, noon(day(3)), 1400, 140, 5)])
        await _refresh(stack)
        daily = [tuple(r) for r in await conn.fetch(
            f"SELECT day, {_COLS} FROM analytics_aggregated_daily WHERE workspace_id = $1 ORDER BY day", ws)]
        assert daily == [(day(1), 1, 300, 30, 5, 0, 0, 35 / 300),
                         (day(2), 1, 0, 10, 0, 0, 0, None),
                         (day(3), 1, 100, 0, 0, 0, 0, 0.0)]
        weekly = [tuple(r) for r in await conn.fetch(
            f"SELECT week, {_COLS} FROM analytics_aggregated_weekly WHERE workspace_id = $1 ORDER BY week", ws)]
        old_week = old.date() - timedelta(days=old.weekday())
        assert weekly == [(old_week, 1, 0, 0, 0, 0, 0, None), (MONDAY, 1, 400, 40, 5, 0, 0, 45 / 400)]
    finally:
        await conn.close()


async def test_the_rate_counts_interactions_only_of_posts_that_report_views(stack):
    """Review 2 R5 (migration 0047), the engagement report's fixture in both views, on one platform:
    post T gains +1,000 views and +100 likes on day 2 (0 on day 1); post I reports no views (0
    throughout) and gains +1,000 likes on day 2; post V had 500 views on day 1 and 0 on day 2 (a bad
    scrape: it still reports views) with +50 likes. The rate's interactions are those of snapshots
    whose post has shown views by then (T, V): (100 + 50) / 1,000 = 0.15, not (100 + 1,000 + 50) /
    1,000 = 1.15; likes still sum every post, 1,150."""
    ws, t, i, v = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _insert(conn, ws, "mixed", [(t, noon(day(1)), 0, 0, 0), (t, noon(day(2)), 1000, 100, 0),
                                          (i, noon(day(1)), 0, 0, 0), (i, noon(day(2)), 0, 1000, 0),
                                          (v, noon(day(1)), 500, 0, 0), (v, noon(day(2)), 0, 50, 0)])
        await _refresh(stack)
        daily = [tuple(r) for r in await conn.fetch(
            f"SELECT day, {_COLS} FROM analytics_aggregated_daily WHERE workspace_id = $1 ORDER BY day", ws)]
        assert daily == [(day(1), 3, 0, 0, 0, 0, 0, None),
                         (day(2), 3, 1000, 100 + 1000 + 50, 0, 0, 0, (100 + 50) / 1000)]
        weekly = [tuple(r) for r in await conn.fetch(
            f"SELECT week, {_COLS} FROM analytics_aggregated_weekly WHERE workspace_id = $1", ws)]
        assert weekly == [(MONDAY, 3, 1000, 1150, 0, 0, 0, (100 + 50) / 1000)]
    finally:
        await conn.close()


async def test_the_recreated_views_keep_their_index_mine_views_and_grants(stack):
    """Migration 0030 dropped and created both views, 0038 platform_performance_summary: each has its
    unique index (REFRESH ... CONCURRENTLY needs one), a <name>_mine security_barrier view, and the
    grants 0013 and 0022 gave (those of daily_learning_metrics, which neither touched)."""
    conn = await connect(stack.dsn)
    try:

        async def acl(name: str) -> set[str]:
            return set(await conn.fetchval("SELECT relacl::text[] FROM pg_class WHERE relname = $1", name))

        async def options(name: str) -> list[str]:
            return await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = $1", name)

        for mv in ("analytics_aggregated_daily", "analytics_aggregated_weekly", "platform_performance_summary"):
            assert await acl(mv) == await acl("daily_learning_metrics")
            assert await acl(f"{mv}_mine") == await acl("daily_learning_metrics_mine")
            assert await options(f"{mv}_mine") == await options("daily_learning_metrics_mine")
            assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisunique",
                                       mv) == 1
            assert "member_workspaces" in await conn.fetchval("SELECT pg_get_viewdef($1::regclass)", f"{mv}_mine")
    finally:
        await conn.close()
