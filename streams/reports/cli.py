"""`learnstream reports fields|add|list|show|run|rm`: custom reports (seed 003) for users and operators."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson
from pydantic import ValidationError

from streams.config import load_settings


def _workspace(_ctx, _param, value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a workspace id (a UUID)") from None


_WORKSPACE = click.option("--workspace", "-w", callback=_workspace, metavar="UUID",
                          help="the report's workspace (needed when two workspaces use the name)")


def _run(coro_fn):
    """Run `coro_fn(conn)` on a connection to the configured database; errors of the store are one line."""
    from db.pool import connect
    from db.reports.store import ReportNotFound

    async def go():
        conn = await connect(load_settings().database_url)
        try:
            return await coro_fn(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except ReportNotFound as exc:
        click.echo(f"learnstream: error: {exc}", err=True)
        sys.exit(2)


def _invalid(exc: ValidationError) -> None:
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "report"
        click.echo(f"learnstream: error: {where}: {err['msg']}", err=True)
    sys.exit(2)


@click.group("reports")
def reports() -> None:
    """Custom reports: metrics and dimensions chosen from a whitelist (never SQL), filters, a period,
    formats (csv, json, html with a chart) and an optional cron schedule run by the workers' `reports`
    job. Files go to LEARNSTREAM_REPORTS_DIR (default .learnstream/reports)."""


@reports.command("fields")
def fields_cmd() -> None:
    """What a report may ask for: each source's metrics, dimensions and filters, and the periods."""
    from typing import get_args

    from schemas.reports import SOURCES, RelativePeriod

    for name, src in SOURCES.items():
        click.echo(f"{name}: {src.description}")
        for kind, entries in (("metric", src.metrics), ("dimension", src.dimensions), ("filter", src.filters)):
            for key, what in entries.items():
                click.echo(f"  {kind:<9} {key:<20} {what}")
    click.echo("periods: " + ", ".join(get_args(RelativePeriod)) + ", or START/END (days, YYYY-MM-DD, end excluded)")


def _period(text: str):
    if "/" in text:
        start, end = text.split("/", 1)
        return {"start": start, "end": end}
    return text


@reports.command("add")
@click.argument("name")
@click.option("--workspace", "-w", callback=_workspace, required=True, metavar="UUID", help="the report's workspace")
@click.option("--source", "-s", required=True, help="engagement, learning, predictions, posting_times, trends, benchmarks or "
              "experiments (see `reports fields`)")
@click.option("--metric", "-m", "metrics", multiple=True, required=True, help="a metric of the source (repeatable)")
@click.option("--dimension", "-d", "dimensions", multiple=True, help="a dimension of the source (repeatable, at most 3)")
@click.option("--filter", "-f", "filters", multiple=True, metavar="FIELD=V1,V2",
              help="keep rows whose FIELD is one of the values (repeatable)")
@click.option("--period", default="last_7_days", show_default=True, help="a named period or START/END days")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of the days and of the schedule")
@click.option("--format", "formats", multiple=True, type=click.Choice(["csv", "json", "html"]),
              help="output formats (repeatable) [default csv]")
@click.option("--limit", type=int, default=1000, show_default=True, help="rows at most (up to 10000)")
@click.option("--schedule", "cron", metavar="CRON", help="run it on this cron schedule (in --timezone)")
@click.option("--description")
@click.option("--created-by")
def add_cmd(name, workspace, source, metrics, dimensions, filters, period, timezone, formats, limit, cron,
            description, created_by) -> None:
    """Store report NAME, validated against the whitelist; with --schedule the workers run it."""
    from db.reports.store import add_report
    from schemas.reports import ReportDefinition

    parsed: dict[str, list[str]] = {}
    for f in filters:
        key, sep, values = f.partition("=")
        if not sep or not values:
            raise click.BadParameter(f"{f!r}: expected FIELD=VALUE[,VALUE...]", param_hint="--filter")
        parsed.setdefault(key, []).extend(v for v in values.split(",") if v)
    try:
        definition = ReportDefinition.model_validate({
            "name": name, "description": description, "created_by": created_by,
            "formats": list(formats) or ["csv"],
            "query": {"source": source, "metrics": list(metrics), "dimensions": list(dimensions), "filters": parsed,
                      "period": _period(period), "timezone": timezone, "limit": limit},
            "schedule": {"cron": cron, "timezone": timezone} if cron else None,
        })
    except ValidationError as exc:
        _invalid(exc)
    now = datetime.now(UTC)
    next_run = definition.schedule.next_after(now) if definition.schedule else None

    async def go(conn):
        import asyncpg

        try:
            return await add_report(conn, workspace, definition, next_run)
        except asyncpg.UniqueViolationError:
            click.echo(f"learnstream: error: workspace {workspace} already has a report named {name!r}", err=True)
            sys.exit(2)

    report_id = _run(go)
    click.echo(f"added report {name!r} ({report_id})" + (f"; next run {next_run:%Y-%m-%d %H:%M}Z" if next_run else ""))


@reports.command("list")
@_WORKSPACE
def list_cmd(workspace) -> None:
    """The reports, their schedule, next run and last execution."""
    from db.config_rows import reason
    from db.reports.store import list_reports
    from schemas.reports import ReportSchedule

    rows = _run(lambda conn: list_reports(conn, workspace))
    if not rows:
        click.echo("no reports" + (f" in workspace {workspace}" if workspace else "") + "; add one with `reports add`")
    for r in rows:
        sched = (f"{r['cron_expr']} ({r['schedule_timezone']}) next {r['next_run_at']:%Y-%m-%d %H:%M}Z"
                 if r["cron_expr"] and r["next_run_at"] else "not scheduled")
        if r["cron_expr"]:
            try:
                ReportSchedule(cron=r["cron_expr"], timezone=r["schedule_timezone"])
            except ValidationError as exc:  # the workers skip it
                sched = f"{r['cron_expr']} ({r['schedule_timezone']}) invalid: {reason(exc)} (skipped)"
        last = f"last {r['last_status']} {r['last_output'] or ''}" if r["last_status"] else "never run"
        click.echo(f"{r['name']:<30} {r['workspace_id']} {r['report_type']:<11} {','.join(r['formats']):<13} "
                   f"{sched}; {last}")


@reports.command("show")
@click.argument("name")
@_WORKSPACE
@click.option("--executions", "n", type=int, default=10, show_default=True, help="latest executions shown")
def show_cmd(name, workspace, n) -> None:
    """Report NAME: its query, schedule and latest executions."""
    from db.reports.store import executions, find_report

    async def go(conn):
        r = await find_report(conn, name, workspace)
        return r, await executions(conn, r["workspace_id"], r["id"], n)

    r, runs = _run(go)
    click.echo(f"report     {r['name']} ({r['id']})\nworkspace  {r['workspace_id']}")
    if r["description"]:
        click.echo(f"about      {r['description']}")
    click.echo(f"formats    {', '.join(r['formats'])}")
    click.echo("query      " + orjson.dumps(r["query_config"], option=orjson.OPT_SORT_KEYS).decode())
    if r["cron_expr"]:
        click.echo(f"schedule   {r['cron_expr']} ({r['schedule_timezone']}), "
                   f"{'active' if r['is_active'] else 'paused'}, next {r['next_run_at']}, last {r['last_run_at']}")
    for x in runs:
        what = x["output_url"] if x["status"] == "completed" else (x["error_message"] or "")
        click.echo(f"  {x['started_at']:%Y-%m-%d %H:%M:%S}Z {x['format']:<5} {x['status']:<10} "
                   f"{x['rows'] if x['rows'] is not None else '-':>6} rows {x['duration_ms'] or 0:>6} ms  {what}")


@reports.command("run")
@click.argument("name")
@_WORKSPACE
@click.option("--format", "formats", multiple=True, type=click.Choice(["csv", "json", "html"]),
              help="only these formats [default: the report's]")
@click.option("--at", "at", metavar="TIME", help="run as if at this ISO time (the period is relative to it) [default now]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="output folder [default LEARNSTREAM_REPORTS_DIR]")
def run_cmd(name, workspace, formats, at, out_dir) -> None:
    """Run report NAME now: writes each format and prints the paths; exit 1 if one failed."""
    from db.reports.store import find_report
    from streams.reports.runner import run_report

    when = datetime.now(UTC)
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(f"{at!r} is not an ISO time", param_hint="--at") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    folder = out_dir or load_settings().reports_dir

    async def go(conn):
        r = await find_report(conn, name, workspace)
        return await run_report(conn, r, at=when, out_dir=folder, formats=list(formats) or None)

    done = _run(go)
    for e in done:
        if e.status == "completed":
            click.echo(f"{e.format}: {e.rows} rows -> {e.path}")
        else:
            click.echo(f"{e.format}: failed: {e.error}", err=True)
    if any(e.status != "completed" for e in done):
        sys.exit(1)


@reports.command("rm")
@click.argument("name")
@_WORKSPACE
def rm_cmd(name, workspace) -> None:
    """Delete report NAME with its schedules and execution records (its files stay)."""
    from db.reports.store import find_report, remove_report

    async def go(conn):
        r = await find_report(conn, name, workspace)
        await remove_report(conn, r["workspace_id"], r["id"])
        return r

    r = _run(go)
    click.echo(f"removed report {r['name']!r} ({r['id']}) of workspace {r['workspace_id']}")
