"""The worker's timer over parked events (db/domain/routing.py): every domain_resume_interval_s it
routes the parked records again (those whose referent has arrived are applied), and dead-letters
the ones parked longer than domain_park_max_age_s with reason `unresolved_reference` (stage
`domain`, partition and offset -1: their message was acknowledged when they were parked; the value
is the routed record). Any number of workers may run it: rows are taken FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import orjson

from db.domain.routing import drop_expired, resume_parked, take_expired
from schemas.events import DeadLetter, DeadLetterError
from streams import metrics
from streams.ingest.sink import DeadLetters, SharedPool

log = logging.getLogger("learnstream.domain")


class ParkedEvents:
    def __init__(self, pool: SharedPool, dead_letters: DeadLetters, learning_topic: str, max_age_s: float) -> None:
        self._pool, self._dead_letters = pool, dead_letters
        self._topic, self._max_age = learning_topic, timedelta(seconds=max_age_s)

    async def tick(self) -> None:
        try:
            pool = await self._pool.get()
            async with pool.acquire() as conn:
                taken, still = await resume_parked(conn)
                if taken:
                    metrics.PARKED_RESUMED.inc(taken - still)
                    log.info("parked events: %d applied, %d still waiting", taken - still, still)
                await self._expire(conn)
                metrics.PARKED_EVENTS.set(await conn.fetchval("SELECT count(*) FROM parked_events"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - infrastructure: the next tick tries again, nothing is lost
            log.warning("parked events round failed (%s: %s); next round in a moment", exc.__class__.__name__, exc)

    async def _expire(self, conn) -> None:
        now = datetime.now(UTC)
        async with conn.transaction():
            expired = await take_expired(conn, now - self._max_age)
            if not expired:
                return
            letters = [
                DeadLetter(
                    source_topic=self._topic, partition=-1, offset=-1, key=str(e.workspace_id), key_encoding="utf-8",
                    value=orjson.dumps({"event_type": e.event_type, **e.record}).decode(), value_encoding="utf-8",
                    errors=[DeadLetterError(
                        reason="unresolved_reference",
                        message=f"{e.event_type} {e.event_id} waited for {e.waiting_for} since "
                        f"{e.parked_at.isoformat()} and it never came",
                    )],
                    received_at=now, stage="domain",
                )
                for e in expired
            ]
            await self._dead_letters(letters)  # the broker has them before the rows go
            await drop_expired(conn, expired)
        metrics.PARKED_EXPIRED.inc(len(expired))
        log.warning("dead-lettered %d parked events whose referent never came", len(expired))
