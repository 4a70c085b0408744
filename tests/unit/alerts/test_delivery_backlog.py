"""The delivery's backlog and memory, driven with fakes (no Kafka, no PostgreSQL).

* After a take-up, the round that passes the last row taken up may still be writing lower offsets
  to the backlog: the lane does not read it back until that write is committed (else a read on
  another connection sees only the higher rows, moves past the lower ones and orphans them).
* Behind a notification that a channel never answers, the notifications finished keep no payload,
  and the consumer pauses once too many of them are held for the commit."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from db.alerts import BacklogRow
from streams.alerts.delivery import service
from streams.alerts.delivery.service import HELD_PER_PENDING, AlertDelivery, Spill
from streams.config import Settings
from tests.unit.alerts.test_delivery_lanes import TP, FakePoster, accept, channels, note, published, until


class FakeDb:
    """The backlog table: rows written are seen by reads only once their write is committed
    (`commit` set: a write waits for it, as an open transaction would)."""

    def __init__(self) -> None:
        self.rows: dict[tuple, BacklogRow] = {}
        self.commit = asyncio.Event()
        self.commit.set()
        self.writes = 0

    @asynccontextmanager
    async def acquire(self):
        yield self

    async def close(self) -> None:
        pass

    async def defer(self, conn, group, rows) -> int:
        self.writes += 1
        await self.commit.wait()
        new = 0
        for r in rows:
            key = (r.workspace_id, r.channel, r.topic, r.partition, r.offset)
            if key not in self.rows:
                self.rows[key] = r
                new += 1
        return new

    async def read(self, conn, group, ws, channel, topic, partition, after, limit) -> list[BacklogRow]:
        found = sorted((r for r in self.rows.values() if (r.workspace_id, r.channel, r.topic, r.partition) ==
                        (ws, channel, topic, partition) and r.offset > after), key=lambda r: r.offset)
        return found[:limit]

    async def drop(self, conn, group, rows) -> int:
        for r in rows:
            self.rows.pop((r.workspace_id, r.channel, r.topic, r.partition, r.offset), None)
        return len(rows)


@pytest.fixture
async def backlog_delivery(monkeypatch):
    db = FakeDb()
    monkeypatch.setattr(service, "defer_deliveries", db.defer)
    monkeypatch.setattr(service, "deferred_deliveries", db.read)
    monkeypatch.setattr(service, "drop_deferred", db.drop)
    monkeypatch.setattr(service, "BACKLOG_POLL_S", 0.02)
    svc = AlertDelivery(Settings(delivery_max_pending_per_channel=100), published, 100_000, group_id="unit-delivery")
    svc.http = FakePoster()
    svc.directory.loaded_at = float("inf")
    svc._pool = db
    yield svc, db
    await svc.stop()


async def test_a_taken_up_backlog_is_not_read_while_the_round_passing_it_is_written(backlog_delivery):
    svc, db = backlog_delivery
    [(ws, rule)] = channels(svc, 1)
    ch = svc.directory.channels[(ws, "hook")]

    def row(offset: int) -> BacklogRow:
        return BacklogRow(ws, "hook", TP.topic, TP.partition, offset, note(ws, rule, f"fp-{offset}"))

    for offset in (5, 10):  # left by the partition's previous owner, which committed 4
        db.rows[(ws, "hook", TP.topic, TP.partition, offset)] = row(offset)
    lane = svc._lane(ch)  # taken up (as _take_up_backlogs does)
    lane.spill[TP] = Spill(waiting=2, ready_at=10)

    # the consumer reads 4..10 again in one round: all go behind the backlog, written at the round's end
    for offset in range(4, 11):
        await accept(svc, TP, offset, row(offset).value)
        svc._position[TP] = offset
    db.commit.clear()  # the write is under way, not committed yet
    flush = asyncio.ensure_future(svc._flush_backlog())
    await until(lambda: db.writes == 1)
    await asyncio.sleep(0.2)  # the lane polls its backlog meanwhile
    assert svc.http.sent == [], "read back while the round passing the taken-up rows was being written"
    db.commit.set()
    await flush

    await until(lambda: len(svc.http.sent) == 7)
    assert [fp for _w, _n, fp in svc.http.sent] == [f"fp-{o}" for o in range(4, 11)]
    await until(lambda: not lane.spill)
    await svc._flush_backlog()  # the rows delivered are deleted
    assert db.rows == {}
    assert svc._pending == 0


class FakeConsumer:
    def __init__(self) -> None:
        self.paused = False
        self.committed: dict = {}

    def assignment(self):
        return {TP}

    def pause(self, *tps) -> None:
        self.paused = True

    def resume(self, *tps) -> None:
        self.paused = False

    async def commit(self, offsets) -> None:
        self.committed.update(offsets)

    async def stop(self) -> None:
        pass


async def test_finished_notifications_behind_a_stuck_one_hold_no_payload_and_pause_the_consumer():
    max_pending = 5
    svc = AlertDelivery(Settings(delivery_max_pending=max_pending), published, 100_000, group_id="unit-delivery")
    svc.http = poster = FakePoster()
    svc.directory.loaded_at = float("inf")
    svc._consumer = consumer = FakeConsumer()
    try:
        (stuck_ws, stuck_rule), (ws, rule) = channels(svc, 2)
        poster.hold = stuck_ws  # never answers (until released)
        await accept(svc, TP, 0, note(stuck_ws, stuck_rule, "stuck"))
        cap = HELD_PER_PENDING * max_pending
        offset = 1
        while offset < cap - 1:
            await accept(svc, TP, offset, note(ws, rule, f"fp-{offset}"))
            offset += 1
        await until(lambda: len(poster.sent) == cap - 2)
        await svc._commit_done()
        svc._flow()
        held = svc._inflight[TP]
        assert len(held) == cap - 1 and svc._pending == 1 and not consumer.paused
        head, *behind = held
        assert head.raw is not None and head.note is not None  # still on its way
        assert all(i.done and i.raw is None and i.note is None for i in behind)

        await accept(svc, TP, offset, note(ws, rule, f"fp-{offset}"))
        await until(lambda: len(poster.sent) == cap - 1)
        svc._flow()
        assert consumer.paused  # the finished ones held for the commit count too

        poster.release.set()  # the head is delivered: all committed, the consumer goes on
        await until(lambda: poster.sent[-1][2] == "stuck")
        await svc._commit_done()
        svc._flow()
        assert not svc._inflight[TP] and not consumer.paused
        assert consumer.committed == {TP: cap}
    finally:
        await svc.stop()
