"""The Faust app: one ingest agent per topic, the partition timer and the lag gauge.

Each agent reads raw bytes in batches (`noack_take`: count or time, whichever comes first) and
acknowledges a batch's messages only after BatchSink.process has stored or dead-lettered every
one of them; Faust commits only acknowledged offsets. A crash before that means redelivery, which
the primary key turns into skipped duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial

import faust

from db.partitions import ensure_partitions
from db.pool import connect
from streams import metrics
from streams.alert_runtime import AlertRuntime
from streams.config import Settings
from streams.retry import Backoff, Retrier
from streams.sink import BatchSink, DeadLetters, SharedPool, envelope
from streams.sizing import MessageLimits
from streams.windowing import WindowStage
from schemas.events import DeadLetterError

log = logging.getLogger("learnstream.app")


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{hp.strip()}" for hp in bootstrap.split(",") if hp.strip()]


def create_app(settings: Settings, limits: MessageLimits | None = None) -> faust.App:
    """The worker's Faust app. `limits`: the size budgets of the topics it produces to (read from
    the broker at start: streams.topics.message_limits), the producer's max_request_size if not given."""
    limits = limits or MessageLimits(max_request_size=settings.producer_max_request_size)
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.producer_max_request_size,
        datadir=str(settings.data_dir),
        table_standby_replicas=0,  # in-memory tables: a standby copy would be a second full replay
    )
    dlq = app.topic(settings.dlq_topic, key_type=bytes, value_type=bytes)

    async def publish_dead_letter(key: bytes | None, value: bytes):
        return await dlq.send(key=key, value=value)

    dead_letters = DeadLetters(
        publish_dead_letter, Retrier(settings.db_retry_initial_s, settings.db_retry_max_s),
        limits.budget(settings.dlq_topic),
    )
    pool = SharedPool(settings.database_url, settings.db_pool_size)
    stage = _window_stage(app, settings, pool, dead_letters, limits) if settings.windows_enabled else None
    app.learnstream_stage = stage  # streams.worker flushes it while Faust waits for acknowledgements at shutdown
    for kind, topic_name in settings.source_topics.items():
        sink = BatchSink(
            kind,
            pool,
            dead_letters,
            retry_initial_s=settings.db_retry_initial_s,
            retry_max_s=settings.db_retry_max_s,
            direct_copy=settings.direct_copy,
            earliest=settings.timestamp_earliest,
            max_future_s=settings.timestamp_max_future_s,
        )
        topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
        app.agent(topic, name=f"ingest-{kind}")(_ingest_agent(sink, settings, stage, dead_letters))

    @app.task
    async def make_partitions_at_start() -> None:
        await _ensure_partitions_retrying(settings)

    @app.timer(settings.partition_check_interval_s)
    async def make_partitions_ahead() -> None:
        await _ensure_partitions_retrying(settings)

    reported: set = set()
    # the topics the agents consume (not the tables' changelogs: Faust reads those only to
    # recover and never commits their offsets)
    consumed = {*settings.source_topics.values()}
    if stage is not None:
        consumed |= {settings.window_input_topic, settings.alert_commands_topic}

    @app.timer(5.0)
    async def report_lag() -> None:
        consumer = app.consumer
        assigned = set(consumer.assignment())
        for tp in reported - assigned:  # revoked in a rebalance: its lag is another worker's now
            metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        reported.intersection_update(assigned)
        for tp, lag in partition_lags(consumer, consumed).items():
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
            reported.add(tp)

    @app.on_before_shutdown.connect
    async def _close(app_: faust.App, **kwargs) -> None:  # noqa: ARG001
        await pool.close()

    return app


async def flush_until_stopped(stage: WindowStage) -> None:
    """At shutdown: Faust stops the timers, then waits until every message is acknowledged, and the
    window stage acknowledges only in a flush: flush every 0.1 s until the loop ends."""
    while True:
        try:
            await stage.flush()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - shutting down: what is not flushed is redelivered
            log.warning("window stage flush at shutdown failed", exc_info=True)
            return
        await asyncio.sleep(0.1)


def partition_lags(consumer, topics: set[str]) -> dict:
    """Messages between the end of each assigned partition of `topics` and the group's committed
    offset (the partitions whose end is not known yet are left out)."""
    out = {}
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        try:
            end = consumer.highwater(tp)
        except Exception:  # noqa: BLE001 - no fetch yet for this partition
            continue
        if end is None:
            continue
        committed = consumer._committed_offset.get(tp)  # faust keeps the committed positions
        out[tp] = max(0, end - (committed or 0))
    return out


def _window_stage(app: faust.App, settings: Settings, pool: SharedPool, dead_letters: DeadLetters,
                  limits: MessageLimits) -> WindowStage:
    notifications = app.topic(settings.alert_notifications_topic, key_type=bytes, value_type=bytes)

    async def publish_notification(key: bytes, value: bytes):
        return await notifications.send(key=key, value=value)

    alerts = AlertRuntime(settings.database_url, pool, publish_notification,
                          (settings.db_retry_initial_s, settings.db_retry_max_s), settings.alert_max_age_s)
    stage = WindowStage(app, settings, pool, alerts, dead_letters, limits)
    # the topics whose backlog means "not quiet" (not the changelog: Faust never commits its offsets)
    inputs = {*settings.source_topics.values(), settings.window_input_topic}

    # both agents acknowledge explicitly: window-input messages once the state they changed is in
    # the changelog (stage.flush), commands once relayed. (Faust's automatic ack would also hold a
    # partition's last message until the next one arrives: lag that never reaches 0.)
    @app.agent(stage.input, name="windows")
    async def windows(stream: faust.StreamT) -> None:
        manual = stream.noack()
        async for event in manual.events():
            # a message the stage cannot fold is dead-lettered inside: nothing it carries stops this
            await stage.process(event.message, partial(manual.ack, event))

    commands = app.topic(settings.alert_commands_topic, key_type=bytes, value_type=bytes)

    @app.agent(commands, name="alert-commands")
    async def alert_commands(stream: faust.StreamT) -> None:
        manual = stream.noack()
        async for event in manual.events():
            await stage.relay_command(event.message)
            await manual.ack(event)

    @app.task
    async def follow_alert_rules() -> None:
        await alerts.follow_rules()

    @app.timer(settings.window_flush_interval_s)
    async def flush_windows() -> None:
        await stage.flush()

    @app.timer(settings.window_close_interval_s)
    async def close_windows() -> None:
        await stage.close_due(caught_up=not any(partition_lags(app.consumer, inputs).values()))

    @app.timer(settings.recompute_interval_s)
    async def recompute_windows() -> None:
        await stage.recompute()

    @app.timer(settings.alert_tick_s)
    async def alert_tick() -> None:
        if alerts.rules_loaded.is_set():
            await alerts.tick()

    @app.timer(5.0)
    async def report_windows() -> None:
        stage.report()

    @app.timer(60.0)
    async def forget_old_snapshots() -> None:
        stage.forget_old_snapshots()

    return stage


def _ingest_agent(sink: BatchSink, settings: Settings, stage: WindowStage | None, dead_letters: DeadLetters):
    """Batches are processed as tasks, up to `max_inflight_batches` at a time, so the next batch
    is decoded and validated (Python, this core) while the previous one is written (PostgreSQL,
    the other core). Each task acknowledges its own messages once they are stored or
    dead-lettered (and, with windows on, handed to the window stage); Faust commits an offset only
    when everything before it is acknowledged, so out-of-order completion is safe, and a crash
    leaves in-flight batches unacknowledged. The window stage gets the batches in order: a task
    sends its stored events only after the task before it sent its own."""

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
                if stage is not None and outcome.stored_rows:
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
                if stage is not None and outcome.stored_rows:
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


async def _ensure_partitions_retrying(settings: Settings) -> None:
    backoff = Backoff(settings.db_retry_initial_s, settings.db_retry_max_s * 6)
    while True:
        try:
            conn = await connect(settings.database_url)
            try:
                created = await ensure_partitions(conn)
            finally:
                await conn.close()
            if created:
                log.info("created partitions: %s", ", ".join(created))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - DEFAULT partitions catch rows meanwhile
            delay = backoff.next_delay()
            log.warning("partition maintenance failed (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
