"""custom_reports, report_schedules and report_executions (seed 003): the reports' SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg

from db.config_rows import InvalidRow, reason
from schemas.reports import ReportDefinition


class ReportNotFound(LookupError):
    pass


async def add_report(conn: asyncpg.Connection, workspace: UUID, definition: ReportDefinition,
                     next_run_at: datetime | None) -> UUID:
    """Store a report (and its schedule, due at `next_run_at`); -> its id. A name is unique per workspace."""
    q = definition.query
    async with conn.transaction():
        report_id = await conn.fetchval(
            """INSERT INTO custom_reports (workspace_id, name, description, report_type, query_config, metrics,
                   dimensions, formats, created_by)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::report_format[], $9) RETURNING id""",
            workspace, definition.name, definition.description, q.source, q.model_dump(mode="json"),
            q.metrics, q.dimensions, definition.formats, definition.created_by)
        if definition.schedule:
            await conn.execute(
                """INSERT INTO report_schedules (workspace_id, report_id, cron_expr, timezone, next_run_at)
                   VALUES ($1, $2, $3, $4, $5)""",
                workspace, report_id, definition.schedule.cron, definition.schedule.timezone, next_run_at)
    return report_id


_REPORTS = """
SELECT r.workspace_id, r.id, r.name, r.description, r.report_type, r.query_config, r.metrics, r.dimensions,
    r.formats::text[] AS formats, r.created_by, r.created_at,
    s.id AS schedule_id, s.cron_expr, s.timezone AS schedule_timezone, s.is_active, s.next_run_at, s.last_run_at,
    x.status::text AS last_status, x.finished_at AS last_finished_at, x.output_url AS last_output
FROM custom_reports r
LEFT JOIN LATERAL (SELECT * FROM report_schedules s WHERE s.workspace_id = r.workspace_id AND s.report_id = r.id
                   ORDER BY s.created_at LIMIT 1) s ON true
LEFT JOIN LATERAL (SELECT * FROM report_executions x WHERE x.workspace_id = r.workspace_id AND x.report_id = r.id
                   ORDER BY x.started_at DESC NULLS LAST LIMIT 1) x ON true
"""


async def list_reports(conn: asyncpg.Connection, workspace: UUID | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(_REPORTS + " WHERE $1::uuid IS NULL OR r.workspace_id = $1 ORDER BY r.workspace_id, r.name",
                            workspace)


async def find_report(conn: asyncpg.Connection, name: str, workspace: UUID | None = None) -> asyncpg.Record:
    """The report named `name` (in `workspace`, or the only one of that name in any)."""
    rows = await conn.fetch(_REPORTS + " WHERE r.name = $1 AND ($2::uuid IS NULL OR r.workspace_id = $2)",
                            name, workspace)
    if not rows:
        raise ReportNotFound(f"no report named {name!r}" + (f" in workspace {workspace}" if workspace else ""))
    if len(rows) > 1:
        raise ReportNotFound(f"{len(rows)} workspaces have a report named {name!r}: say which with --workspace")
    return rows[0]


async def remove_report(conn: asyncpg.Connection, workspace: UUID, report_id: UUID) -> None:
    await conn.execute("DELETE FROM custom_reports WHERE workspace_id = $1 AND id = $2", workspace, report_id)


async def executions(conn: asyncpg.Connection, workspace: UUID, report_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, schedule_id, status::text AS status, format::text AS format, started_at, finished_at,
                  duration_ms, rows, output_url, error_message
           FROM report_executions WHERE workspace_id = $1 AND report_id = $2
           ORDER BY started_at DESC NULLS LAST, format LIMIT $3""", workspace, report_id, limit)


async def start_execution(conn: asyncpg.Connection, workspace: UUID, report_id: UUID, schedule_id: UUID | None,
                          fmt: str) -> UUID:
    return await conn.fetchval(
        """INSERT INTO report_executions (workspace_id, report_id, schedule_id, status, format, started_at)
           VALUES ($1, $2, $3, 'generating', $4::report_format, clock_timestamp()) RETURNING id""",
        workspace, report_id, schedule_id, fmt)


async def finish_execution(conn: asyncpg.Connection, workspace: UUID, execution: UUID, *, rows: int | None,
                           path: str | None, error: str | None) -> None:
    await conn.execute(
        """UPDATE report_executions SET status = CASE WHEN $5::text IS NULL THEN 'completed' ELSE 'failed' END::report_status,
               finished_at = clock_timestamp(),
               duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::integer,
               rows = $3, output_url = $4, error_message = $5
           WHERE workspace_id = $1 AND id = $2""", workspace, execution, rows, path, error)


async def abandon_scheduled(conn: asyncpg.Connection) -> int:
    """Scheduled executions left 'generating' by a worker that stopped mid-run (call under the
    reports job's lock, so none is running): marked failed; their schedule is still due."""
    status = await conn.execute(
        """UPDATE report_executions SET status = 'failed', finished_at = clock_timestamp(),
               error_message = 'abandoned: the worker running it stopped; the schedule runs it again'
           WHERE status = 'generating' AND schedule_id IS NOT NULL""")
    return int(status.rsplit(" ", 1)[1])


async def due_schedules(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Active schedules due at `now`, with their report."""
    return await conn.fetch(
        """SELECT s.workspace_id, s.id AS schedule_id, s.cron_expr, s.timezone AS schedule_timezone, s.next_run_at,
                  r.id, r.name, r.query_config, r.formats::text[] AS formats
           FROM report_schedules s JOIN custom_reports r ON r.workspace_id = s.workspace_id AND r.id = s.report_id
           WHERE s.is_active AND s.next_run_at <= $1 ORDER BY s.next_run_at""", now)


async def advance_schedule(conn: asyncpg.Connection, workspace: UUID, schedule: UUID, ran_for: datetime,
                           next_run_at: datetime) -> None:
    await conn.execute(
        "UPDATE report_schedules SET last_run_at = $3, next_run_at = $4 WHERE workspace_id = $1 AND id = $2",
        workspace, schedule, ran_for, next_run_at)


async def set_schedule_next(conn: asyncpg.Connection, next_of: Callable[[str, str], datetime]) -> list[InvalidRow]:
    """Schedules without a next run (created by SQL): give them one. Each row on its own: one whose
    `next_of` raises ValueError (the contract refuses its cron or zone, e.g. a cron that never
    fires) keeps no next run and is returned; the others get theirs."""
    invalid = []
    for r in await conn.fetch("SELECT s.workspace_id, s.id, s.cron_expr, s.timezone, c.name FROM report_schedules s "
                              "LEFT JOIN custom_reports c ON c.workspace_id = s.workspace_id AND c.id = s.report_id "
                              "WHERE s.is_active AND s.next_run_at IS NULL"):
        try:
            next_run_at = next_of(r["cron_expr"], r["timezone"])
        except ValueError as exc:  # pydantic's ValidationError, croniter's errors
            invalid.append(InvalidRow("report_schedules", r["workspace_id"], f"{r['id']} (report {r['name']!r})",
                                      reason(exc)))
            continue
        await conn.execute("UPDATE report_schedules SET next_run_at = $3 WHERE workspace_id = $1 AND id = $2",
                           r["workspace_id"], r["id"], next_run_at)
    return invalid
