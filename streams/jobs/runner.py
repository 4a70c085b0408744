"""The job runner: each job has a name, a cron schedule and a function that computes its rows
idempotently (a run for the same period gives the same rows). A run takes the job's PostgreSQL
advisory lock (session-level, on its own connection), so any number of workers may look for due
jobs and one runs each; a scheduled time a run already succeeded for is not run again. Every run
is a job_runs row (start, end, status, rows, error) and metrics (duration, last success, failures).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from croniter import croniter

from db import jobs as db_jobs
from db.pool import connect
from streams import metrics

log = logging.getLogger("learnstream.jobs")

#: [start, end) of the data a run computes, or None for a job without one (a refresh)
Period = tuple[datetime, datetime] | None


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str  # cron, UTC
    description: str
    run: Callable[[asyncpg.Connection, Period], Awaitable[int]]
    #: the data period of a run for a fire time (default: none)
    period_of: Callable[[datetime], Period] = lambda _t: None

    def latest_fire(self, now: datetime) -> datetime:
        """The schedule's latest fire time at or before `now`."""
        it = croniter(self.schedule, now + timedelta(seconds=1))
        return it.get_prev(datetime).astimezone(UTC)

    def next_fire(self, after: datetime) -> datetime:
        return croniter(self.schedule, after).get_next(datetime).astimezone(UTC)


@dataclass
class RunResult:
    job: str
    status: str  # succeeded | failed | skipped
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    why: str = ""


def day_period(t: datetime) -> Period:
    """The UTC day before `t` (a daily job fired at midnight computes the day that ended)."""
    end = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def week_period(t: datetime) -> Period:
    """The 7 UTC days before `t`'s day."""
    end = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=7), end


def parse_period(text: str) -> Period:
    """--for: a UTC day (YYYY-MM-DD) or START/END (ISO times)."""
    if "/" in text:
        a, b = (datetime.fromisoformat(x) for x in text.split("/", 1))
        a, b = (x if x.tzinfo else x.replace(tzinfo=UTC) for x in (a, b))
        if b <= a:
            raise ValueError(f"period {text!r}: its end is not after its start")
        return a, b
    day = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return day, day + timedelta(days=1)


class JobRunner:
    def __init__(self, dsn: str, jobs: dict[str, Job], worker: str | None = None) -> None:
        self.dsn, self.jobs = dsn, jobs
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._busy = False

    async def run(self, name: str, *, scheduled_for: datetime | None = None, period: Period = None,
                  trigger: str = "manual") -> RunResult:
        """Run one job now under its lock. A scheduled run is skipped if another holds the lock or
        a run for the same scheduled time already succeeded."""
        job = self.jobs[name]
        scheduled_for = scheduled_for or datetime.now(UTC)
        if period is None:
            period = job.period_of(scheduled_for)
        conn = await connect(self.dsn)
        try:
            if not await db_jobs.try_lock(conn, name):
                return RunResult(name, "skipped", why="running on another worker")
            try:
                if trigger == "schedule" and await db_jobs.succeeded_for(conn, name, scheduled_for):
                    return RunResult(name, "skipped", why=f"already ran for {scheduled_for.isoformat()}")
                run_id = await db_jobs.start_run(conn, name, scheduled_for, period, trigger, self.worker)
                t0 = time.monotonic()
                try:
                    rows = await job.run(conn, period)
                except asyncio.CancelledError:
                    await db_jobs.finish_run(conn, run_id, "failed", None, "cancelled (worker stopping)")
                    raise
                except Exception as exc:  # noqa: BLE001 - recorded, counted, logged; the next schedule tries again
                    seconds = time.monotonic() - t0
                    error = f"{exc.__class__.__name__}: {exc}"[:2000]
                    await db_jobs.finish_run(conn, run_id, "failed", None, error)
                    metrics.JOB_FAILURES.labels(name).inc()
                    metrics.JOB_SECONDS.labels(name).observe(seconds)
                    log.error("job %s failed after %.1f s: %s", name, seconds, error)
                    return RunResult(name, "failed", seconds=seconds, error=error)
                seconds = time.monotonic() - t0
                await db_jobs.finish_run(conn, run_id, "succeeded", rows, None)
                metrics.JOB_SECONDS.labels(name).observe(seconds)
                metrics.JOB_LAST_SUCCESS.labels(name).set(time.time())
                metrics.JOB_ROWS.labels(name).inc(rows)
                log.info("job %s for %s: %d rows in %.2f s", name, scheduled_for.isoformat(), rows, seconds)
                return RunResult(name, "succeeded", rows=rows, seconds=seconds)
            finally:
                await db_jobs.unlock(conn, name)
        finally:
            await conn.close()

    async def run_due(self, now: datetime | None = None) -> list[RunResult]:
        """Run each job whose latest fire time has no successful run yet (the latest only: a job
        computes its own period, missed older ones are an operator's `jobs run --for`)."""
        if self._busy:  # the previous round is still running
            return []
        self._busy = True
        try:
            now = now or datetime.now(UTC)
            out = []
            for name, job in self.jobs.items():
                due = job.latest_fire(now)
                conn = await connect(self.dsn)
                try:
                    last = await db_jobs.last_success(conn, name)
                finally:
                    await conn.close()
                if last is None or last < due:
                    out.append(await self.run(name, scheduled_for=due, trigger="schedule"))
            return out
        finally:
            self._busy = False
