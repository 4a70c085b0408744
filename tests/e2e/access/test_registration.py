"""Events for a workspace that is not registered, through a live worker (real Kafka and PostgreSQL):
`registered` dead-letters them (reason unknown_workspace) and stores the rest of the batch; once the
workspace is added, its events are stored. `auto` registers a workspace on first sight."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import orjson
import pytest

from db.pool import connect
from streams.publish import publish_messages
from tests.support import ROOT, metric, read_topic, sample, wait_for_rows

pytestmark = pytest.mark.services


async def _scalar(dsn: str, sql: str, *args):
    conn = await connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_registered_mode_dead_letters_unknown_workspaces_and_auto_registers(stack, start_worker):
    known, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    add = subprocess.run([sys.executable, "-m", "streams.cli", "workspaces", "add", "known", "--id", known],
                         cwd=ROOT, env=stack.env(), capture_output=True, text=True, timeout=60)
    assert add.returncode == 0, add.stderr
    assert add.stdout.strip() == f"added workspace 'known' {known}"

    worker = start_worker(LEARNSTREAM_WORKSPACE_REGISTRATION="registered", LEARNSTREAM_WINDOWS_ENABLED="false")
    topic = stack.topics["performance_sample"]
    now = time.time()
    # one array with both workspaces' samples, and one message of the unknown one alone
    mixed = [sample(known, now - 1, 1.0), sample(unknown, now - 1, 2.0), sample(known, now - 1, 3.0)]
    await publish_messages(stack.bootstrap, topic, [(b"a", orjson.dumps(mixed)),
                                                    (b"b", orjson.dumps(sample(unknown, now - 1, 4.0)))])
    letters = await read_topic(stack.bootstrap, stack.dlq, 2)
    assert sorted(len(d["errors"]) for d in letters) == [1, 1]
    assert {e["reason"] for d in letters for e in d["errors"]} == {"unknown_workspace"}
    assert all(unknown in e["message"] for d in letters for e in d["errors"])
    counts = await wait_for_rows(stack.dsn, {"system_performance_metrics": 2})
    assert counts["system_performance_metrics"] == 2
    assert await _scalar(stack.dsn, "SELECT count(*) FROM system_performance_metrics WHERE workspace_id = $1",
                         uuid.UUID(known)) == 2
    assert await _scalar(stack.dsn, "SELECT count(*) FROM workspaces WHERE id = $1", uuid.UUID(unknown)) == 0
    assert metric(worker.metrics(), "learnstream_invalid_events_total", topic=topic, reason="unknown_workspace") == 2

    # registered now: its events are stored (the worker asks again for an id it has not seen registered)
    add = subprocess.run([sys.executable, "-m", "streams.cli", "workspaces", "add", "late", "--id", unknown],
                         cwd=ROOT, env=stack.env(), capture_output=True, text=True, timeout=60)
    assert add.returncode == 0, add.stderr
    await publish_messages(stack.bootstrap, topic, [(b"b", orjson.dumps(sample(unknown, now, 5.0)))])
    counts = await wait_for_rows(stack.dsn, {"system_performance_metrics": 3})
    assert counts["system_performance_metrics"] == 3
    worker.stop()

    # auto: a new workspace is registered on first sight, with its events
    fresh = str(uuid.uuid4())
    start_worker(LEARNSTREAM_WORKSPACE_REGISTRATION="auto", LEARNSTREAM_WINDOWS_ENABLED="false")
    await publish_messages(stack.bootstrap, topic, [(b"c", orjson.dumps(sample(fresh, now, 6.0)))])
    counts = await wait_for_rows(stack.dsn, {"system_performance_metrics": 4})
    assert counts["system_performance_metrics"] == 4
    assert await _scalar(stack.dsn, "SELECT registration FROM workspaces WHERE id = $1", uuid.UUID(fresh)) == "auto"
