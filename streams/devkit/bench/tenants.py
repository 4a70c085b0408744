"""`learnstream bench --soak-tenants N`: many tenants, each seen once; does the worker's memory come
back once their windows have closed (issue #23 item 12)?

One worker on its own database and topics, with short windows (10 s tumbling, 30 s hopping by 10 s,
grace 1 s, idle 2 s; `--set` changes them) so that a wave's windows all close within a minute. The
bench publishes `waves` waves of N single-event performance samples, each sample from a workspace
never seen before, all timed at the wave's start (the source partitions are consumed unevenly: times
spread over the publishing would make some samples late, their windows recomputed one workspace at
a time). The windows close on the wall clock once the wave has passed (`window_idle_s`). After
each wave it waits until every sample is stored, every window is in performance_rollups and the
worker holds no open pane (its `window_open_panes` metric), then `settle_s` more seconds, sampling
the worker's RSS (psutil) every second throughout.

Reported: RSS at the start (the worker ready, nothing sent), the peak of each wave, and RSS after
each wave's windows closed and settled. The worker hands freed memory back to the OS every 30 s
(streams/memory.py); where it cannot, the allocator keeps it for reuse, and the figure that says
"bounded" is the second wave: RSS after it about what it was after the first, not twice the first
wave's growth.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from db.pool import connect
from streams.config import Settings, admin_dsn
from streams.devkit.bench.alerts import prepared, worker_env
from streams.publish import Publisher

#: the bench's windows (a wave closes within a minute); `--set` overrides them
WINDOWS = {"window_tumbling_s": 10.0, "window_hopping_s": 30.0, "window_hop_step_s": 10.0, "window_grace_s": 1.0,
           "window_idle_s": 2.0}


@dataclass
class Wave:
    sent: int = 0
    stored: int = 0
    rollups: int = 0
    publish_s: float = 0.0
    #: seconds from the end of publishing until every sample was stored and no pane was open (None: not in time)
    closed_after_s: float | None = None
    peak_mb: float = 0.0
    after_mb: float = 0.0


@dataclass
class TenantsResult:
    tenants: int
    settle_s: float
    start_mb: float = 0.0
    waves: list[Wave] = field(default_factory=list)
    #: (seconds since start, RSS MB, open panes or -1 when unknown)
    samples: list[tuple[float, float, int]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"soak-tenants: {len(self.waves)} wave(s) of {self.tenants:,} single-event performance samples, "
               f"each from a workspace not seen before; RSS {self.settle_s:.0f} s after each wave's windows closed"]
        out.append(f"worker RSS at the start: {self.start_mb:.0f} MB")
        for n, w in enumerate(self.waves, 1):
            closed = f"{w.closed_after_s:.0f} s" if w.closed_after_s is not None else "NOT in time"
            out.append(f"wave {n}: published in {w.publish_s:.1f} s, stored {w.stored:,}/{w.sent:,}, {w.rollups:,} rollups "
                       f"in all; windows closed {closed} after the last publish; RSS peak {w.peak_mb:.0f} MB, "
                       f"after close {w.after_mb:.0f} MB ({w.after_mb - self.start_mb:+.0f} MB from the start)")
        if len(self.waves) >= 2:
            first, last = self.waves[0].after_mb, self.waves[-1].after_mb
            growth = first - self.start_mb
            out.append(f"after the last wave vs after the first: {last - first:+.0f} MB (the first wave grew it "
                       f"{growth:+.0f} MB; retained per tenant would add about as much per wave)")
        return out

    def as_json(self) -> dict:
        return {"tenants": self.tenants, "settle_s": self.settle_s, "start_mb": self.start_mb,
                "waves": [vars(w) for w in self.waves], "samples": self.samples}


def _open_panes(metrics_port: int) -> int:
    """The worker's open panes, all kinds (its /metrics); -1 when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("learnstream_window_open_panes{")))


def _sample(workspace: str, t: str) -> bytes:
    return orjson.dumps({
        "sample_id": str(uuid.uuid4()), "workspace_id": workspace, "metric_name": "api_latency",
        "metric_category": "latency", "timestamp": t, "value": 12.5, "unit": "ms", "tags": {"host": "h1"},
        "source_component": "api", "aggregation_level": "raw",
    })


async def _measure(settings: Settings, pid: int, metrics_port: int, tenants: int, waves: int, settle_s: float,
                   close_timeout_s: float) -> TenantsResult:
    import psutil

    ps = psutil.Process(pid)
    result = TenantsResult(tenants, settle_s)
    conn = await connect(settings.database_url)
    t0 = time.monotonic()
    panes = -1

    def rss() -> float:
        return ps.memory_info().rss / 2**20

    async def watch() -> None:
        nonlocal panes
        while True:
            panes = await asyncio.to_thread(_open_panes, metrics_port)
            result.samples.append((round(time.monotonic() - t0, 1), rss(), panes))
            await asyncio.sleep(1.0)

    async def count(table: str) -> int:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))

    await asyncio.sleep(5.0)  # the worker's start-up settles
    result.start_mb = rss()
    watcher = asyncio.ensure_future(watch())
    stored_before = 0
    #: a sample lands in one tumbling window and in hopping_s / hop_step_s hopping ones
    per_sample = 1 + math.ceil(settings.window_hopping_s / settings.window_hop_step_s)
    expected = 0
    try:
        async with Publisher(settings.kafka_bootstrap, linger_ms=5) as pub:
            for _ in range(waves):
                wave = Wave()
                first = len(result.samples)
                started = time.monotonic()
                now = datetime.now(UTC).isoformat()  # one event time a wave: no sample is late for another
                for i in range(0, tenants, 5000):
                    msgs = [(None, _sample(str(uuid.uuid4()), now)) for _ in range(min(5000, tenants - i))]
                    await pub.send_all(settings.performance_topic, msgs)
                    wave.sent += len(msgs)
                published = time.monotonic()
                wave.publish_s = published - started
                deadline = published + close_timeout_s
                expected += per_sample * tenants
                await asyncio.sleep(3.0)  # past a metrics report
                while time.monotonic() < deadline:
                    wave.stored = await count("system_performance_metrics") - stored_before
                    if wave.stored >= wave.sent and panes == 0 and await count("performance_rollups") >= expected:
                        wave.closed_after_s = time.monotonic() - published
                        break
                    await asyncio.sleep(1.0)
                await asyncio.sleep(settle_s)
                stored_before += wave.stored
                wave.rollups = await count("performance_rollups")
                wave.after_mb = rss()
                wave.peak_mb = max(r for _, r, _ in result.samples[first:])
                result.waves.append(wave)
    finally:
        watcher.cancel()
        await conn.close()
    return result


def run_tenants_bench(base: Settings, *, tenants: int, waves: int, settle_s: float, log_dir: Path,
                      worker_settings: dict[str, str] | None = None, close_timeout_s: float = 300.0) -> TenantsResult:
    """A worker on its own database and topics, `waves` waves of `tenants` new workspaces; its RSS."""
    from db.databases import drop_database
    from streams.devkit.services import free_port
    from streams.worker import spawn_worker, stop_worker

    tag = uuid.uuid4().hex[:8]
    overrides = {name.removeprefix("LEARNSTREAM_").lower(): value for name, value in (worker_settings or {}).items()}
    windows = {name: float(overrides.get(name, value)) for name, value in WINDOWS.items()}
    settings = asyncio.run(prepared(base, tag, "tenants")).model_copy(update=windows)
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = worker_env(settings, f"/tmp/learnstream-bench-tenants-{tag}", port)
    env.update(worker_settings or {})
    worker = spawn_worker(env, log_dir / f"tenants-worker-{tag}.log")
    try:
        return asyncio.run(_measure(settings, worker.pid, port, tenants, waves, settle_s, close_timeout_s))
    finally:
        stop_worker(worker)
        asyncio.run(drop_database(admin_dsn(base), settings.database_url.rsplit("/", 1)[1]))
