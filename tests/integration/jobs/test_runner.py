"""The job runner on real PostgreSQL: job_runs records, idempotent schedules, one run at a time
cluster-wide (advisory lock), failures recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from db.pool import connect
from streams.jobs.runner import Job, JobRunner, day_period, parse_period

pytestmark = pytest.mark.services


def _jobs(calls: list, slow: float = 0.0, fail: bool = False) -> dict[str, Job]:
    async def run(conn, period):
        calls.append(period)
        await asyncio.sleep(slow)
        if fail:
            await conn.execute("SELECT 1 / 0")
        return await conn.fetchval("SELECT 7")

    return {"probe": Job("probe", "0 0 * * *", "a test job", run, period_of=day_period)}


async def _runs(dsn: str) -> list:
    conn = await connect(dsn)
    try:
        return await conn.fetch("SELECT * FROM job_runs ORDER BY id")
    finally:
        await conn.close()


async def test_a_scheduled_time_runs_once_and_a_manual_run_always(stack):
    calls: list = []
    runner = JobRunner(stack.dsn, _jobs(calls), worker="w1")
    now = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    first = await runner.run_due(now)
    assert [(r.status, r.rows) for r in first] == [("succeeded", 7)]
    assert await runner.run_due(now) == []  # the latest fire (today 00:00) succeeded already
    again = await runner.run("probe", scheduled_for=datetime(2026, 12, 2, tzinfo=UTC), trigger="schedule")
    assert (again.status, again.why) == ("skipped", "already ran for 2026-12-02T00:00:00+00:00")
    manual = await runner.run("probe", period=parse_period("2026-11-20"))
    assert manual.status == "succeeded"
    runs = await _runs(stack.dsn)
    assert [(r["trigger"], r["status"], r["rows"], r["worker"]) for r in runs] == [
        ("schedule", "succeeded", 7, "w1"), ("manual", "succeeded", 7, "w1")]
    assert runs[0]["scheduled_for"] == datetime(2026, 12, 2, tzinfo=UTC)
    assert (runs[0]["period_start"], runs[0]["period_end"]) == (datetime(2026, 12, 1, tzinfo=UTC),
                                                                datetime(2026, 12, 2, tzinfo=UTC))
    assert (runs[1]["period_start"], runs[1]["period_end"]) == (datetime(2026, 11, 20, tzinfo=UTC),
                                                                datetime(2026, 11, 21, tzinfo=UTC))
    assert calls == [day_period(datetime(2026, 12, 2, tzinfo=UTC)), parse_period("2026-11-20")]
    # the next day's fire is due the next day
    later = await runner.run_due(datetime(2026, 12, 3, 0, 0, 5, tzinfo=UTC))
    assert [r.status for r in later] == ["succeeded"]


async def test_two_workers_run_a_job_once(stack):
    calls: list = []
    jobs = _jobs(calls, slow=1.0)
    a, b = JobRunner(stack.dsn, jobs, worker="a"), JobRunner(stack.dsn, jobs, worker="b")
    now = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    ra, rb = await asyncio.gather(a.run_due(now), b.run_due(now))
    statuses = sorted(r.status for r in ra + rb)
    assert statuses == ["skipped", "succeeded"]
    assert [r.why for r in ra + rb if r.status == "skipped"] in (["running on another worker"],
                                                                  ["already ran for 2026-12-02T00:00:00+00:00"])
    assert len(calls) == 1
    assert [r["status"] for r in await _runs(stack.dsn)] == ["succeeded"]


async def test_a_failing_job_is_recorded_and_tried_again_at_the_next_round(stack):
    calls: list = []
    runner = JobRunner(stack.dsn, _jobs(calls, fail=True), worker="w")
    now = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
    (r,) = await runner.run_due(now)
    assert r.status == "failed" and "DivisionByZeroError" in r.error
    (r2,) = await runner.run_due(now)  # not succeeded for that fire: due again
    assert r2.status == "failed"
    runs = await _runs(stack.dsn)
    assert [(x["status"], x["rows"]) for x in runs] == [("failed", None), ("failed", None)]
    assert "division by zero" in runs[0]["error"] and runs[0]["finished_at"] is not None
