"""`learnstream maintenance status|run`: retention and archival of old data, for operators."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import click

from streams.cli_support import expected_failures
from streams.config import load_settings


def _as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO time (e.g. 2026-03-15 or 2026-03-15T01:30:00Z)",
                                 param_hint="--now") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _table(text: str | None) -> str | None:
    from db.retention import RETAINED

    if text is not None and text not in RETAINED:
        raise click.BadParameter(f"no table {text!r} has retention; tables: {', '.join(sorted(RETAINED))}",
                                 param_hint="--table")
    return text


class _Rollback(Exception):
    pass


@click.group("maintenance")
def maintenance() -> None:
    """Retention and archival of old data (data_retention_policies): partitions wholly past a table's
    retention are detached and dropped or moved to schema `archive`; older rows of plain tables and of
    DEFAULT partitions are deleted or archived in batches. Every run is logged in maintenance_runs. The
    workers run it daily (job `maintenance`, one worker at a time)."""


@maintenance.command("status")
@click.option("--now", "now", metavar="ISO-TIME", help="compute the cutoffs as of this time [default: now]")
@click.option("--runs", type=int, default=5, show_default=True, help="how many of the last runs to show")
@expected_failures
def status_cmd(now: str | None, runs: int) -> None:
    """Per policy: table, retention, strategy, cutoff, partitions (ranges, estimated rows) and what the
    next run would do; then the last runs. Changes nothing."""
    from db import retention
    from db.pool import connect
    from streams.maintenance.runner import action_line, options, rows_text, time_text

    as_of = _as_of(now)
    settings = load_settings()

    async def go() -> None:
        conn = await connect(settings.database_url)
        try:
            plan: list = []
            try:
                async with conn.transaction():  # a dry run, rolled back: not even logged
                    plan.append(await retention.run(conn, as_of, dry_run=True, options=options(settings)))
                    raise _Rollback
            except _Rollback:
                pass
            report = plan[0]
            click.echo(f"as of {as_of.isoformat()}")
            for p in await retention.policies(conn, as_of):
                table = retention.RETAINED.get(p.table)
                click.echo(f"{p.table}: {p.strategy} after {p.retention} (batches of {p.batch_size}), "
                           f"cutoff {time_text(p.cutoff)}, last cleanup "
                           f"{p.last_cleanup.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%SZ') if p.last_cleanup else 'never'}")
                if table is not None and table.partitioned:
                    for part in await retention.partitions(conn, table):
                        rng = "DEFAULT" if part.is_default else f"[{time_text(part.lower)}, {time_text(part.upper)})"
                        est = "? rows (not analyzed)" if part.row_estimate is None else f"~{rows_text(part.row_estimate)}"
                        mark = ""
                        if part.pending_detach:
                            mark = "  pending detach"
                        elif part in retention.expired([part], p.cutoff):
                            mark = "  expired"
                        click.echo(f"    {part.name:<44} {rng:<26} {est}{mark}")
                planned = [a for a in report.actions if a.table == p.table and a.action != "create_partition"]
                if table is None:
                    click.echo("  next run: ERROR: unknown table (not in db/retention.py RETAINED); nothing would be done")
                elif not planned:
                    click.echo("  next run: nothing to do")
                else:
                    click.echo("  next run:")
                    for a in planned:
                        click.echo("  " + action_line(a, True))
            creating = [a for a in report.actions if a.action == "create_partition"]
            if creating:
                click.echo(f"partitions the next run would create: {', '.join(a.object for a in creating)}")
            click.echo("last runs:")
            last = await retention.recent_runs(conn, runs)
            if not last:
                click.echo("  none")
            for r in last:
                click.echo(
                    f"  {r['id']} {r['started_at'].astimezone(UTC):%Y-%m-%d %H:%M:%SZ} "
                    f"{'dry run' if r['dry_run'] else 'run'} {r['trigger']} {r['status']} "
                    f"({(r['seconds'] or 0):.2f} s): partitions created {r['partitions_created']}, "
                    f"detached {r['partitions_detached']}, skipped {r['partitions_skipped']}; rows archived "
                    f"{r['rows_archived']}, deleted {r['rows_deleted']}" + (f"; {r['error']}" if r["error"] else ""))
        finally:
            await conn.close()

    asyncio.run(go())


@maintenance.command("run")
@click.option("--dry-run", is_flag=True, help="only report what a run would do (logged in maintenance_runs as a "
              "dry run; no data, partition or policy changes)")
@click.option("--table", "table", metavar="TABLE", help="only this table's policy (and partitions)")
@click.option("--now", "now", metavar="ISO-TIME", help="compute the cutoffs (and the partitions to make ahead) "
              "as of this time [default: now]")
@expected_failures
def run_cmd(dry_run: bool, table: str | None, now: str | None) -> None:
    """Run retention now and print what it did (or would do) per table. A real run takes the
    `maintenance` job's lock: if a worker is running it, says so and exits 1. Exits 1 when a table
    failed (the others still ran)."""
    from db.jobs import try_lock, unlock
    from db.pool import connect
    from streams.maintenance.runner import JOB, describe, run_maintenance

    only, as_of = _table(table), _as_of(now)
    settings = load_settings()

    async def go():
        conn = await connect(settings.database_url)
        try:
            if not dry_run and not await try_lock(conn, JOB):
                return None
            try:
                return await run_maintenance(conn, as_of, dry_run=dry_run, only=only, settings=settings)
            finally:
                if not dry_run:
                    await unlock(conn, JOB)
        finally:
            await conn.close()

    report = asyncio.run(go())
    if report is None:
        click.echo("maintenance: running on another worker (the maintenance job holds its lock); try again later",
                   err=True)
        sys.exit(1)
    for line in describe(report):
        click.echo(line)
    if report.status != "succeeded":
        click.echo(f"learnstream: maintenance run {report.run_id} failed for: {', '.join(report.failed_tables())} "
                   "(see above; the other tables ran)", err=True)
        sys.exit(1)
