"""benchmarks on crafted accounts (real PostgreSQL): an own account against its platform's
competitors, percentiles and ratios exact; the same period twice gives the same rows; a single
snapshot has no growth; engagement rate and posts per week compared; the industry average across
workspaces only above its k-anonymity thresholds (issue #25 item 4)."""

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


# -- helpers for the tests below: rows inserted directly (the routing has its own tests)

async def _own(conn, ws, cid, platform, snapshots):
    """An own account; snapshots: (at, followers[, engagement_rate, posts_per_week])."""
    await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, relationship, first_seen_at,
        last_seen_at) VALUES ($1, $2, $3, 'own', $4, $4) ON CONFLICT DO NOTHING""", ws, cid, platform, START)
    for at, n, *rates in snapshots:
        er, ppw = rates or (None, None)
        await conn.execute("""INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at,
            follower_count, engagement_rate, posts_per_week, snapshot_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                           ws, cid, platform, at, n, er, ppw, uuid.uuid4())


async def _own_followers_only(conn, ws, cid, platform, snapshots):
    """An own account through the columns that exist before migration 0031."""
    await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, relationship, first_seen_at,
        last_seen_at) VALUES ($1, $2, $3, 'own', $4, $4) ON CONFLICT DO NOTHING""", ws, cid, platform, START)
    for at, n in snapshots:
        await conn.execute("""INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at,
            follower_count, snapshot_id) VALUES ($1, $2, $3, $4, $5, $6)""", ws, cid, platform, at, n, uuid.uuid4())


async def _rival(conn, ws, rid, platform, snapshots):
    """A competitor; snapshots: (at, followers[, engagement_rate, posts_per_week]), one a UTC day."""
    await conn.execute("""INSERT INTO competitor_profiles (workspace_id, id, name, platform, first_seen_at,
        last_seen_at) VALUES ($1, $2, $2, $3, $4, $4)""", ws, rid, platform, START)
    for at, n, *rates in snapshots:
        er, ppw = rates or (None, None)
        await conn.execute("""INSERT INTO competitor_metrics (workspace_id, competitor_id, recorded_date, recorded_at,
            followers, engagement_rate, posts_per_week, snapshot_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                           ws, rid, at.date(), at, n, er, ppw, uuid.uuid4())


async def _run(stack):
    runner = JobRunner(stack.dsn, JOBS)
    r = await runner.run("benchmarks", period=parse_period(f"{START.isoformat()}/{END.isoformat()}"))
    assert r.status == "succeeded", r
    return r


async def _rows(conn, ws):
    return {(x["connector_id"], x["metric"]): x
            for x in await conn.fetch("SELECT * FROM benchmark_comparisons WHERE workspace_id = $1", ws)}


BEFORE, MID, LATE = START - timedelta(days=1), START + timedelta(days=3), END - timedelta(hours=1)


async def test_a_single_snapshot_has_no_growth(stack):
    """Growth needs two snapshots, the first strictly earlier than the last. Before: r3's single
    snapshot counted as 0 % growth and the own account `solo` got a 0 % follower_growth row."""
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _own_followers_only(conn, w, "me", "tiktok", [(BEFORE, 1000), (LATE, 1100)])  # +10 %
        await _own_followers_only(conn, w, "solo", "tiktok", [(MID, 700)])  # one snapshot: no growth
        await _rival(conn, w, "r1", "tiktok", [(BEFORE, 5000), (LATE, 5250)])  # +5 %
        await _rival(conn, w, "r2", "tiktok", [(BEFORE, 2000), (LATE, 2400)])  # +20 %
        await _rival(conn, w, "r3", "tiktok", [(MID, 800)])  # one snapshot: no growth
        await _rival(conn, w, "r4", "tiktok", [(START - timedelta(days=3), 900)])  # one, before the period
        # what the job wrote before the fix for solo: a 0 % growth row; a rerun must take it away
        await conn.execute("""INSERT INTO benchmark_comparisons (workspace_id, connector_id, platform, metric,
            period_start, period_end, user_value, competitor_count, computed_at)
            VALUES ($1, 'solo', 'tiktok', 'follower_growth', $2, $3, 0, 4, now())""", w, START.date(), END.date())
        r = await _run(stack)
        rows = await _rows(conn, w)
        assert sorted(rows) == [("me", "follower_growth"), ("me", "followers"), ("solo", "followers")]
        assert r.rows == 3

        g = rows["me", "follower_growth"]
        # before: r1 5 %, r2 20 %, r3 0 %, r4 0 % -> average 25 / 4 = 6.25, median (0 + 5) / 2 = 2.5,
        # count 4, percentile 100 * 3 / 4 = 75 (10 % above 5, 0, 0), ratio 10 / 6.25 = 1.6.
        # after: r1 5 %, r2 20 % only -> average (5 + 20) / 2 = 12.5, median 12.5, count 2,
        # percentile 100 * 1 / 2 = 50 (above r1), ratio 10 / 12.5 = 0.8
        assert g["user_value"] == pytest.approx(10.0)
        assert (g["competitor_average"], g["competitor_median"], g["competitor_count"]) == (12.5, 12.5, 2)
        assert g["percentile"] == pytest.approx(50.0) and g["ratio"] == pytest.approx(0.8)
        # followers are still compared with all four: 5250, 2400, 800, 900
        f = rows["me", "followers"]
        assert f["competitor_count"] == 4 and f["competitor_average"] == pytest.approx((5250 + 2400 + 800 + 900) / 4)
        s = rows["solo", "followers"]
        assert s["user_value"] == 700.0 and s["percentile"] == pytest.approx(0.0)  # below all four
    finally:
        await conn.close()


async def test_engagement_rate_and_posts_per_week_compared(stack):
    """The latest value sent before the period's end, own account against its competitors; a
    competitor without the metric is left out of it. Before: neither metric was compared (own
    accounts' values were not even stored)."""
    w = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _own(conn, w, "me", "tiktok", [(BEFORE, 1000, 4.0, 5.0), (MID, 1050, 3.0, 7.0),
                                             (LATE, 1100, None, None),  # sent neither: MID's values hold
                                             (END + timedelta(hours=1), 1200, 9.0, 1.0)])  # after the period
        await _rival(conn, w, "r1", "tiktok", [(LATE, 5000, 2.0, 7.0)])
        await _rival(conn, w, "r2", "tiktok", [(BEFORE, 2000, 1.0, 1.0), (LATE, 2400, 5.0, 3.5)])
        await _rival(conn, w, "r3", "tiktok", [(MID, 800, 4.0, 14.0)])
        await _rival(conn, w, "r4", "tiktok", [(MID, 900)])  # sent neither rate
        await _run(stack)
        rows = await _rows(conn, w)
        assert sorted(rows) == [("me", "engagement_rate"), ("me", "follower_growth"), ("me", "followers"),
                                ("me", "posts_per_week")]
        e = rows["me", "engagement_rate"]
        # own 3.0 (MID); competitors 2.0, 5.0, 4.0 (r4 has none): average (2 + 5 + 4) / 3 = 11 / 3,
        # median 4.0, count 3, percentile 100 * 1 / 3 (above r1 only), ratio 3 / (11 / 3) = 9 / 11
        assert (e["user_value"], e["competitor_median"], e["competitor_count"]) == (3.0, 4.0, 3)
        assert e["competitor_average"] == pytest.approx(11 / 3) and e["percentile"] == pytest.approx(100 / 3)
        assert e["ratio"] == pytest.approx(9 / 11)
        p = rows["me", "posts_per_week"]
        # own 7.0; competitors 7.0, 3.5, 14.0: average 24.5 / 3, median 7.0, count 3,
        # percentile 100 * (1 below + 0.5 * 1 tie) / 3 = 50, ratio 7 / (24.5 / 3) = 21 / 24.5 = 6 / 7
        assert (p["user_value"], p["competitor_median"], p["competitor_count"]) == (7.0, 7.0, 3)
        assert p["competitor_average"] == pytest.approx(24.5 / 3) and p["percentile"] == pytest.approx(50.0)
        assert p["ratio"] == pytest.approx(6 / 7)
        assert e["industry_average"] is None and p["industry_average"] is None  # 1 workspace, 3 accounts
    finally:
        await conn.close()


async def test_industry_average_over_workspaces_with_k_anonymity(stack):
    """industry_average: the platform's average over the distinct competitor accounts of all
    workspaces (an account tracked by two counts once, the mean of their values), published only
    with >= 5 workspaces and >= 10 accounts having the metric. Before: always NULL."""
    ws = [uuid.uuid4() for _ in range(5)]
    conn = await connect(stack.dsn)
    try:
        # tiktok: account a<i> (i = 0..9) tracked by workspace i // 2, 1000 (i + 1) before the period and
        # 1100 (i + 1) in it (+10 %); a9 has one snapshot (11000): no growth. ws[0] tracks a2 too, one snapshot
        # of 4400 (no growth); ws[1] saw a2 go 3000 -> 3300.
        for i in range(10):
            snaps = [(LATE, 1100 * (i + 1))] if i == 9 else [(BEFORE, 1000 * (i + 1)), (LATE, 1100 * (i + 1))]
            await _rival(conn, ws[i // 2], f"a{i}", "tiktok", snaps)
        await _rival(conn, ws[0], "a2", "tiktok", [(LATE, 4400)])
        for k, w in enumerate(ws):
            await _own_followers_only(conn, w, "me", "tiktok", [(BEFORE, 1000), (LATE, 1100 + 100 * k)])
        # instagram: 4 workspaces with 3 accounts each (12 accounts): too few workspaces
        for k, w in enumerate(ws[:4]):
            for j in range(3):
                await _rival(conn, w, f"ig{k}{j}", "instagram", [(LATE, 100)])
        await _own_followers_only(conn, ws[0], "ig", "instagram", [(LATE, 50)])
        await _run(stack)
        rows = await _rows(conn, ws[0])
        f = rows["me", "followers"]
        # accounts' followers: 1100, 2200, a2 = (4400 + 3300) / 2 = 3850, 4400, 5500, ..., 11000:
        # (1100 * (1 + 2 + ... + 10) - 3300 + 3850) / 10 = (60500 + 550) / 10 = 6105
        assert f["industry_average"] == pytest.approx(6105.0)
        # the competitor figures stay the workspace's own: a0 1100, a1 2200, a2 4400
        assert f["competitor_count"] == 3 and f["competitor_average"] == pytest.approx((1100 + 2200 + 4400) / 3)
        # growth: a0..a8 (a2 through ws[1] only) = 9 accounts < 10 -> NULL, though all 5 workspaces have one
        assert rows["me", "follower_growth"]["industry_average"] is None
        assert rows["me", "follower_growth"]["competitor_count"] == 2  # a0, a1 (+10 % each)
        assert rows["ig", "followers"]["industry_average"] is None  # 4 workspaces < 5
        assert rows["ig", "followers"]["competitor_average"] == 100.0
        # every workspace gets the same figure
        for w in ws[1:]:
            assert (await _rows(conn, w))["me", "followers"]["industry_average"] == pytest.approx(6105.0)
    finally:
        await conn.close()
