"""Partition DDL never blocks ingest (issue #23, item 11), on real PostgreSQL: with a long reader
holding its lock on learning_events, making a partition neither makes writers queue behind it nor
waits for ever: it gives up within its lock_timeout and the next round makes the partition."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from db.partitions import PartitionBusy, Period, ensure_partition
from db.pool import connect
from db.tables import LEARNING_EVENTS

pytestmark = pytest.mark.services

INSERT = """INSERT INTO learning_events (id, workspace_id, event_type, "timestamp", event_data)
            VALUES ($1, $2, 'heartbeat', now(), '{}')"""


async def test_partition_ddl_behind_a_long_reader_never_blocks_ingest(stack):
    reader, ddl, writer = await connect(stack.dsn), await connect(stack.dsn), await connect(stack.dsn)
    period = Period("learning_events_y2031m01", datetime(2031, 1, 1, tzinfo=UTC), datetime(2031, 2, 1, tzinfo=UTC))
    try:
        async with reader.transaction():  # a long report: ACCESS SHARE on the table and its partitions
            await reader.fetchval("SELECT count(*) FROM learning_events")
            making = asyncio.create_task(ensure_partition(ddl, LEARNING_EVENTS, period, lock_timeout_ms=500))
            await asyncio.sleep(0.1)  # the DDL is waiting now
            t0 = time.monotonic()
            await asyncio.wait_for(writer.execute(INSERT, uuid.uuid4(), uuid.uuid4()), 5)
            assert time.monotonic() - t0 < 0.4  # not queued behind the DDL
            with pytest.raises(PartitionBusy, match="learning_events_y2031m01"):
                await asyncio.wait_for(making, 5)  # gave up within its lock_timeout, not for ever
        # the reader is done: the next round makes it, attached and usable
        assert await ensure_partition(ddl, LEARNING_EVENTS, period) == 0
        assert await ddl.fetchval("SELECT count(*) FROM pg_inherits WHERE inhrelid = 'learning_events_y2031m01'::regclass") == 1
        await writer.execute(INSERT.replace("now()", "'2031-01-15T00:00:00Z'"), uuid.uuid4(), uuid.uuid4())
        assert await ddl.fetchval("SELECT count(*) FROM learning_events_y2031m01") == 1
    finally:
        for c in (reader, ddl, writer):
            await c.close()
