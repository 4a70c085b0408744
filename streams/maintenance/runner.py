"""A maintenance run (db/retention.py does the work) with its metrics, its lines of output, and the
adapter the job runner calls (streams/jobs/catalog.py: one worker at a time under the job's lock)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import asyncpg

from db import retention
from streams import metrics
from streams.config import Settings, load_settings

log = logging.getLogger("learnstream.maintenance")

JOB = "maintenance"


def options(settings: Settings) -> retention.Options:
    return retention.Options(
        lock_timeout_ms=settings.maintenance_lock_timeout_ms, lock_retries=settings.maintenance_lock_retries,
        retry_initial_s=settings.maintenance_retry_initial_s, retry_max_s=settings.maintenance_retry_max_s,
        analyze_min_rows=settings.maintenance_analyze_min_rows)


def observe(report: retention.RunReport) -> None:
    """Metrics of a real run (a dry run changes nothing, so counts nothing)."""
    if report.dry_run:
        return
    part = {"create_partition": "created", "detach_partition": "detached", "finalize_detach": "detached",
            "drop_partition": "dropped", "archive_partition": "archived"}
    for a in report.actions:
        if a.action in part and a.status == "done":
            metrics.MAINTENANCE_PARTITIONS.labels(a.table, part[a.action]).inc()
            if a.action in ("drop_partition", "archive_partition"):
                metrics.MAINTENANCE_ROWS.labels(a.table, part[a.action]).inc(a.rows or 0)
        elif a.action == "detach_partition" and a.status == "skipped":
            metrics.MAINTENANCE_PARTITIONS.labels(a.table, "skipped").inc()
        elif a.action in ("archive_rows", "delete_rows") and a.status == "done":
            metrics.MAINTENANCE_ROWS.labels(a.table, "archived" if a.action == "archive_rows" else "deleted").inc(
                a.rows or 0)
    failed = set(report.failed_tables())
    for table in failed:
        metrics.MAINTENANCE_FAILURES.labels(table).inc()
    now = time.time()
    for table in {a.table for a in report.actions} | set(report.policies):
        if table not in failed and table in retention.RETAINED:
            metrics.MAINTENANCE_LAST_SUCCESS.labels(table).set(now)
    metrics.MAINTENANCE_SECONDS.observe(report.seconds)


async def run_maintenance(conn: asyncpg.Connection, as_of: datetime | None = None, *, dry_run: bool = False,
                          only: str | None = None, settings: Settings | None = None, trigger: str = "cli",
                          worker: str | None = None) -> retention.RunReport:
    settings = settings or load_settings()
    report = await retention.run(conn, as_of or datetime.now(UTC), dry_run=dry_run, only=only,
                                 options=options(settings), trigger=trigger, worker=worker)
    observe(report)
    for line in describe(report):
        log.info("%s", line)
    return report


async def job(conn: asyncpg.Connection, _period) -> int:
    """The `maintenance` job: a real run as of now -> rows archived or deleted (in batches and in whole
    partitions). A table's failure is in maintenance_runs and the metrics; the job itself succeeds, so
    the runner does not retry it every round (the next day's run tries that table again)."""
    report = await run_maintenance(conn, trigger="job")
    if report.failed_tables():
        log.error("maintenance run %d: failed for %s", report.run_id, ", ".join(report.failed_tables()))
    return sum(a.rows or 0 for a in report.actions if a.status == "done"
               and a.action in ("archive_rows", "delete_rows", "drop_partition", "archive_partition"))


# -- text ---------------------------------------------------------------------------------------

def time_text(t: datetime | None) -> str:
    """A bound as operators read it: the date alone at midnight UTC, else the time too; -inf for none."""
    if t is None:
        return "-inf"
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if (t.hour, t.minute, t.second) != (0, 0, 0) \
        else t.astimezone(UTC).strftime("%Y-%m-%d")


def _range(a) -> str:
    return f"[{time_text(a.range_start)}, {time_text(a.range_end)})" if a.range_start or a.range_end else ""


def rows_text(n: int | None) -> str:
    """`1 row`, `12,345 rows`."""
    return f"{n:,} row" + ("" if n == 1 else "s")


def action_line(a: retention.Action, dry_run: bool) -> str:
    """One action as a line of output: what was done, or (dry run) what would be."""
    would = dry_run or a.status == "planned"
    verbs = {
        "create_partition": ("create", "created"),
        "finalize_detach": ("finalize the pending detach of", "finalized the pending detach of"),
        "detach_partition": ("detach", "detached"),
        "drop_partition": ("drop", "dropped"),
        "archive_partition": ("archive", "archived"),
        "archive_rows": ("archive", "archived"),
        "delete_rows": ("delete", "deleted"),
        "analyze": ("analyze", "analyzed"),
    }
    if a.action == "error":
        return f"  ERROR: {a.detail}"
    verb = ("would " + verbs[a.action][0]) if would else verbs[a.action][1]
    if a.action in ("archive_rows", "delete_rows"):
        where = f"into {retention.ARCHIVE}.{a.table} " if a.action == "archive_rows" else ""
        batches = f"{a.batches} batch" + ("" if a.batches == 1 else "es")
        return f"  {verb} {rows_text(a.rows)} of {a.object} {where}in {batches}".rstrip()
    if a.action == "analyze":
        return f"  {verb} {a.object}" + (f" ({a.detail})" if a.detail else "")
    text = f"  {verb} {a.object} {_range(a)}"
    if a.action == "detach_partition":
        text += f": {rows_text(a.rows)}"
        if a.status == "skipped":
            return f"  SKIPPED detach of {a.object} {_range(a)}: {a.detail}"
        if not would:
            text += f", {a.attempts} attempt" + ("" if a.attempts == 1 else "s") + f" ({a.detail})"
        elif a.detail:
            text += f" ({a.detail})"
    elif a.action == "archive_partition":
        text += f" into {retention.ARCHIVE}.{a.table}" + (f": {rows_text(a.rows)}" if a.rows is not None else "")
        if a.status == "pending":
            text += " (pending: the next run attaches it)"
    elif a.action == "create_partition" and a.rows:
        text += f": {rows_text(a.rows)} moved in from DEFAULT"
    return text


def describe(report: retention.RunReport) -> list[str]:
    """The run per table, then a summary line."""
    kind = "dry run" if report.dry_run else "run"
    lines = [f"maintenance {kind} {report.run_id} as of {report.as_of.astimezone(UTC).isoformat()}"]
    tables: list[str] = []
    for a in report.actions:
        if a.table not in tables:
            tables.append(a.table)
    for p in report.policies.values():
        if p.table not in tables:
            tables.append(p.table)
    for table in tables:
        p = report.policies.get(table)
        head = f"{table}: "
        head += f"{p.strategy} after {p.retention}, cutoff {time_text(p.cutoff)}" if p else "partitions"
        mine = [a for a in report.actions if a.table == table]
        lines.append(head)
        lines.extend(action_line(a, report.dry_run) for a in mine)
        if not mine:
            lines.append("  nothing to do")
    would = "would be " if report.dry_run else ""
    created = report.count("create_partition", "planned" if report.dry_run else "done")
    detached = (report.count("detach_partition", "planned" if report.dry_run else "done")
                + report.count("finalize_detach", "planned" if report.dry_run else "done"))
    st = ("planned",) if report.dry_run else ("done",)
    lines.append(
        f"{report.status if not report.dry_run else 'dry run ' + report.status}: partitions {would}created {created}, "
        f"detached {detached} (dropped {report.count('drop_partition', st[0])}, archived "
        f"{report.count('archive_partition', st[0])}), skipped {report.count('detach_partition', 'skipped')}; "
        f"rows {would}archived {report.rows('archive_rows', st) + report.rows('archive_partition', st)}, "
        f"deleted {report.rows('delete_rows', st) + report.rows('drop_partition', st)}; "
        f"{report.seconds:.2f} s")
    return lines
