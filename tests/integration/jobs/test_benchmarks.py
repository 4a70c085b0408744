"""benchmarks on crafted accounts (real PostgreSQL): an own account against its platform's
competitors, percentiles and ratios exact; the same period twice gives the same rows."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner, parse_period

pytestmark = pytest.mark.services

W = uuid.uuid4()
START, END = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)


async def test_an_own_account_against_its_competitors(stack):
    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, relationship, first_seen_at,
            last_seen_at) VALUES ($1, 'me', 'tiktok', 'own', $2, $2)""", W, START)
        for at, n in ((START - timedelta(days=1), 1000), (START + timedelta(days=3), 1050), (END - timedelta(hours=1), 1100),
                      (END + timedelta(hours=1), 5000)):  # the last is after the period
            await conn.execute("""INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at,
                follower_count, snapshot_id) VALUES ($1, 'me', 'tiktok', $2, $3, $4)""", W, at, n, uuid.uuid4())
        rivals = {"r1": ("tiktok", 5000, 5250), "r2": ("tiktok", 2000, 2400), "r3": ("tiktok", 800, 800),
                  "r4": ("instagram", 10, 99999)}  # another platform: not compared
        for rid, (platform, first, last) in rivals.items():
            await conn.execute("""INSERT INTO competitor_profiles (workspace_id, id, name, platform, first_seen_at,
                last_seen_at) VALUES ($1, $2, $2, $3, $4, $4)""", W, rid, platform, START)
            for at, n in ((START - timedelta(days=2), first), (END - timedelta(days=1), last)):
                await conn.execute("""INSERT INTO competitor_metrics (workspace_id, competitor_id, recorded_date,
                    recorded_at, followers, snapshot_id) VALUES ($1, $2, $3, $4, $5, $6)""",
                                   W, rid, at.date(), at, n, uuid.uuid4())
        runner = JobRunner(stack.dsn, JOBS)
        period = parse_period(f"{START.isoformat()}/{END.isoformat()}")
        r = await runner.run("benchmarks", period=period)
        assert (r.status, r.rows) == ("succeeded", 2)
        same = """SELECT id, connector_id, platform, metric, period_start, period_end, user_value, competitor_average,
                         competitor_median, competitor_count, percentile, ratio FROM benchmark_comparisons ORDER BY metric"""
        rows1 = [tuple(x) for x in await conn.fetch(same)]
        await runner.run("benchmarks", period=period)
        assert [tuple(x) for x in await conn.fetch(same)] == rows1  # the same rows (computed_at aside)
        rows = {x["metric"]: x for x in await conn.fetch("SELECT * FROM benchmark_comparisons")}
        assert len(rows) == 2

        f = rows["followers"]
        tiktok = [5250.0, 2400.0, 800.0]
        assert (f["user_value"], f["competitor_count"]) == (1100.0, 3)
        assert f["competitor_average"] == pytest.approx(statistics.mean(tiktok))
        assert f["competitor_median"] == 2400.0
        assert f["percentile"] == pytest.approx(100 / 3)  # above r3 only
        assert f["ratio"] == pytest.approx(1100 / statistics.mean(tiktok))
        g = rows["follower_growth"]
        growth = [5.0, 20.0, 0.0]  # r1, r2, r3 in %
        assert g["user_value"] == pytest.approx(10.0)  # 1000 before the start -> 1100 at the end
        assert g["competitor_average"] == pytest.approx(statistics.mean(growth))
        assert g["competitor_median"] == 5.0 and g["percentile"] == pytest.approx(200 / 3)
        assert (g["period_start"], g["period_end"]) == (START.date(), END.date())
    finally:
        await conn.close()
