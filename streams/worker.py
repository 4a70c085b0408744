"""`learnstream worker`: preflight checks, then the Faust worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import faust

from db.migrate import pending
from db.pool import connect
from streams import health, loops, metrics
from streams.app import create_app, flush_until_stopped
from streams.cli_support import CommandError
from streams.config import Settings
from streams.kafka_auth import kafka_auth
from streams.sizing import MIN_BUDGET, MessageLimits
from streams.topics import ensure_topics, message_limits, replication_factor

log = logging.getLogger("learnstream.worker")


class SchemaNotReady(CommandError):
    """The database or the topics are not as this worker needs them (the message says what to do)."""


async def preflight(settings: Settings) -> MessageLimits:
    """Kafka reachable and topics declared (else KafkaUnavailable); the size budgets of the topics
    produced to; schema current if the DB answers."""
    topics = [*settings.source_topics.values(), settings.dlq_topic, settings.unrouted_topic]
    if settings.windows_enabled:
        topics += [settings.window_input_topic, settings.rollups_topic, settings.late_events_topic,
                   settings.alert_notifications_topic, settings.alert_commands_topic]
    # the replicas of what the worker creates, Faust's changelog included (create_app reads it)
    auth = kafka_auth(settings)
    settings.topic_replication_factor = await replication_factor(settings.kafka_bootstrap,
                                                                 settings.topic_replication_factor, auth=auth)
    created = await ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions,
                                  replication_factor=settings.topic_replication_factor, auth=auth)
    if created:
        log.info("created topics %s with %d partitions", ", ".join(created), settings.topic_partitions)
    produced = [*topics[len(settings.source_topics):], f"{settings.app_id}-windows-changelog"]
    limits = await message_limits(settings.kafka_bootstrap, produced, settings.producer_max_request_size, auth=auth)
    small = {t: limits.budget(t) for t in produced if limits.budget(t) < MIN_BUDGET}
    if small:
        raise SchemaNotReady(
            "topics allow too small messages for the worker (it needs "
            f"{MIN_BUDGET + 512} bytes): " + ", ".join(f"{t} ({b + 512})" for t, b in small.items())
            + "; raise their max.message.bytes")
    log.info("message budgets: %s", ", ".join(f"{t}={limits.budget(t)}" for t in produced))
    try:
        conn = await asyncio.wait_for(connect(settings.database_url), 10)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        # not fatal: the sinks retry until PostgreSQL answers, holding offsets meanwhile
        log.warning("PostgreSQL not reachable at start (%s); the worker will retry", exc)
        return limits
    try:
        todo = await pending(conn)
    finally:
        await conn.close()
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise SchemaNotReady(f"database schema is not current (pending: {names}); run `learnstream migrate`")
    return limits


class Worker(faust.Worker):
    """Faust's worker with a bound on shutdown: after SIGTERM/SIGINT, whatever is still retrying
    or flushing gets `shutdown_timeout_s`, then the process exits. Nothing is lost by that: what was
    not acknowledged is not committed, and is redelivered to whoever owns the partition next."""

    shutdown_timeout_s: float = 10.0

    def _schedule_shutdown(self, signal) -> None:  # mode's signature
        if not self._signal_stop_time:
            timer = threading.Timer(self.shutdown_timeout_s, self._exit_now)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)

    async def _stop_on_signal(self, signal) -> None:  # mode's signature
        ingest = getattr(self.app, "learnstream_ingest", None)
        if ingest is not None:  # first: its batches in flight still produce (window-input, DLQ)
            await ingest.stop(self.shutdown_timeout_s / 2)
        stage = getattr(self.app, "learnstream_stage", None)
        if stage is not None:
            asyncio.ensure_future(flush_until_stopped(stage))
        await super()._stop_on_signal(signal)

    def _exit_now(self) -> None:
        log.warning("shutdown took longer than %.0f s; exiting now (unacknowledged work is redelivered)",
                    self.shutdown_timeout_s)
        logging.shutdown()
        os._exit(0)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def tune_gc(threshold: int) -> None:
    """Fewer collections: the worker allocates a tuple or two per event and keeps batches,
    panes and Faust's state alive, so with Python's default (a young collection every 700
    allocations, a full one every 70,000) the collector walks the same live objects over and over
    (measured: half the window-input parse time). What is alive at start is frozen (never walked)."""
    gc.collect()
    gc.freeze()
    if threshold:
        _gen0, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(threshold, gen1, gen2)


def probes(settings: Settings, app: faust.App, loop: asyncio.AbstractEventLoop) -> health.Probes:
    """/healthz and /readyz of this worker: its loop, its ingest consumer, the database, the lag."""
    db = health.DatabaseProbe(settings.database_url, settings.health_timeout_s)
    readiness = health.Readiness(app.learnstream_ingest, db, settings.ready_max_lag, loops.FAILING)
    return health.Probes(loop, readiness, settings.health_timeout_s)


def run_worker(settings: Settings) -> None:
    loop = _new_loop(settings.event_loop)
    asyncio.set_event_loop(loop)
    limits = loop.run_until_complete(preflight(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, limits)
    port = metrics.serve(settings.metrics_host, settings.metrics_port, probes(settings, app, loop))
    if port:
        log.warning("metrics on http://%s:%d/metrics (and /healthz, /readyz)", settings.metrics_host, port)
    worker = Worker(app, loop=loop, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.shutdown_timeout_s = settings.shutdown_timeout_s
    tune_gc(settings.gc_threshold)
    worker.execute_from_commandline()


#: what a worker logs (at level info) once it has started
READY_LINE = "Worker]: Ready"


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`learnstream worker` (log level info) in a subprocess with `env`, its output in `log`; at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--log-level", "info"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )


def spawn_worker(env: dict[str, str], log: Path, timeout_s: float = 90) -> subprocess.Popen:
    """`learnstream worker` in a subprocess with `env`, its output in `log`; returns once it is
    ready (RuntimeError with the log's tail if it exits or is not ready in time)."""
    proc = start_worker(env, log)
    deadline = time.monotonic() + timeout_s
    while READY_LINE not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the worker did not start; see {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.25)
    return proc


def stop_worker(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM (a clean shutdown: in-flight batches finish), then SIGKILL after `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
