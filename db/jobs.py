"""The job runner's SQL: job_runs, the cluster-wide lock of a job, and the materialized views the
refresh job keeps current. Names in SQL come from constants here, never from input."""

from __future__ import annotations

import zlib
from datetime import datetime

import asyncpg

#: the materialized views of migration 0008, in refresh order
MATERIALIZED_VIEWS = ("analytics_aggregated_daily", "analytics_aggregated_weekly", "platform_performance_summary",
                      "daily_learning_metrics", "model_performance_summary")

_LOCK_SPACE = 0x6C736A62  # "lsjb": pg_try_advisory_lock(space, job) keys of the job runner


def lock_key(job: str) -> int:
    """A job's advisory lock key (int4, stable across processes and versions)."""
    return zlib.crc32(job.encode()) - (1 << 31)


async def try_lock(conn: asyncpg.Connection, job: str) -> bool:
    """Take the job's session-level advisory lock on `conn` if no one holds it."""
    return await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LOCK_SPACE, lock_key(job))


async def unlock(conn: asyncpg.Connection, job: str) -> None:
    await conn.fetchval("SELECT pg_advisory_unlock($1, $2)", _LOCK_SPACE, lock_key(job))


async def last_success(conn: asyncpg.Connection, job: str) -> datetime | None:
    """The latest scheduled time the job succeeded for. Scheduled runs only: a manual run records
    the time it was asked for, which must not stand for a fire time it did not compute."""
    return await conn.fetchval(
        "SELECT max(scheduled_for) FROM job_runs WHERE job = $1 AND status = 'succeeded' AND trigger = 'schedule'",
        job)


async def succeeded_for(conn: asyncpg.Connection, job: str, scheduled_for: datetime) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM job_runs WHERE job = $1 AND scheduled_for = $2 AND status = 'succeeded')",
        job, scheduled_for)


async def start_run(conn: asyncpg.Connection, job: str, scheduled_for: datetime, period: tuple | None,
                    trigger: str, worker: str) -> int:
    start, end = period or (None, None)
    return await conn.fetchval(
        """INSERT INTO job_runs (job, scheduled_for, period_start, period_end, trigger, worker)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""", job, scheduled_for, start, end, trigger, worker)


async def finish_run(conn: asyncpg.Connection, run_id: int, status: str, rows: int | None, error: str | None) -> None:
    await conn.execute(
        "UPDATE job_runs SET finished_at = clock_timestamp(), status = $2, rows = $3, error = $4 WHERE id = $1",
        run_id, status, rows, error)


async def recent_runs(conn: asyncpg.Connection, job: str | None = None, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, job, scheduled_for, period_start, period_end, trigger, worker, started_at, finished_at,
                  status, rows, error, extract(epoch FROM finished_at - started_at) AS seconds
           FROM job_runs WHERE $1::text IS NULL OR job = $1 ORDER BY started_at DESC LIMIT $2""", job, limit)


async def refresh_materialized_views(conn: asyncpg.Connection) -> int:
    """REFRESH ... CONCURRENTLY each materialized view (readers are not blocked); -> views refreshed.
    Through the owner's function (migration 0022): REFRESH needs ownership, a worker has none."""
    for name in MATERIALIZED_VIEWS:
        await conn.execute("SELECT ls_refresh_materialized_view($1)", name)
    return len(MATERIALIZED_VIEWS)
