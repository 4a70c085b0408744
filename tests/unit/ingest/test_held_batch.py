"""A batch that can be neither stored nor set aside is held (issue #23, item 7), the consumer's
chaining without Kafka: the failed batch is tried again, later batches wait for it before they
commit, /readyz names it, and no exception leaves the batch's task. The live reproduction (the DLQ
topic refusing every dead letter) is tests/e2e/ingest/test_held_batch.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors

from schemas.events import DeadLetterError
from streams import health
from streams.config import Settings
from streams.dead_letters import DeadLetterRefused, envelope, publish_dead_letters
from streams.ingest.consumer import IngestConsumer
from streams.ingest.sink import BatchOutcome
from streams.retry import Retrier

TOPIC = "t.performance-samples"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = b"{}"


class FailingSink:
    """Refuses every batch holding offset `bad` with DeadLetterRefused until `cured` is set."""

    kind = "performance_sample"

    def __init__(self, bad: int) -> None:
        self.bad, self.cured, self.attempts = bad, False, 0

    async def process(self, records):
        if any(r.offset == self.bad for r in records):
            self.attempts += 1
            if not self.cured:
                raise DeadLetterRefused("publishing 1 dead letters", kafka_errors.MessageSizeTooLargeError())
        return BatchOutcome(messages=len(records))


class FakeKafka:
    def __init__(self) -> None:
        self.commits: list[dict] = []

    def assignment(self):
        return {TopicPartition(TOPIC, 0)}

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


async def _until(cond, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)


async def test_a_refused_batch_is_held_and_retried_and_later_batches_commit_after_it():
    sink = FailingSink(bad=3)
    consumer = IngestConsumer(Settings(db_retry_initial_s=0.001, db_retry_max_s=0.01), {TOPIC: sink}, None,
                              dead_letters=None)  # type: ignore[arg-type]
    kafka = consumer._consumer = FakeKafka()  # type: ignore[assignment]
    lane = consumer._lanes[TOPIC]
    consumer._dispatch(lane, [Record(TOPIC, 0, o) for o in range(3)])
    consumer._dispatch(lane, [Record(TOPIC, 0, 3)])
    consumer._dispatch(lane, [Record(TOPIC, 0, o) for o in range(4, 9)])
    tasks = set(lane.inflight)

    await _until(lambda: sink.attempts >= 3)
    assert kafka.commits == [{TopicPartition(TOPIC, 0): 3}]  # nothing past the held batch
    assert len(lane.inflight) == 2
    held = consumer.held()
    assert len(held) == 1 and held[0].startswith(f"topic {TOPIC} partition 0 offset 3 held for")
    assert "DeadLetterRefused" in held[0]
    status = {"running": True, "assigned": True, "partitions": 1, "last_fetch_age_s": 0.1, "held": held}
    check = health.ingest_check(status)
    assert not check.ok and f"topic {TOPIC} partition 0 offset 3" in check.detail

    sink.cured = True
    await asyncio.wait_for(asyncio.gather(*tasks), 5)  # no exception leaves a batch's task
    assert kafka.commits == [{TopicPartition(TOPIC, 0): o} for o in (3, 4, 9)]
    assert consumer.held() == [] and lane.previous is not None and lane.previous.result() is True
    assert health.ingest_check({**status, "held": consumer.held()}).ok


async def test_a_dlq_refusing_at_every_budget_raises_dead_letter_refused():
    sent: list[int] = []

    async def refuse(key, value):
        sent.append(len(value))
        raise kafka_errors.MessageSizeTooLargeError()

    letter = envelope(Record(TOPIC, 0, 3, value=b"x" * 100_000),
                      [DeadLetterError(reason="invalid_json", message="no")], datetime.now(UTC))
    with pytest.raises(DeadLetterRefused):
        await publish_dead_letters(refuse, Retrier(0.001, 0.002), [letter], budget=1_000_000)
    assert len(sent) > 1 and sent[-1] < 16_384  # halved down to the smallest budget first
