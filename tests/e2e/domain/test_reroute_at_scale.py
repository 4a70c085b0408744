"""A reroute of 200,000 stored learning events while a worker ingests them (issue #22), on real
Kafka and PostgreSQL: the domain tables end equal, table by table, to those of a database where the
same events were routed once; and rerouting that database whole changes none of its rows."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest

from db.databases import clone_migrated_database, drop_database
from db.domain.routing import resume_parked
from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.devkit.mix import MixGenerator
from streams.domain.reroute import reroute
from streams.publish import publish_messages
from tests.domain_tables import domain_snapshot, snapshot_diff
from tests.support import admin_dsn

pytestmark = pytest.mark.services

EVENTS = 200_000


async def _count(dsn: str, sql: str) -> int:
    conn = await connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _route_once(dsn: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    """The reference: every event written and routed once, in publish order, 1,000 per transaction;
    then the parked ones resumed until none can be applied."""
    pool = await create_writer_pool(dsn, 1)
    try:
        async with pool.acquire() as conn:
            for i in range(0, len(messages), 10):
                rows = [LEARNING_EVENTS.row(e) for _, v in messages[i:i + 10]
                        for e in decode_message(v, "learning_event").events]
                result = await write_rows(conn, LEARNING_EVENTS, rows, WritePolicy(optimistic=True))
                assert result.rejected == [] and result.routing.unrouted == [], (result.rejected, result.routing)
            while True:
                taken, still, _ = await resume_parked(conn)
                if taken == still:
                    break
    finally:
        await pool.close()


async def test_a_reroute_of_200000_events_while_a_worker_ingests_equals_routing_them_once(
        stack, services, start_worker):
    mix = MixGenerator(seed=22, workspaces=4).generate(EVENTS, array_size=100, engagement=False)
    messages = mix.messages["learning_event"]
    total = mix.events["learning_event"]
    assert total >= EVENTS - 10
    base = admin_dsn(services)
    once_name = f"t_once_{uuid.uuid4().hex[:8]}"
    once = await clone_migrated_database(base, once_name)
    try:
        await _route_once(once, messages)

        # the worker ingests the same events; a reroute of what is stored runs meanwhile
        # (no jobs: they derive rows of their own, e.g. ai_improvement_tracking's model evaluations)
        start_worker(LEARNSTREAM_DOMAIN_RESUME_INTERVAL_S="0.5", LEARNSTREAM_JOBS_ENABLED="false")
        earliest = min(e.timestamp for e in decode_message(messages[0][1], "learning_event").events)
        since = earliest - timedelta(hours=12)  # the mix spans its last 6 hours
        publishing = asyncio.create_task(publish_messages(stack.bootstrap, stack.topics["learning_event"], messages))
        deadline = time.monotonic() + 120
        while (stored := await _count(stack.dsn, "SELECT count(*) FROM learning_events")) < total // 3:
            assert time.monotonic() < deadline, "the worker stores nothing"
            await asyncio.sleep(0.2)
        assert stored < total  # the reroute begins while the worker ingests
        during = await reroute(stack.dsn, since, batch_size=2000)
        await publishing
        while await _count(stack.dsn, "SELECT count(*) FROM learning_events") < total:
            assert time.monotonic() < deadline + 240, "the worker did not store every event"
            await asyncio.sleep(0.5)
        # what the walk reaches depends on how far the worker got meanwhile (all of it, on a clean
        # clone's run where the reroute took 60 s): the outcome below is what must hold
        assert during.finished and 0 < during.events <= total
        once_conn, conn = await connect(once), await connect(stack.dsn)
        try:
            reference = await domain_snapshot(once_conn)
            parked = len(reference["parked_events"])
            while await conn.fetchval("SELECT count(*) FROM parked_events") > parked:
                assert time.monotonic() < deadline + 300, "parked events were not applied"
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.5)  # a resume round in flight commits
            assert sum(map(len, reference.values())) > total // 2
            assert snapshot_diff(reference, await domain_snapshot(conn)) == []

            # the reference rerouted whole: nothing changes
            t0 = time.perf_counter()
            whole = await reroute(once, since, batch_size=2000)
            seconds = time.perf_counter() - t0
            assert (whole.events, whole.unrouted, whole.unknown_type) == (total, 0, 0)
            assert snapshot_diff(reference, await domain_snapshot(once_conn)) == []
            print(f"\nreroute: {during.events:,} events while the worker ingested; the whole log, {whole.events:,} "
                  f"events in {seconds:.1f} s = {whole.events / seconds:,.0f} events/s; "
                  f"{sum(map(len, reference.values())):,} domain rows equal")
        finally:
            await once_conn.close()
            await conn.close()
    finally:
        await drop_database(base, once_name)
