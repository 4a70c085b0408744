"""`learnstream domain unrouted|reroute`: what the domain routing left out, and routing it again
from the raw log."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import click

from streams.cli_support import expected_failures, parse_time, run_on_database
from streams.config import load_settings


def _uuid(ctx: click.Context, param: click.Parameter, value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a workspace id (a UUID)") from None


def _time(option: str):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
        ctx.meta[f"learnstream.raw.{option}"] = value  # as typed: a duration resumes the run it started
        return None if value is None else parse_time(value, option)
    return convert


def _event_type(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= 100:
        raise click.BadParameter("an event type has 1 to 100 characters")
    return value


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


@click.group("domain")
def domain() -> None:
    """The domain tables' routing of learning events. Every learning event with a valid envelope is
    stored in learning_events; a known event_type whose event_data misses its contract (or whose
    record a domain table refuses) is stored but not routed: recorded in unrouted_events, counted
    (learnstream_unrouted_total) and announced on the unrouted topic. Types without a contract are
    stored and counted. Once the producer (or the contract) is fixed, `reroute` routes them."""


@domain.command("unrouted")
@click.option("--workspace", callback=_uuid, help="only this workspace (UUID)")
@click.option("--type", "event_type", callback=_event_type, help="only this event type")
@click.option("--since", callback=_time("--since"), metavar="TIME",
              help="events from this time on: ISO, or a duration ago (2d) [default: all; unknown types: 7d]")
@click.option("--events", "limit", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="also list this many of the latest unrouted events, with their errors")
@expected_failures
def unrouted_cmd(workspace: UUID | None, event_type: str | None, since: datetime | None, limit: int) -> None:
    """What was stored but not routed, and why: per workspace, type and reason, the number of events,
    their time span and the latest errors; then the event types without a contract (from the raw log)."""
    from db.domain.unrouted import unknown_types, unrouted_events, unrouted_summary
    from schemas.learning import DATA_CONTRACTS

    async def go(conn) -> None:
        summary = await unrouted_summary(conn, workspace, event_type, since)
        if not summary:
            click.echo("no unrouted events" + (f" since {_when(since)}" if since else ""))
        for r in summary:
            click.echo(f"{r['workspace_id']}  {r['event_type']:<24} {r['reason']:<9} {r['events']:>9} events  "
                       f"{_when(r['first_event'])} .. {_when(r['last_event'])}")
            for e in r["latest_errors"][:3]:
                click.echo(f"    {e}")
        if limit:
            click.echo("")
            for r in await unrouted_events(conn, workspace, event_type, since, limit):
                click.echo(f"{_when(r['event_timestamp'])}  {r['event_id']}  {r['workspace_id']}  {r['event_type']}  "
                           f"{r['reason']}: {'; '.join(r['errors'])}")
        unknown_since = since or datetime.now(UTC) - timedelta(days=7)
        unknown = await unknown_types(conn, workspace, event_type, unknown_since, list(DATA_CONTRACTS))
        if unknown:
            click.echo(f"\nevent types without a contract since {_when(unknown_since)} (stored, not routed):")
            for r in unknown:
                click.echo(f"{r['workspace_id']}  {r['event_type']:<24} {r['events']:>9} events  "
                           f"{_when(r['first_event'])} .. {_when(r['last_event'])}")

    run_on_database(go)


@domain.command("reroute")
@click.option("--since", required=True, callback=_time("--since"), metavar="TIME",
              help="events from this time on: ISO, or a duration ago (2d)")
@click.option("--until", callback=_time("--until"), metavar="TIME", help="events before this time [default: now]")
@click.option("--workspace", callback=_uuid, help="only this workspace (UUID)")
@click.option("--type", "event_type", callback=_event_type, help="only this event type")
@click.option("--batch", "batch_size", type=click.IntRange(1, 50_000), default=2000, show_default=True,
              help="events per transaction")
@click.option("--fresh", is_flag=True, help="start a new run even if an unfinished one with these arguments exists")
@click.pass_context
@expected_failures
def reroute_cmd(ctx: click.Context, since: datetime, until: datetime | None, workspace: UUID | None,
                event_type: str | None, batch_size: int, fresh: bool) -> None:
    """Route stored learning events again, from the raw log (after a producer's fix or a new contract
    version), in (timestamp, id) order, a batch per transaction; safe while workers ingest, and
    idempotent (events routed already keep their rows). Events routed now leave unrouted_events.
    Interrupted, the same command (the same arguments, as typed: `--since 7d` too) resumes the run
    after its last batch, within that run's bounds."""
    from streams.domain.reroute import Progress, reroute

    if until is not None and until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    if until is None and since >= datetime.now(UTC):
        raise click.BadParameter("--since is in the future: nothing is stored after it yet", param_hint="--since")
    raw = ctx.meta
    request = " ".join(f"{k} {v}" for k, v in (
        ("--since", raw.get("learnstream.raw.--since")), ("--until", raw.get("learnstream.raw.--until")),
        ("--workspace", workspace), ("--type", event_type)) if v is not None)
    settings = load_settings()
    shown = [-1.0]

    def show(p: Progress, final: bool = False) -> None:
        if shown[0] < 0:  # the first call: the run it is
            click.echo(f"{'resuming' if p.resumed else 'starting'} run {p.run_id}: events in "
                       f"[{_when(p.since)}, {_when(p.until)})" + (f", after {_when(p.position)}" if p.position else ""))
        now = time.monotonic()
        if not final and now - shown[0] < 2.0:
            return
        shown[0] = now
        click.echo(f"run {p.run_id}: {p.events:,} events (routed {p.routed:,}, unrouted {p.unrouted:,}, "
                   f"unknown type {p.unknown_type:,}), at {_when(p.position)}, {p.rate:,.0f} events/s")

    async def go() -> Progress:
        return await reroute(settings.database_url, since, until, workspace_id=workspace, event_type=event_type,
                             batch_size=batch_size, fresh=fresh, on_progress=show, request=request)

    p = asyncio.run(go())
    show(p, final=True)
    click.echo(f"run {p.run_id} finished: {p.events:,} events in [{_when(p.since)}, {_when(p.until)}), "
               f"{p.events_now:,} now in {p.seconds:.1f} s")


@domain.command("runs")
@click.option("--last", "limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="how many runs")
@expected_failures
def runs_cmd(limit: int) -> None:
    """The latest reroute runs: arguments, bounds, position, counts, finished or not (an unfinished
    one resumes when its command is run again)."""
    from db.domain.reroute import recent_runs

    async def go(conn) -> None:
        rows = await recent_runs(conn, limit)
        if not rows:
            click.echo("no reroute runs")
        for r in rows:
            state = f"finished {_when(r['finished_at'])}" if r["finished_at"] else f"UNFINISHED at {_when(r['position_ts'])}"
            click.echo(f"run {r['id']}: {r['request']}  [{_when(r['since'])}, {_when(r['until'])})  {r['events']:,} events "
                       f"(routed {r['routed']:,}, unrouted {r['unrouted']:,}, unknown type {r['unknown_type']:,})  {state}")

    run_on_database(go)
