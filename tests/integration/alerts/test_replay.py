"""Windows closed again after a crash send no second notification (real PostgreSQL and Kafka).

The window stage hands closed windows to the alert runtime and writes its clock (the windows'
"closed" marker) after: a worker that dies in between leaves the windows to the next owner, which
closes them again. The next owner takes the alerts up from alert_notifications and evaluates the
windows with its own wall clock, so each notification it sent for them was a second one for the
same transition, under a new sent_at (a new delivery id). Here two runtimes stand for the worker
that died and the next owner: the notifications recorded and published stay those of the first."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from db.alerts import add_rule
from db.pool import SharedPool, connect
from schemas.alerts import AlertRule
from schemas.rollups import Rollup
from streams.alerts.runtime import AlertRuntime
from streams.topics import ensure_topics
from tests.support import kafka_kwargs, read_topic

pytestmark = pytest.mark.services
SERIES = {"metric_name": "api_latency", "tags": {"host": "a"}}


def _window(ws: uuid.UUID, end: datetime, p95: float) -> Rollup:
    return Rollup(kind="performance_sample", workspace_id=ws, series_key=orjson.dumps(SERIES).decode(),
                  series=SERIES, window_s=60, step_s=60, window_start=end - timedelta(seconds=60), window_end=end,
                  closed_at=end + timedelta(seconds=5), stats={"count": 3, "p95": p95})


@contextlib.asynccontextmanager
async def _worker(stack, producer: AIOKafkaProducer):
    """An alert runtime as a worker runs it: rules followed, its workspaces taken up."""

    async def publish(key: bytes, value: bytes):
        return await producer.send(stack.notifications, key=key, value=value)

    pool = SharedPool(stack.worker_dsn, 2)
    runtime = AlertRuntime(stack.worker_dsn, pool, publish)
    rules = asyncio.ensure_future(runtime.follow_rules())
    try:
        await asyncio.wait_for(runtime.rules_loaded.wait(), 30)
        await asyncio.wait_for(runtime.take_up(lambda ws: True), 30)
        yield runtime
    finally:
        rules.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rules
        await pool.close()


async def _stored(dsn: str) -> list[tuple[str, datetime | None, datetime | None, datetime]]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT status::text AS s, triggered_at, resolved_at, sent_at FROM alert_notifications "
                                "ORDER BY sent_at, triggered_at, status")
    finally:
        await conn.close()
    return [(r["s"], r["triggered_at"], r["resolved_at"], r["sent_at"]) for r in rows]


def _on_topic(notes: list[dict]) -> list[tuple[str, datetime | None, datetime | None, datetime]]:
    def t(v):
        return None if v is None else datetime.fromisoformat(v)

    status = {"firing": "active"}
    return sorted(((status.get(n["status"], n["status"]), t(n["triggered_at"]), t(n["resolved_at"]), t(n["sent_at"]))
                   for n in notes), key=lambda r: (r[3], r[1], r[0]))


@pytest.mark.parametrize("first, replayed, then, expect_then", [
    # fires, resolves, fires again; windows 2 and 3 closed again; window 4 resolves
    ([900, 100, 900], [1, 2], 100, "resolved"),
    # fires, resolves; windows 1 and 2 closed again; window 3 fires
    ([900, 100], [0, 1], 900, "active"),
], ids=["open", "resolved"])
async def test_windows_closed_again_by_the_next_worker_send_nothing_twice(stack, first, replayed, then, expect_then):
    ws = uuid.uuid4()
    rule = AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name="latency high", metric="api_latency.p95",
                     condition_op=">", threshold_value=500, window_s=60)
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, rule)
    finally:
        await conn.close()
    await ensure_topics(stack.bootstrap, [stack.notifications], 1)
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    windows = [_window(ws, base + timedelta(minutes=i), v) for i, v in enumerate(first)]
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, **kafka_kwargs())
    await producer.start()
    try:
        async with _worker(stack, producer) as dying:
            for w in windows:  # live, each window closes a minute after the one before
                await dying.windows_closed([w])
        sent = await _stored(stack.dsn)
        assert [s for s, *_ in sent] == ["active", "resolved", "active"][:len(first)]
        # the worker died before the windows' closed marker: the next one closes them again
        async with _worker(stack, producer) as next_owner:
            await next_owner.windows_closed([windows[i] for i in replayed])
            assert await _stored(stack.dsn) == sent
            later = _window(ws, base + timedelta(minutes=len(first)), then)
            await next_owner.windows_closed([later])
    finally:
        await producer.stop()
    stored = await _stored(stack.dsn)
    assert stored[:-1] == sent and len(stored) == len(sent) + 1
    status, triggered_at, resolved_at, _ = stored[-1]
    end = later.window_end
    assert (status, triggered_at, resolved_at) == (
        (expect_then, windows[-1].window_start + timedelta(seconds=60), end) if expect_then == "resolved"
        else (expect_then, end, None))
    # the topic carries exactly the recorded notifications, each once
    assert _on_topic(await read_topic(stack.bootstrap, stack.notifications, expect=len(stored), timeout=30)) == stored
