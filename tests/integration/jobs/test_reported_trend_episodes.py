"""Reported trends have a row per episode (issue 25 review 3 F5; migration 0048's
route_reported_trends, db/domain/insights.py TREND_DETECTED): replaying reports changes nothing, a
report bridging two episodes merges them, a report without an end keeps its episode going until
one with an end comes, and two batches of one key routed at once are applied one after the other."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.domain.insights import TREND_DETECTED
from db.pool import connect

pytestmark = pytest.mark.services

D1 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D8 = D1 + timedelta(days=7)
H = timedelta(hours=1)


def _report(w: uuid.UUID, ts: datetime, start: datetime | None, end: datetime | None,
            impact: float | None = None, data: dict | None = None) -> dict:
    return {"workspace_id": str(w), "ts": ts.isoformat(), "platform": "tiktok", "trend_type": "hashtag",
            "trend_key": "#sale", "trend_data": data, "engagement_impact": impact,
            "start_time": start and start.isoformat(), "end_time": end and end.isoformat()}


async def _route(conn, records: list[dict]) -> None:
    async with conn.transaction():
        for sql in TREND_DETECTED:
            await conn.execute(sql, records)


async def _rows(conn, w: uuid.UUID) -> list[tuple]:
    return [tuple(r) for r in await conn.fetch(
        """SELECT id, start_time, end_time, engagement_impact, trend_data, created_at, last_event_at
           FROM trend_analysis WHERE workspace_id = $1 ORDER BY start_time""", w)]


async def test_replayed_reports_change_nothing(stack):
    w = uuid.uuid4()
    a = _report(w, D1, D1 - 6 * H, D1, 50.0, {"posts": 3})
    b = _report(w, D8, D8 - 6 * H, D8, 70.0, {"posts": 5})
    conn = await connect(stack.dsn)
    try:
        await _route(conn, [b, a])  # batch order does not matter: applied in event time
        first = await _rows(conn, w)
        # two episodes, Dec 1 06:00-12:00 and Dec 8 06:00-12:00, each with its own report's data
        assert [r[1:] for r in first] == [(D1 - 6 * H, D1, 50.0, {"posts": 3}, D1, D1),
                                          (D8 - 6 * H, D8, 70.0, {"posts": 5}, D8, D8)]
        await _route(conn, [a, b])  # the whole batch again (a redelivery)
        await _route(conn, [a])     # and one of them alone, late
        assert await _rows(conn, w) == first
    finally:
        await conn.close()


async def test_a_bridging_report_merges_two_episodes_into_the_earliest(stack):
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _route(conn, [_report(w, D1, D1 - 6 * H, D1, 50.0), _report(w, D8, D8 - 6 * H, D8, 70.0)])
        earliest = (await _rows(conn, w))[0][0]
        # a late report (its time Dec 5, no impact) of Dec 1 12:00 .. Dec 8 06:00 touches both
        late = _report(w, D1 + timedelta(days=4), D1, D8 - 6 * H)
        await _route(conn, [late])
        # one row, the earliest's id, Dec 1 06:00 .. Dec 8 12:00; the impact of the latest report
        # carrying one (Dec 8's 70); created at the first report, last event the latest
        assert await _rows(conn, w) == [(earliest, D1 - 6 * H, D8, 70.0, {}, D1, D8)]
        await _route(conn, [late])
        assert await _rows(conn, w) == [(earliest, D1 - 6 * H, D8, 70.0, {}, D1, D8)]
    finally:
        await conn.close()


async def test_a_report_without_an_end_is_still_going_in_any_order(stack):
    w = uuid.uuid4()
    before = _report(w, D1 - 72 * H, D1 - 80 * H, D1 - 74 * H, 5.0)  # Nov 28 04:00-10:00: an episode of its own
    opened = _report(w, D1, D1 - 48 * H, None, 40.0)   # at Dec 1 12:00: trending since Nov 29 12:00, no end
    closed = _report(w, D1 + H, None, D1 + H)         # at 13:00: until now (start: its time)
    later = _report(w, D8, D8 - 6 * H, D8, 10.0)       # Dec 8 06:00-12:00
    one, two = uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        for ws, batches in ((w, [[before, opened], [closed], [later]]),
                            (one, [[later], [closed, before], [opened]]),
                            (two, [[later, closed, opened, before]])):
            for batch in batches:
                await _route(conn, [{**r, "workspace_id": str(ws)} for r in batch])
        # Nov 28 04:00-10:00 alone (it ends before Nov 29 12:00); Nov 29 12:00 on, still going (the
        # report without an end), which the reports of 13:00 and Dec 8 join: end the latest given,
        # Dec 8 12:00; impact of the latest report carrying one, Dec 8's 10
        expected = [(D1 - 80 * H, D1 - 74 * H, 5.0), (D1 - 48 * H, D8, 10.0)]
        got = [await _rows(conn, ws) for ws in (w, one, two)]
        assert [r[1:4] for r in got[0]] == expected
        # the same rows in any order (ids: derived from the workspace, the key and the episode's start)
        assert [r[1:] for r in got[1]] == [r[1:] for r in got[0]] == [r[1:] for r in got[2]]
        await _route(conn, [later, opened, closed, before])  # replayed: nothing changes
        assert await _rows(conn, w) == got[0]
    finally:
        await conn.close()


async def test_two_batches_of_one_key_are_applied_one_after_the_other(stack):
    w = uuid.uuid4()
    one, two = await connect(stack.dsn), await connect(stack.dsn)
    try:
        tr = one.transaction()
        await tr.start()
        for sql in TREND_DETECTED:
            await one.execute(sql, [_report(w, D1, D1 - 6 * H, D1, 50.0)])
        # another partition's batch, Dec 1 10:00-14:00, overlapping: it waits for the first
        other = asyncio.create_task(_route(two, [_report(w, D1 + 2 * H, D1 - 2 * H, D1 + 2 * H, 60.0)]))
        await asyncio.sleep(0.5)
        assert not other.done()
        await tr.commit()
        await asyncio.wait_for(other, 10)
        # one episode Dec 1 06:00 .. 14:00 (without the lock each batch saw no row: two rows)
        assert [r[1:4] for r in await _rows(one, w)] == [(D1 - 6 * H, D1 + 2 * H, 60.0)]
    finally:
        await one.close()
        await two.close()
