"""Windows end to end on real Kafka and PostgreSQL: rollups exact against the events published,
late events set aside, state kept across a SIGKILL and across a second worker joining."""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import orjson
import pytest

from db.pool import connect
from schemas.rollups import LateEvent, Rollup
from streams.publish import publish_messages
from tests.support import NO_IDLE, QUICK_GROUP, SMALL, metric, read_topic, sample, wait_for_rows
from tests.support import fetch_rollups as _rollups
from tests.support import iso as _iso
from tests.support import window_base as _base
from tests.support import workspace_messages as _msgs

pytestmark = pytest.mark.services


async def test_rollups_match_the_events_and_late_events_are_set_aside(stack, start_worker):
    worker = start_worker(**SMALL)
    ws = str(uuid.uuid4())
    base = _base()
    rng = random.Random(7)
    events, values = [], defaultdict(list)  # (tags, tumbling start) -> values
    for _i in range(300):
        t = base + rng.uniform(0, 40)
        host = rng.choice(["a", "b"])
        v = round(rng.uniform(1, 500), 3)
        events.append(sample(ws, t, v, host=host))
        values[(host, math.floor(t / 10) * 10)].append(v)
    events.sort(key=lambda e: e["timestamp"])
    # learning events and engagement snapshots in the same span
    learning = [{"event_id": str(uuid.uuid4()), "workspace_id": ws, "event_type": "improvement_measured",
                 "event_subtype": "error" if i % 4 == 0 else "ok", "timestamp": _iso(base + i), "source_system": "m",
                 "event_data": {"improvement_type": "latency"}, "processing_time_ms": 10 * (i + 1)} for i in range(10)]
    post = str(uuid.uuid4())
    views = [100, 160, 150, 400]  # 150: a counter going down is flagged, not subtracted
    engagement = [{"update_id": str(uuid.uuid4()), "workspace_id": ws, "content_id": post, "platform": "tiktok",
                   "recorded_at": _iso(base + 2 * i), "views": v, "likes": 10 + i} for i, v in enumerate(views)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(events))
    await publish_messages(stack.bootstrap, stack.topics["learning_event"], _msgs(learning))
    await publish_messages(stack.bootstrap, stack.topics["engagement_update"], _msgs(engagement))

    tumbling = {k: v for k, v in values.items()}
    hopping = defaultdict(list)
    for (host, start), vs in values.items():
        for s in (start - 10, start):
            hopping[(host, s)].extend(vs)
    rows = await _rollups(stack.dsn, "performance_rollups", len(tumbling) + len(hopping))
    got = {(r["tags"]["host"], r["window_start"].timestamp(), r["window_s"]): r for r in rows}
    assert len(rows) == len(tumbling) + len(hopping)
    for size, expected in ((10.0, tumbling), (20.0, hopping)):
        for (host, start), vs in expected.items():
            r = got[(host, start, size)]
            assert (r["count"], r["min"], r["max"]) == (len(vs), min(vs), max(vs))
            assert r["sum"] == pytest.approx(sum(vs))
            exact = sorted(vs)[math.floor(0.95 * (len(vs) - 1))]
            assert abs(r["p95"] - exact) <= 0.01 * exact * 1.0001

    [lr] = [r for r in await _rollups(stack.dsn, "learning_rollups", 2) if r["window_s"] == 10.0]
    assert (lr["count"], lr["errors"], lr["processing_ms_max"]) == (10, 3, 100.0)
    er = [r for r in await _rollups(stack.dsn, "engagement_rollups", 1) if r["window_s"] == 10.0]
    assert [(r["updates"], r["views_gained"], r["likes_gained"], r["resets"]) for r in er] == [(4, 300, 3, 1)]
    conn = await connect(stack.dsn)
    try:
        ebt = await conn.fetchrow("SELECT * FROM engagement_by_time")
    finally:
        await conn.close()
    start = datetime.fromtimestamp(base, UTC)
    assert (ebt["platform"], ebt["day_of_week"], ebt["hour_of_day"]) == ("tiktok", (start.weekday() + 1) % 7, start.hour)
    assert (ebt["windows"], ebt["views_gained"], ebt["interactions_gained"]) == (1, 300, 3)

    published = await read_topic(stack.bootstrap, stack.rollups, len(rows) + 4)
    assert len([r for r in published if r["kind"] == "performance_sample"]) == len(rows)
    for r in published:
        Rollup.model_validate(r)

    # an event beyond the grace period: stored, not folded in live, on the late-events topic; its
    # closed windows are recomputed from the stored rows and published again as corrections
    late = sample(ws, base + 1, 9999.0, host="a")
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], [(None, orjson.dumps(late))])
    [[seen]] = await read_topic(stack.bootstrap, stack.late_events, 1)
    LateEvent.model_validate(seen)
    assert (seen["event_id"], seen["kind"]) == (late["sample_id"], "performance_sample")
    assert {(m["window_s"], datetime.fromisoformat(m["window_start"]).timestamp()) for m in seen["missed"]} == {
        (10.0, base), (20.0, base - 10), (20.0, base)}
    await wait_for_rows(stack.dsn, {"system_performance_metrics": 301})
    assert metric(worker.metrics(), "learnstream_late_events_total", kind="performance_sample") == 1
    assert max(r["max"] for r in rows) < 9999.0  # as closed live
    missed = {(10.0, base), (20.0, base - 10), (20.0, base)}
    deadline = asyncio.get_event_loop().time() + 30
    while asyncio.get_event_loop().time() < deadline:
        again = await _rollups(stack.dsn, "performance_rollups", 0)
        fixed = {(r["window_s"], r["window_start"].timestamp()): r for r in again
                 if r["revision"] == 1 and r["tags"] == {"host": "a"}}
        if set(fixed) == missed:
            break
        await asyncio.sleep(0.5)
    assert set(fixed) == missed
    for (size, start), r in fixed.items():
        vs = (tumbling if size == 10.0 else hopping)[("a", start)] + [9999.0]
        assert (r["count"], r["min"], r["max"]) == (len(vs), min(vs), max(vs))
        assert r["sum"] == pytest.approx(sum(vs))
        assert r["p95"] == pytest.approx(_percentile_cont(vs, 0.95))
    # the other windows are as they were
    assert sum(1 for r in again if r["revision"] == 0) == len(rows) - len(missed)
    corrections = [r for r in await read_topic(stack.bootstrap, stack.rollups, len(published) + 3)
                   if r.get("revision") == 1]
    assert {(r["window_s"], datetime.fromisoformat(r["window_start"]).timestamp()) for r in corrections} == missed


def _percentile_cont(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    vs = sorted(values)
    pos = q * (len(vs) - 1)
    lo = math.floor(pos)
    return vs[lo] + (vs[min(lo + 1, len(vs) - 1)] - vs[lo]) * (pos - lo)


async def _published_counts(dsn: str) -> dict[tuple[str, str], int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT workspace_id::text AS ws, tags->>'host' AS host, count FROM performance_rollups "
                                "WHERE window_s = 10")
    finally:
        await conn.close()
    return {(r["ws"], r["host"]): r["count"] for r in rows}


async def _run_in_two_parts(stack, between, workers=()) -> None:
    """Publish part one into one open window per workspace, call `between`, publish part two,
    then push the watermark on; the rollups must count every event exactly once."""
    base = _base()
    workspaces = [str(uuid.uuid4()) for _ in range(12)]  # spread over the 4 window partitions
    part = lambda: [sample(ws, base + 1 + i * 0.01, 1.0, host="h") for ws in workspaces for i in range(100)]  # noqa: E731
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(part(), per=20))
    await wait_for_rows(stack.dsn, {"system_performance_metrics": 1200})
    await between()
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(part(), per=20))
    await wait_for_rows(stack.dsn, {"system_performance_metrics": 2400})
    # close: an event per workspace far beyond the window, each in its own message keyed by its
    # workspace, so it follows that workspace's events in the same source partition (one message
    # for all would reach some workspaces before their part two, which would then be late)
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"],
                           _msgs([sample(ws, base + 100, 1.0, host="closer") for ws in workspaces], per=1))
    # (with two workers, a closer can reach a window partition before another workspace's part two
    # does, whose events are then late there: their window is recomputed from the stored rows, so
    # the count is exact once the correction is in)
    deadline = asyncio.get_event_loop().time() + 90
    while asyncio.get_event_loop().time() < deadline:
        counts = await _published_counts(stack.dsn)
        if all(counts.get((ws, "h")) == 200 for ws in workspaces):
            break
        await asyncio.sleep(0.5)
    notes = [line for w in workers() for line in w.log().splitlines()
             if "late " in line or "recomputed" in line or "set aside" in line] if workers else []
    assert {ws: counts.get((ws, "h")) for ws in workspaces} == {ws: 200 for ws in workspaces}, "\n".join(notes[-40:])


async def test_window_state_survives_a_sigkill(stack, start_worker):
    first = start_worker(**NO_IDLE, **QUICK_GROUP, LEARNSTREAM_BATCH_MAX_EVENTS="40")
    second = []

    async def kill_and_restart():
        await asyncio.sleep(1.0)  # let the changelog writes of part one go out
        first.kill()
        second.append(start_worker(**NO_IDLE, **QUICK_GROUP))

    await _run_in_two_parts(stack, kill_and_restart, lambda: [first, *second])
    assert "window state recovered" in second[0].log()


@pytest.mark.serial  # a rebalance between two workers: alone, not on a machine the parallel run keeps busy
async def test_window_state_moves_with_its_partitions_when_a_second_worker_joins(stack, start_worker):
    first = start_worker(**NO_IDLE)
    joined = []

    async def second_joins():
        await asyncio.sleep(1.0)
        joined.append(start_worker(**NO_IDLE))
        # both own some window partitions once the rebalance settles
        deadline = asyncio.get_event_loop().time() + 60
        while asyncio.get_event_loop().time() < deadline:
            logs = [w.log().rsplit("window state recovered: partitions", 1)[-1].split("\n", 1)[0] for w in (first, joined[0])]
            if all("[]" not in line and "]" in line for line in logs) and "recovered" in joined[0].log():
                break
            await asyncio.sleep(0.5)

    await _run_in_two_parts(stack, second_joins, lambda: [first, *joined])
    assert first.proc.poll() is None and joined[0].proc.poll() is None
