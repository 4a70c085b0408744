"""Migrations, partition manager and the idempotent writer against a real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.migrate import MIGRATIONS_DIR, MigrationError, migrate, pending
from db.partitions import ensure_partition, ensure_partitions, partition_counts, period_of
from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS, SYSTEM_PERFORMANCE_METRICS, TABLES
from db.writer import write_rows
from schemas.decode import decode_message
from streams.devkit.synthetic import Generator
from tests.support import become_member

pytestmark = pytest.mark.services


def _rows(kind: str, n: int, now: datetime | None = None, seed: int = 1) -> list[tuple]:
    g = Generator(seed, now=now)
    w = g.workload(kind, n, array_size=100, invalid_share=0, duplicate_share=0)
    return [TABLES[kind].row(e) for _, v in w.messages for e in decode_message(v, kind).events]


async def test_migrations_are_recorded_and_idempotent(stack):
    conn = await connect(stack.dsn)
    try:
        assert await migrate(conn) == []  # the fixture applied them already
        assert await pending(conn) == []
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(1, "ingest_tables"), (2, "ingested_at_clock"), (3, "alerts"),
                                                                (4, "rollups"), (5, "rollup_revisions"),
                                                                (6, "domain"), (7, "seed_views"), (8, "job_tables"),
                                                                (9, "jobs"), (10, "analytics"), (11, "style_correlation"),
                                                                (12, "engagement_by_day"), (13, "tenancy"), (14, "retention"),
                                                                (15, "audit"), (16, "alert_rule_names"),
                                                                (17, "alert_channels"), (18, "unrouted_events"),
                                                                (19, "config_checks"), (20, "alert_state"),
                                                                (21, "alert_delivery_backlog"), (22, "roles"), (23, "access"),
                                                                (24, "channel_urls_masked"), (25, "ingest_keys_per_workspace"),
                                                                (26, "member_writes"), (27, "partition_bounds"),
                                                                (28, "content_gains"), (30, "aggregates_gained"),
                                                                (31, "own_account_rates"), (32, "accuracy_and_improvements"),
                                                                (33, "posting_times_local"), (34, "experiment_significance"),
                                                                (35, "trend_view_active"), (36, "interactions_gained_not_public"),
                                                                (38, "robust_values"), (40, "content_gains_between"),
                                                                (41, "metric_direction"), (42, "indexes_by_query"),
                                                                (43, "routing_costs"), (44, "accuracy_days_changed"),
                                                                (45, "judged_rates"), (47, "rates_of_viewed_posts"),
                                                                (48, "trend_episodes_metric_heads")]
        assert len(rows[0]["checksum"]) == 64
        for spec in TABLES.values():
            kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = $1", spec.name)
            assert kind == "p"  # partitioned
            assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{spec.name}_default")
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(stack, tmp_path):
    edited = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, edited)
    f = edited / "0001_ingest_tables.sql"
    f.write_text(f.read_text() + "\n-- an innocent-looking edit\n")
    conn = await connect(stack.dsn)
    try:
        with pytest.raises(MigrationError, match="0001_ingest_tables.sql was edited after it was applied"):
            await migrate(conn, edited)
        # a new migration next to the unedited ones is applied, once
        shutil.copy(MIGRATIONS_DIR / "0001_ingest_tables.sql", f)
        (edited / "0999_note.sql").write_text("CREATE TABLE migration_probe (x int);")
        assert [m.version for m in await migrate(conn, edited)] == [999]
        assert await migrate(conn, edited) == []
    finally:
        await conn.close()


async def test_writer_is_idempotent_and_counts_duplicates(stack):
    pool = await create_writer_pool(stack.dsn, 1)
    rows = _rows("learning_event", 1000)
    try:
        async with pool.acquire() as conn:
            first = await write_rows(conn, LEARNING_EVENTS, rows)
            again = await write_rows(conn, LEARNING_EVENTS, rows[:300] + _rows("learning_event", 200, seed=2))
            total = await conn.fetchval("SELECT count(*) FROM learning_events")
            staged = await conn.fetchval(f"SELECT count(*) FROM {LEARNING_EVENTS.staging}")
    finally:
        await pool.close()
    assert (first.inserted, first.duplicates) == (1000, 0)
    assert (again.inserted, again.duplicates) == (200, 300)
    assert total == 1200
    assert staged == 0  # staging rows vanish with each commit


async def test_rows_postgres_refuses_are_returned_and_the_rest_lands(stack):
    rows = _rows("learning_event", 64)
    bad = list(rows[17])
    bad[LEARNING_EVENTS.columns.index("processing_time_ms")] = -5  # violates the CHECK
    rows[17] = tuple(bad)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        async with pool.acquire() as conn:
            result = await write_rows(conn, LEARNING_EVENTS, rows)
            total = await conn.fetchval("SELECT count(*) FROM learning_events")
    finally:
        await pool.close()
    assert [pos for pos, _ in result.rejected] == [17]
    assert "processing_time_ms" in result.rejected[0][1] or "check" in result.rejected[0][1].lower()
    assert result.inserted == 63 and total == 63


async def test_partitions_are_made_ahead_and_default_rows_move_in(stack):
    far = datetime(2031, 3, 14, 12, tzinfo=UTC)
    rows = _rows("performance_sample", 250, now=far)
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    try:
        async with pool.acquire() as wconn:
            assert (await write_rows(wconn, SYSTEM_PERFORMANCE_METRICS, rows)).inserted == 250
        parts = dict(await partition_counts(conn, "system_performance_metrics"))
        assert parts["system_performance_metrics_default"] == 250

        created = await ensure_partitions(conn, now=far)
        assert "system_performance_metrics_y2031m03d14" in created
        parts = dict(await partition_counts(conn, "system_performance_metrics"))
        assert parts["system_performance_metrics_default"] == 0
        # the generator spreads samples over the last minute before `far`
        assert parts["system_performance_metrics_y2031m03d14"] == 250
        assert await ensure_partition(conn, SYSTEM_PERFORMANCE_METRICS, period_of(SYSTEM_PERFORMANCE_METRICS, far)) is None

        now = datetime.now(UTC)
        names = {n for n, _ in await partition_counts(conn, "system_performance_metrics")}
        for d in range(-2, 8):
            assert period_of(SYSTEM_PERFORMANCE_METRICS, now + timedelta(days=d)).name in names
        names = {n for n, _ in await partition_counts(conn, "learning_events")}
        assert period_of(LEARNING_EVENTS, now).name in names
        assert period_of(LEARNING_EVENTS, now + timedelta(days=40)).name in names
    finally:
        await conn.close()
        await pool.close()


async def test_row_level_security_isolates_workspaces(stack):
    rows = _rows("learning_event", 300)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        async with pool.acquire() as conn:
            await write_rows(conn, LEARNING_EVENTS, rows)
    finally:
        await pool.close()
    workspace = rows[0][1]
    expected = sum(1 for r in rows if r[1] == workspace)
    conn = await connect(stack.dsn)
    try:
        # as a member of no workspace, then of one: row-level security on current_user (0013)
        tx = conn.transaction()
        await tx.start()
        try:
            await become_member(conn, uuid.uuid4())
            assert await conn.fetchval("SELECT count(*) FROM learning_events") == 0
            await conn.execute(f"SET learnstream.workspace_id = '{workspace}'")  # the old setting: no effect
            assert await conn.fetchval("SELECT count(*) FROM learning_events") == 0
            await conn.execute("RESET ROLE")
            await become_member(conn, workspace)
            assert await conn.fetchval("SELECT count(*) FROM learning_events") == expected
            assert await conn.fetchval(
                "SELECT count(DISTINCT workspace_id) FROM learning_events"
            ) == 1
        finally:
            await tx.rollback()
        # the owner writes and reads every workspace through the service's policy
        assert await conn.fetchval("SELECT count(*) FROM learning_events") == len(rows)
    finally:
        await conn.close()


async def test_under_forced_row_level_security_a_direct_batch_is_copied_into_its_partition(stack):
    from db.partitions import period_of
    from db.writer import WritePolicy

    policy = WritePolicy()
    now = datetime.now(UTC)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        async with pool.acquire() as conn:
            # PostgreSQL refuses COPY FROM into the parent (row-level security applies to the owner) ...
            with pytest.raises(asyncpg.FeatureNotSupportedError, match="row-level security"):
                await conn.copy_records_to_table("learning_events", records=[], columns=LEARNING_EVENTS.columns)
            # ... so one partition's batch goes straight into that partition
            rows = _rows("learning_event", 300, now=now, seed=21)
            here = period_of(LEARNING_EVENTS, min(r[LEARNING_EVENTS.time_index] for r in rows))
            if max(r[LEARNING_EVENTS.time_index] for r in rows) >= here.end:  # the test ran at a month's end
                rows = [r for r in rows if r[LEARNING_EVENTS.time_index] < here.end]
            first = await write_rows(conn, LEARNING_EVENTS, rows, policy)
            assert (first.direct, first.staged, first.inserted) == (1, 0, len(rows))
            assert await conn.fetchval(f"SELECT count(*) FROM {here.name}") == len(rows)
            # a batch spanning two partitions is written staged through the parent
            spanning = _rows("learning_event", 10, now=here.start - timedelta(days=3), seed=22) + \
                _rows("learning_event", 10, now=here.start + timedelta(days=3), seed=23)
            both = await write_rows(conn, LEARNING_EVENTS, spanning, policy)
            assert (both.direct, both.staged, both.inserted) == (0, 1, 20)
            # a partition gone since its name was read (retention dropped it): staged, into DEFAULT
            old = period_of(LEARNING_EVENTS, here.start - timedelta(days=40))
            await ensure_partition(conn, LEARNING_EVENTS, old)
            policy = WritePolicy()  # (a policy reads the names again for an unknown one at most every 10 s)
            late = _rows("learning_event", 5, now=old.start + timedelta(days=2), seed=24)
            assert (await write_rows(conn, LEARNING_EVENTS, late, policy)).direct == 1
            await conn.execute(f"DROP TABLE {old.name}")
            again = _rows("learning_event", 5, now=old.start + timedelta(days=2), seed=25)
            gone = await write_rows(conn, LEARNING_EVENTS, again, policy)
            assert (gone.direct, gone.staged, gone.inserted) == (0, 1, 5)
            assert await conn.fetchval("SELECT count(*) FROM learning_events_default") == 5
            assert await conn.fetchval("SELECT count(*) FROM learning_events") == len(rows) + 20 + 5
            assert policy.optimistic is True
    finally:
        await pool.close()


async def test_direct_copy_falls_back_to_staged_on_a_stored_row_and_dedupes_in_batch(stack):
    from db.writer import STAGED_AFTER_CONFLICT, WritePolicy

    policy = WritePolicy()
    fresh = _rows("learning_event", 400, seed=11)
    more = _rows("learning_event", 100, seed=12)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        async with pool.acquire() as conn:
            first = await write_rows(conn, LEARNING_EVENTS, fresh + fresh[:50], policy)  # 50 repeats in-batch
            assert (first.direct, first.staged, first.conflicts) == (1, 0, 0)
            assert (first.inserted, first.duplicates) == (400, 50)
            # a redelivery: stored rows make the direct COPY fail; staged skips them
            again = await write_rows(conn, LEARNING_EVENTS, fresh[300:] + more, policy)
            assert (again.direct, again.staged, again.conflicts) == (0, 1, 1)
            assert (again.inserted, again.duplicates) == (100, 100)
            # then staged for a while, whatever comes
            after = await write_rows(conn, LEARNING_EVENTS, _rows("learning_event", 10, seed=13), policy)
            assert (after.direct, after.staged) == (0, 1)
            for _ in range(STAGED_AFTER_CONFLICT - 1):
                policy.try_direct(LEARNING_EVENTS.name)
            back = await write_rows(conn, LEARNING_EVENTS, _rows("learning_event", 10, seed=14), policy)
            assert (back.direct, back.staged, back.inserted) == (1, 0, 10)
            assert await conn.fetchval("SELECT count(*) FROM learning_events") == 520
    finally:
        await pool.close()


async def test_a_refused_row_in_a_direct_batch_is_found_by_bisection(stack):
    from db.writer import WritePolicy

    rows = _rows("learning_event", 40, seed=15)
    bad = list(rows[9])
    bad[LEARNING_EVENTS.columns.index("processing_time_ms")] = -1
    rows[9] = tuple(bad)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        async with pool.acquire() as conn:
            result = await write_rows(conn, LEARNING_EVENTS, rows, WritePolicy())
    finally:
        await pool.close()
    assert [p for p, _ in result.rejected] == [9]
    assert result.inserted == 39
