"""#23 item 6 on the real broker: a workspace's window-input chunks land in their order when a send
fails midway. The broker is real; the failure is injected into one send of the first attempt
(the first chunk fails after the workspace's later chunks went out: what a produce retry did when
it resent the whole list, a later chunk landing before an earlier one, whose items the pane's
high-water source offset then skipped: 132 of 400 events folded)."""

from __future__ import annotations

import asyncio
import types

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams.retry import Retrier
from streams.topics import ensure_topics
from streams.windows.stage import WindowStage
from tests.support import kafka_kwargs, read_partition

pytestmark = pytest.mark.services


async def test_a_workspaces_chunks_land_on_the_broker_in_order_when_a_send_fails_midway(stack):
    topic = f"t{stack.tag}.window-input"
    await ensure_topics(stack.bootstrap, [topic], 2)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, **kafka_kwargs(), acks="all")
    await producer.start()
    failures = {b"ws-a:1": 1}  # fails once; its wave's other sends reach the broker

    async def send(name, key, value, partition, *rest):
        if failures.get(value):
            failures[value] -= 1
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(KafkaConnectionError("broker away"))
            return fut
        return await producer.send(name, value, key=key, partition=partition)

    stage = WindowStage.__new__(WindowStage)  # only its sending: no Faust app
    stage.app = types.SimpleNamespace(producer=types.SimpleNamespace(send=send))
    stage._retrying = Retrier(0.01, 0.1)
    try:
        messages = [(0, b"ws-a", b"ws-a:1"), (0, b"ws-a", b"ws-a:2"), (1, b"ws-b", b"ws-b:1"),
                    (0, b"ws-a", b"ws-a:3")]
        await stage._send_all("test", types.SimpleNamespace(get_topic_name=lambda: topic), messages)
    finally:
        await producer.stop()
    # ws-a's chunks in their order, each once; ws-b's wave was retried whole: a repeat, which the
    # stage skips by source offset
    assert [v for _, v in await read_partition(stack.bootstrap, topic, 0)] == [b"ws-a:1", b"ws-a:2", b"ws-a:3"]
    assert [v for _, v in await read_partition(stack.bootstrap, topic, 1)] == [b"ws-b:1", b"ws-b:1"]
