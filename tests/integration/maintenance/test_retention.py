"""Retention on real PostgreSQL: data spanning several months, a dry run that changes nothing and
says exactly what a run does, a run that does it (expired partitions detached and dropped or archived,
the straddling partition and DEFAULT kept, DEFAULT's expired rows removed), a second run that does
nothing; a policy for an unknown table; the maintenance job through the job runner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from db import retention
from db.partitions import HORIZON, PARTITIONED, periods_around
from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner
from streams.maintenance.runner import run_maintenance
from tests.integration.maintenance.helpers import count, exists, learning_events, several_months, t

pytestmark = pytest.mark.services

AS_OF = t(2024, 7, 15)


def _made_ahead(as_of: datetime) -> set[str]:
    return {p.name for s in PARTITIONED for p in periods_around(s, as_of, *HORIZON[s.period])}


def _work(report) -> list[tuple]:
    """Every action but the partitions made ahead: (table, action, object, rows, batches, status)."""
    return [(a.table, a.action, a.object, a.rows, a.batches, a.status) for a in report.actions
            if a.action != "create_partition"]


async def _snapshot(conn) -> dict[str, int]:
    rels = ["learning_events", "learning_events_default", "content_performance_metrics",
            "content_performance_metrics_default", "archive.content_performance_metrics",
            "archive.content_performance_metrics_default", "archived_performance_metrics"]
    return {r: await count(conn, r) for r in rels}


async def test_a_dry_run_then_a_run_on_data_spanning_several_months(stack):
    # as the workers' login, which owns nothing (issue #24): every DDL here goes through migration 0022's functions
    conn = await connect(stack.worker_dsn)
    try:
        await several_months(conn)
        before = await _snapshot(conn)
        assert before == {
            "learning_events": 55, "learning_events_default": 5, "content_performance_metrics": 23,
            "content_performance_metrics_default": 3, "archive.content_performance_metrics": 0,
            "archive.content_performance_metrics_default": 0, "archived_performance_metrics": 0}

        dry = await run_maintenance(conn, AS_OF, dry_run=True)
        assert dry.status == "succeeded"
        planned = [
            ("content_performance_metrics", "detach_partition", "content_performance_metrics_y2023m10", 4, None, "planned"),
            ("content_performance_metrics", "archive_partition", "content_performance_metrics_y2023m10", 4, None, "planned"),
            ("content_performance_metrics", "detach_partition", "content_performance_metrics_y2023m11", 4, None, "planned"),
            ("content_performance_metrics", "archive_partition", "content_performance_metrics_y2023m11", 4, None, "planned"),
            ("content_performance_metrics", "detach_partition", "content_performance_metrics_y2023m12", 4, None, "planned"),
            ("content_performance_metrics", "archive_partition", "content_performance_metrics_y2023m12", 4, None, "planned"),
            ("content_performance_metrics", "archive_rows", "content_performance_metrics_default", 2, 1, "planned"),
            ("learning_events", "detach_partition", "learning_events_y2022m04", 10, None, "planned"),
            ("learning_events", "drop_partition", "learning_events_y2022m04", 10, None, "planned"),
            ("learning_events", "detach_partition", "learning_events_y2022m05", 10, None, "planned"),
            ("learning_events", "drop_partition", "learning_events_y2022m05", 10, None, "planned"),
            ("learning_events", "detach_partition", "learning_events_y2022m06", 10, None, "planned"),
            ("learning_events", "drop_partition", "learning_events_y2022m06", 10, None, "planned"),
            ("learning_events", "delete_rows", "learning_events_default", 3, 1, "planned"),
        ]
        assert _work(dry) == planned
        ahead = _made_ahead(AS_OF)
        assert len(ahead) == 48  # 4 monthly x 2 tables + 10 daily x 4 tables
        assert {a.object for a in dry.actions if a.action == "create_partition"} == ahead
        assert all(a.status == "planned" for a in dry.actions)
        # nothing changed
        assert await _snapshot(conn) == before
        assert not any([await exists(conn, name) for name in ahead])
        assert await conn.fetchval("SELECT count(*) FROM data_retention_policies WHERE last_cleanup IS NOT NULL") == 0

        real = await run_maintenance(conn, AS_OF)
        assert real.status == "succeeded"
        done = [(tb, act, obj, rows, batches, "done") for tb, act, obj, rows, batches, _ in planned]
        assert _work(real) == done
        assert {a.object for a in real.actions if a.action == "create_partition"} == ahead
        detaches = [a for a in real.actions if a.action == "detach_partition"]
        assert [a.attempts for a in detaches] == [1] * 6
        assert {a.detail for a in detaches} == {"lock_timeout 100 ms"}
        after = await _snapshot(conn)
        assert after == {
            "learning_events": 55 - 30 - 3, "learning_events_default": 2,
            "content_performance_metrics": 23 - 12 - 2, "content_performance_metrics_default": 1,
            "archive.content_performance_metrics": 14, "archive.content_performance_metrics_default": 2,
            "archived_performance_metrics": 14}
        # expired partitions gone, the straddling one and DEFAULT kept, archived ones attached to the archive
        for name in ("learning_events_y2022m04", "learning_events_y2022m05", "learning_events_y2022m06"):
            assert not await exists(conn, name)
        for name in ("learning_events_y2022m07", "learning_events_y2022m08", "learning_events_default",
                     "content_performance_metrics_y2024m01", "content_performance_metrics_default"):
            assert await exists(conn, name)
        assert await count(conn, "learning_events_y2022m07") == 10  # straddles the cutoff 2022-07-15: stays
        archived = await retention.partitions(conn, "archive.content_performance_metrics")
        assert [(p.name, p.lower, p.upper) for p in archived] == [
            ("content_performance_metrics_y2023m10", t(2023, 10, 1), t(2023, 11, 1)),
            ("content_performance_metrics_y2023m11", t(2023, 11, 1), t(2023, 12, 1)),
            ("content_performance_metrics_y2023m12", t(2023, 12, 1), t(2024, 1, 1)),
            ("content_performance_metrics_default", None, None)]
        assert await conn.fetchval(
            "SELECT min(recorded_at) FROM archive.content_performance_metrics_default") == t(2023, 6, 3, 0, 0, 1)
        assert await conn.fetchval(
            "SELECT count(*) FROM archive.content_performance_metrics WHERE archived_at IS NULL") == 0

        runs = await conn.fetch("SELECT * FROM maintenance_runs ORDER BY id")
        assert [(r["dry_run"], r["trigger"], r["status"], r["as_of"], r["partitions_created"], r["partitions_detached"],
                 r["partitions_skipped"], r["rows_archived"], r["rows_deleted"], r["error"]) for r in runs] == [
            (True, "cli", "succeeded", AS_OF, 48, 6, 0, 14, 33, None),
            (False, "cli", "succeeded", AS_OF, 48, 6, 0, 14, 33, None)]
        logged = await retention.run_actions(conn, real.run_id)
        assert [(r["table_name"], r["action"], r["object"], r["rows"], r["batches"], r["status"]) for r in logged
                if r["action"] != "create_partition"] == done
        assert await conn.fetchval(
            "SELECT count(*) FROM data_retention_policies WHERE last_cleanup IS NOT NULL") == 9

        again = await run_maintenance(conn, AS_OF)
        assert (again.status, again.actions) == ("succeeded", [])
        assert await _snapshot(conn) == after
    finally:
        await conn.close()


async def test_a_policy_for_an_unknown_table_is_reported_and_not_executed(stack):
    conn = await connect(stack.dsn)
    try:
        # the migration's CHECK refuses it ...
        with pytest.raises(Exception, match="data_retention_policies_supported_table"):
            await conn.execute("INSERT INTO data_retention_policies (table_name, retention_period) "
                               "VALUES ('parked_events', '1 day')")
        # ... and the code does not trust it (an older code version, a constraint dropped by hand)
        await conn.execute("ALTER TABLE data_retention_policies DROP CONSTRAINT data_retention_policies_supported_table")
        await conn.execute("INSERT INTO data_retention_policies (table_name, retention_period) VALUES "
                           "('parked_events', '1 day'), ('learning_events; DROP TABLE content', '1 day')")
        await learning_events(conn, t(2020, 1, 5), 4)
        parked = await count(conn, "parked_events")
        report = await run_maintenance(conn, datetime.now(UTC))
        errors = [(a.table, a.status, a.detail) for a in report.actions if a.action == "error"]
        unknown = "unknown table: not in the retention registry (db/retention.py RETAINED); nothing done"
        assert errors == [("learning_events; DROP TABLE content", "failed", unknown),
                          ("parked_events", "failed", unknown)]
        # the other tables still ran
        assert [(a.table, a.action, a.rows) for a in report.actions if a.action == "delete_rows"] == [
            ("learning_events", "delete_rows", 4)]
        assert report.status == "failed"
        assert await count(conn, "parked_events") == parked
        assert await exists(conn, "content")
        row = await conn.fetchrow("SELECT status, rows_deleted FROM maintenance_runs WHERE id = $1", report.run_id)
        assert (row["status"], row["rows_deleted"]) == ("failed", 4)
        assert await conn.fetchval("SELECT count(*) FROM maintenance_actions WHERE run_id = $1 AND action = 'error'",
                                   report.run_id) == 2
    finally:
        await conn.close()


async def test_the_maintenance_job_runs_through_the_job_runner(stack):
    job = JOBS["maintenance"]
    assert job.schedule == "30 1 * * *"
    conn = await connect(stack.dsn)
    try:
        await learning_events(conn, t(2020, 2, 1), 7)  # DEFAULT, older than 2 years
        now = datetime.now(UTC)
        runner = JobRunner(stack.dsn, JOBS, worker="w")
        first = await runner.run("maintenance", scheduled_for=job.latest_fire(now), trigger="schedule")
        assert (first.status, first.rows) == ("succeeded", 7)
        assert await count(conn, "learning_events_default") == 0
        run = await conn.fetchrow("SELECT * FROM maintenance_runs")
        assert (run["trigger"], run["status"], run["dry_run"], run["rows_deleted"]) == ("job", "succeeded", False, 7)
        jr = await conn.fetchrow("SELECT job, status, rows, scheduled_for FROM job_runs")
        assert tuple(jr) == ("maintenance", "succeeded", 7, job.latest_fire(now))
        # the same fire time does not run again; a manual run (jobs run maintenance) always does
        again = await runner.run("maintenance", scheduled_for=job.latest_fire(now), trigger="schedule")
        assert again.status == "skipped"
        manual = await runner.run("maintenance")
        assert (manual.status, manual.rows) == ("succeeded", 0)
        assert await conn.fetchval("SELECT count(*) FROM maintenance_runs") == 2
    finally:
        await conn.close()


async def test_the_archive_is_the_owners_only_and_keeps_row_level_security(stack):
    """Nobody but the owner and the workers' service role (which moves rows into it: migration 0022)
    may use the archive; no member, not PUBLIC."""
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT nspacl IS NULL OR NOT (nspacl::text[] && ARRAY['=U/' || "
                                   "pg_get_userbyid(nspowner)]) FROM pg_namespace WHERE nspname = 'archive'")
        assert not await conn.fetchval("SELECT has_schema_privilege('public', 'archive', 'USAGE')")
        assert not await conn.fetchval("SELECT has_schema_privilege('learnstream_member', 'archive', 'USAGE')")
        rels = await conn.fetch(
            """SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity AS relrowsecurity,
                      -- ACL entries for anyone but the owner (an entry is grantee=privileges/grantor)
                      (SELECT array_agg(split_part(e, '/', 1) ORDER BY e) FROM unnest(coalesce(c.relacl::text[], '{}')) e
                       WHERE e NOT LIKE pg_get_userbyid(c.relowner) || '=%') AS grants,
                      (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'archive' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1""")
        assert [(r["relname"], r["relrowsecurity"], r["policies"], r["grants"]) for r in rels] == [
            (name, True, 1, ["learnstream_service=ard"]) for name in sorted(retention.RETAINED)]
        view = await conn.fetchrow("SELECT reloptions, relacl::text[] AS acl, pg_get_userbyid(relowner) AS owner "
                                   "FROM pg_class WHERE relname = 'archived_performance_metrics'")
        assert view["reloptions"] == ["security_invoker=true"]
        assert view["acl"] == [f"{view['owner']}=arwdDxt/{view['owner']}", f"learnstream_service=r/{view['owner']}"]
        for table in ("maintenance_runs", "maintenance_actions"):
            assert await conn.fetchval(
                "SELECT array_agg(split_part(e, '/', 1) ORDER BY e) FROM pg_class, unnest(relacl::text[]) e "
                "WHERE relname = $1 AND e NOT LIKE pg_get_userbyid(relowner) || '=%'", table) == [
                "learnstream_service=arwd"]
    finally:
        await conn.close()
