"""The Faust app: the window stage's agents, tables and timers, the jobs, the partition timer and
the lag gauge, and the ingest consumer it starts and stops.

The source topics are read by the worker's own consumer (streams/ingest/consumer.py), in batches,
into BatchSink; a batch's offsets are committed only after every message of it is stored or
dead-lettered (and its events are on window-input). A crash before that means redelivery, which
the primary key turns into skipped duplicates. Faust consumes what is low-volume and stateful:
window-input, alert commands and the windows table's changelog.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import faust

from db.partitions import ensure_partitions
from db.pool import SharedPool, connect
from db.tables import TABLES
from streams import memory, metrics
from streams.alerts.runtime import AlertRuntime
from streams.config import Settings
from streams.dead_letters import DeadLetters
from streams.domain.parked import ParkedEvents
from streams.domain.unrouted import UnroutedNotices
from streams.ingest.consumer import IngestConsumer
from streams.ingest.registration import WorkspaceRegistry
from streams.ingest.sink import BatchSink
from streams.kafka_auth import kafka_auth
from streams.loops import guarded, supervised
from streams.retry import Backoff, Retrier
from streams.sizing import MessageLimits
from streams.windows.stage import WindowStage

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
        broker_credentials=kafka_auth(settings).faust_credentials(),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor or 1,
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
    unrouted_topic = app.topic(settings.unrouted_topic, key_type=bytes, value_type=bytes)

    async def publish_unrouted(key: bytes | None, value: bytes):
        return await unrouted_topic.send(key=key, value=value)

    unrouted = UnroutedNotices(publish_unrouted, Retrier(settings.db_retry_initial_s, settings.db_retry_max_s))
    pool = SharedPool(settings.database_url, settings.db_pool_size)
    lags = []  # the ingest consumer's lags, once it exists (the window stage reads them)
    stage = _window_stage(app, settings, pool, dead_letters, limits, lags) if settings.windows_enabled else None
    app.learnstream_stage = stage  # streams.worker flushes it while Faust waits for acknowledgements at shutdown
    registry = WorkspaceRegistry(settings.workspace_registration)
    sinks: dict[str, BatchSink] = {}
    for kind, topic_name in settings.source_topics.items():
        sinks[topic_name] = BatchSink(
            kind,
            pool,
            dead_letters,
            retry_initial_s=settings.db_retry_initial_s,
            retry_max_s=settings.db_retry_max_s,
            direct_copy=settings.direct_copy,
            earliest=settings.timestamp_earliest,
            max_future_s=settings.timestamp_max_future_s,
            route=settings.domain_routing,
            workspaces=registry,
            unrouted=unrouted,
        )
    ingest = IngestConsumer(settings, sinks, stage, dead_letters)
    lags.append(ingest.lags)
    app.learnstream_ingest = ingest  # streams.worker stops it first at shutdown

    @app.task
    @supervised("start_ingest")
    async def start_ingest() -> None:
        # after Faust's producer is up (the batches produce dead letters and window-input)
        await ingest.start()

    delivery = _alert_delivery(app, settings, limits) if settings.alert_delivery_enabled else None

    if settings.domain_routing:
        parked = ParkedEvents(pool, dead_letters, settings.learning_topic, settings.domain_park_max_age_s)

        @app.timer(settings.domain_resume_interval_s)
        @guarded("resume_parked_events")
        async def resume_parked_events() -> None:
            await parked.tick()

    if settings.jobs_enabled:
        from streams.jobs.catalog import JOBS
        from streams.jobs.runner import JobRunner

        runner = JobRunner(settings.database_url, JOBS)

        @app.timer(settings.jobs_check_interval_s)
        @guarded("run_due_jobs")
        async def run_due_jobs() -> None:
            await runner.run_due()

    @app.task
    async def make_partitions_at_start() -> None:
        await _ensure_partitions_retrying(settings)

    @app.timer(settings.partition_check_interval_s)
    @guarded("make_partitions_ahead")
    async def make_partitions_ahead() -> None:
        await _ensure_partitions_retrying(settings)

    reported: set = set()
    # the topics Faust's agents consume (not the tables' changelogs: Faust reads those only to
    # recover and never commits their offsets)
    consumed = {settings.window_input_topic, settings.alert_commands_topic} if stage is not None else set()

    @app.timer(5.0)
    @guarded("report_lag")
    async def report_lag() -> None:
        lags = {(tp.topic, tp.partition): lag for tp, lag in partition_lags(app.consumer, consumed).items()}
        lags.update({(tp.topic, tp.partition): lag for tp, lag in ingest.lags().items()})
        for topic, partition in reported - set(lags):  # revoked in a rebalance: another worker's now
            metrics.CONSUMER_LAG.remove(topic, str(partition))
        for (topic, partition), lag in lags.items():
            metrics.CONSUMER_LAG.labels(topic, str(partition)).set(lag)
        reported.clear()
        reported.update(lags)

    @app.on_before_shutdown.connect
    async def _close(app_: faust.App, **kwargs) -> None:
        await ingest.stop(settings.shutdown_timeout_s / 2)
        if delivery is not None:
            await delivery.stop()
        await pool.close()

    return app


def _alert_delivery(app: faust.App, settings: Settings, limits: MessageLimits):
    """The delivery of alert notifications to their channels (streams/alerts/delivery/): its own
    consumer of the notifications topic and its own tasks, so it never holds up the window stage."""
    from streams.alerts.delivery import AlertDelivery

    undelivered = app.topic(settings.alert_undelivered_topic, key_type=bytes, value_type=bytes)

    async def publish_undelivered(key: bytes | None, value: bytes):
        return await undelivered.send(key=key, value=value)

    delivery = AlertDelivery(settings, publish_undelivered, limits.budget(settings.alert_undelivered_topic))

    @app.task
    @supervised("start_alert_delivery")
    async def start_alert_delivery() -> None:
        await delivery.start()

    return delivery


async def flush_until_stopped(stage: WindowStage) -> None:
    """At shutdown: Faust stops the timers, then waits until every message is acknowledged, and the
    window stage acknowledges only in a flush: flush every 0.1 s until the loop ends."""
    while True:
        try:
            await stage.flush()
        except asyncio.CancelledError:
            raise
        except Exception:  # shutting down: what is not flushed is redelivered
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
                  limits: MessageLimits, ingest_lags: list) -> WindowStage:
    notifications = app.topic(settings.alert_notifications_topic, key_type=bytes, value_type=bytes)

    async def publish_notification(key: bytes, value: bytes):
        return await notifications.send(key=key, value=value)

    alerts = AlertRuntime(settings.database_url, pool, publish_notification,
                          (settings.db_retry_initial_s, settings.db_retry_max_s), settings.alert_max_age_s,
                          settings.alert_instance_expiry_s)
    stage = WindowStage(app, settings, pool, alerts, dead_letters, limits)
    # the topics whose backlog means "not quiet": the windowed log topics (the ingest consumer's)
    # and window-input (not the changelog: Faust never commits its offsets; not the entity topics,
    # which have no windows)
    windowed = {settings.source_topics[k] for k in TABLES}

    def busy() -> bool:
        if any(partition_lags(app.consumer, {settings.window_input_topic}).values()):
            return True
        return any(lag for lags in ingest_lags for tp, lag in lags().items() if tp.topic in windowed)

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
    @supervised("follow_alert_rules")
    async def follow_alert_rules() -> None:
        await alerts.follow_rules()

    @app.timer(settings.window_flush_interval_s)
    @guarded("flush_windows")
    async def flush_windows() -> None:
        await stage.flush()

    @app.timer(settings.window_close_interval_s)
    @guarded("close_windows")
    async def close_windows() -> None:
        await stage.close_due(caught_up=not busy())

    @app.timer(settings.recompute_interval_s)
    @guarded("recompute_windows")
    async def recompute_windows() -> None:
        await stage.recompute()

    @app.timer(settings.alert_tick_s)
    @guarded("alert_tick")
    async def alert_tick() -> None:
        if alerts.rules_loaded.is_set():
            await alerts.tick()

    @app.timer(settings.window_input_stall_s / 2)
    @guarded("resume_undelivered_window_input")
    async def resume_undelivered_window_input() -> None:
        await stage.resume_undelivered(settings.window_input_stall_s)

    @app.timer(5.0)
    @guarded("report_windows")
    async def report_windows() -> None:
        stage.report()

    @app.timer(60.0)
    @guarded("forget_old_snapshots")
    async def forget_old_snapshots() -> None:
        stage.forget_old_snapshots()

    @app.timer(memory.RELEASE_INTERVAL_S)
    @guarded("release_memory")
    async def release_memory() -> None:
        # what closed windows, dropped tenants and spent batches freed, back to the OS (streams/memory.py)
        await asyncio.to_thread(memory.release)

    return stage


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
