"""The worker's timer over parked events (db/domain/routing.py): every domain_resume_interval_s it
routes the parked records again (those whose referent has arrived are applied), and dead-letters
the ones parked longer than domain_park_max_age_s with reason `unresolved_reference` (stage
`domain`, partition and offset -1: their message was acknowledged when they were parked; the value
is the routed record). A parked record PostgreSQL refuses when it is finally applied is
dead-lettered at once (`database_rejected`), not retried. Any number of workers may run it: rows are taken
FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import orjson

from db.domain.routing import drop_expired, resume_parked, take_expired
from db.pool import SharedPool
from schemas.events import DeadLetter, DeadLetterError
from streams import loops, metrics
from streams.dead_letters import DeadLetters

log = logging.getLogger("learnstream.domain")


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
        taken, still, failed = await resume_parked(conn, on_failed=self._refused)
        if taken:
            metrics.PARKED_RESUMED.inc(taken - still - failed)
            log.info("parked events: %d applied, %d still waiting, %d refused", taken - still - failed, still, failed)

    async def _refused(self, failed) -> None:
        now = datetime.now(UTC)
        await self._dead_letters([
            self._letter(r["workspace_id"], r["event_type"], r["record"], now, "database_rejected",
                         f"{r['event_type']} {r['event_id']}, parked for {r['waiting_for']}, was refused when "
                         f"applied: {why}")
            for r, why in failed
        ])
        metrics.STAGE_FAILURES.labels("domain", "database_rejected").inc(len(failed))

    def _letter(self, workspace_id, event_type: str, record: dict, now: datetime, reason: str,
                message: str) -> DeadLetter:
        return DeadLetter(
            source_topic=self._topic, partition=-1, offset=-1, key=str(workspace_id), key_encoding="utf-8",
            value=orjson.dumps({"event_type": event_type, **record}).decode(), value_encoding="utf-8",
            errors=[DeadLetterError(reason=reason, message=message)], received_at=now, stage="domain",
        )

    async def _expire(self, conn) -> None:
        now = datetime.now(UTC)
        async with conn.transaction():
            expired = await take_expired(conn, now - self._max_age)
            if not expired:
                return
            letters = [
                self._letter(e.workspace_id, e.event_type, e.record, now, "unresolved_reference",
                             f"{e.event_type} {e.event_id} waited for {e.waiting_for} since "
                             f"{e.parked_at.isoformat()} and it never came")
                for e in expired
            ]
            await self._dead_letters(letters)  # the broker has them before the rows go
            await drop_expired(conn, expired)
        metrics.PARKED_EXPIRED.inc(len(expired))
        log.warning("dead-lettered %d parked events whose referent never came", len(expired))
