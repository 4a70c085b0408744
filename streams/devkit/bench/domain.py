"""`learnstream bench --domain N`: the routed mix (streams/devkit/mix.py) against the same mix with
routing off.

For each shape (1,000-event arrays, single-event messages) and each mode, a worker with the
default window stage consumes N pre-loaded learning events of all 19 types (plus the content
items and account snapshots that go with them) on its own database and topics. events/s is that
of the learning_events rows, from the first row committed to the last (ingested_at, as in the main
bench), so the routing's cost inside each transaction shows as the difference between the modes.
`routed` also reports the parked events (an event whose referent was in a batch still being
written: two batches of a partition are in flight), how long the resume timer took to apply them
all, and the domain rows written.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from db.pool import connect
from streams.config import Settings
from streams.config import admin_dsn as config_admin_dsn
from streams.devkit.bench.alerts import prepared, worker_env
from streams.devkit.mix import MixGenerator
from streams.publish import Publisher
from streams.topics import ensure_topics

#: the domain tables whose rows the routed run counts
ROUTED_TABLES = ("predictions", "prediction_accuracy", "identified_patterns", "pattern_occurrences",
                 "model_training_sessions", "ab_testing_assignments", "evolution_individuals",
                 "content_style_analysis", "trend_analysis", "ai_improvement_tracking", "ai_context_logs",
                 "embeddings", "content", "audience_growth", "competitor_metrics")


@dataclass
class DomainResult:
    shape: str
    mode: str
    events: int
    rows: int
    seconds: float
    events_per_s: float
    domain_rows: int = 0
    #: parked events left when measured, the most seen, seconds until none was left
    parked: int = 0
    parked_peak: int = 0
    drain_s: float = 0.0
    note: str = ""


async def _run(settings: Settings, admin_dsn: str, shape: str, mode: str, events: int, seed: int, log_dir: Path,
               timeout_s: float) -> DomainResult:
    from db.databases import drop_database
    from streams.devkit.services import free_port
    from streams.worker import spawn_worker, stop_worker

    mix = MixGenerator(seed=seed, workspaces=8).generate(events, array_size=1000 if shape == "arrays" else 1,
                                                         learning_span_min=1.0, engagement=False)
    topics = {"learning_event": settings.learning_topic, "content_item": settings.content_topic,
              "account_snapshot": settings.accounts_topic}
    await ensure_topics(settings.kafka_bootstrap, [*topics.values()], settings.topic_partitions)
    async with Publisher(settings.kafka_bootstrap) as pub:
        for kind in ("account_snapshot", "content_item", "learning_event"):
            await pub.send_all(topics[kind], mix.messages[kind])
    want = mix.events["learning_event"]
    env = worker_env(settings, f"/tmp/learnstream-bench-domain-{uuid.uuid4().hex[:8]}", free_port())
    env["LEARNSTREAM_DOMAIN_ROUTING"] = "true" if mode == "routed" else "false"
    env["LEARNSTREAM_WINDOW_GRACE_S"] = "60"  # the mix's event times spread over a minute, as the main bench
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = spawn_worker(env, log_dir / f"domain-{shape}-{mode}.log")
    conn = await connect(settings.database_url)
    note = ""
    try:
        deadline = time.monotonic() + timeout_s
        while (rows := await conn.fetchval("SELECT count(*) FROM learning_events")) < want:
            if time.monotonic() > deadline:
                note = f"timed out after {timeout_s:.0f} s"
                break
            await asyncio.sleep(0.25)
        span = await conn.fetchrow("SELECT min(ingested_at) AS a, max(ingested_at) AS b FROM learning_events")
        seconds = (span["b"] - span["a"]).total_seconds() if span["a"] else 0.0
        result = DomainResult(shape, mode, want, rows, seconds, (rows - 1) / seconds if seconds > 0 else 0.0, note=note)
        if mode == "routed":
            # events whose referent was in a batch still being written when theirs was (two batches
            # of a partition are in flight) were parked: the resume timer applies them
            t0 = time.monotonic()
            while (parked := await conn.fetchval("SELECT count(*) FROM parked_events")) and time.monotonic() - t0 < 60:
                result.parked_peak = max(result.parked_peak, parked)
                await asyncio.sleep(0.25)
            result.parked, result.drain_s = parked, time.monotonic() - t0
            for table in ROUTED_TABLES:
                result.domain_rows += await conn.fetchval(f"SELECT count(*) FROM {table}")
        return result
    finally:
        await conn.close()
        stop_worker(worker)
        await drop_database(admin_dsn, settings.database_url.rsplit("/", 1)[1])


def run_domain_bench(base: Settings, *, events: int, shapes: tuple[str, ...], seed: int, log_dir: Path,
                     timeout_s: float = 300.0) -> list[DomainResult]:
    results = []
    for shape in shapes:
        for mode in ("raw-only", "routed"):
            tag = uuid.uuid4().hex[:8]
            settings = asyncio.run(prepared(base, tag, "domain"))
            print(f"-- {mode} ({shape}): {events:,} learning events of the routed mix", flush=True)
            r = asyncio.run(_run(settings, config_admin_dsn(base), shape, mode, events, seed, log_dir, timeout_s))
            print(f"   {r.events_per_s:,.0f} events/s, {r.rows:,} rows in {r.seconds:.1f} s {r.note}", flush=True)
            results.append(r)
    return results


def table(results: list[DomainResult]) -> str:
    head = (f"{'shape':<8}{'mode':<10}{'events/s':>10}{'x raw':>7}{'rows':>9}{'secs':>7}{'domain rows':>13}"
            f"{'parked':>8}{'left':>6}{'drain s':>9}  note")
    lines = [head, "-" * len(head)]
    for r in results:
        raw = next((x for x in results if x.shape == r.shape and x.mode == "raw-only" and x.events_per_s), None)
        ratio = f"{r.events_per_s / raw.events_per_s:>7.2f}" if raw else f"{'-':>7}"
        domain = f"{r.domain_rows:>13,}" if r.mode == "routed" else f"{'-':>13}"
        parked = (f"{r.parked_peak:>8,}{r.parked:>6,}{r.drain_s:>9.1f}" if r.mode == "routed"
                  else f"{'-':>8}{'-':>6}{'-':>9}")
        lines.append(f"{r.shape:<8}{r.mode:<10}{r.events_per_s:>10,.0f}{ratio}{r.rows:>9,}{r.seconds:>7.1f}"
                     f"{domain}{parked}  {r.note}")
    return "\n".join(lines)
