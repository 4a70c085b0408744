"""The ingest agent of one source topic: batches of raw messages through the BatchSink, in
parallel tasks, acknowledged only once stored or dead-lettered (streams/app.py wires one per topic).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import faust

from db.tables import TABLES
from schemas.events import DeadLetterError
from streams import metrics
from streams.config import Settings
from streams.ingest.sink import BatchSink, DeadLetters, envelope
from streams.windows.stage import WindowStage

log = logging.getLogger("learnstream.ingest")


def ingest_agent(sink: BatchSink, settings: Settings, stage: WindowStage | None, dead_letters: DeadLetters):
    """Batches are processed as tasks, up to `max_inflight_batches` at a time, so the next batch
    is decoded and validated (Python, this core) while the previous one is written (PostgreSQL,
    the other core). Each task acknowledges its own messages once they are stored or
    dead-lettered (and, with windows on, handed to the window stage); Faust commits an offset only
    when everything before it is acknowledged, so out-of-order completion is safe, and a crash
    leaves in-flight batches unacknowledged. The window stage gets the batches in order: a task
    sends its stored events only after the task before it sent its own."""

    windowed = sink.kind in TABLES  # the window stage keeps windows over the three log tables

    async def ingest(stream: faust.StreamT) -> None:
        slots = asyncio.Semaphore(settings.max_inflight_batches)
        inflight: set[asyncio.Task] = set()
        loop = asyncio.get_event_loop()
        previous: asyncio.Future = loop.create_future()
        previous.set_result(None)

        async def handle(events: list, before: asyncio.Future, mine: asyncio.Future) -> None:
            messages = [e.message for e in events]
            stage_name = "ingest"
            try:
                outcome = await sink.process(messages)
                await asyncio.shield(before)
                stage_name = "windows"
                if stage is not None and windowed and outcome.stored_rows:
                    await stage.send_stored(sink.kind, outcome.stored_rows, outcome.stored_origin, outcome.batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - infrastructure is retried inside: this is the batch's own
                # (a failure no retry cures): its messages are taken one at a time, and those that
                # fail alone are dead-lettered; nothing of it may stop the stream
                log.exception("batch of %d messages failed at the %s stage; isolating the messages that cause it",
                              len(events), stage_name)
                await asyncio.shield(before)  # the window stage gets this batch's events after the last batch's
                await _isolate(sink, stage, dead_letters, messages, stage_name, exc)
            finally:
                if not mine.done():
                    mine.set_result(None)
                slots.release()
            for event in events:
                await stream.ack(event)

        try:
            async for events in stream.noack_take(settings.batch_max_events, within=settings.batch_within_s):
                await slots.acquire()
                mine = loop.create_future()
                task = asyncio.ensure_future(handle(list(events), previous, mine))
                previous = mine
                inflight.add(task)
                task.add_done_callback(inflight.discard)
        finally:
            if inflight:  # let in-flight writes finish briefly; whatever does not is redelivered
                _done, pending = await asyncio.wait(inflight, timeout=settings.shutdown_timeout_s / 2)
                for task in pending:
                    task.cancel()

    ingest.__name__ = ingest.__qualname__ = f"ingest_{sink.kind}"
    return ingest


async def _isolate(sink: BatchSink, stage: WindowStage | None, dead_letters: DeadLetters, messages: list,
                   stage_name: str, exc: BaseException) -> None:
    """The last resort for a batch that failed as a whole: each message again on its own; one that
    fails alone goes to the DLQ with why. At the windows stage its events are stored already (the
    envelope says so: stage=windows)."""
    failed: list[tuple[object, str, BaseException]] = []
    if len(messages) == 1:
        failed.append((messages[0], stage_name, exc))
    else:
        for m in messages:
            where = "ingest"
            try:
                outcome = await sink.process([m])
                where = "windows"
                if stage is not None and sink.kind in TABLES and outcome.stored_rows:
                    await stage.send_stored(sink.kind, outcome.stored_rows, outcome.stored_origin, outcome.batch)
            except asyncio.CancelledError:
                raise
            except Exception as one:  # noqa: BLE001 - this message's own failure
                failed.append((m, where, one))
    now = datetime.now(UTC)
    for m, where, err in failed:
        reason = "database_rejected" if where == "ingest" else "window_stage"
        text = f"{err.__class__.__name__}: {err}"[:2000]
        log.error("message %s[%d]@%d set aside at the %s stage: %s", m.topic, m.partition, m.offset, where, text)
        await dead_letters([envelope(m, [DeadLetterError(reason=reason, message=text)], now, stage=where)])
        metrics.STAGE_FAILURES.labels(where, reason).inc()
        if where == "ingest":
            metrics.MESSAGES_CONSUMED.labels(m.topic).inc()
            metrics.EVENTS_CONSUMED.labels(m.topic).inc()
            metrics.INVALID_EVENTS.labels(m.topic, reason).inc()
