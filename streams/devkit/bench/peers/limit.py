"""The limit: plain aiokafka consumer -> orjson -> binary COPY straight into the partitioned
tables. No Faust, no validation, no idempotence: what the hardware allows for this data.

Events it cannot turn into a row (bad JSON, a missing field) are skipped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer

from db.pool import create_writer_pool
from db.tables import TABLES
from streams.config import admin_dsn, load_settings
from streams.kafka_auth import kafka_auth

log = logging.getLogger("bench.limit")
_ts = datetime.fromisoformat


def _learning(e: dict) -> tuple:
    return (e["event_id"], e["workspace_id"], e["event_type"], e.get("event_subtype"), _ts(e["timestamp"]),
            e.get("source_system"), e.get("entity_type"), e.get("entity_id"), orjson.dumps(e["event_data"]),
            e.get("user_id"), e.get("session_id"), e.get("processing_time_ms"),
            orjson.dumps(e["metadata"]) if e.get("metadata") is not None else None)


def _performance(e: dict) -> tuple:
    return (e["sample_id"], e["workspace_id"], e["metric_name"], e.get("metric_category"), _ts(e["timestamp"]),
            float(e["value"]), e.get("unit"), orjson.dumps(e.get("tags") or {}), e.get("source_component"),
            e.get("aggregation_level", "raw"))


def _engagement(e: dict) -> tuple:
    pet = e.get("peak_engagement_time")
    return (e["update_id"], e["workspace_id"], e["content_id"], e["platform"], e.get("connector_id"),
            e.get("views", 0), e.get("likes", 0), e.get("shares", 0), e.get("comments", 0), e.get("saves", 0),
            _ts(pet) if pet else None, e.get("average_watch_time"),
            orjson.dumps(e["audience_demographics"]) if e.get("audience_demographics") is not None else None,
            orjson.dumps(e["platform_metrics"]) if e.get("platform_metrics") is not None else None,
            _ts(e["recorded_at"]))


ROW = {"learning_event": _learning, "performance_sample": _performance, "engagement_update": _engagement}


async def _copy(pool, kind: str, rows: list[tuple]) -> None:
    spec = TABLES[kind]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(spec.name, records=rows, columns=spec.columns)


async def main() -> None:
    """Fetch -> parse -> COPY, with each table's COPY on its own connection and the next fetch
    parsed while the previous batch is written (one batch in flight), so both cores work."""
    s = load_settings()
    kind_of = {topic: kind for kind, topic in s.source_topics.items() if kind in ROW}  # the three log topics
    consumer = AIOKafkaConsumer(
        *kind_of, bootstrap_servers=s.kafka_bootstrap, group_id=s.app_id, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20,
        **kafka_auth(s).client_kwargs(),
    )
    # as the bench database's owner (LEARNSTREAM_ADMIN_DATABASE_URL): it alters the tables
    pool = await create_writer_pool(admin_dsn(s), 2 * len(ROW))
    # The limit is the hardware's: PostgreSQL refuses COPY FROM where row-level security applies to the
    # writer, which since migration 0013 (FORCE) includes the owner, so the limit lifts FORCE on the
    # three tables of its own bench database. The worker writes them staged (INSERT), under the policies.
    async with pool.acquire() as conn:
        for kind in ROW:
            await conn.execute(f"ALTER TABLE {TABLES[kind].name} NO FORCE ROW LEVEL SECURITY")
    await consumer.start()
    skipped = 0
    inflight: asyncio.Future | None = None  # the previous batch's COPYs
    committed: dict = {}  # the offsets to commit once they are stored
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=int(s.batch_within_s * 1000), max_records=s.batch_max_events)
            rows: dict[str, list[tuple]] = {}
            for tp, records in fetched.items():
                kind = kind_of[tp.topic]
                to_row, out = ROW[kind], rows.setdefault(kind, [])
                for r in records:
                    try:
                        obj = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        skipped += 1
                        continue
                    for e in obj if isinstance(obj, list) else [obj]:
                        try:
                            out.append(to_row(e))
                        except (KeyError, TypeError, ValueError, AttributeError):
                            skipped += 1
            if inflight is not None:
                await inflight  # the previous batch is stored: its offsets may be committed
                await consumer.commit(committed)
                inflight = None
            if fetched:
                committed = {tp: recs[-1].offset + 1 for tp, recs in fetched.items()}
                inflight = asyncio.gather(*(_copy(pool, k, b) for k, b in rows.items() if b))
    finally:
        if inflight is not None:
            await inflight
        log.warning("skipped %d events", skipped)
        await consumer.stop()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
