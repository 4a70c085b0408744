"""Plain tables are archived in bounded batches (one short transaction each) and analyzed after a
large change; a table without DEFAULT is detached CONCURRENTLY, and a detach an interrupted
CONCURRENTLY left pending is finalized."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.partitions import ensure_partition, period_of
from db.pool import connect
from db.rollups import ROLLUP_TABLES
from streams.config import load_settings
from streams.maintenance.runner import run_maintenance
from tests.integration.maintenance.helpers import WS, count, exists, t

pytestmark = pytest.mark.services


async def _notifications(conn, at: datetime, n: int) -> None:
    await conn.execute(
        """INSERT INTO alert_notifications (alert_id, workspace_id, fingerprint, status, severity, threshold_value,
               alert_message, triggered_at, sent_at)
           SELECT gen_random_uuid(), $1, 'fp' || g, 'active', 'warning', 1.0, 'm', $2::timestamptz,
                  $2::timestamptz + make_interval(secs => g)
           FROM generate_series(1, $3) g""", WS, at, n)


async def test_a_plain_table_is_archived_in_batches_then_analyzed(stack):
    # as the workers' login (it owns nothing: the ANALYZE goes through migration 0022's ls_analyze)
    owner = await connect(stack.dsn)
    try:
        await owner.execute("UPDATE data_retention_policies SET batch_size = 10 WHERE table_name = 'alert_notifications'")
    finally:
        await owner.close()
    conn = await connect(stack.worker_dsn)
    try:
        await _notifications(conn, t(2020, 1, 1), 25)
        await _notifications(conn, datetime.now(UTC) - timedelta(days=1), 5)
        analyzed_before = await conn.fetchval(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'alert_notifications'::regclass")
        settings = load_settings(maintenance_analyze_min_rows=20)
        report = await run_maintenance(conn, datetime.now(UTC), only="alert_notifications", settings=settings)
        assert report.status == "succeeded"
        assert [(a.action, a.object, a.rows, a.batches, a.status) for a in report.actions] == [
            ("archive_rows", "alert_notifications", 25, 3, "done"),  # ceil(25 / 10) batches
            ("analyze", "alert_notifications", None, None, "done")]
        assert await count(conn, "alert_notifications") == 5
        assert await count(conn, "archive.alert_notifications") == 25
        assert await conn.fetchval("SELECT min(sent_at) FROM archive.alert_notifications") == t(2020, 1, 1, 0, 0, 1)
        assert await conn.fetchval("SELECT count(*) FROM archive.alert_notifications WHERE archived_at IS NULL") == 0
        # ANALYZE ran: the planner's row count is the table's, and the statistics count it
        assert await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'alert_notifications'::regclass") == 5
        deadline = time.monotonic() + 10
        while True:
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            analyzed = await conn.fetchval(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'alert_notifications'::regclass")
            if analyzed == analyzed_before + 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert analyzed == analyzed_before + 1
        run = await conn.fetchrow("SELECT rows_archived, status FROM maintenance_runs WHERE id = $1", report.run_id)
        assert tuple(run) == (25, "succeeded")

        # below analyze_min_rows: no ANALYZE; a date column (engagement_by_time.day) and generated columns
        await conn.execute(
            """INSERT INTO engagement_by_time (workspace_id, platform, day, day_of_week, hour_of_day, minutes,
                   views_gained, interactions_gained)
               SELECT $1, 'tiktok', d, extract(dow FROM d), 5, 10, 100, 7
               FROM unnest(ARRAY['2020-01-01', '2020-01-02', '2020-01-03', current_date]::date[]) d""", WS)
        report = await run_maintenance(conn, datetime.now(UTC), only="engagement_by_time", settings=settings)
        assert [(a.action, a.object, a.rows, a.batches) for a in report.actions] == [
            ("archive_rows", "engagement_by_time", 3, 1)]
        assert await count(conn, "engagement_by_time") == 1
        rows = await conn.fetch("SELECT day, engagement_rate, engagement_velocity FROM archive.engagement_by_time ORDER BY day")
        assert [(r["day"].isoformat(), r["engagement_rate"], r["engagement_velocity"]) for r in rows] == [
            ("2020-01-01", 0.07, 10.0), ("2020-01-02", 0.07, 10.0), ("2020-01-03", 0.07, 10.0)]
    finally:
        await conn.close()


async def test_without_default_detach_is_concurrent_and_a_pending_detach_is_finalized(stack):
    spec = ROLLUP_TABLES["performance_sample"].spec  # performance_rollups, daily
    conn = await connect(stack.dsn)
    other = await connect(stack.dsn)
    try:
        names = []
        for day in (1, 2, 3):
            period = period_of(spec, t(2020, 1, day))
            await ensure_partition(conn, spec, period)
            names.append(period.name)
        await conn.execute("DROP TABLE performance_rollups_default")  # empty: a table without DEFAULT
        # an interrupted DETACH ... CONCURRENTLY: its wait for an older snapshot is cancelled
        reader = other.transaction(isolation="repeatable_read")
        await reader.start()
        await other.fetchval("SELECT count(*) FROM performance_rollups")
        await conn.execute("SET statement_timeout = '500ms'")
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.execute(f"ALTER TABLE performance_rollups DETACH PARTITION {names[0]} CONCURRENTLY")
        await conn.execute("RESET statement_timeout")
        await reader.commit()
        assert await conn.fetchval(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = $1::regclass", names[0]) is True

        report = await run_maintenance(conn, datetime.now(UTC), only="performance_rollups")
        assert report.status == "succeeded"
        assert [(a.action, a.object, a.status, a.detail) for a in report.actions] == [
            ("finalize_detach", names[0], "done", None),
            ("drop_partition", names[0], "done", None),
            ("detach_partition", names[1], "done", "CONCURRENTLY"),
            ("drop_partition", names[1], "done", None),
            ("detach_partition", names[2], "done", "CONCURRENTLY"),
            ("drop_partition", names[2], "done", None)]
        assert not any([await exists(conn, n) for n in names])
    finally:
        await other.close()
        await conn.close()
