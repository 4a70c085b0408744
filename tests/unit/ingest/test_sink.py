"""BatchSink's batching logic without services: the database write is replaced by a recorder
(the real write path is covered against PostgreSQL in tests/integration and tests/e2e)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from db.pool import SharedPool
from db.writer import WriteResult
from streams import metrics
from streams.dead_letters import DeadLetters
from streams.devkit.synthetic import Generator
from streams.ingest.sink import BatchSink
from streams.retry import Backoff, Retrier


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RecordingSink(BatchSink):
    def __init__(self, kind, fail_times=0, reject=(), unregistered=()):
        self.unregistered = set(unregistered)
        self.letters: list[tuple[bytes | None, dict]] = []

        async def publish(key, value):
            self.letters.append((key, orjson.loads(value)))

        letters = DeadLetters(publish, Retrier(0.001, 0.002), 1_000_000)
        super().__init__(kind, SharedPool("postgresql://unused", 1), letters, retry_initial_s=0.001, retry_max_s=0.002)
        self.fail_times, self.reject, self.writes = fail_times, reject, []

    async def _unknown_workspaces(self, ids):
        return ids & self.unregistered

    async def _write_attempt(self, rows, isolate=False):
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionRefusedError("database down")
        self.writes.append(rows)
        seen = {r[0] for w in self.writes[:-1] for r in w}
        new = sum(1 for r in rows if r[0] not in seen)
        return WriteResult(
            inserted=new - len(self.reject), duplicates=len(rows) - new,
            rejected=[(i, "CheckViolationError: nope") for i in self.reject],
        )



def _sample(name, labels):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_batch_is_decoded_written_and_its_bad_input_dead_lettered():
    g = Generator(seed=21)
    topic = "unit-le-1"
    good = [g.learning_event() for _ in range(5)]
    msgs = [
        Msg(topic, 0, 10, b"w", orjson.dumps(good[0])),
        Msg(topic, 0, 11, b"w", orjson.dumps([good[1], 5, good[2]])),
        Msg(topic, 1, 3, None, b"\xff garbage"),
        Msg(topic, 1, 4, b"w", orjson.dumps(good[3:])),
    ]
    sink = RecordingSink("learning_event")
    out = await sink.process(msgs)
    assert (out.messages, out.events, out.inserted, out.duplicates) == (4, 7, 5, 0)
    assert dict(out.invalid) == {"not_an_object": 1, "invalid_utf8": 1}
    [rows] = sink.writes
    assert [str(r[0]) for r in rows] == [e["event_id"] for e in good]
    keys = [k for k, _ in sink.letters]
    assert keys == [f"{topic}:0:11".encode(), f"{topic}:1:3".encode()]
    arr_letter, utf8_letter = (letter for _, letter in sink.letters)
    assert arr_letter["errors"][0]["index"] == 1 and arr_letter["offset"] == 11
    assert arr_letter["members"] == [1] and orjson.loads(arr_letter["value"]) == [5]
    assert utf8_letter["value_encoding"] == "base64" and utf8_letter["key"] is None
    assert _sample("learnstream_invalid_events_total", {"topic": topic, "reason": "invalid_utf8"}) == 1
    assert _sample("learnstream_events_consumed_total", {"topic": topic}) == 7
    assert _sample("learnstream_dlq_published_total", {"source_topic": topic}) == 2


async def test_database_failures_are_retried_and_logged_once(caplog):
    g = Generator(seed=22)
    before = _sample("learnstream_db_retries_total", {"table": "system_performance_metrics"})
    sink = RecordingSink("performance_sample", fail_times=4)
    msgs = [Msg("unit-ps", 0, i, b"w", orjson.dumps(g.performance_sample())) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="learnstream.sink"):
        out = await sink.process(msgs)
    assert out.inserted == 3 and len(sink.writes) == 1
    assert _sample("learnstream_db_retries_total", {"table": "system_performance_metrics"}) - before == 4
    texts = [r.getMessage() for r in caplog.records]
    assert sum("retrying with backoff" in t for t in texts) == 1
    assert sum("succeeded again" in t for t in texts) == 1


async def test_rows_the_database_refuses_become_dead_letters():
    g = Generator(seed=23)
    events = [g.engagement_update() for _ in range(4)]
    msgs = [Msg("unit-eu", 2, 40, b"w", orjson.dumps(events[:2])), Msg("unit-eu", 2, 41, b"w", orjson.dumps(events[2:]))]
    sink = RecordingSink("engagement_update", reject=[2])
    out = await sink.process(msgs)
    assert out.invalid == {"database_rejected": 1}
    [(key, letter)] = sink.letters
    assert key == b"unit-eu:2:41"
    # the refused member and its index, not the whole array (#23 item 14)
    assert letter["errors"] == [
        {"reason": "database_rejected", "index": 0, "path": "", "message": "CheckViolationError: nope"}]
    assert (letter["members"], orjson.loads(letter["value"])) == ([0], [events[2]])


def test_backoff_is_capped_with_full_jitter():
    b = Backoff(0.1, 1.0)
    delays = [b.next_delay() for _ in range(20)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert max(delays[:1]) <= 0.1


def test_observe_many_matches_observe():
    from prometheus_client import CollectorRegistry, Histogram

    reg = CollectorRegistry()
    a = Histogram("a_seconds", "a", buckets=(0.1, 1, 10), registry=reg)
    b = Histogram("b_seconds", "b", buckets=(0.1, 1, 10), registry=reg)
    values = [0.0, 0.1, 0.1000001, 0.5, 1.0, 9.99, 10.0, 11, 1e6]
    for v in values:
        a.observe(v)
    metrics.observe_many(b, values)
    got = {s.name.replace("b_", "a_", 1): s.value for s in reg.collect() if s.name == "b_seconds" for s in s.samples}
    want = {s.name: s.value for m in reg.collect() if m.name == "a_seconds" for s in m.samples}
    def measured(samples: dict) -> dict:
        return {k: v for k, v in samples.items() if not k.endswith("_created")}

    assert measured(got) == measured(want)


async def test_events_of_an_unregistered_workspace_are_dead_lettered_and_the_rest_written():
    import uuid

    g = Generator(seed=23)
    topic = "unit-le-unregistered"
    good = [g.learning_event() for _ in range(4)]
    stranger = str(uuid.uuid4())
    foreign = [{**g.learning_event(), "workspace_id": stranger} for _ in range(2)]
    msgs = [
        Msg(topic, 0, 1, b"w", orjson.dumps([good[0], foreign[0], good[1], foreign[1]])),
        Msg(topic, 0, 2, b"w", orjson.dumps(good[2:])),
        Msg(topic, 0, 3, b"s", orjson.dumps(foreign[0])),
    ]
    sink = RecordingSink("learning_event", unregistered={uuid.UUID(stranger)})
    out = await sink.process(msgs)
    assert (out.events, out.inserted, dict(out.invalid)) == (7, 4, {"unknown_workspace": 3})
    [rows] = sink.writes
    assert [str(r[0]) for r in rows] == [e["event_id"] for e in good]
    assert [k for k, _ in sink.letters] == [f"{topic}:0:1".encode(), f"{topic}:0:3".encode()]
    for _, letter in sink.letters:  # one error per distinct workspace of the message
        assert [(e["reason"], stranger in e["message"]) for e in letter["errors"]] == [("unknown_workspace", True)]
