"""Closed windows survive a crash (issue #23, item 4), on real Kafka and PostgreSQL: a worker
killed (-9) while the windows it just closed wait to be stored (the rollup table locked) loses none
of them: the next worker closes them again and stores each once.

It also caught the next worker's Faust consumer dropping a redelivered closer it had fetched around
its recovery (the position moved past it, nothing sought back): one in three runs lost a partition's
windows until WindowStage.resume_undelivered seeks such a partition back."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from db.pool import connect
from streams.publish import publish_messages
from tests.support import NO_IDLE, QUICK_GROUP, fetch_rollups, sample, wait_for_rows, window_base, workspace_messages

pytestmark = [pytest.mark.services, pytest.mark.serial]


async def test_windows_closed_when_the_worker_dies_before_storing_them_are_stored_by_the_next(stack, start_worker):
    first = start_worker(**NO_IDLE, **QUICK_GROUP)
    base = window_base()
    workspaces = [str(uuid.uuid4()) for _ in range(4)]
    events = [sample(ws, base + 1 + i * 0.05, 2.0, host="h") for ws in workspaces for i in range(50)]
    topic = stack.topics["performance_sample"]
    await publish_messages(stack.bootstrap, topic, workspace_messages(events, per=25))
    await wait_for_rows(stack.dsn, {"system_performance_metrics": 200})
    await asyncio.sleep(2)  # folded and flushed to the changelog

    locker = await connect(stack.dsn)
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE performance_rollups IN ACCESS EXCLUSIVE MODE")
        # closers far ahead: every window above closes, and storing them waits for the lock
        await publish_messages(stack.bootstrap, topic, workspace_messages(
            [sample(ws, base + 100, 1.0, host="closer") for ws in workspaces], per=1))
        await wait_for_rows(stack.dsn, {"system_performance_metrics": 204})
        await asyncio.sleep(4)  # the close happened; what it wrote to the changelog is on the broker
        first.kill()
        await lock.rollback()
    finally:
        await locker.close()

    start_worker(**NO_IDLE, **QUICK_GROUP)
    rows = await fetch_rollups(stack.dsn, "performance_rollups", 12, timeout=60)
    tumbling = {(str(r["workspace_id"]), r["count"]) for r in rows
                if r["window_s"] == r["step_s"] and r["tags"] == {"host": "h"}}
    assert tumbling == {(ws, 50) for ws in workspaces}, "\n".join(
        f'{str(r["workspace_id"])[:8]} {r["tags"]} {r["window_s"]:g}/{r["step_s"]:g} n={r["count"]} '
        f'{r["window_start"]:%H:%M:%S}' for r in rows) + f"\nworkspaces {[ws[:8] for ws in workspaces]}"
    # and once each: (workspace, series, window) is the key, so a second close stored nothing twice
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM performance_rollups WHERE tags = '{\"host\": \"h\"}' "
                                   "AND window_s = step_s") == 4
    finally:
        await conn.close()

