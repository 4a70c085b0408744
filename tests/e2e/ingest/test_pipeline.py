"""End to end on real Kafka and PostgreSQL: a worker subprocess, messages published with the
project's publisher, rows checked in the database, dead letters read back from Kafka."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime

import asyncpg
import orjson
import pytest

from db.partitions import period_of
from db.tables import TABLES
from streams.devkit.synthetic import ID_FIELD, MEMBER_FAULTS, MESSAGE_FAULTS, Generator
from streams.publish import publish_messages
from tests.support import QUICK_GROUP, metric, publish_markers, read_topic, wait_for_ids, wait_for_rows

pytestmark = pytest.mark.services


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _check_row(kind: str, row: asyncpg.Record, ev: dict) -> None:
    if kind == "learning_event":
        assert row["workspace_id"] == __import__("uuid").UUID(ev["workspace_id"])
        assert row["event_type"] == ev["event_type"]
        assert row["timestamp"] == _ts(ev["timestamp"])
        assert row["event_data"] == ev["event_data"]
        assert row["processing_time_ms"] == ev["processing_time_ms"]
        assert row["metadata"] == ev["metadata"]
        assert row["entity_id"] == ev["entity_id"]
    elif kind == "performance_sample":
        assert row["metric_name"] == ev["metric_name"]
        assert row["value"] == ev["value"]
        assert row["unit"] == ev["unit"]
        assert row["tags"] == ev["tags"]
        assert row["timestamp"] == _ts(ev["timestamp"])
    else:
        assert str(row["content_id"]) == ev["content_id"]
        assert row["platform"] == ev["platform"]
        assert (row["views"], row["likes"], row["shares"], row["comments"], row["saves"]) == (
            ev["views"], ev["likes"], ev["shares"], ev["comments"], ev["saves"]
        )
        assert row["recorded_at"] == _ts(ev["recorded_at"])
        assert row["platform_metrics"] == ev["platform_metrics"]


async def test_exactly_the_distinct_rows_land_in_the_right_partitions(stack, start_worker):
    worker = start_worker()
    gen = Generator(seed=11)
    expected: dict[str, dict[str, dict]] = {k: {} for k in TABLES}
    sent_events = {k: 0 for k in TABLES}
    for kind, topic in stack.topics.items():
        for array_size in (1, 250):
            w = gen.workload(kind, 1500, array_size=array_size, invalid_share=0, duplicate_share=0.05)
            assert w.duplicates > 0
            await publish_messages(stack.bootstrap, topic, w.messages)
            expected[kind].update(w.expected)
            sent_events[kind] += w.valid_events
        # a producer retry: the same 100 single-event messages once more
        again = gen.workload(kind, 100, invalid_share=0, duplicate_share=0)
        await publish_messages(stack.bootstrap, topic, again.messages * 2)
        expected[kind].update(again.expected)
        sent_events[kind] += 2 * again.valid_events

    want = {TABLES[k].name: len(v) for k, v in expected.items()}
    counts = await wait_for_rows(stack.dsn, want)
    assert counts == want
    # nothing more arrives: no duplicate slipped in late (a marker after them on every partition,
    # once stored, says every message before it was consumed; the markers are expected rows too)
    markers = await publish_markers(stack.bootstrap, stack.topics, gen)
    for kind, evs in markers.items():
        expected[kind].update(evs)
        sent_events[kind] += len(evs)
    await wait_for_ids(stack.dsn, {TABLES[k].name: list(evs) for k, evs in markers.items()})
    want = {TABLES[k].name: len(v) for k, v in expected.items()}
    assert await wait_for_rows(stack.dsn, want, timeout=0) == want

    from db.pool import connect

    conn = await connect(stack.dsn)  # the service's codecs (jsonb as Python values)
    try:
        for kind, spec in TABLES.items():
            rows = await conn.fetch(f"SELECT tableoid::regclass::text AS part, * FROM {spec.name}")
            assert {str(r["id"]) for r in rows} == set(expected[kind])
            for r in rows:
                ev = expected[kind][str(r["id"])]
                _check_row(kind, r, ev)
                assert r["part"] == period_of(spec, r[spec.time_column]).name
    finally:
        await conn.close()

    # the counters say the same (rows are counted right after their commit)
    for _ in range(40):
        m = worker.metrics()
        if all(metric(m, "learnstream_rows_inserted_total", table=TABLES[k].name) == len(expected[k]) for k in TABLES):
            break
        await asyncio.sleep(0.25)
    for kind, topic in stack.topics.items():
        table = TABLES[kind].name
        assert metric(m, "learnstream_rows_inserted_total", table=table) == len(expected[kind])
        assert metric(m, "learnstream_duplicates_skipped_total", table=table) == sent_events[kind] - len(expected[kind])
        assert metric(m, "learnstream_events_consumed_total", topic=topic) == sent_events[kind]
        assert metric(m, "learnstream_batch_size_events_count", table=table) >= 1
        assert metric(m, "learnstream_event_to_row_seconds_count", table=table) == sent_events[kind]
    assert metric(m, "learnstream_db_up") == 1

    # consumer lag per partition: reported for every source topic, 0 once all is committed
    lags: dict = {}
    for _ in range(60):
        lags = {dict(k[1])["topic"]: v for k, v in worker.metrics().items()
                if k[0] == "learnstream_consumer_lag_messages" and v == 0 and dict(k[1])["topic"] in stack.topics.values()}
        pending = [v for k, v in worker.metrics().items() if k[0] == "learnstream_consumer_lag_messages" and v]
        if set(lags) == set(stack.topics.values()) and not pending:
            break
        await asyncio.sleep(0.5)
    assert set(lags) == set(stack.topics.values())
    assert pending == []


def _bad_messages(gen: Generator, kind: str) -> tuple[list[tuple[bytes, bytes]], list[list[str]], list[dict]]:
    """Every bad-input class once: (messages, expected reasons per message, valid siblings)."""
    msgs: list[tuple[bytes, bytes]] = []
    reasons: list[list[str]] = []
    for fault in MESSAGE_FAULTS:
        msgs.append((b"k-" + fault.encode(), gen.bad_message(kind, fault)))
        reasons.append([fault])
    for fault in MEMBER_FAULTS:  # as single-event messages
        msgs.append((b"k-single-" + fault.encode(), orjson.dumps(gen.bad_member(kind, fault))))
        reasons.append([fault])
    siblings = [gen.event(kind), gen.event(kind)]
    mixed = [siblings[0], *(gen.bad_member(kind, f) for f in MEMBER_FAULTS), siblings[1]]
    msgs.append((b"k-mixed", orjson.dumps(mixed)))
    reasons.append(list(MEMBER_FAULTS))
    return msgs, reasons, siblings


async def test_bad_input_goes_to_the_dlq_with_its_reason_and_the_rest_lands(stack, start_worker):
    worker = start_worker()
    gen = Generator(seed=5)
    sent: dict[tuple[str, bytes], tuple[bytes, list[str]]] = {}
    landed: dict[str, set[str]] = {}
    for kind, topic in stack.topics.items():
        msgs, reasons, siblings = _bad_messages(gen, kind)
        await publish_messages(stack.bootstrap, topic, msgs)
        for (key, value), why in zip(msgs, reasons):
            sent[(topic, key)] = (value, why)
        follow_up = gen.event(kind)  # the worker goes on with what follows
        await publish_messages(stack.bootstrap, topic, [(b"k-after", orjson.dumps(follow_up))])
        landed[kind] = {s[ID_FIELD[kind]] for s in siblings} | {follow_up[ID_FIELD[kind]]}

    # a batch's dead letters follow its rows' write, which a loaded CI machine can keep waiting
    # (a failure shows the worker's log: conftest's report hook)
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=len(sent), timeout=150)
    assert len(letters) == len(sent)
    for letter in letters:
        key = (letter["key"] or "").encode()
        value, why = sent[(letter["source_topic"], key)]
        assert [e["reason"] for e in letter["errors"]] == why
        raw = base64.b64decode(letter["value"]) if letter["value_encoding"] == "base64" else letter["value"].encode()
        assert letter["value_encoding"] == ("base64" if why == ["invalid_utf8"] else "utf-8")
        assert letter["partition"] >= 0 and letter["offset"] >= 0
        assert datetime.fromisoformat(letter["received_at"]).tzinfo is not None
        if key == b"k-mixed":
            # the valid siblings were stored: the envelope carries only the rejected members
            assert letter["members"] == [1, 2, 3, 4]
            assert orjson.loads(raw) == orjson.loads(value)[1:5]
            assert [e["index"] for e in letter["errors"]] == [1, 2, 3, 4]
            assert all(e["message"] for e in letter["errors"])
        else:
            assert raw == value and letter["members"] is None

    want = {TABLES[k].name: len(ids) for k, ids in landed.items()}
    assert await wait_for_rows(stack.dsn, want) == want
    conn = await asyncpg.connect(stack.dsn)
    try:
        for kind, ids in landed.items():
            got = {str(r[0]) for r in await conn.fetch(f"SELECT id FROM {TABLES[kind].name}")}
            assert got == ids
    finally:
        await conn.close()

    m = worker.metrics()
    for topic in stack.topics.values():
        assert metric(m, "learnstream_invalid_events_total", topic=topic, reason="too_many_events") == 1001
        for fault in MEMBER_FAULTS:
            assert metric(m, "learnstream_invalid_events_total", topic=topic, reason=fault) == 2
        for fault in ("invalid_json", "invalid_utf8"):
            assert metric(m, "learnstream_invalid_events_total", topic=topic, reason=fault) == 1
        assert metric(m, "learnstream_dlq_published_total", source_topic=topic) == len(MESSAGE_FAULTS) + len(MEMBER_FAULTS) + 1
    assert worker.proc.poll() is None


async def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(stack, start_worker):
    gen = Generator(seed=99)
    expected: dict[str, set[str]] = {}
    for kind, topic in stack.topics.items():
        w = gen.workload(kind, 12_000, array_size=20, invalid_share=0, duplicate_share=0.01)
        await publish_messages(stack.bootstrap, topic, w.messages)
        expected[kind] = set(w.expected)
    want = {TABLES[k].name: len(v) for k, v in expected.items()}
    total = sum(want.values())

    # small batches so that the kill lands between many commits
    first = start_worker(LEARNSTREAM_BATCH_MAX_EVENTS="25", **QUICK_GROUP)
    conn = await asyncpg.connect(stack.dsn)
    try:
        while True:
            done = sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in want])
            if done >= total // 5:
                break
            await asyncio.sleep(0.1)
        first.kill()
        at_kill = sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in want])
        assert at_kill < total, "the worker finished before it could be killed mid-stream"

        second = start_worker(LEARNSTREAM_BATCH_MAX_EVENTS="500", **QUICK_GROUP)
        assert await wait_for_rows(stack.dsn, want, timeout=180) == want
        for kind, ids in expected.items():
            got = [str(r[0]) for r in await conn.fetch(f"SELECT id FROM {TABLES[kind].name}")]
            assert len(got) == len(ids) and set(got) == ids
    finally:
        await conn.close()
    # what the killed worker had written but not committed was redelivered and recognised
    m = second.metrics()
    redelivered = sum(metric(m, "learnstream_duplicates_skipped_total", table=t) for t in want)
    assert redelivered > 0


@pytest.mark.serial  # stops the shared services: run alone
async def test_postgres_outage_is_waited_out_without_loss(stack, start_worker, services):
    import os

    if os.environ.get("LEARNSTREAM_DATABASE_URL") or os.environ.get("LEARNSTREAM_TEST_CONTAINERS") == "1":
        pytest.skip("stopping PostgreSQL needs the local services of `learnstream services`")
    from streams.devkit.services.postgres import pg_start, pg_stop

    worker = start_worker()
    gen = Generator(seed=3)
    topic = stack.topics["performance_sample"]
    expected: set[str] = set()

    async def produce(rounds: int) -> None:
        for _ in range(rounds):
            w = gen.workload("performance_sample", 200, array_size=10, invalid_share=0, duplicate_share=0)
            expected.update(w.expected)
            await publish_messages(stack.bootstrap, topic, w.messages)
            await asyncio.sleep(0.5)

    producer = asyncio.create_task(produce(40))  # ~20 s of traffic
    await asyncio.sleep(3)
    await asyncio.to_thread(pg_stop)
    try:
        await asyncio.sleep(10)
        assert worker.proc.poll() is None, "worker exited during the outage"
        m = worker.metrics()
        assert metric(m, "learnstream_db_up") == 0
    finally:
        await asyncio.to_thread(pg_start)
    await producer
    want = {"system_performance_metrics": len(expected)}
    assert await wait_for_rows(stack.dsn, want, timeout=120) == want
    conn = await asyncpg.connect(stack.dsn)
    try:
        got = {str(r[0]) for r in await conn.fetch("SELECT id FROM system_performance_metrics")}
    finally:
        await conn.close()
    assert got == expected
    assert worker.proc.poll() is None
    m = worker.metrics()
    assert metric(m, "learnstream_db_retries_total", table="system_performance_metrics") > 0
    assert metric(m, "learnstream_db_up") == 1
    # logged once per outage state change, not per attempt or event
    log = worker.log()
    assert 1 <= log.count("retrying with backoff, offsets held") <= 3
    assert log.count("succeeded again after") == log.count("retrying with backoff, offsets held")
