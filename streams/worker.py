"""`learnstream worker`: preflight checks, then the Faust worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import faust

from db.migrate import pending
from db.pool import connect
from streams import metrics
from streams.app import create_app
from streams.config import Settings
from streams.topics import ensure_topics

log = logging.getLogger("learnstream.worker")


class SchemaNotReady(Exception):
    pass


async def preflight(settings: Settings) -> None:
    """Kafka reachable and topics declared (else KafkaUnavailable); schema current if the DB answers."""
    topics = [*settings.source_topics.values(), settings.dlq_topic]
    if settings.windows_enabled:
        topics += [settings.window_input_topic, settings.rollups_topic, settings.late_events_topic,
                   settings.alert_notifications_topic, settings.alert_commands_topic]
    created = await ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
    if created:
        log.info("created topics %s with %d partitions", ", ".join(created), settings.topic_partitions)
    try:
        conn = await asyncio.wait_for(connect(settings.database_url), 10)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        # not fatal: the sinks retry until PostgreSQL answers, holding offsets meanwhile
        log.warning("PostgreSQL not reachable at start (%s); the worker will retry", exc)
        return
    try:
        todo = await pending(conn)
    finally:
        await conn.close()
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise SchemaNotReady(f"database schema is not current (pending: {names}); run `learnstream migrate`")


def run_worker(settings: Settings) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(preflight(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    port = metrics.serve(settings.metrics_host, settings.metrics_port)
    if port:
        log.warning("metrics on http://%s:%d/metrics", settings.metrics_host, port)
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def spawn_worker(env: dict[str, str], log: Path, timeout_s: float = 90) -> subprocess.Popen:
    """`learnstream worker` in a subprocess with `env`, its output in `log`; returns once it is
    ready (RuntimeError with the log's tail if it exits or is not ready in time)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--log-level", "info"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while "Worker]: Ready" not in log.read_text(errors="replace"):
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
