"""The worker's timer over parked events (db/domain/routing.py): every domain_resume_interval_s it
routes the parked records again (those whose referent has arrived are applied), and dead-letters
the ones parked longer than domain_park_max_age_s with reason `unresolved_reference` (stage
`domain`, partition and offset -1: their message was acknowledged when they were parked; the value
is the routed record). A parked record PostgreSQL refuses when it is finally applied is recorded as
unrouted (`refused`: the event is stored), not retried. Any number of workers may run it: rows are taken
FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import orjson

from db.domain.routing import EXPIRY_LOCK, drop_expired, resume_parked, take_expired
from db.domain.unrouted import Unrouted, record_unrouted
from db.pool import SharedPool
from schemas.events import DeadLetter, DeadLetterError
from schemas.learning import MAX_ERROR_CHARS
from streams import loops, metrics
from streams.dead_letters import DeadLetters

log = logging.getLogger("learnstream.domain")

#: parked rows dead-lettered per batch, and the seconds an expiry round may take
EXPIRY_BATCH, EXPIRY_BUDGET_S = 5000, 5.0


class ParkedEvents:
    def __init__(self, pool: SharedPool, dead_letters: DeadLetters, learning_topic: str, max_age_s: float) -> None:
        self._pool, self._dead_letters = pool, dead_letters
        self._topic, self._max_age = learning_topic, timedelta(seconds=max_age_s)

    async def tick(self) -> None:
        """A resume round, then an expiry round; each on its own, so neither can block the other."""
        for step in (self._resume, self._expire):
            name = f"parked_events{step.__name__}"
            try:
                pool = await self._pool.get()
                async with pool.acquire() as conn:
                    await step(conn)
                    metrics.PARKED_EVENTS.set(await conn.fetchval("SELECT count(*) FROM parked_events"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified by loops.failed; the next tick tries again
                loops.failed(name, exc)
            else:
                loops.succeeded(name)

    async def _resume(self, conn) -> None:
        taken, still, failed = await resume_parked(conn, on_failed=lambda f: self._refused(conn, f))
        if taken:
            metrics.PARKED_RESUMED.inc(taken - still - failed)
            log.info("parked events: %d applied, %d still waiting, %d refused", taken - still - failed, still, failed)

    async def _refused(self, conn, failed) -> None:
        """Records a domain table refuses when they are finally applied: stored events not routed,
        recorded in unrouted_events (reason `refused`) in the resume transaction: no network I/O
        while it holds its row locks."""
        await record_unrouted(conn, [
            Unrouted(r["workspace_id"], r["event_id"], r["event_time"], r["event_type"], "refused",
                     (f"parked for {r['waiting_for']}, refused when applied: {why}"[:MAX_ERROR_CHARS],))
            for r, why in failed
        ])
        for r, _ in failed:
            metrics.UNROUTED.labels(r["event_type"], "refused").inc()

    def _letter(self, workspace_id, event_type: str, record: dict, now: datetime, reason: str,
                message: str) -> DeadLetter:
        return DeadLetter(
            source_topic=self._topic, partition=-1, offset=-1, key=str(workspace_id), key_encoding="utf-8",
            value=orjson.dumps({"event_type": event_type, **record}).decode(), value_encoding="utf-8",
            errors=[DeadLetterError(reason=reason, message=message)], received_at=now, stage="domain",
        )

    async def _expire(self, conn) -> None:
        """Dead-letter what waited longer than domain_park_max_age_s, in batches until none is left
        or EXPIRY_BUDGET_S has passed (at least as fast as events are parked); one worker at a time
        (an advisory lock); the letters are published with no transaction open, then the rows that
        no resume touched meanwhile are dropped (a crash in between sends them again: at least once)."""
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", EXPIRY_LOCK):
            return
        try:
            started, total = time.monotonic(), 0
            while time.monotonic() - started < EXPIRY_BUDGET_S:
                now = datetime.now(UTC)
                expired = await take_expired(conn, now - self._max_age, EXPIRY_BATCH)
                if not expired:
                    break
                await self._dead_letters([
                    self._letter(e.workspace_id, e.event_type, e.record, now, "unresolved_reference",
                                 f"{e.event_type} {e.event_id} waited for {e.waiting_for} since "
                                 f"{e.parked_at.isoformat()} and it never came")
                    for e in expired
                ])  # the broker has them before the rows go
                dropped = await drop_expired(conn, expired)
                total += dropped
                metrics.PARKED_EXPIRED.inc(dropped)
                if len(expired) < EXPIRY_BATCH:
                    break
            if total:
                log.warning("dead-lettered %d parked events whose referent never came", total)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", EXPIRY_LOCK)
