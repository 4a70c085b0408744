"""A hostile producer, end to end on real Kafka and PostgreSQL (issue #24): what it writes reaches
other people only as data. Its text lands in a workspace's CSV report as text, never as a
spreadsheet formula; an event id and timestamp it copies from another workspace does not turn
that workspace's event into a skipped "duplicate"."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.pool import connect
from db.reports import store
from schemas.events import LearningEvent
from schemas.reports import ReportDefinition
from streams.publish import publish_messages
from streams.reports.runner import run_report
from tests.support import wait_for_ids

pytestmark = pytest.mark.services

#: text a producer may send (any event_subtype of 1..100 characters) that a spreadsheet would run
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\t=1"]


def _learning(ws: uuid.UUID, subtype: str | None, event_id: str | None = None,
              ts: str = "2026-11-03T12:00:00+00:00", ms: int = 5) -> dict:
    return {"event_id": event_id or str(uuid.uuid4()), "workspace_id": str(ws), "event_type": "hostile.test",
            "event_subtype": subtype, "timestamp": ts, "event_data": {}, "processing_time_ms": ms}


async def test_a_producers_formulas_are_text_in_a_csv_report(stack, start_worker, tmp_path):
    ws = uuid.uuid4()
    events = [_learning(ws, f) for f in FORMULAS] + [_learning(ws, "plain")]
    for ev in events:
        LearningEvent.model_validate_json(orjson.dumps(ev))  # the contract accepts every one of them
    start_worker()
    await publish_messages(stack.bootstrap, stack.topics["learning_event"], [(str(ws).encode(), orjson.dumps(events))])
    await wait_for_ids(stack.dsn, {"learning_events": [ev["event_id"] for ev in events]})

    conn = await connect(stack.dsn)
    try:
        definition = ReportDefinition.model_validate({"name": "subtypes", "formats": ["csv"], "query": {
            "source": "learning", "metrics": ["events", "max_processing_ms"], "dimensions": ["event_subtype"],
            "period": {"start": "2026-11-03", "end": "2026-11-04"}}})
        await store.add_report(conn, ws, definition, None)
        [done] = await run_report(conn, await store.find_report(conn, "subtypes", ws),
                                  at=datetime(2026, 11, 5, tzinfo=UTC), out_dir=tmp_path)
    finally:
        await conn.close()
    assert (done.status, done.rows) == ("completed", 6)
    text = done.path.read_bytes().decode()
    header, *lines = text.splitlines(keepends=True)
    assert header == "event_subtype,events,max_processing_ms\n"
    assert sorted(lines) == sorted([
        '"\'=HYPERLINK(""http://x"",""y"")",1,5\n', "'+cmd|' /C calc'!A0,1,5\n", "'@SUM(1),1,5\n",
        "'-2+3,1,5\n", "'\t=1,1,5\n", "plain,1,5\n"])


def _sample(ws: uuid.UUID, sample_id: str, ts: str, value: float) -> dict:
    return {"sample_id": sample_id, "workspace_id": str(ws), "metric_name": "api_latency", "timestamp": ts,
            "value": value, "unit": "ms"}


def _update(ws: uuid.UUID, update_id: str, ts: str, views: int) -> dict:
    return {"update_id": update_id, "workspace_id": str(ws), "content_id": str(uuid.uuid4()), "platform": "tiktok",
            "recorded_at": ts, "views": views}


async def _wait_stored(dsn: str, ids: dict[str, str], timeout: float = 120) -> None:
    """Until each table ({table: id}) holds a row of that id."""
    conn = await connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            missing = [t for t, i in ids.items()
                       if not await conn.fetchval(f"SELECT EXISTS (SELECT FROM {t} WHERE id = $1)", uuid.UUID(i))]
            if not missing:
                return
            assert time.monotonic() < deadline, f"not stored after {timeout} s: {missing}"
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def test_another_workspaces_event_id_does_not_make_an_event_a_duplicate(stack, start_worker):
    """The attacker knows the victim's event ids and timestamps and sends them first, in its own
    workspace; then the victim's events come. Each workspace keeps its own event, with its own values."""
    victim, attacker = uuid.uuid4(), uuid.uuid4()
    ts = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    tables = {"learning_event": "learning_events", "performance_sample": "system_performance_metrics",
              "engagement_update": "content_performance_metrics"}
    ids = {kind: str(uuid.uuid4()) for kind in tables}
    make = {
        "learning_event": lambda ws, i, n: _learning(ws, "x", i, ts, ms=n),
        "performance_sample": lambda ws, i, n: _sample(ws, i, ts, float(n)),
        "engagement_update": lambda ws, i, n: _update(ws, i, ts, n),
    }
    start_worker()
    # one key for every message, so that all land on one partition of each topic, in order
    for kind, topic in stack.topics.items():
        await publish_messages(stack.bootstrap, topic, [(b"k", orjson.dumps([make[kind](attacker, ids[kind], 666)]))])
    await _wait_stored(stack.dsn, {tables[k]: i for k, i in ids.items()})
    # the victim's events, each followed by a marker in the same message: once the marker is
    # stored, the victim's event was written (or skipped)
    markers = {kind: str(uuid.uuid4()) for kind in tables}
    for kind, topic in stack.topics.items():
        value = orjson.dumps([make[kind](victim, ids[kind], 7), make[kind](victim, markers[kind], 1)])
        await publish_messages(stack.bootstrap, topic, [(b"k", value)])
    await _wait_stored(stack.dsn, {tables[k]: i for k, i in markers.items()})

    value_of = {"learning_events": "processing_time_ms", "system_performance_metrics": "value::int",
                "content_performance_metrics": "views::int"}
    conn = await connect(stack.dsn)
    try:
        for kind, table in tables.items():
            rows = await conn.fetch(f"SELECT workspace_id, {value_of[table]} AS v FROM {table} WHERE id = $1",
                                    uuid.UUID(ids[kind]))
            assert sorted((r["workspace_id"], r["v"]) for r in rows) == sorted([(attacker, 666), (victim, 7)]), table
    finally:
        await conn.close()
