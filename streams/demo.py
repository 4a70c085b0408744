"""`learnstream demo`: the whole job once, on the local services, with a summary of what happened."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from db.migrate import migrate
from db.partitions import ensure_partitions, partition_counts
from db.pool import connect
from db.tables import TABLES
from streams.config import Settings, load_settings, state_dir
from streams.metrics import scrape, total
from streams.publish import publish_messages
from schemas.events import MAX_EVENTS_PER_MESSAGE
from streams.synthetic import Generator, Workload
from streams.topics import ensure_topics


def _start_worker(settings: Settings, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, LEARNSTREAM_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
               LEARNSTREAM_DATABASE_URL=settings.database_url, LEARNSTREAM_METRICS_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--log-level", "info"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while "Worker]: Ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the worker did not start; see {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.25)
    return proc


def run_demo(events_per_topic: int = 20000, seed: int | None = None) -> int:
    from streams.services import choose_port, up

    print("== learnstream demo ==")
    print("1. services (Kafka 4.x KRaft + PostgreSQL; started once, reused after)")
    for k, v in up().items():
        os.environ[k] = v
        print(f"   {k}={v}")
    settings = load_settings()

    async def prepare() -> None:
        conn = await connect(settings.database_url)
        try:
            applied = await migrate(conn)
            await ensure_partitions(conn)
        finally:
            await conn.close()
        print(f"2. migrations: {', '.join(m.name for m in applied) or 'schema already current'}")
        await ensure_topics(settings.kafka_bootstrap, [*settings.source_topics.values(), settings.dlq_topic],
                            settings.topic_partitions)

    asyncio.run(prepare())

    port = choose_port(settings.metrics_port)  # the usual one if free
    log = state_dir() / "demo-worker.log"
    print(f"3. worker starting (log: {log})")
    worker = _start_worker(settings, port, log)
    try:
        return _publish_and_report(settings, port, events_per_topic, seed)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _publish_and_report(settings: Settings, port: int, events_per_topic: int, seed: int | None) -> int:
    seed = seed if seed is not None else random.randrange(1 << 30)
    gen = Generator(seed=seed)
    print(f"4. publishing a synthetic workload (seed {seed}): per topic {events_per_topic} events, half as "
          "single-event messages and half as 500-event arrays, with ~2% duplicates, ~2% bad input and "
          "one array over the 1,000-event limit")
    loads: dict[str, list[Workload]] = {}
    small_faults = ("invalid_json", "invalid_utf8")  # an oversized array is sent once, below
    for kind in TABLES:
        loads[kind] = [
            gen.workload(kind, events_per_topic // 2, array_size=1, invalid_share=0.02, duplicate_share=0.02,
                         message_faults=small_faults),
            gen.workload(kind, events_per_topic - events_per_topic // 2, array_size=500,
                         invalid_share=0.02, duplicate_share=0.02, message_faults=small_faults),
        ]
        oversized = Workload(kind, bad_messages=1)
        oversized.messages.append((gen.workspaces[0].encode(), gen.bad_message(kind, "too_many_events")))
        oversized.invalid["too_many_events"] = MAX_EVENTS_PER_MESSAGE + 1
        loads[kind].append(oversized)
    t0 = time.monotonic()

    async def publish_all() -> None:
        await asyncio.gather(*(
            publish_messages(settings.kafka_bootstrap, settings.source_topics[kind], [m for w in ws for m in w.messages])
            for kind, ws in loads.items()
        ))

    asyncio.run(publish_all())
    published = time.monotonic() - t0
    sent_events = {k: sum(w.events for w in ws) for k, ws in loads.items()}
    print(f"   published {sum(sent_events.values())} events in "
          f"{sum(len(w.messages) for ws in loads.values() for w in ws)} messages in {published:.1f}s")

    print("5. waiting until every event is stored or dead-lettered ...")
    deadline = time.monotonic() + 300
    while True:
        m = scrape(port)
        consumed = {k: total(m, "learnstream_events_consumed_total", topic=settings.source_topics[k]) for k in TABLES}
        if consumed == sent_events or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - t0
    ok = consumed == sent_events

    async def report() -> list[str]:
        conn = await connect(settings.database_url)
        lines = []
        try:
            for spec in TABLES.values():
                parts = [(n, c) for n, c in await partition_counts(conn, spec.name) if c]
                total = sum(c for _, c in parts)
                lines.append(f"   {spec.name}: {total} rows in total")
                lines.extend(f"      {n}: {c}" for n, c in parts)
        finally:
            await conn.close()
        return lines

    print("\n== summary ==")
    print(f"{'topic':<22}{'events':>9}{'valid':>9}{'dups':>7}{'invalid':>9}{'inserted':>10}{'skipped':>9}")
    for kind, ws in loads.items():
        topic, table = settings.source_topics[kind], TABLES[kind].name
        print(f"{topic:<22}{sent_events[kind]:>9}{sum(w.valid_events for w in ws):>9}"
              f"{sum(w.duplicates for w in ws):>7}{sum(sum(w.invalid.values()) for w in ws):>9}"
              f"{int(total(m, 'learnstream_rows_inserted_total', table=table)):>10}"
              f"{int(total(m, 'learnstream_duplicates_skipped_total', table=table)):>9}")
    print("rows per table and partition (partitions with rows):")
    print("\n".join(asyncio.run(report())))
    reasons: dict[str, float] = {}
    for (n, lab), v in m.items():
        if n == "learnstream_invalid_events_total":
            reasons[dict(lab)["reason"]] = reasons.get(dict(lab)["reason"], 0) + v
    print(f"dead letters published to {settings.dlq_topic}: {int(total(m, 'learnstream_dlq_published_total'))} "
          f"envelopes, covering {int(sum(reasons.values()))} events: "
          + ", ".join(f"{r}={int(v)}" for r, v in sorted(reasons.items())))
    total_events = sum(sent_events.values())
    print(f"end to end: {total_events} events consumed, validated and stored in {elapsed:.1f}s "
          f"(publish included) = {total_events / elapsed:,.0f} events/s")
    print(f"metrics were served at http://127.0.0.1:{port}/metrics while the worker ran "
          "(`learnstream worker` serves them on :9464 by default)")
    print("next: `learnstream worker` to keep ingesting, `learnstream publish TOPIC FILE.jsonl`, "
          "`learnstream services down` to stop the services")
    if not ok:
        print(f"INCOMPLETE: consumed {consumed} of {sent_events} within the time limit", file=sys.stderr)
        return 1
    return 0
