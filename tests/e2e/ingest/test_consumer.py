"""The ingest consumer's own group: what it commits, and where it starts after an upgrade from the
Faust agents (which consumed the source topics in the app's group)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.devkit.synthetic import Generator
from tests.support import kafka_kwargs, metric, send_to_partition, wait_for_ids, wait_for_rows

pytestmark = pytest.mark.services


async def _committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int | None]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kafka_kwargs(), group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return {tp: await c.committed(tp) for tp in tps}
    finally:
        await c.stop()


async def test_offsets_are_committed_in_the_ingest_group_once_stored(stack, start_worker):
    """Every message of every partition stored: the ingest group's committed offset is each
    partition's end, the app's own group holds none of the source topics, and the lag gauge says 0."""
    topic = stack.topics["performance_sample"]
    gen = Generator(seed=5)
    per_partition = {p: [orjson.dumps(gen.performance_sample()) for _ in range(40 + 7 * p)] for p in range(4)}
    for p, values in per_partition.items():
        await send_to_partition(stack.bootstrap, topic, values, p)
    worker = start_worker(LEARNSTREAM_WINDOWS_ENABLED="false")
    total = sum(map(len, per_partition.values()))
    counts = await wait_for_rows(stack.dsn, {"system_performance_metrics": total}, timeout=60)
    assert counts["system_performance_metrics"] == total
    tps = [TopicPartition(topic, p) for p in range(4)]
    deadline = time.monotonic() + 20
    while True:
        ingest = await _committed(stack.bootstrap, f"t{stack.tag}-ingest", tps)
        if ingest == {tp: len(per_partition[tp.partition]) for tp in tps} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert ingest == {tp: len(per_partition[tp.partition]) for tp in tps}
    assert await _committed(stack.bootstrap, f"t{stack.tag}", tps) == {tp: None for tp in tps}
    deadline = time.monotonic() + 15
    while True:
        samples = worker.metrics()
        lags = [metric(samples, "learnstream_consumer_lag_messages", topic=topic, partition=str(p)) for p in range(4)]
        reported = [k for k in samples if k[0] == "learnstream_consumer_lag_messages" and dict(k[1])["topic"] == topic]
        if len(reported) == 4 and lags == [0, 0, 0, 0] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert len(reported) == 4 and lags == [0, 0, 0, 0]


async def test_an_upgrade_starts_where_the_faust_group_left_off(stack, start_worker):
    """Offsets the app's group committed (the Faust agents of earlier versions) are adopted by a
    partition the ingest group has none for: what was consumed before is not read again."""
    topic = stack.topics["performance_sample"]
    gen = Generator(seed=6)
    events = [gen.performance_sample() for _ in range(30)]
    await send_to_partition(stack.bootstrap, topic, [orjson.dumps(e) for e in events], 0)
    # an earlier version consumed the first 20 of partition 0 in the app's group
    legacy = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, **kafka_kwargs(), group_id=f"t{stack.tag}",
                              enable_auto_commit=False)
    await legacy.start()
    try:
        legacy.assign([TopicPartition(topic, 0)])
        await legacy.commit({TopicPartition(topic, 0): 20})
    finally:
        await legacy.stop()
    worker = start_worker(LEARNSTREAM_WINDOWS_ENABLED="false")
    await wait_for_rows(stack.dsn, {"system_performance_metrics": 10}, timeout=60)
    # anything beyond the 10 would be in before a marker published after them (offset 30) is
    marker = gen.performance_sample()
    await send_to_partition(stack.bootstrap, topic, [orjson.dumps(marker)], 0)
    await wait_for_ids(stack.dsn, {"system_performance_metrics": [marker["sample_id"]]}, timeout=60)
    import asyncpg

    conn = await asyncpg.connect(stack.dsn)
    try:
        ids = {str(r[0]) for r in await conn.fetch("SELECT id FROM system_performance_metrics")}
    finally:
        await conn.close()
    assert ids == {e["sample_id"] for e in events[20:]} | {marker["sample_id"]}
    assert "start where group" in worker.log()
    deadline = time.monotonic() + 30
    while True:  # committed after the marker's batch is stored
        committed = await _committed(stack.bootstrap, f"t{stack.tag}-ingest", [TopicPartition(topic, 0)])
        if committed == {TopicPartition(topic, 0): 31} or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert committed == {TopicPartition(topic, 0): 31}
