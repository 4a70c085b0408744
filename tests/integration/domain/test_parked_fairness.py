"""Parked events are fair and bounded (issue #23, item 10), on real PostgreSQL: behind 100,000
parked events that cannot resolve, the ones whose referent has come are applied in the next round;
the expired ones are dead-lettered in batches as fast as needed, with no transaction open while
the letters are published, each once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from db.domain.routing import resume_parked
from db.pool import SharedPool, connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.domain.parked import ParkedEvents

pytestmark = pytest.mark.services

WS = uuid.UUID("00000000-0000-4000-8000-00000000cccc")
MODEL = uuid.uuid4()
NOW = datetime.now(UTC).replace(microsecond=0)


def event(event_type: str, data: dict) -> dict:
    return {"event_id": str(uuid.uuid4()), "workspace_id": str(WS), "event_type": event_type,
            "timestamp": NOW.isoformat(), "event_data": data}


async def write(dsn: str, events: list[dict]) -> None:
    pool = await create_writer_pool(dsn, 1)
    try:
        async with pool.acquire() as c:
            rows = [LEARNING_EVENTS.row(e) for e in decode_message(orjson.dumps(events), "learning_event").events]
            await write_rows(c, LEARNING_EVENTS, rows, WritePolicy(optimistic=True))
    finally:
        await pool.close()


async def test_resolvable_parked_events_are_not_held_back_and_expiry_keeps_up(stack):
    conn = await connect(stack.dsn)
    try:
        # 100,000 parked events waiting, since an hour, for models that never come
        await conn.execute("""
            INSERT INTO parked_events (workspace_id, event_id, event_type, waiting_for, record, event_time, parked_at)
            SELECT $1, gen_random_uuid(), 'model_prediction', 'model ' || gen_random_uuid(), '{}'::jsonb, now(),
                   now() - interval '1 hour' - i * interval '1 ms'
            FROM generate_series(1, 100000) AS i""", WS)
        # ten predictions of a model not registered yet: parked, the newest of all
        predictions = [event("model_prediction", {"prediction_id": str(uuid.uuid4()), "model_id": str(MODEL),
                                                  "prediction_type": "viral_score", "predicted_score": float(i)})
                       for i in range(10)]
        await write(stack.dsn, predictions)
        assert await conn.fetchval("SELECT count(*) FROM parked_events") == 100_010
        await write(stack.dsn, [event("model_registered", {"model_id": str(MODEL), "name": "m", "version": "1",
                                                           "model_type": "prediction"})])
        # the next round applies them (it used to retry the 5,000 oldest, which never resolve)
        assert await resume_parked(conn) == (10, 0, 0)
        assert await conn.fetchval("SELECT count(*) FROM predictions") == 10
        assert await conn.fetchval("SELECT count(*) FROM parked_events") == 100_000

        # the 100,000 expire: dead-lettered with no transaction open, each once, in a few rounds
        await conn.execute("UPDATE parked_events SET parked_at = parked_at - interval '2 days'")
        sent: list = []
        watcher = await connect(stack.dsn)

        async def dead_letters(letters) -> None:
            open_tx = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'")
            assert open_tx == 0, "a transaction is open while the letters are published"
            sent.extend(letters)

        pool = SharedPool(stack.dsn, 2)
        parked = ParkedEvents(pool, dead_letters, "learning-events", max_age_s=86_400)
        ticks = 0
        while await conn.fetchval("SELECT count(*) FROM parked_events") and ticks < 10:
            await parked.tick()
            ticks += 1
        assert await conn.fetchval("SELECT count(*) FROM parked_events") == 0
        assert len(sent) == 100_000 and len({orjson.loads(d.value)["event_type"] for d in sent}) == 1
        assert {d.errors[0].reason for d in sent} == {"unresolved_reference"}
        assert ticks <= 4, ticks  # 5,000 per batch for up to 5 s a round: as fast as a busy producer parks them
        await watcher.close()
        await pool.close()
    finally:
        await conn.close()
