"""A batch that can be neither stored nor set aside is held, never skipped silently (issue #23,
item 7), on real Kafka and PostgreSQL.

The DLQ topic's `max.message.bytes` is lowered after the worker started (it read the budgets at its
start): a bad message's dead letter is then refused even at the smallest budget
(`PermanentFailure`). Good events follow it in the same partition. Before, that batch's chain future
resolved False and every later batch of the topic was stored but never committed until a rebalance
(lag never 0). Now the batch is retried with backoff, its offsets and the later ones' held, and
/readyz fails naming the topic while it lasts; once the DLQ takes the letter again, everything is
committed and the lag is 0, without a restart.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.devkit.synthetic import Generator
from tests.e2e.test_monitoring import http
from tests.support import committed, kafka_kwargs, metric, read_topic, send_to_partition, wait_for_ids

pytestmark = pytest.mark.services


async def _dlq_limit(bootstrap: str, topic: str, max_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_kwargs())
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(max_bytes)})])
    finally:
        await admin.close()


async def _readyz(port: int) -> tuple[int, dict]:
    code, body = await asyncio.to_thread(http, f"http://127.0.0.1:{port}/readyz")
    return code, orjson.loads(body)


async def test_a_batch_whose_dead_letter_is_refused_is_held_and_reported_not_skipped(stack, start_worker):
    topic = stack.topics["performance_sample"]
    tp = TopicPartition(topic, 0)
    group = f"t{stack.tag}-ingest"
    worker = start_worker(LEARNSTREAM_WINDOWS_ENABLED="false")
    gen = Generator(seed=23)
    first = [gen.performance_sample() for _ in range(3)]
    await send_to_partition(stack.bootstrap, topic, [orjson.dumps(e) for e in first], 0)
    await wait_for_ids(stack.dsn, {"system_performance_metrics": [e["sample_id"] for e in first]}, timeout=60)

    # the operator lowers the DLQ's limit below any dead letter: refused at every budget
    await _dlq_limit(stack.bootstrap, stack.dlq, 200)
    try:
        await send_to_partition(stack.bootstrap, topic, [b"{not json"], 0)  # offset 3: its dead letter is refused
        deadline = time.monotonic() + 60
        while "refused" not in worker.log() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert "refused" in worker.log(), worker.log()[-4000:]
        good = [gen.performance_sample() for _ in range(5)]  # offsets 4..8, later batches of the topic
        await send_to_partition(stack.bootstrap, topic, [orjson.dumps(e) for e in good], 0)
        await wait_for_ids(stack.dsn, {"system_performance_metrics": [e["sample_id"] for e in good]}, timeout=60)

        # while the DLQ refuses: nothing past the bad message is committed, and /readyz says why
        deadline = time.monotonic() + 30
        while True:
            code, body = await _readyz(worker.metrics_port)
            if "ingest" in body["failed"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert code == 503 and "ingest" in body["failed"], body
        detail = body["checks"]["ingest"]["detail"]
        assert topic in detail and "partition 0 offset 3" in detail, detail
        assert await committed(stack.bootstrap, group, tp) == 3
        assert worker.proc.poll() is None
        assert "Task exception was never retrieved" not in worker.log()
    finally:
        await _dlq_limit(stack.bootstrap, stack.dlq, 1_048_588)  # the cause is gone

    # no restart: the held batch goes through, its dead letter and every later offset committed
    deadline = time.monotonic() + 60
    while (at := await committed(stack.bootstrap, group, tp)) != 9 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert at == 9, worker.log()[-4000:]
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=1, timeout=30)
    assert [(d["source_topic"], d["partition"], d["offset"], d["errors"][0]["reason"]) for d in letters] == [
        (topic, 0, 3, "invalid_json")]
    deadline = time.monotonic() + 30
    while True:
        lag = metric(worker.metrics(), "learnstream_consumer_lag_messages", topic=topic, partition="0")
        code, body = await _readyz(worker.metrics_port)
        if (lag == 0 and code == 200) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert lag == 0 and code == 200, (lag, body)
    assert worker.proc.poll() is None
