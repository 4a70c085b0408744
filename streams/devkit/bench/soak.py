"""`learnstream bench --soak`: a worker under a steady paced load for minutes; is its memory flat?

One worker with the default windows (60 s tumbling, 300 s hopping, grace 10 s) on its own
database and topics. The bench publishes the default mix (60% learning events, 30% performance
samples, 10% engagement updates) at `rate` events/s, timed now, in the chosen shape, for
`seconds`. Every 5 s it samples the worker's RSS (psutil) and how many rows are stored. Reported:
RSS after the first minute (the warm-up: buffers, windows of the first minutes, imports) and at
the end, its peak, the growth from the first to the end; event -> row p50/p95/p99 over the whole
run (ingested_at - event time, the performance samples); rows stored against events sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from db.pool import connect
from streams.config import Settings, admin_dsn
from streams.devkit.bench.alerts import prepared, worker_env
from streams.devkit.synthetic import ID_FIELD, Generator
from streams.publish import Publisher

MIX = {"learning_event": 0.6, "performance_sample": 0.3, "engagement_update": 0.1}
TIME_FIELD = {"learning_event": "timestamp", "performance_sample": "timestamp", "engagement_update": "recorded_at"}
WARM_UP_S = 60.0


@dataclass
class SoakResult:
    rate: int
    seconds: float
    shape: str
    sent: int = 0
    stored: int = 0
    #: (seconds since start, RSS MB, rows stored)
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    latency_ms: tuple[float, float, float] | None = None
    behind_s: float = 0.0  # how long after the last publish the last row was stored

    @property
    def warm_rss(self) -> float:
        after = [rss for t, rss, _ in self.samples if t >= WARM_UP_S]
        return after[0] if after else (self.samples[-1][1] if self.samples else 0.0)

    @property
    def end_rss(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0

    @property
    def growth(self) -> float:
        return (self.end_rss - self.warm_rss) / self.warm_rss if self.warm_rss else 0.0

    def lines(self) -> list[str]:
        out = [f"soak: {self.rate:,} events/s ({self.shape}) for {self.seconds:.0f} s, default windows and mix",
               f"sent {self.sent:,} events, stored {self.stored:,}; the last row {self.behind_s:.1f} s after the last publish"]
        if self.latency_ms:
            p50, p95, p99 = self.latency_ms
            out.append(f"event -> row over the run: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
        peak = max((rss for _, rss, _ in self.samples), default=0.0)
        out.append(f"worker RSS: {self.warm_rss:.0f} MB after {WARM_UP_S:.0f} s, {self.end_rss:.0f} MB at the end "
                   f"({self.growth:+.1%}), peak {peak:.0f} MB")
        out.append("RSS by minute (MB): " + ", ".join(f"{rss:.0f}" for rss in self.by_minute()))
        return out

    def by_minute(self) -> list[float]:
        """RSS at the first sample of each whole minute of the run."""
        out: list[float] = []
        for t, rss, _ in self.samples:
            if t >= 60 * (len(out) + 1):
                out.append(rss)
        return out

    def as_json(self) -> dict:
        return {"rate": self.rate, "seconds": self.seconds, "shape": self.shape, "sent": self.sent,
                "stored": self.stored, "latency_ms": self.latency_ms, "behind_s": self.behind_s,
                "warm_rss_mb": self.warm_rss, "end_rss_mb": self.end_rss, "growth": self.growth,
                "samples": self.samples}


async def _measure(settings: Settings, pid: int, rate: int, seconds: float, shape: str, seed: int) -> SoakResult:
    import psutil

    ps = psutil.Process(pid)
    result = SoakResult(rate, seconds, shape)
    gen = Generator(seed=seed)
    make = {"learning_event": gen.learning_event, "performance_sample": gen.performance_sample,
            "engagement_update": gen.engagement_update}
    topics = {"learning_event": settings.learning_topic, "performance_sample": settings.performance_topic,
              "engagement_update": settings.engagement_topic}
    ids: dict[str, list[str]] = {k: [] for k in MIX}
    per_tick = max(10, rate // 10)  # 10 ticks a second
    interval = per_tick / rate
    conn = await connect(settings.database_url)
    t0 = time.monotonic()

    lock = asyncio.Lock()  # one connection: the 5-s sampler and the end of the run take turns

    async def count() -> int:
        async with lock:
            return sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in
                        ("learning_events", "system_performance_metrics", "content_performance_metrics")])

    async def watch() -> None:
        while True:
            try:
                rss = ps.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                return
            result.samples.append((time.monotonic() - t0, rss, await count()))
            await asyncio.sleep(5.0)

    watcher = asyncio.ensure_future(watch())
    marker = datetime.now(UTC)
    try:
        async with Publisher(settings.kafka_bootstrap, linger_ms=5) as pub:
            t_next = time.monotonic()
            end = t_next + seconds
            while time.monotonic() < end:
                now = datetime.now(UTC).isoformat()
                for kind, share in MIX.items():
                    events = []
                    for _ in range(round(per_tick * share)):
                        ev = make[kind]()
                        ev[TIME_FIELD[kind]] = now
                        ev.pop("peak_engagement_time", None)
                        events.append(ev)
                        ids[kind].append(ev[ID_FIELD[kind]])
                    if shape == "single":
                        msgs = [(None, orjson.dumps(e)) for e in events]
                    else:
                        msgs = [(None, orjson.dumps(events[i:i + 1000])) for i in range(0, len(events), 1000)]
                    await pub.send_all(topics[kind], msgs)
                    result.sent += len(events)
                t_next += interval
                await asyncio.sleep(max(0.0, t_next - time.monotonic()))
        published = time.monotonic()
        deadline = published + 120
        while time.monotonic() < deadline:
            result.stored = await count()
            if result.stored >= result.sent:
                break
            await asyncio.sleep(0.5)
        result.behind_s = time.monotonic() - published
        async with lock:
            q = await conn.fetchrow(
                """SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY
                       extract(epoch FROM ingested_at - "timestamp")) AS q
                   FROM system_performance_metrics WHERE ingested_at >= $1""", marker)
        if q["q"]:
            result.latency_ms = tuple(x * 1000 for x in q["q"])  # type: ignore[assignment]
    finally:
        watcher.cancel()
        await conn.close()
    return result


def run_soak_bench(base: Settings, *, rate: int, seconds: float, shape: str, seed: int, log_dir: Path,
                   worker_settings: dict[str, str] | None = None) -> SoakResult:
    """A worker on its own database and topics under `rate` events/s for `seconds`; its figures."""
    from db.databases import drop_database
    from streams.devkit.services import free_port
    from streams.worker import spawn_worker, stop_worker

    tag = uuid.uuid4().hex[:8]
    settings = asyncio.run(prepared(base, tag, "soak"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = worker_env(settings, f"/tmp/learnstream-bench-soak-{tag}", free_port())
    env.update(worker_settings or {})
    worker = spawn_worker(env, log_dir / f"soak-worker-{tag}.log")
    try:
        return asyncio.run(_measure(settings, worker.pid, rate, seconds, shape, seed))
    finally:
        stop_worker(worker)
        asyncio.run(drop_database(admin_dsn(base), settings.database_url.rsplit("/", 1)[1]))
