"""Workers run the due jobs on their timer, each job once for its fire time across two workers."""

from __future__ import annotations

import asyncio
import time

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS

pytestmark = pytest.mark.services


async def test_two_workers_run_each_due_job_once(stack, start_worker):
    fast = {"LEARNSTREAM_JOBS_CHECK_INTERVAL_S": "0.5", "LEARNSTREAM_WINDOWS_ENABLED": "false"}
    start_worker(**fast)
    start_worker(**fast)
    conn = await connect(stack.dsn)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = await conn.fetch("SELECT job, count(*) AS n FROM job_runs WHERE status = 'succeeded' GROUP BY job")
            if {r["job"] for r in done} == set(JOBS):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # six more rounds of each worker: nothing runs twice for one fire time
        runs = await conn.fetch("SELECT job, scheduled_for, trigger, status FROM job_runs ORDER BY id")
    finally:
        await conn.close()
    by_job: dict[str, list] = {}
    for r in runs:
        by_job.setdefault(r["job"], []).append(r)
    assert set(by_job) == set(JOBS)
    for job, rs in by_job.items():
        fires = [r["scheduled_for"] for r in rs if r["status"] == "succeeded"]
        assert len(fires) == len(set(fires)), f"{job} ran twice for one fire time: {rs}"
        assert all(r["trigger"] == "schedule" for r in rs)
