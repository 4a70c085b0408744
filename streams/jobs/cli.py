"""`learnstream jobs list|run`: the scheduled jobs, for operators."""

from __future__ import annotations

import asyncio
import sys

import click

from streams.config import load_settings


@click.group("jobs")
def jobs() -> None:
    """The scheduled jobs: what they compute, when they last ran; run one now."""


@jobs.command("list")
@click.option("--runs", type=int, default=0, show_default=True, help="also show this many latest runs")
def list_cmd(runs: int) -> None:
    """Each job's schedule (cron, UTC), its last run and its next fire time."""
    from datetime import UTC, datetime

    from db.jobs import recent_runs
    from db.pool import connect
    from streams.jobs.catalog import JOBS

    settings = load_settings()

    async def go() -> None:
        conn = await connect(settings.database_url)
        try:
            now = datetime.now(UTC)
            for job in JOBS.values():
                last = await recent_runs(conn, job.name, 1)
                seen = (f"last {last[0]['status']} {last[0]['started_at']:%Y-%m-%d %H:%M:%S}Z"
                        f" ({last[0]['seconds'] or 0:.2f} s, {last[0]['rows'] if last[0]['rows'] is not None else '-'} rows)"
                        if last else "never run")
                click.echo(f"{job.name:<30} {job.schedule:<14} next {job.next_fire(now):%Y-%m-%d %H:%M}Z  {seen}")
                click.echo(f"    {job.description}")
            if runs:
                click.echo("")
                for r in await recent_runs(conn, None, runs):
                    click.echo(f"{r['started_at']:%Y-%m-%d %H:%M:%S}Z {r['job']:<30} {r['trigger']:<9} {r['status']:<10}"
                               f"{r['rows'] if r['rows'] is not None else '-':>8} rows {r['seconds'] or 0:>8.2f} s  "
                               f"{r['error'] or ''}")
        finally:
            await conn.close()

    asyncio.run(go())


@jobs.command("run")
@click.argument("name")
@click.option("--for", "period", metavar="PERIOD",
              help="the data period: a UTC day YYYY-MM-DD or START/END (ISO times); default: the job's own")
def run_cmd(name: str, period: str | None) -> None:
    """Run job NAME now (under its lock: if a worker is running it, says so and exits 1)."""
    from streams.jobs.catalog import JOBS
    from streams.jobs.runner import JobRunner, parse_period

    if name not in JOBS:
        raise click.BadParameter(f"no job {name!r}; jobs: {', '.join(JOBS)}", param_hint="NAME")
    try:
        span = parse_period(period) if period else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None
    settings = load_settings()
    result = asyncio.run(JobRunner(settings.database_url, JOBS).run(name, period=span))
    if result.status == "succeeded":
        click.echo(f"{name}: {result.rows} rows in {result.seconds:.2f} s")
        return
    click.echo(f"{name}: {result.status}: {result.error or result.why}", err=True)
    sys.exit(1)
