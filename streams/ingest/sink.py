"""One topic's batch path: decode and validate the messages, write the rows idempotently, publish
dead letters, count everything. The caller acknowledges the messages only after `process`
returns; `process` returns only when every message is either stored or dead-lettered.

Infrastructure failures (PostgreSQL or Kafka unreachable, timeouts) of the write or of the
dead-letter publish are retried with capped exponential backoff and full jitter for as long as
they last (streams/retry.py): the offsets stay uncommitted meanwhile, and the worker stays up. The
outage is logged when it starts and when it ends, not per attempt. Whatever a message's content
causes - a decode or validation error, a time outside the acceptance window, a row PostgreSQL
refuses - dead-letters that message (or array member) and the batch goes on.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson

from db.pool import SharedPool
from db.tables import SINKS, UpsertSpec
from db.writer import WritePolicy, WriteResult, write_rows
from schemas.decode import decode_message
from schemas.events import ID_FIELD, DeadLetter, DeadLetterError
from streams import metrics
from streams.dead_letters import DeadLetters, Message, envelope
from streams.domain.unrouted import UnroutedNotices
from streams.ingest.registration import WorkspaceRegistry
from streams.retry import PermanentFailure, Retrier

log = logging.getLogger("learnstream.sink")


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


class BatchSink:
    def __init__(
        self,
        kind: str,
        pool: SharedPool,
        dead_letters: DeadLetters,
        *,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        direct_copy: bool = True,
        earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC),
        max_future_s: float = 300.0,
        route: bool = True,
        workspaces: WorkspaceRegistry | None = None,
        unrouted: UnroutedNotices | None = None,
    ) -> None:
        self.kind = kind
        self.spec = SINKS[kind]
        self._workspaces = workspaces if workspaces is not None else WorkspaceRegistry("auto")
        if isinstance(self.spec, UpsertSpec):
            self._workspace_of = lambda row: row[2]["workspace_id"]
        else:
            self._workspace_of = itemgetter(self.spec.columns.index("workspace_id"))
        self._route = route
        self._unrouted = unrouted if unrouted is not None else UnroutedNotices(None, Retrier(retry_initial_s, retry_max_s))
        self._pool = pool
        self._dead_letters = dead_letters
        self._earliest, self._max_future = earliest, timedelta(seconds=max_future_s)
        self._retrying = Retrier(
            retry_initial_s, retry_max_s,
            failed=lambda: (metrics.DB_RETRIES.labels(self.spec.name).inc(), metrics.DB_UP.set(0)),
            succeeded=lambda: metrics.DB_UP.set(1),
        )
        self._policy = WritePolicy(optimistic=direct_copy)

    def acceptance(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The event times accepted now: [earliest, now + the allowed clock skew]."""
        return self._earliest, (now or datetime.now(UTC)) + self._max_future

    async def _write_attempt(self, rows: list[tuple], isolate: bool) -> WriteResult:
        pool = await self._pool.get()
        async with pool.acquire() as conn:
            return await write_rows(conn, self.spec, rows, self._policy, isolate=isolate, route=self._route)

    async def _write(self, rows: list[tuple]) -> WriteResult:
        what = f"writing {len(rows)} rows to {self.spec.name}"
        try:
            return await self._retrying(what, lambda: self._write_attempt(rows, False))
        except PermanentFailure as exc:
            # not the database's state and not a known data error: find the row(s) it comes from
            log.warning("%s failed for good (%s); isolating the rows that cause it", what, exc.error)
            return await self._retrying(what, lambda: self._write_attempt(rows, True))

    async def _unknown_workspaces(self, ids: set) -> set:
        if self._workspaces.all_known(ids):  # the usual case: no connection taken
            return set()

        async def attempt() -> set:
            pool = await self._pool.get()
            async with pool.acquire() as conn:
                return await self._workspaces.unknown(conn, ids)

        return await self._retrying("checking the events' workspaces", attempt)

    async def _drop_unknown_workspaces(
        self, messages: Sequence[Message], rows: list[tuple], origin: list[int], out: BatchOutcome,
        dead: list[DeadLetter], received_at: datetime,
    ) -> tuple[list[tuple], list[int]]:
        """Rows of registered workspaces only; a message with others is dead-lettered (unknown_workspace)."""
        workspace_of = self._workspace_of
        unknown = await self._unknown_workspaces(set(map(workspace_of, rows)))
        if not unknown:
            return rows, origin
        kept_rows, kept_origin = [], []
        refused: dict[int, list[tuple[int, object]]] = {}
        for row, i in zip(rows, origin):
            if workspace_of(row) in unknown:
                refused.setdefault(i, []).append(workspace_of(row))
            else:
                kept_rows.append(row)
                kept_origin.append(i)
        for i, workspaces in refused.items():
            out.invalid["unknown_workspace"] += len(workspaces)
            dead.append(envelope(messages[i], [
                DeadLetterError(reason="unknown_workspace", message=f"workspace {w} is not registered "
                                "(`learnstream workspaces add`, or LEARNSTREAM_WORKSPACE_REGISTRATION=auto)")
                for w in dict.fromkeys(workspaces)
            ][:16], received_at))
        return kept_rows, kept_origin

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        await self._dead_letters(letters)

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
        accept = self.acceptance(received_at)
        for i, msg in enumerate(messages):
            decoded = decode_message(msg.value, self.kind, accept)
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
            rows, origin = await self._drop_unknown_workspaces(messages, rows, origin, out, dead, received_at)

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
                msg = messages[origin[pos]]
                member = _member_of(msg.value, ID_FIELD[self.kind], rows[pos][0])
                dead.append(envelope(
                    msg,
                    [DeadLetterError(reason="database_rejected", index=member[0] if member else None, message=error)],
                    received_at, [member] if member else None,
                ))
            routing = result.routing
            if routing.unrouted or routing.unknown:
                self._unrouted.count(routing)
                ti0, wi0 = spec.time_index, spec.workspace_index
                origin_of = {(r[ti0], r[wi0], r[0]): i for r, i in zip(rows, origin)} if routing.unrouted else {}
                await self._unrouted.announce(routing, messages, origin_of, received_at)
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


def _member_of(value: bytes | None, id_field: str, event_id) -> tuple[int, Any] | None:
    """(index, member) of the event whose `id_field` is `event_id` in an array message value (the rare path of a row
    PostgreSQL refused: its dead letter carries that member, not the whole array); None for a
    single-event message or when it cannot be found."""
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, list):
        return None
    wanted = str(event_id)
    for i, m in enumerate(parsed):
        if isinstance(m, dict) and str(m.get(id_field)).lower() == wanted:
            return i, m
    return None
