"""No poison pills (issue #8), end to end on real Kafka and PostgreSQL: the four inputs that used to
stop or silently break the worker, each also replayed by a restarted worker, and a poisoned
watermark left by an older version healing on start."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from db.pool import connect
from streams.publish import publish_messages
from streams.topics import ensure_topics
from streams.windows.input import workspace_partition
from tests.support import (
    SMALL,
    iso,
    kafka_kwargs,
    read_topic,
    sample,
    wait_for_ids,
    wait_for_rows,
    window_base,
    workspace_messages,
)

pytestmark = pytest.mark.services


def _learning(ws: str, ts: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "workspace_id": ws, "event_type": "improvement_measured",
            "timestamp": ts, "source_system": "m", "event_data": {"improvement_type": "latency"}, "processing_time_ms": 5}


async def _raw_topic(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> list[bytes]:
    """The raw values of a topic from its start (until `expect` arrived or `timeout`)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, **kafka_kwargs(), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    out: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return out


async def _count(dsn: str, sql: str, *args) -> int:
    conn = await connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _tumbling_total(dsn: str, ws: str, expect: int, before: float, timeout: float = 60) -> int:
    """Events counted in the tumbling windows of `ws` that start before `before` (the latest revision)."""
    deadline = time.monotonic() + timeout
    while True:
        n = await _count(dsn, "SELECT coalesce(sum(count), 0) FROM performance_rollups WHERE workspace_id = $1 "
                              "AND window_s = step_s AND window_start < $2", uuid.UUID(ws),
                         datetime.fromtimestamp(before, UTC))
        if n >= expect or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.5)


async def test_an_event_from_year_one_is_dead_lettered_and_a_replay_does_not_crash(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    base = window_base()
    good = [_learning(ws, iso(base + i)) for i in range(20)]
    poison = _learning(ws, "0001-01-01T00:00:00+00:00")
    await publish_messages(stack.bootstrap, stack.topics["learning_event"],
                           [(ws.encode(), orjson.dumps(poison)), *workspace_messages(good, per=10)])
    # another writer of the internal topic: an item from year 1 sent straight to window-input
    rogue = {"k": "learning_event", "w": ws, "t": "elsewhere",
             "i": [[[0, 1], -62135596800.0, [str(uuid.uuid4()), "x", None, 1], False]]}
    await publish_messages(stack.bootstrap, f"t{stack.tag}.window-input", [(ws.encode(), orjson.dumps(rogue))])

    assert await wait_for_rows(stack.dsn, {"learning_events": 20}) == {"learning_events": 20}
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=2)
    by_stage = {d["stage"]: d for d in letters}
    assert set(by_stage) == {"ingest", "windows"} and len(letters) == 2
    assert by_stage["ingest"]["errors"][0]["reason"] == "timestamp_out_of_range"
    assert orjson.loads(by_stage["ingest"]["value"])["event_id"] == poison["event_id"]
    assert by_stage["windows"]["errors"][0]["reason"] == "timestamp_out_of_range"
    assert await _count(stack.dsn, "SELECT count(*) FROM learning_events WHERE timestamp < '2000-01-01'") == 0
    assert worker.proc.poll() is None

    # the same input again, from the start, by a worker under a new app id: its ingest group is new,
    # so it reads the source topics from the start (the poison is dead-lettered again), but its window
    # stage reads its own window-input (#23 item 13): never another app's history, the rogue item too
    worker.kill()
    again = start_worker(**SMALL, LEARNSTREAM_APP_ID=f"t{stack.tag}-replay")
    assert f"t{stack.tag}-replay.window-input" in again.log()  # created for it
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=3)
    await asyncio.sleep(5)  # its window stage has long read what its ingest sent
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=3, timeout=5)
    assert sorted(d["stage"] for d in letters) == ["ingest", "ingest", "windows"] and again.proc.poll() is None
    assert await _count(stack.dsn, "SELECT count(*) FROM learning_events") == 20


async def test_a_sample_from_year_2999_does_not_make_live_samples_late(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    far = sample(ws, 0, 1.0)
    far["timestamp"] = "2999-01-01T00:00:00+00:00"
    base = window_base()
    live = [sample(ws, base + i * 0.3, float(i)) for i in range(100)]
    closer = sample(ws, base + 200, 0.0)  # moves the watermark past every live window
    topic = stack.topics["performance_sample"]
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps(far))])
    await publish_messages(stack.bootstrap, topic, [*workspace_messages(live, per=25), (ws.encode(), orjson.dumps(closer))])
    assert await _tumbling_total(stack.dsn, ws, 100, base + 100) == 100
    [letter] = await read_topic(stack.bootstrap, stack.dlq, expect=1)
    assert letter["errors"][0]["reason"] == "timestamp_out_of_range"
    assert await read_topic(stack.bootstrap, stack.late_events, expect=1, timeout=3) == []
    assert worker.proc.poll() is None
    # the same input again, from the start, by a worker of a new consumer group (its own window state)
    worker.kill()
    again = start_worker(**SMALL, LEARNSTREAM_APP_ID=f"t{stack.tag}-replay")
    assert len(await read_topic(stack.bootstrap, stack.dlq, expect=2)) == 2
    await asyncio.sleep(3)
    assert await _tumbling_total(stack.dsn, ws, 100, base + 100) == 100
    assert again.proc.poll() is None


async def test_a_watermark_poisoned_by_an_older_version_heals_on_start(stack, start_worker):
    ws = str(uuid.uuid4())
    changelog = f"t{stack.tag}-windows-changelog"
    await ensure_topics(stack.bootstrap, [changelog], 4)
    p = workspace_partition(ws, 4)
    year_2999 = datetime(2999, 1, 1, tzinfo=UTC).timestamp()
    clock = {"performance_sample": [year_2999, year_2999], "learning_event": [None, None],
             "engagement_update": [None, None]}
    # what a worker before the acceptance window left in the changelog; and a pane at year 1
    pane_key = f"{p}|g|performance_sample|{ws}|{-62135596800.0!r}".encode()
    await publish_messages(stack.bootstrap, changelog, [
        (f"{p}|c".encode(), orjson.dumps(clock)), (pane_key, orjson.dumps({"{}": {"a": "x", "u": {}}}))])
    worker = start_worker(**SMALL)
    base = window_base()
    live = [sample(ws, base + i * 0.3, float(i)) for i in range(100)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"],
                           [*workspace_messages(live, per=25), (ws.encode(), orjson.dumps(sample(ws, base + 200, 0.0)))])
    assert await _tumbling_total(stack.dsn, ws, 100, base + 100) == 100
    assert "is in the future; set back to" in worker.log()
    assert worker.proc.poll() is None


async def test_a_backfill_a_few_hours_back_is_stored_and_its_windows_recomputed(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    topic = stack.topics["performance_sample"]
    now = datetime.now(UTC).timestamp()
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps([sample(ws, now - 1, 1.0)]))])
    assert await wait_for_rows(stack.dsn, {"system_performance_metrics": 1}) == {"system_performance_metrics": 1}
    # 2,000 events three hours back, with long tags (the late-events messages grow with them)
    start = now - 3 * 3600
    history = [sample(ws, start + i * 1.7, float(i % 97), host=f"h{i % 3}", note="n" * 120) for i in range(2000)]
    await publish_messages(stack.bootstrap, topic, workspace_messages(history, per=1000))
    want = {"system_performance_metrics": 2001}
    assert await wait_for_rows(stack.dsn, want) == want

    late = await _raw_topic(stack.bootstrap, stack.late_events, expect=2)
    deadline = time.monotonic() + 30
    while sum(len(orjson.loads(v)) for v in late) < 2000 and time.monotonic() < deadline:
        late = await _raw_topic(stack.bootstrap, stack.late_events, expect=len(late) + 1, timeout=2)
    assert sum(len(orjson.loads(v)) for v in late) == 2000
    assert len(late) >= 2 and max(map(len, late)) <= 1_000_000
    # every tumbling window of the history, recomputed from the stored rows: exact counts
    deadline = time.monotonic() + 60
    while True:
        got = await _count(stack.dsn, "SELECT coalesce(sum(count), 0) FROM performance_rollups WHERE workspace_id = $1 "
                                      "AND window_s = step_s AND window_start < $2 AND revision >= 1",
                           uuid.UUID(ws), datetime.fromtimestamp(now - 3600, UTC))
        if got >= 2000 or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert got == 2000
    assert worker.proc.poll() is None
    # replayed from the start under a new app id: its ingest reads the source topics from the start
    # into its own window-input (#23 item 13), in source order, where the history may share a batch
    # with the live sample (then it is not late there); whatever is late is recomputed: nothing changes
    worker.kill()
    again = start_worker(**SMALL, LEARNSTREAM_APP_ID=f"t{stack.tag}-replay")
    assert await wait_for_rows(stack.dsn, want) == want
    await asyncio.sleep(8)
    late_again = await _raw_topic(stack.bootstrap, stack.late_events, expect=len(late), timeout=5)
    assert 2000 <= sum(len(orjson.loads(v)) for v in late_again) <= 4000
    assert await _count(stack.dsn, "SELECT coalesce(sum(count), 0) FROM performance_rollups WHERE workspace_id = $1 "
                                   "AND window_s = step_s AND window_start < $2", uuid.UUID(ws),
                        datetime.fromtimestamp(now - 3600, UTC)) == 2000
    assert again.proc.poll() is None


async def test_a_message_just_under_the_limit_that_is_not_json_is_cut_in_its_dead_letter(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    raw = b'{"not json' + b"x" * (1_040_000 - 10)
    assert len(raw) == 1_040_000
    topic = stack.topics["learning_event"]
    after = [_learning(ws, iso(window_base() + i)) for i in range(10)]
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), raw), *workspace_messages(after, per=5)])
    assert await wait_for_rows(stack.dsn, {"learning_events": 10}) == {"learning_events": 10}
    [value] = await _raw_topic(stack.bootstrap, stack.dlq, expect=1)
    assert len(value) <= 1_000_000
    d = orjson.loads(value)
    assert d["value_truncated"] is True and d["value_length"] == len(raw)
    assert d["value_sha256"] == hashlib.sha256(raw).hexdigest() and raw.startswith(d["value"].encode())
    assert d["errors"][0]["reason"] == "invalid_json"
    # the partition moved on: its offsets are committed up to the end, so a restart replays nothing
    t0 = time.monotonic()
    assert worker.stop() is not None
    stopped = time.monotonic() - t0
    assert stopped < 10, f"SIGTERM took {stopped:.1f} s"
    again = start_worker(**SMALL)
    # a marker after them in the same partition (keyed by the workspace): once it is stored, the
    # restarted worker has consumed everything it was going to
    marker = _learning(ws, iso(window_base() + 10))
    await publish_messages(stack.bootstrap, topic, [(ws.encode(), orjson.dumps(marker))])
    await wait_for_ids(stack.dsn, {"learning_events": [marker["event_id"]]}, timeout=60)
    assert len(await _raw_topic(stack.bootstrap, stack.dlq, expect=2, timeout=3)) == 1
    assert again.proc.poll() is None


async def test_sigterm_ends_the_worker_within_its_bound_whatever_is_retrying(stack, start_worker):
    from streams.devkit.services import free_port

    # PostgreSQL unreachable (a closed port): every write is retried, offsets held
    worker = start_worker(**SMALL, LEARNSTREAM_DATABASE_URL=f"postgresql://x:y@127.0.0.1:{free_port()}/none")
    ws = str(uuid.uuid4())
    await publish_messages(stack.bootstrap, stack.topics["learning_event"],
                           workspace_messages([_learning(ws, iso(window_base() + i)) for i in range(50)], per=10))
    deadline = time.monotonic() + 30
    while "retrying with backoff" not in worker.log():
        assert time.monotonic() < deadline, worker.log()[-2000:]
        await asyncio.sleep(0.2)
    t0 = time.monotonic()
    worker.stop()
    took = time.monotonic() - t0
    assert took < 12, f"SIGTERM took {took:.1f} s"  # the bound (10 s) and the interpreter's exit


async def test_sigterm_right_after_window_input_is_not_held_by_unacknowledged_windows(stack, start_worker):
    # a long flush interval: what the window stage folded is acknowledged only by a flush
    worker = start_worker(**SMALL, LEARNSTREAM_WINDOW_FLUSH_INTERVAL_S="30")
    ws = str(uuid.uuid4())
    events = [sample(ws, window_base() + i, 1.0) for i in range(20)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], workspace_messages(events, per=10))
    assert await wait_for_rows(stack.dsn, {"system_performance_metrics": 20}) == {"system_performance_metrics": 20}
    await asyncio.sleep(1)
    t0 = time.monotonic()
    worker.stop()
    took = time.monotonic() - t0
    assert took < 8, f"SIGTERM took {took:.1f} s"
    assert "shutdown took longer" not in worker.log()
