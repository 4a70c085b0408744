"""Workers run the due jobs on their timer, each job once for its fire time across two workers;
a due report is written once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from db.reports.store import add_report
from schemas.reports import ReportDefinition
from streams.jobs.catalog import JOBS

pytestmark = pytest.mark.services


async def test_two_workers_run_each_due_job_once(stack, start_worker, tmp_path):
    workspace = uuid.uuid4()
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 15:  # the hour would turn during the test (another fire time)
        await asyncio.sleep(61 - now.second)
    conn = await connect(stack.dsn)
    try:
        report = ReportDefinition.model_validate({
            "name": "hourly", "formats": ["csv", "json"], "schedule": {"cron": "0 * * * *"},
            "query": {"source": "learning", "metrics": ["events"], "period": "last_24_hours"}})
        due = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        await add_report(conn, workspace, report, due - timedelta(hours=1))  # due for two fires: runs once
    finally:
        await conn.close()
    fast = {"LEARNSTREAM_JOBS_CHECK_INTERVAL_S": "0.5", "LEARNSTREAM_WINDOWS_ENABLED": "false",
            "LEARNSTREAM_REPORTS_DIR": str(tmp_path)}
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
        executions = await conn.fetch("SELECT format::text, status::text, rows FROM report_executions ORDER BY format")
        schedule = await conn.fetchrow("SELECT last_run_at, next_run_at FROM report_schedules")
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
    assert [tuple(x) for x in executions] == [("csv", "completed", 1), ("json", "completed", 1)]
    assert (schedule["last_run_at"], schedule["next_run_at"]) == (due, due + timedelta(hours=1))
    [csv_file] = (tmp_path / str(workspace) / "hourly").glob("*.csv")
    assert csv_file.name == f"hourly-{due:%Y%m%dT%H%M%SZ}.csv" and csv_file.read_text() == "events\n0\n"
