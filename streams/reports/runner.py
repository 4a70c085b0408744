"""Running a custom report: query once, write each format to the reports folder, record each
execution (status, duration, rows, path, error); and the due schedules, run by the `reports` job.

A scheduled run computes the period of its scheduled time (so a rerun after a crash gives the same
file, at the same path) and advances next_run_at only once its executions are recorded: a worker
stopping mid-run leaves the schedule due, and the next round runs it again (at least once; the
abandoned execution is marked failed). A worker that was down runs a missed schedule once, for its
latest fire time, not once per missed fire. A report whose stored config no longer validates, or
whose query PostgreSQL refuses, is a failed execution with the reason; the other schedules go on.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from db.config_rows import InvalidRow, reason
from db.reports import query as report_query
from db.reports import store
from schemas.reports import ReportQuery, ReportSchedule
from streams.config_rows import report_invalid
from streams.reports.render import RENDERERS, Report

log = logging.getLogger("learnstream.reports")


@dataclass(frozen=True)
class Execution:
    format: str
    status: str  # completed | failed
    rows: int | None
    path: Path | None
    error: str | None
    seconds: float


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "report"


def output_path(root: Path, workspace: UUID, name: str, at: datetime, fmt: str) -> Path:
    slug = _slug(name)
    return root / str(workspace) / slug / f"{slug}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.{fmt}"


def _private_dirs(path: Path) -> None:
    """`path` and its missing parents, each made 0700 (a report holds a workspace's data)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass


def _write(path: Path, body: bytes) -> None:
    """Atomically: a reader sees the whole file or none; 0600 from its creation, in 0700 directories."""
    _private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    os.replace(tmp, path)


async def run_report(conn: asyncpg.Connection, report: asyncpg.Record, *, at: datetime, out_dir: Path,
                     formats: list[str] | None = None, schedule_id: UUID | None = None) -> list[Execution]:
    """Run `report` (a store row) for a run at `at`, each of `formats` (default: the report's)."""
    workspace, report_id, name = report["workspace_id"], report["id"], report["name"]
    formats = list(formats or report["formats"])
    started = {f: await store.start_execution(conn, workspace, report_id, schedule_id, f) for f in formats}
    t0 = time.monotonic()
    out: list[Execution] = []

    async def fail(fmts, error: str) -> None:
        for f in fmts:
            await store.finish_execution(conn, workspace, started[f], rows=None, path=None, error=error[:2000])
            out.append(Execution(f, "failed", None, None, error, time.monotonic() - t0))
        log.warning("report %s (%s) failed: %s", name, workspace, error)

    try:
        query = ReportQuery.model_validate(report["query_config"])
    except ValidationError as exc:
        await fail(formats, f"stored query_config is not valid: {exc.errors()[0]['msg']}")
        return out
    unsupported = [f for f in formats if f not in RENDERERS]
    if unsupported:
        await fail(unsupported, "format not produced: reports are csv, json or html")
    formats = [f for f in formats if f in RENDERERS]
    if not formats:
        return out
    start, end = query.resolve(at)
    try:
        columns, rows = await report_query.fetch(conn, workspace, query, start, end)
    except (asyncpg.DataError, asyncpg.SyntaxOrAccessError, asyncpg.ProgramLimitExceededError) as exc:
        await fail(formats, f"the query was refused: {exc.__class__.__name__}: {exc}")
        return out
    rendered = Report(name=name, workspace_id=str(workspace), source=query.source, start=start, end=end,
                      timezone=query.timezone, generated_at=datetime.now(UTC), columns=columns, rows=rows,
                      dimensions=len(query.dimensions))
    for f in formats:
        path = output_path(out_dir, workspace, name, at, f)
        try:
            _write(path, RENDERERS[f](rendered))
        except OSError as exc:
            await fail([f], f"could not write {path}: {exc}")
            continue
        await store.finish_execution(conn, workspace, started[f], rows=len(rows), path=str(path), error=None)
        out.append(Execution(f, "completed", len(rows), path, None, time.monotonic() - t0))
    log.info("report %s (%s) for %s: %d rows -> %s", name, workspace, at.isoformat(), len(rows),
             ", ".join(str(e.path) for e in out if e.path))
    return out


def _schedule(row: asyncpg.Record) -> ReportSchedule:
    return ReportSchedule(cron=row["cron_expr"], timezone=row["schedule_timezone"])


async def run_due_reports(conn: asyncpg.Connection, now: datetime, out_dir: Path) -> int:
    """Run every schedule due at `now` (call under the reports job's lock); -> executions recorded."""
    await store.abandon_scheduled(conn)
    # a schedule written by SQL with a cron or zone the contract refuses (one that never fires, too) is
    # skipped, logged once and counted (learnstream_config_rows_invalid{table="report_schedules"}); the
    # others run
    invalid = await store.set_schedule_next(
        conn, lambda cron, tz: ReportSchedule(cron=cron, timezone=tz).next_after(now))
    due = []
    for row in await store.due_schedules(conn, now):
        try:
            due.append((row, _schedule(row)))
        except ValidationError as exc:
            invalid.append(InvalidRow("report_schedules", row["workspace_id"],
                                      f"{row['schedule_id']} (report {row['name']!r})", reason(exc)))
    report_invalid("report_schedules", invalid)
    total = 0
    for row, schedule in due:
        at = schedule.latest_at_or_before(now)
        done = await run_report(conn, row, at=at, out_dir=out_dir, schedule_id=row["schedule_id"])
        await store.advance_schedule(conn, row["workspace_id"], row["schedule_id"], at, schedule.next_after(now))
        total += len(done)
    return total
