"""One topic's batch path: decode and validate the messages, write the rows idempotently, publish
dead letters, count everything. The caller acknowledges the messages only after `process`
returns; `process` returns only when every message is either stored or dead-lettered.

Failures of PostgreSQL or of the dead-letter publish are retried with capped exponential backoff
and full jitter, forever: the offsets stay uncommitted meanwhile, and the worker stays up. The
outage is logged when it starts and when it ends, not per attempt.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson

from db.pool import create_writer_pool
from db.tables import TABLES
from db.writer import WritePolicy, WriteResult, write_rows
from schemas.decode import decode_message
from schemas.events import DeadLetter, DeadLetterError
from streams import metrics

log = logging.getLogger("learnstream.sink")


class Message(Protocol):
    """What the sink reads of a Kafka message (faust's Message and aiokafka's records fit)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


#: publish one dead letter: (key, value) -> awaitable that completes when the broker has it
DeadLetterPublisher = Callable[[bytes | None, bytes], Awaitable[Any]]


@dataclass
class BatchOutcome:
    messages: int = 0
    events: int = 0
    inserted: int = 0
    duplicates: int = 0
    invalid: Tally = field(default_factory=Tally)
    dead_letters: int = 0
    #: rows of this batch now in their table (stored now or before: a redelivery is windowed
    #: again, and the window stage skips what it folded already by source offset), the batch's
    #: messages, and for each such row the index of its message
    stored_rows: list[tuple] = field(default_factory=list)
    batch: Sequence[Message] = ()
    stored_origin: list[int] = field(default_factory=list)


def _text(raw: bytes | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def envelope(
    msg: Message,
    errors: list[DeadLetterError],
    received_at: datetime,
    members: list[tuple[int, Any]] | None = None,
) -> DeadLetter:
    """The dead letter of `msg`. With `members` (an array whose valid members were stored), the
    value is only the rejected members, so the DLQ holds what was not stored and no more."""
    key, key_enc = _text(msg.key)
    if members is not None:
        value: str | None = orjson.dumps([m for _, m in members]).decode()
        value_enc: str | None = "utf-8"
    else:
        value, value_enc = _text(msg.value)
    return DeadLetter(
        source_topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=key,
        key_encoding=key_enc,
        value=value if value is not None else "",
        value_encoding=value_enc or "utf-8",
        members=[i for i, _ in members] if members is not None else None,
        errors=errors,
        received_at=received_at,
    )


async def publish_dead_letters(publish: DeadLetterPublisher, retrying: Retrier, letters: list[DeadLetter]) -> None:
    """Publish dead letters (keyed topic:partition:offset), retrying until the broker has them all."""

    async def attempt() -> None:
        futures = [
            await publish(f"{d.source_topic}:{d.partition}:{d.offset}".encode(), orjson.dumps(d.model_dump(mode="json")))
            for d in letters
        ]
        for fut in futures:
            if isinstance(fut, Awaitable):
                await fut

    await retrying(f"publishing {len(letters)} dead letters", attempt)
    metrics.DLQ_PUBLISHED.labels(letters[0].source_topic).inc(len(letters))


class Backoff:
    """Capped exponential backoff with full jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return random.uniform(0, cap)


class Retrier:
    """Runs an operation until it succeeds: capped exponential backoff with full jitter, forever
    (offsets stay uncommitted meanwhile). An outage is logged when it starts and when it ends,
    not per attempt; `failed` / `succeeded` hooks see every attempt (metrics)."""

    def __init__(
        self, initial: float, maximum: float, *,
        failed: Callable[[], None] | None = None, succeeded: Callable[[], None] | None = None,
    ) -> None:
        self._backoff = (initial, maximum)
        self._failed, self._succeeded = failed, succeeded
        self._outage_since: float | None = None

    async def __call__(self, what: str, op: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff(*self._backoff)
        while True:
            try:
                result = await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - anything else is retried, never dropped
                if self._failed:
                    self._failed()
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    log.warning(
                        "%s failed (%s: %s); retrying with backoff, offsets held until it succeeds",
                        what, exc.__class__.__name__, exc,
                    )
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._outage_since is not None:
                log.warning(
                    "%s succeeded again after %.1f s and %d retries",
                    what, time.monotonic() - self._outage_since, backoff.attempt,
                )
                self._outage_since = None
            if self._succeeded:
                self._succeeded()
            return result


class SharedPool:
    """One writer pool per worker, created on first use (PostgreSQL may be down at start), for
    every topic's sink: connections = db_pool_size, not a pool per topic."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn, self._size = dsn, size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_writer_pool(self._dsn, self._size)
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class BatchSink:
    def __init__(
        self,
        kind: str,
        pool: SharedPool,
        publish_dead_letter: DeadLetterPublisher,
        *,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        direct_copy: bool = True,
    ) -> None:
        self.kind = kind
        self.spec = TABLES[kind]
        self._pool = pool
        self._publish = publish_dead_letter
        self._retrying = Retrier(
            retry_initial_s, retry_max_s,
            failed=lambda: (metrics.DB_RETRIES.labels(self.spec.name).inc(), metrics.DB_UP.set(0)),
            succeeded=lambda: metrics.DB_UP.set(1),
        )
        self._policy = WritePolicy(optimistic=direct_copy)

    async def _write_attempt(self, rows: list[tuple]) -> WriteResult:
        pool = await self._pool.get()
        async with pool.acquire() as conn:
            return await write_rows(conn, self.spec, rows, self._policy)

    async def _write(self, rows: list[tuple]) -> WriteResult:
        return await self._retrying(
            f"writing {len(rows)} rows to {self.spec.name}", lambda: self._write_attempt(rows)
        )

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        await publish_dead_letters(self._publish, self._retrying, letters)

    async def process(self, messages: Sequence[Message]) -> BatchOutcome:
        out = BatchOutcome(messages=len(messages))
        if not messages:
            return out
        topic = messages[0].topic
        spec = self.spec
        to_row, ti = spec.row, spec.time_index
        rows: list[tuple] = []
        origin: list[int] = []  # rows[i] came from messages[origin[i]]
        dead: list[DeadLetter] = []
        received_at = datetime.now(UTC)
        for i, msg in enumerate(messages):
            decoded = decode_message(msg.value, self.kind)
            if decoded.events:
                rows.extend(map(to_row, decoded.events))
                origin.extend([i] * len(decoded.events))
            rejected = decoded.rejected
            if rejected is not None:
                out.events += rejected.events
                out.invalid.update(rejected.reasons())
                dead.append(envelope(msg, rejected.errors, received_at, rejected.members))
        out.events += len(rows)

        if rows:
            result = await self._write(rows)
            out.inserted, out.duplicates = result.inserted, result.duplicates
            out.batch = messages
            if len(result.accepted) == len(rows):  # all of them (the usual case): no copies
                out.stored_rows, out.stored_origin = rows, origin
            else:
                out.stored_rows = [rows[pos] for pos in result.accepted]
                out.stored_origin = [origin[pos] for pos in result.accepted]
            for pos, error in result.rejected:
                out.invalid["database_rejected"] += 1
                dead.append(
                    envelope(
                        messages[origin[pos]],
                        [DeadLetterError(reason="database_rejected", message=error)],
                        received_at,
                    )
                )
            committed = time.time()
            metrics.observe_many(
                metrics.EVENT_TO_ROW_SECONDS.labels(spec.name),
                [max(0.0, committed - r[ti].timestamp()) for r in rows],
            )
            metrics.COPY_SECONDS.labels(spec.name).observe(result.write_seconds)
            metrics.BATCH_SIZE.labels(spec.name).observe(len(rows))
            metrics.ROWS_INSERTED.labels(spec.name).inc(result.inserted)
            metrics.DUPLICATES_SKIPPED.labels(spec.name).inc(result.duplicates)
            for path, n in (("direct", result.direct), ("staged", result.staged), ("conflict", result.conflicts)):
                if n:
                    metrics.WRITE_BATCHES.labels(spec.name, path).inc(n)

        if dead:
            await self._dead_letter(dead)
            out.dead_letters = len(dead)
        metrics.MESSAGES_CONSUMED.labels(topic).inc(out.messages)
        metrics.EVENTS_CONSUMED.labels(topic).inc(out.events)
        for reason, n in out.invalid.items():
            metrics.INVALID_EVENTS.labels(topic, reason).inc(n)
        return out
