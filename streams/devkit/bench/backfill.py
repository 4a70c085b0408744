"""`learnstream bench --backfill N`: a scraper importing history for a new account.

One workspace whose window partition is live (a sample at the current time is stored first), then
N events of its history spread over `days` days (performance samples of 10 series and learning
events, in 1,000-event arrays, oldest first), published as fast as the broker takes them while
one worker consumes. Every history event is late for its windows, so every closed window of the
history is recomputed from the stored rows. Reported: events/s from the first publish to the last
row stored; the time until no recompute is pending; windows corrected
(learnstream_windows_recomputed_total); the worker's peak RSS, sampled every 0.5 s (psutil), also
after storing 10% of the events, so growth with the backfill's size shows.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from db.pool import connect
from streams.config import Settings, admin_dsn
from streams.devkit.bench.alerts import prepared, worker_env
from streams.metrics import scrape, total
from streams.publish import Publisher

PER_MESSAGE = 1000


@dataclass
class BackfillResult:
    events: int
    days: float
    store_s: float = 0.0
    recompute_s: float = 0.0
    windows_corrected: float = 0.0
    rss_at_10pct_mb: float = 0.0
    peak_rss_mb: float = 0.0
    late_events: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"backfill: {self.events:,} events over {self.days:g} days of one workspace, all late for their windows",
            f"stored: {self.store_s:.1f} s, {self.events / self.store_s:,.0f} events/s (first publish -> last row)",
            f"recomputed: {self.windows_corrected:,.0f} windows corrected, done {self.recompute_s:.1f} s after the "
            f"last row; late events counted: {self.late_events:,.0f}",
            f"worker RSS: {self.rss_at_10pct_mb:,.0f} MB at 10% stored, peak {self.peak_rss_mb:,.0f} MB",
        ]


def _history(ws: str, n: int, days: float, seed: int) -> Iterator[tuple[str, bytes]]:
    """(kind, 1,000-event array) of the history, oldest first: 4 samples to 1 learning event."""
    rng = random.Random(seed)
    start = time.time() - days * 86400 - 3600
    span = days * 86400
    batches: dict[str, list[dict]] = {"learning_event": [], "performance_sample": []}
    for i in range(n):
        t = datetime.fromtimestamp(start + span * i / n, UTC).isoformat()
        if i % 5 == 4:
            kind = "learning_event"
            batches[kind].append({"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "workspace_id": ws,
                                  "event_type": "improvement_measured", "timestamp": t, "source_system": "backfill",
                                  "event_data": {"improvement_type": "accuracy", "improvement_percentage": rng.random()},
                                  "processing_time_ms": rng.randrange(1, 500)})
        else:
            kind = "performance_sample"
            batches[kind].append({"sample_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "workspace_id": ws,
                                  "metric_name": f"m{i % 2}", "timestamp": t,
                                  "value": round(rng.lognormvariate(3, 0.5), 3), "tags": {"host": f"h{i % 5}"}})
        if len(batches[kind]) == PER_MESSAGE:
            yield kind, orjson.dumps(batches[kind])
            batches[kind] = []
    for kind, batch in batches.items():
        if batch:
            yield kind, orjson.dumps(batch)


async def _measure(settings: Settings, port: int, pid: int, n: int, days: float, seed: int) -> BackfillResult:
    import psutil

    ps = psutil.Process(pid)
    result = BackfillResult(n, days)
    ws = str(uuid.uuid4())
    conn = await connect(settings.database_url)
    peak = [0]

    async def watch_rss() -> None:
        while True:
            try:
                peak[0] = max(peak[0], ps.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch_rss())
    try:
        async with Publisher(settings.kafka_bootstrap) as pub:
            live = {"sample_id": str(uuid.uuid4()), "workspace_id": ws, "metric_name": "m0",
                    "timestamp": datetime.now(UTC).isoformat(), "value": 1.0}
            await pub.send_all(settings.performance_topic, [(ws.encode(), orjson.dumps(live))])
            while not await conn.fetchval("SELECT count(*) FROM system_performance_metrics"):
                await asyncio.sleep(0.2)
            t0 = time.monotonic()
            topics = {"learning_event": settings.learning_topic, "performance_sample": settings.performance_topic}

            async def publish() -> None:
                buf: list[tuple[str, bytes]] = []
                for kind, value in _history(ws, n, days, seed):
                    buf.append((kind, value))
                    if len(buf) >= 50:
                        for k in topics:
                            await pub.send_all(topics[k], [(ws.encode(), v) for kk, v in buf if kk == k])
                        buf.clear()
                for k in topics:
                    await pub.send_all(topics[k], [(ws.encode(), v) for kk, v in buf if kk == k])

            sender = asyncio.ensure_future(publish())
            want = n + 1
            tenth = False
            while True:
                stored = (await conn.fetchval("SELECT count(*) FROM system_performance_metrics")
                          + await conn.fetchval("SELECT count(*) FROM learning_events"))
                if not tenth and stored >= n // 10:
                    result.rss_at_10pct_mb, tenth = peak[0] / 2**20, True
                if stored >= want:
                    break
                if sender.done() and sender.exception():
                    raise sender.exception()
                await asyncio.sleep(0.5)
            result.store_s = time.monotonic() - t0
            await sender
            t1 = time.monotonic()
            quiet = 0
            last = -1.0
            samples = n - n // 5  # every one of them is late for its windows
            while quiet < 6:  # all windowed, nothing pending, and the corrected count unchanged for 3 s
                m = scrape(port)
                pending = total(m, "learnstream_recompute_pending_hour_buckets")
                corrected = total(m, "learnstream_windows_recomputed_total")
                windowed = total(m, "learnstream_late_events_total", kind="performance_sample") >= samples
                quiet = quiet + 1 if windowed and pending == 0 and corrected == last else 0
                if quiet == 1:
                    result.recompute_s = time.monotonic() - t1
                last = corrected
                await asyncio.sleep(0.5)
            result.windows_corrected = last
            result.late_events = total(scrape(port), "learnstream_late_events_total")
    finally:
        watcher.cancel()
        await conn.close()
    result.peak_rss_mb = peak[0] / 2**20
    return result


def run_backfill_bench(base: Settings, *, events: int, days: float, seed: int, log_dir: Path) -> BackfillResult:
    """A worker with the default windows on its own database and topics; the backfill; its figures."""
    from db.databases import drop_database
    from streams.devkit.services import free_port
    from streams.worker import spawn_worker, stop_worker

    tag = uuid.uuid4().hex[:8]
    settings = asyncio.run(prepared(base, tag, "backfill"))
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = spawn_worker(worker_env(settings, f"/tmp/learnstream-bench-backfill-{tag}", port),
                          log_dir / f"backfill-worker-{tag}.log")
    try:
        return asyncio.run(_measure(settings, port, worker.pid, events, days, seed))
    finally:
        stop_worker(worker)
        asyncio.run(drop_database(admin_dsn(base), settings.database_url.rsplit("/", 1)[1]))
