"""Every job against answers worked out by hand (issue #25): the oracle fixtures of
tests/e2e/jobs/oracles/, each in its own workspace, published through the topics to one real
worker (its own jobs timer off, so only the checks run jobs), then each fixture's check."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner
from streams.publish import publish_messages
from tests.e2e.jobs.oracles import (
    accuracy,
    aggregates,
    benchmarks,
    experiments,
    extremes,
    posting_times,
    seed_views,
    styles,
    trends,
)

pytestmark = pytest.mark.services

ORACLES = (styles, trends, aggregates, benchmarks, experiments, accuracy, posting_times, seed_views, extremes)


def _messages(ws: str, items: list[dict], per: int = 50) -> list[tuple[bytes, bytes]]:
    return [(ws.encode(), orjson.dumps(items[i:i + per])) for i in range(0, len(items), per)]


async def test_every_job_against_hand_computed_answers(stack, start_worker):
    start_worker(LEARNSTREAM_JOBS_ENABLED="false", LEARNSTREAM_WINDOW_GRACE_S="1")
    feeds = {oracle.__name__.rsplit(".", 1)[1]: (str(uuid.uuid4()), oracle) for oracle in ORACLES}
    fed = {name: (ws, oracle.feed(ws)) for name, (ws, oracle) in feeds.items()}
    # entities first (events that reference them park until they come, but need not)
    for attr, topic in (("content", stack.domain_topics["content_item"]),
                        ("accounts", stack.domain_topics["account_snapshot"]),
                        ("engagement", stack.topics["engagement_update"]),
                        ("learning", stack.topics["learning_event"])):
        messages = [m for ws, f in fed.values() for m in _messages(ws, getattr(f, attr))]
        if messages:
            await publish_messages(stack.bootstrap, topic, messages)
    conn = await connect(stack.dsn)
    try:
        deadline = time.monotonic() + 120
        for name, (ws, f) in fed.items():
            for table, want in f.wait.items():
                while True:
                    got = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE workspace_id = $1", uuid.UUID(ws))
                    if got >= want:
                        break
                    assert time.monotonic() < deadline, f"{name}: {table} has {got} rows of {want}"
                    await asyncio.sleep(0.3)
        runner = JobRunner(stack.dsn, JOBS)

        async def run(job: str, period=None):
            return await runner.run(job, period=period)

        for name, (ws, _f) in fed.items():
            await feeds[name][1].check(conn, ws, run)
    finally:
        await conn.close()
