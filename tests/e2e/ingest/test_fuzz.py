"""A fuzz run on the real pipeline (issue #8): a few thousand hostile messages made by hypothesis
(random bytes, truncated JSON, deep nesting, huge and NaN/Infinity numbers, NUL in any string,
odd Unicode, timestamps at and beyond the edges, 1,000-member mixed arrays, duplicates),
interleaved with valid events. The worker never exits; every valid event is stored exactly once;
everything else is dead-lettered with a reason; consumed = stored + duplicates + dead-lettered; and
afterwards live windows still close and a live alert still fires and resolves."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.alerts import add_rule
from db.pool import connect
from schemas.alerts import AlertRule
from streams.devkit.synthetic import Generator
from streams.publish import publish_messages
from streams.windows.input import workspace_partition
from tests.support import SMALL, metric, read_topic, sample, wait_for_rows

pytestmark = pytest.mark.services

NOW = datetime.now(UTC)
EDGE_TIMES = [
    "0001-01-01T00:00:00+00:00", "1969-12-31T23:59:59Z", "1999-12-31T23:59:59.999999Z", "2000-01-01T00:00:00Z",
    (NOW + timedelta(minutes=4)).isoformat(), (NOW + timedelta(minutes=6)).isoformat(), "2999-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-02-30T00:00:00Z", "2026-12-02T12:00:00",
    "", "now", "1e9", "2026-12-02T25:00:00Z",
]
NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1e-320", "-0.0", str(10**30), str(2**63), "-1",
           str(2**31), "0.1e1", "123456789012345678901234567890.5"]
FIELDS = {
    "learning_event": ["event_type", "event_subtype", "source_system", "entity_type", "entity_id", "user_id",
                       "session_id"],
    "performance_sample": ["metric_name", "metric_category", "unit", "source_component"],
}
NUMERIC = {"learning_event": ["processing_time_ms"], "performance_sample": ["value"]}
TIME = "timestamp"

odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40)
nul_text = st.builds(lambda a, b: a + "\x00" + b, odd_text, odd_text)


FUZZ_WS = str(uuid.UUID(int=8))


def _dumps(value: object) -> bytes:
    """JSON as a careless producer writes it: any int, NaN, lone surrogates, NUL."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _event(gen: Generator, kind: str) -> dict:
    ev = gen.event(kind)
    ev["workspace_id"] = FUZZ_WS
    return ev


@st.composite
def hostile(draw, kind: str) -> bytes:
    ev = _event(Generator(seed=2**40 + draw(st.integers(0, 2**32)), workspaces=1, now=NOW), kind)  # ids apart from the valid ones
    how = draw(st.sampled_from(["bytes", "truncated", "deep", "number", "nul", "unicode", "time", "surrogate",
                                "key", "type"]))
    if how == "bytes":
        return draw(st.binary(min_size=0, max_size=300))
    if how == "truncated":
        raw = _dumps(ev)
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "deep":
        depth = draw(st.integers(1, 3000))
        as_list = draw(st.booleans()) and depth < 200
        data: object = 1
        for _ in range(depth):
            data = [data] if as_list else {"a": data}
        field = "event_data" if kind == "learning_event" else "tags"
        try:
            return _dumps({**ev, field: data})
        except (RecursionError, ValueError):  # deeper than orjson writes: write it by hand
            return _dumps(ev)[:-1] + b', "x": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    if how == "number":
        field = draw(st.sampled_from(NUMERIC[kind] + ["workspace_id"]))
        if kind == "learning_event" and draw(st.booleans()):  # into event_data (stored as jsonb)
            return _dumps({**ev, "event_data": {"n": "@@"}}).replace(b'"@@"', draw(st.sampled_from(NUMBERS)).encode())
        return _dumps({**ev, field: "@@"}).replace(b'"@@"', draw(st.sampled_from(NUMBERS)).encode())
    if how == "nul":
        field = draw(st.sampled_from(FIELDS[kind]))
        ev[field] = draw(nul_text)
        if kind == "learning_event" and draw(st.booleans()):
            ev["event_data"] = {draw(odd_text): draw(nul_text)}
        if kind == "performance_sample" and draw(st.booleans()):
            ev["tags"] = {"k": draw(nul_text)}
        return _dumps(ev)
    if how == "unicode":
        field = draw(st.sampled_from(FIELDS[kind]))
        ev[field] = draw(odd_text)
        return _dumps(ev)
    if how == "time":
        ev[TIME] = draw(st.sampled_from(EDGE_TIMES))
        return _dumps(ev)
    if how == "surrogate":
        return _dumps({**ev, FIELDS[kind][0]: "@@"}).replace(b'"@@"', b'"\\ud800x"')
    if how == "key":
        return _dumps({**ev, draw(odd_text) or "_": draw(st.integers())})
    odd_value = st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=3))
    return _dumps({**ev, draw(st.sampled_from(list(ev))): draw(odd_value)})


def _generate(kind: str, examples: int) -> list[bytes]:
    out: list[bytes] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(hostile(kind), min_size=1, max_size=12))
    def collect(messages: list[bytes]) -> None:
        out.extend(messages)

    collect()
    return out


def _rule(ws: uuid.UUID) -> AlertRule:
    return AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name="fuzz spike", metric="api_latency.max",
                     condition_op=">", threshold_value=100, window_s=10)


async def test_hostile_input_never_stops_the_worker_nor_poisons_what_it_computes(stack, start_worker):
    gen = Generator(seed=8, workspaces=1)
    # the live alert at the end needs a window partition no fuzzed event reached: hostile times up to
    # the clock + the allowed skew move a partition's watermark ahead of the live samples
    fuzzed = {workspace_partition(w, 4) for w in (FUZZ_WS, gen.workspaces[0])}
    live_ws = next(w for w in iter(uuid.uuid4, None) if workspace_partition(str(w), 4) not in fuzzed)
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, _rule(live_ws))
    finally:
        await conn.close()
    worker = start_worker(**SMALL)
    rng = random.Random(8)
    valid: dict[str, set[str]] = {}
    sent_messages = 0
    for kind, id_field in (("learning_event", "event_id"), ("performance_sample", "sample_id")):
        hostile_msgs = _generate(kind, 150)
        good = [_event(gen, kind) for _ in range(len(hostile_msgs))]
        valid[kind] = {e[id_field] for e in good}
        messages: list[bytes] = []
        for bad, ev in zip(hostile_msgs, good):
            messages += [bad, orjson.dumps(ev)]
        messages += [orjson.dumps(ev) for ev in rng.sample(good, 50)]  # duplicates
        for _ in range(3):  # arrays of 1,000 mixed members: 700 valid, 300 hostile
            good_members = [_event(gen, kind) for _ in range(700)]
            valid[kind] |= {m[id_field] for m in good_members}
            members = [orjson.dumps(m) for m in good_members]
            for raw in _generate(kind, 40)[:300]:
                try:
                    orjson.loads(raw)
                    members.append(raw)
                except orjson.JSONDecodeError:
                    members.append(orjson.dumps(raw.decode("utf-8", "replace")))
            rng.shuffle(members)
            messages.append(b"[" + b",".join(members) + b"]")
        await publish_messages(stack.bootstrap, stack.topics[kind], [(None, m) for m in messages])
        sent_messages += len(messages)
    assert sent_messages > 2000

    tables = {"learning_event": "learning_events", "performance_sample": "system_performance_metrics"}
    await wait_for_rows(stack.dsn, {tables[k]: len(v) for k, v in valid.items()}, timeout=180)
    # all consumed: the counters settle
    m = worker.metrics()
    for _ in range(60):
        consumed = sum(metric(m, "learnstream_messages_consumed_total", topic=stack.topics[k]) for k in tables)
        if consumed >= sent_messages:
            break
        await asyncio.sleep(1)
        m = worker.metrics()
    assert worker.proc.poll() is None, worker.log()[-3000:]
    assert consumed == sent_messages

    conn = await connect(stack.dsn)
    try:
        for kind, table in tables.items():
            ids = [str(r[0]) for r in await conn.fetch(f"SELECT id FROM {table}")]
            # every valid event exactly once (hostile variants of one event may share an id with
            # another time: the key is (time, id), so those are rows of their own)
            stored = [i for i in ids if i in valid[kind]]
            assert len(stored) == len(set(stored)), f"{table}: a valid event stored twice"
            missing = valid[kind] - set(stored)
            assert not missing, f"{table}: {len(missing)} valid events not stored"
            topic = stack.topics[kind]
            events = metric(m, "learnstream_events_consumed_total", topic=topic)
            inserted = metric(m, "learnstream_rows_inserted_total", table=table)
            dupes = metric(m, "learnstream_duplicates_skipped_total", table=table)
            invalid = sum(v for (name, labels), v in m.items()
                          if name == "learnstream_invalid_events_total" and ("topic", topic) in labels)
            assert events == inserted + dupes + invalid, (kind, events, inserted, dupes, invalid)
            assert inserted == len(ids)
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE timestamp < '2000-01-01' "
                                       "OR timestamp > now() + interval '5 minutes'") == 0
    finally:
        await conn.close()
    published = sum(metric(m, "learnstream_dlq_published_total", source_topic=stack.topics[k]) for k in tables)
    letters = await read_topic(stack.bootstrap, stack.dlq, expect=int(published), timeout=30)
    assert len(letters) == published > 0
    assert all(d["errors"] and all(e["reason"] for e in d["errors"]) for d in letters)
    reasons = {e["reason"] for d in letters for e in d["errors"]}
    assert {"invalid_json", "schema", "timestamp_out_of_range", "database_rejected"} <= reasons, reasons

    # afterwards: live windows close and a live alert fires and resolves (times ahead of every
    # watermark the fuzz moved, inside the allowed clock skew)
    base = (int(datetime.now(UTC).timestamp()) // 10 + 9) * 10
    w = str(live_ws)
    spike = []
    for win, value in enumerate([50, 500, 50, 50, 50]):
        spike += [sample(w, base + win * 10 + j * 2, value, "api_latency", host="a") for j in range(5)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], [(w.encode(), orjson.dumps(spike))])
    notes = await read_topic(stack.bootstrap, stack.notifications, expect=2, timeout=90)
    assert [n["status"] for n in notes] == ["firing", "resolved"]
    assert worker.proc.poll() is None
