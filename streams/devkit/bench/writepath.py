"""The write path alone (no Kafka, no Faust): rows/s of the ways a batch can be written, and the
Python cost of each stage, on fresh databases. Evidence for what bounds the pipeline."""

from __future__ import annotations

import time
import uuid

import asyncpg

from db.databases import create_database, drop_database
from db.migrate import migrate
from db.partitions import ensure_partitions
from db.pool import create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.devkit.synthetic import Generator

#: learning_events' secondary indexes as migrated (everything but the primary key; since 0042 only
#: (workspace_id, timestamp), the seeds' six before)
_SECONDARY = """
SELECT i.indexrelid::regclass::text FROM pg_index i
WHERE i.indrelid = 'learning_events'::regclass AND NOT i.indisprimary ORDER BY 1
"""


def _window_stage(rows: list[tuple], messages: list[tuple[bytes | None, bytes]]) -> list[tuple[str, float]]:
    """The window stage's Python per stored event, without Kafka: rows -> window-input messages,
    parsing them back, folding them into panes."""
    from types import SimpleNamespace

    import faust

    from streams.config import Settings
    from streams.windows.input import parse_input, window_messages
    from streams.windows.stage import WindowStage

    per = len(rows) // max(1, len(messages))
    origin = [i // per for i in range(len(rows))]
    sources = [SimpleNamespace(topic="learning-events", partition=i % 8, offset=i) for i in range(len(messages))]
    out = []
    t = time.perf_counter()
    sent = window_messages("learning_event", rows, origin, sources, 8)
    out.append(("window stage: stored rows -> window-input messages, events/s", len(rows) / (time.perf_counter() - t)))
    t = time.perf_counter()
    parsed = [(p, parse_input(v)) for p, _, v in sent]
    out.append(("window stage: window-input parsed and validated, events/s", len(rows) / (time.perf_counter() - t)))
    app = faust.App("bench-writepath", broker="kafka://127.0.0.1:1", value_serializer="raw", store="memory://")
    stage = WindowStage(app, Settings(window_grace_s=3600), None, None, None)  # type: ignore[arg-type]
    now = time.time()
    t = time.perf_counter()
    for p, msg in parsed:
        st = stage.states.get(p) or stage.states.setdefault(p, stage.new_state())
        stage.fold(st, msg, now)
    out.append(("window stage: folded into panes, events/s", len(rows) / (time.perf_counter() - t)))
    return out


async def run(dsn: str, events: int = 200_000, batch: int = 5000) -> list[tuple[str, float]]:
    gen = Generator(seed=7)
    w = gen.workload("learning_event", events, array_size=1000, invalid_share=0, duplicate_share=0)
    out: list[tuple[str, float]] = []

    t = time.perf_counter()
    decoded = [decode_message(v, "learning_event").events for _, v in w.messages]
    out.append(("decode + validate (pydantic), events/s", events / (time.perf_counter() - t)))
    t = time.perf_counter()
    rows = [LEARNING_EVENTS.row(e) for evs in decoded for e in evs]
    out.append(("event -> row tuple, events/s", events / (time.perf_counter() - t)))
    out.extend(_window_stage(rows, w.messages))

    for label, drop_secondary, mode in (
        ("COPY direct (RLS not forced), PK + migrated indexes", False, "direct"),
        ("COPY staged + ON CONFLICT, PK + migrated indexes", False, "staged"),
        ("write_rows as shipped (FORCE RLS: staged), PK + migrated indexes", False, "shipped"),
        ("COPY direct (RLS not forced), PK only", True, "direct"),
        ("COPY staged + ON CONFLICT, PK only", True, "staged"),
    ):
        name = f"wp_{uuid.uuid4().hex[:8]}"
        db = await create_database(dsn, name)
        conn = await asyncpg.connect(db)
        await migrate(conn)
        await ensure_partitions(conn)
        if drop_secondary:
            for (idx,) in await conn.fetch(_SECONDARY):
                await conn.execute(f"DROP INDEX {idx}")
        if mode == "direct":  # PostgreSQL refuses COPY FROM where row-level security applies (0013 forces it)
            await conn.execute(f"ALTER TABLE {LEARNING_EVENTS.name} NO FORCE ROW LEVEL SECURITY")
        await conn.close()
        pool = await create_writer_pool(db, 1)
        policy = WritePolicy()
        try:
            async with pool.acquire() as c:
                t = time.perf_counter()
                for i in range(0, len(rows), batch):
                    chunk = rows[i:i + batch]
                    if mode == "staged":
                        await write_rows(c, LEARNING_EVENTS, chunk)
                    elif mode == "shipped":
                        await write_rows(c, LEARNING_EVENTS, chunk, policy)
                    else:
                        await c.copy_records_to_table(LEARNING_EVENTS.name, records=chunk,
                                                      columns=LEARNING_EVENTS.columns)
                out.append((f"{label}, rows/s", len(rows) / (time.perf_counter() - t)))
        finally:
            await pool.close()
            await drop_database(dsn, name)
    return out
