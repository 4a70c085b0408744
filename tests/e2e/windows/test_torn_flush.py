"""Exactly-once engagement windows (issue #23, item 5), on real Kafka and PostgreSQL. An engagement
update changes two changelog records: its pane (the gain) and its post's snapshot. A worker that
dies after writing the pane but before the snapshot, and before committing its input, leaves a torn
changelog; the next owner is redelivered the update. Its gain is counted once (before the fix: 100
instead of 50).

The tear is made on the broker itself: the first worker runs to the end and is killed, then the
changelog gets the snapshot record as it was before the update (the last version a crash could have
left) and the group's committed window-input offset goes back to before the update."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from db.pool import connect
from streams.publish import publish_messages
from streams.windows.input import workspace_partition
from tests.support import NO_IDLE, QUICK_GROUP, committed, iso, kafka_kwargs, read_partition, wait_for_rows, window_base

pytestmark = pytest.mark.services


def _update(ws: str, post: str, t: float, views: int) -> dict:
    return {"update_id": str(uuid.uuid4()), "workspace_id": ws, "content_id": post, "platform": "tiktok",
            "recorded_at": iso(t), "views": views}


async def _wait_committed(bootstrap: str, group: str, tp: TopicPartition, at_least: int, timeout: float = 30) -> int:
    deadline = asyncio.get_event_loop().time() + timeout
    while True:
        got = await committed(bootstrap, group, tp)
        if got is not None and got >= at_least:
            return got
        assert asyncio.get_event_loop().time() < deadline, f"{tp} committed {got}, expected >= {at_least}"
        await asyncio.sleep(0.5)


async def _rewind(bootstrap: str, group: str, tp: TopicPartition, offset: int, timeout: float = 60) -> None:
    """Commit `offset` for `tp` in `group` once the dead worker has left it (its session expired)."""
    deadline = asyncio.get_event_loop().time() + timeout
    while True:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kafka_kwargs(), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.commit({tp: offset})
            return
        except KafkaError:
            assert asyncio.get_event_loop().time() < deadline, "the dead worker's group never emptied"
        finally:
            await consumer.stop()
        await asyncio.sleep(1)


async def test_a_redelivered_update_after_a_torn_flush_gains_once(stack, start_worker):
    app_id = f"t{stack.tag}"
    first = start_worker(**NO_IDLE, **QUICK_GROUP)
    ws, post = str(uuid.uuid4()), str(uuid.uuid4())
    base = window_base()
    topic = stack.topics["engagement_update"]
    partition = workspace_partition(ws, 4)
    window_input = TopicPartition(f"{app_id}.window-input", partition)

    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps(_update(ws, post, base + 1, 100)))])
    await wait_for_rows(stack.dsn, {"content_performance_metrics": 1})
    before = await _wait_committed(stack.bootstrap, app_id, window_input, 1)  # folded, flushed, committed
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps(_update(ws, post, base + 2, 150)))])
    await wait_for_rows(stack.dsn, {"content_performance_metrics": 2})
    await _wait_committed(stack.bootstrap, app_id, window_input, before + 1)
    first.kill()

    # the tear: the snapshot record as the first flush wrote it is the latest again
    changelog = f"{app_id}-windows-changelog"
    snapshots: dict[bytes, list[bytes]] = {}
    for key, value in await read_partition(stack.bootstrap, changelog, partition):
        if b"|s|" in key and value is not None:
            snapshots.setdefault(key, []).append(value)
    [(key, versions)] = snapshots.items()
    assert [orjson.loads(v) for v in versions][-1] != orjson.loads(versions[-2])  # views 150, then 100
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, **kafka_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(changelog, versions[-2], key=key, partition=partition)
    finally:
        await producer.stop()
    # ... and the update's window-input message is not committed: it is redelivered
    await _rewind(stack.bootstrap, app_id, window_input, before)

    start_worker(**NO_IDLE, **QUICK_GROUP)
    # a later update of another post closes the window
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps(
        _update(ws, str(uuid.uuid4()), base + 100, 1)))])
    conn = await connect(stack.dsn)
    try:
        deadline = asyncio.get_event_loop().time() + 60
        while True:
            rows = await conn.fetch("SELECT updates, views_gained FROM engagement_rollups "
                                    "WHERE window_s = step_s AND content_id = $1::uuid", post)
            if rows or asyncio.get_event_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(2, 50)]  # 100 -> 150; the redelivery counted nothing twice
