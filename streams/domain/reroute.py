"""`learnstream domain reroute`: route stored learning events again, from the raw log, after a
producer's fix or a new contract version.

A run walks learning_events in (timestamp, id) order within [since, until) (and a workspace, an
event type), a batch per transaction: the batch is routed (db.domain.routing.route_learning_events
with rerouting: events now routed leave unrouted_events, those still failing are recorded again)
and the run's position advances in the same transaction, so an interrupted run resumes after its
last committed batch (the same arguments find the unfinished run). The routes are idempotent and
order-independent, so rerouting events a worker routed already, or while it ingests, changes
nothing they got right. A deadlock or a lost connection retries the batch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from db.backoff import Backoff
from db.domain.reroute import advance_run, finish_run, next_batch, open_run, start_run
from db.domain.routing import route_learning_events
from db.errors import TRANSIENT, classify_db
from db.pool import connect

log = logging.getLogger("learnstream.reroute")


@dataclass
class Progress:
    run_id: int
    resumed: bool
    events: int
    routed: int
    unrouted: int
    unknown_type: int
    position: datetime | None
    finished: bool
    #: the run's bounds (until: as given, or the time the run started)
    since: datetime
    until: datetime
    #: events of this invocation (not of the earlier, interrupted ones) and their seconds
    events_now: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events_now / self.seconds if self.seconds > 0 else 0.0


def _progress(run: asyncpg.Record, resumed: bool, events_now: int, seconds: float) -> Progress:
    return Progress(run["id"], resumed, run["events"], run["routed"], run["unrouted"], run["unknown_type"],
                    run["position_ts"], run["finished_at"] is not None, run["since"], run["until"], events_now, seconds)


def request_of(since: datetime, until: datetime | None, workspace_id: UUID | None, event_type: str | None) -> str:
    """A run's arguments as text, when not given as typed (the CLI passes its own: `--since 7d`)."""
    return " ".join(f"{k}={v}" for k, v in (("since", since.isoformat()), ("until", until.isoformat() if until else None),
                                            ("workspace", workspace_id), ("type", event_type)) if v is not None)


async def reroute(dsn: str, since: datetime, until: datetime | None = None, *, workspace_id: UUID | None = None,
                  event_type: str | None = None, batch_size: int = 2000, fresh: bool = False,
                  on_progress: Callable[[Progress], None] | None = None, max_batches: int | None = None,
                  request: str | None = None) -> Progress:
    """Reroute the stored learning events in [since, until) (until: now when a new run starts).
    Resumes the unfinished run started with the same `request` (the arguments as given; by default
    their values) unless `fresh`, within that run's bounds. `max_batches` stops after so many
    batches (the run stays open, to resume). -> the run's progress."""
    conn = await connect(dsn)
    backoff = Backoff(0.1, 5.0)
    started = time.perf_counter()
    events_now = 0
    try:
        request = request or request_of(since, until, workspace_id, event_type)
        run = None if fresh else await open_run(conn, request)
        resumed = run is not None
        if run is None:
            bound = until or await conn.fetchval("SELECT now()")
            run = await start_run(conn, request, since, bound, workspace_id, event_type)
        if on_progress is not None:
            on_progress(_progress(run, resumed, 0, 0.0))
        batches = 0
        while max_batches is None or batches < max_batches:
            try:
                async with conn.transaction():
                    rows = await next_batch(conn, run, batch_size)
                    if rows:
                        report = await route_learning_events(conn, rows, rerouting=True)
                        last = rows[-1]
                        after = await advance_run(conn, run["id"], last["timestamp"], last["id"], len(rows),
                                                  report.routed, len(report.unrouted), sum(report.unknown.values()),
                                                  last["workspace_id"])
                    else:
                        after = await finish_run(conn, run["id"])
                # only now, committed: a failed COMMIT retries the batch from the position before it
                run = after
                if not rows:
                    break
            except Exception as exc:  # decided by classify_db
                if classify_db(exc) != TRANSIENT:
                    raise
                delay = backoff.next_delay()
                log.warning("rerouting a batch failed (%s: %s); again in %.1f s", exc.__class__.__name__, exc, delay)
                await asyncio.sleep(delay)
                if conn.is_closed():
                    conn = await _reconnect(dsn, backoff)
                continue
            backoff.attempt = 0
            batches += 1
            events_now += len(rows)
            if on_progress is not None:
                on_progress(_progress(run, resumed, events_now, time.perf_counter() - started))
        return _progress(run, resumed, events_now, time.perf_counter() - started)
    finally:
        await conn.close()


async def _reconnect(dsn: str, backoff: Backoff) -> asyncpg.Connection:
    while True:
        try:
            return await connect(dsn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            delay = backoff.next_delay()
            log.warning("reconnecting to PostgreSQL failed (%s); again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
