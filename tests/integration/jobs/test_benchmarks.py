"""benchmarks on crafted accounts (real PostgreSQL): an own account against its platform's
competitors, percentiles and ratios exact; the same period twice gives the same rows; a single
snapshot has no growth; engagement rate and posts per week compared; the industry average only when
the operator turns it on, per workspace over the other workspaces' shared competitors, above its
thresholds (issue #25 item 4, review finding 14)."""

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
            # at the edges (within EDGE_TOLERANCE, 1 day): before review 2 R3 the first was 2 days before START,
            # which no longer measures the period's growth
            for at, n in ((START - timedelta(days=1), first), (END - timedelta(days=1), last)):
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
        # 1000 a day before the start -> 1100 an hour before the end: +10 % over 8 days - 1 h = 191 h, per the
        # period's 168 h (review 3 F6): 10 x 168 / 191; the rivals' counts are exactly 7 days apart: as measured
        assert g["user_value"] == pytest.approx(10.0 * 168 / 191)
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
        # percentile 100 * 1 / 2 = 50 (above r1), ratio 10 / 12.5 = 0.8.
        # review 3 F6: each growth per the period's length; every count here is BEFORE -> LATE, 8 days - 1 h =
        # 191 h for a 168-h period: each x 168 / 191 (me 8.796 %, average 10.995 %), percentile and ratio as they were
        k = 168 / 191
        assert g["user_value"] == pytest.approx(10.0 * k)
        assert (g["competitor_average"], g["competitor_median"], g["competitor_count"]) == (
            pytest.approx(12.5 * k), pytest.approx(12.5 * k), 2)
        assert g["percentile"] == pytest.approx(50.0) and g["ratio"] == pytest.approx(0.8)
        # followers are compared with the three counts of the period: 5250, 2400, 800 (r4's only snapshot is
        # 3 days before the period: not this period's count; before review 2 R3, four with 900)
        f = rows["me", "followers"]
        assert f["competitor_count"] == 3 and f["competitor_average"] == pytest.approx((5250 + 2400 + 800) / 3)
        s = rows["solo", "followers"]
        assert s["user_value"] == 700.0 and s["percentile"] == pytest.approx(0.0)  # below all three
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


# -- industry_average (issue #25 item 4; review finding 14): off unless LEARNSTREAM_INDUSTRY_BENCHMARKS;
# when on, per reader workspace over the OTHER workspaces' accounts that >= 2 of them track, >= 5 such
# workspaces, >= 10 such accounts, no account over 50 % of the sum of |values|

@pytest.fixture
def industry_on(monkeypatch):
    monkeypatch.setenv("LEARNSTREAM_INDUSTRY_BENCHMARKS", "true")


async def _shared_competitors(conn):
    """Workspaces R, O1..O5 on tiktok (followers, posts_per_week). s0..s9: each tracked by three of
    O1..O5 (s<i>: O<i mod 5 + 1> and the next two, cyclically), 1000 (i + 1) followers and 1 post a
    week (s9: 10), except s0, seen at 1000 by O1, 3000 by O2, 2000 by O3; R tracks s0 too (99,000
    followers). s10: R and O3, 20,000. Private: p (R only, 50,000), q (O1 only, 7,000). Each has an
    own account `me`, 100 followers, 2 posts a week. -> [R, O1, ..., O5]"""
    ws = [uuid.uuid4() for _ in range(6)]
    r, o = ws[0], ws[1:]  # o[k] is O<k + 1>
    for i in range(10):
        for k in range(3):
            tracker = (i + k) % 5
            n = (1000, 3000, 2000)[k] if i == 0 else 1000 * (i + 1)
            await _rival(conn, o[tracker], f"s{i}", "tiktok", [(LATE, n, None, 10.0 if i == 9 else 1.0)])
    await _rival(conn, r, "s0", "tiktok", [(LATE, 99000, None, 1.0)])
    await _rival(conn, r, "s10", "tiktok", [(LATE, 20000, None, 1.0)])
    await _rival(conn, o[2], "s10", "tiktok", [(LATE, 20000, None, 1.0)])
    await _rival(conn, r, "p", "tiktok", [(LATE, 50000, None, 1.0)])
    await _rival(conn, o[0], "q", "tiktok", [(LATE, 7000, None, 1.0)])
    for w in ws:
        await _own(conn, w, "me", "tiktok", [(LATE, 100, None, 2.0)])
    return ws


async def test_industry_average_is_off_by_default(stack, monkeypatch):
    """Without LEARNSTREAM_INDUSTRY_BENCHMARKS no row carries an industry average, however many
    workspaces share competitors. Before: the fixture below gave every workspace a figure (6 workspaces,
    13 accounts: s0 (1000 + 3000 + 2000 + 99000) / 4 = 26,250, (26250 + 54000 + 20000 + 50000 + 7000) / 13
    = 12,096.2 followers, (9 + 10 + 1 + 1 + 1) / 13 = 1.69 posts a week)."""
    monkeypatch.delenv("LEARNSTREAM_INDUSTRY_BENCHMARKS", raising=False)
    conn = await connect(stack.dsn)
    try:
        ws = await _shared_competitors(conn)
        await _run(stack)
        rows = [x for w in ws for x in (await _rows(conn, w)).values()]
        assert len(rows) == 6 * 2  # followers and posts_per_week of each `me`
        assert all(x["industry_average"] is None for x in rows)
    finally:
        await conn.close()


async def test_industry_average_over_the_other_workspaces_shared_accounts(stack, industry_on):
    """Each workspace's industry_average is over the other workspaces only (its own values and private
    accounts never enter its figure), counting an account only when two of them track it; published
    with >= 5 such workspaces, >= 10 such accounts and no account over half the sum. Before: the same
    figure everywhere over every workspace's accounts, the reader's own included."""
    conn = await connect(stack.dsn)
    try:
        r, *o = await _shared_competitors(conn)
        await _run(stack)
        rows = {w: await _rows(conn, w) for w in (r, *o)}
        # R: s0 = (1000 + 3000 + 2000) / 3 = 2000 (its own 99,000 left out), s1..s9 2000 + ... + 10000 = 54,000;
        # s10 has one other tracker (O3), p only R: out -> 10 accounts of O1..O5: (2000 + 54000) / 10 = 5600
        assert rows[r]["me", "followers"]["industry_average"] == pytest.approx(5600.0)
        # O1: s0 = (3000 + 2000 + 99000) / 3 (O2, O3, R), s1..s9 54,000, s10 20,000 (R, O3); q (O1's only) out:
        # (104000 / 3 + 54000 + 20000) / 11 = 326000 / 33
        assert rows[o[0]]["me", "followers"]["industry_average"] == pytest.approx(326000 / 33)
        # O2: s0 = (1000 + 2000 + 99000) / 3 = 34,000: (34000 + 54000 + 20000) / 11
        assert rows[o[1]]["me", "followers"]["industry_average"] == pytest.approx(108000 / 11)
        # O3: s0 = (1000 + 3000 + 99000) / 3; s10 has one other tracker (R): out -> (103000 / 3 + 54000) / 10
        assert rows[o[2]]["me", "followers"]["industry_average"] == pytest.approx(265000 / 30)
        # O4, O5: s0 = (1000 + 3000 + 2000 + 99000) / 4 = 26,250: (26250 + 54000 + 20000) / 11
        for w in o[3:]:
            assert rows[w]["me", "followers"]["industry_average"] == pytest.approx(100250 / 11)
        # posts_per_week, dominance: R and O3 see s0..s8 at 1 and s9 at 10: 10 > 0.5 x 19 -> NULL; the others
        # see s10 (1) too: 10 <= 0.5 x 20 (exactly half is allowed) -> 20 / 11
        assert [rows[w]["me", "posts_per_week"]["industry_average"] for w in (r, *o)] == [
            None, pytest.approx(20 / 11), pytest.approx(20 / 11), None, pytest.approx(20 / 11), pytest.approx(20 / 11)]
        # the competitor figures stay each workspace's own: R's s0 99,000, s10 20,000, p 50,000
        f = rows[r]["me", "followers"]
        assert (f["competitor_count"], f["competitor_average"]) == (3, pytest.approx((99000 + 20000 + 50000) / 3))
    finally:
        await conn.close()


async def _sybils(conn, platform, fakes_at, fake_trackers, x_trackers):
    """Attacker workspaces A0..A<n-1> and victim V on `platform`, engagement_rate: fake accounts f0..f8
    at `fakes_at`, f<j> tracked by the attacker workspaces fake_trackers(j); V tracks x at 7.3, the
    attacker workspaces x_trackers at 0. Each has `me` at 1.0. -> (attacker workspaces, V)"""
    n = 1 + max(max(fake_trackers(j)) for j in range(9))
    a, v = [uuid.uuid4() for _ in range(n)], uuid.uuid4()
    for j in range(9):
        for t in fake_trackers(j):
            await _rival(conn, a[t], f"f{j}", platform, [(LATE, 100, fakes_at, None)])
    await _rival(conn, v, "x", platform, [(LATE, 100, 7.3, None)])
    for t in x_trackers:
        await _rival(conn, a[t], "x", platform, [(LATE, 100, 0.0, None)])
    for w in (*a, v):
        await _own(conn, w, "me", platform, [(LATE, 100, 1.0, None)])
    return a, v


async def test_sybil_workspaces_cannot_isolate_one_workspaces_competitor(stack, industry_on):
    """Review finding 14: 4 attacker workspaces with 9 fake competitors at 0 and the victim's one
    competitor at 7.3 gave industry_average 0.73 = 7.3 / 10, isolating it. Each platform below is one
    attempt (all in one run: the industry figure is per platform)."""
    conn = await connect(stack.dsn)
    try:
        # the review's attack: A0 f0-f2, A1 f3-f4, A2 f5-f6, A3 f7-f8. Before: 5 workspaces, 10 accounts ->
        # (9 x 0 + 7.3) / 10 = 0.73 everywhere. After: A0's others are 3 attacker workspaces + V = 4 < 5,
        # and every account has one tracker -> NULL
        a1, v1 = await _sybils(conn, "tiktok", 0.0, lambda j: [(0, 0, 0, 1, 1, 2, 2, 3, 3)[j]], [])
        # adapted to the rule: A1..A4 each fake in two of them, A0 reads. Before: 0.73. After: x has one
        # tracker (V) -> 9 accounts < 10 -> NULL (a workspace's private competitor never enters)
        a2, v2 = await _sybils(conn, "instagram", 0.0, lambda j: [1 + j % 4, 1 + (j + 1) % 4], [])
        # ... and A1 tracks x at 0 as well: x = (7.3 + 0) / 2 = 3.65 enters, 10 accounts, others A1..A4 + V = 5.
        # Before: 3.65 / 10 = 0.365. After: x is 3.65 of a sum of 3.65 > 50 % -> NULL (dominance)
        a3, v3 = await _sybils(conn, "youtube", 0.0, lambda j: [1 + j % 4, 1 + (j + 1) % 4], [1])
        # the documented limit (docs/security.md): with fakes at 1 instead, x is 3.65 of 12.65 (28.9 %):
        # published (9 x 1 + 3.65) / 10 = 1.265, and the attacker, knowing x's id and its own values, reads
        # (7.3 + 0) / 2 = 10 x 1.265 - 9 -> the other workspaces' mean for x
        a4, v4 = await _sybils(conn, "linkedin", 1.0, lambda j: [1 + j % 4, 1 + (j + 1) % 4], [1])
        await _run(stack)
        for w in (*a1, v1, *a2, v2, *a3, v3):
            assert (await _rows(conn, w))["me", "engagement_rate"]["industry_average"] is None
        assert (await _rows(conn, a4[0]))["me", "engagement_rate"]["industry_average"] == pytest.approx(1.265)
        assert (await _rows(conn, v4))["me", "engagement_rate"]["industry_average"] is None  # A1..A4: 4 < 5
    finally:
        await conn.close()


async def test_growth_and_values_come_from_the_period_and_its_edges(stack):
    """Review 2 R3: growth is over the period for everyone, values are the period's. The count at the
    start is the latest snapshot at or before START and at most EDGE_TOLERANCE (1 day) before it, the
    count at the end the latest at or before END (review 3 F4) and at most 1 day before it; followers, engagement_rate and
    posts_per_week are the latest recorded in [START, END). Before: `me` got +10 % "for the week"
    from a count 60 days old against r1's +1 % (percentile 100, ratio 10), r2's 9.0 engagement rate
    from before the week was compared, r2's growth was +20 % from a count 1 day 1 s before START."""
    from db.analytics.benchmarks import EDGE_TOLERANCE

    assert EDGE_TOLERANCE == timedelta(days=1)
    w = uuid.uuid4()
    day, s = timedelta(days=1), timedelta(seconds=1)
    conn = await connect(stack.dsn)
    try:
        await _own(conn, w, "me", "tiktok", [(START - timedelta(days=60), 1000), (END - timedelta(hours=1), 1100)])
        # both edges exactly 1 day off: in; its rates are from before the period: out
        await _own(conn, w, "edge", "tiktok", [(START - day, 1000, 4.0, 5.0), (END - day, 1200)])
        await _own(conn, w, "late", "tiktok", [(START - timedelta(hours=1), 1000), (END - day - s, 1300)])  # end: out
        await _rival(conn, w, "r1", "tiktok", [(START - timedelta(hours=1), 1000), (END - timedelta(hours=1), 1010, 2.0, 7.0)])
        await _rival(conn, w, "r2", "tiktok", [(START - day - s, 500, 9.0, 9.0), (MID, 600)])  # start: out
        await _run(stack)
        rows = await _rows(conn, w)
        assert sorted(rows) == [("edge", "follower_growth"), ("edge", "followers"), ("late", "followers"),
                                ("me", "followers")]
        # follower_growth: edge (1200 - 1000) / 1000 = +20 % against r1's (1010 - 1000) / 1000 = +1 % only
        # (r2: no count within a day of START): average 1, median 1, count 1, percentile 100, ratio 20
        # (both measured over exactly 7 days: START - 1 day .. END - 1 day, START - 1 h .. END - 1 h, so the
        # scaling to the period's length, review 3 F6, is x 1)
        g = rows["edge", "follower_growth"]
        assert (g["user_value"], g["competitor_average"], g["competitor_median"], g["competitor_count"]) == (
            pytest.approx(20.0), pytest.approx(1.0), pytest.approx(1.0), 1)
        assert (g["percentile"], g["ratio"]) == (pytest.approx(100.0), pytest.approx(20.0))
        # followers of the period: r1 1010, r2 600 -> average 805, median 805; me 1100 above both: percentile 100,
        # ratio 1100 / 805; edge 1200 (END - 1 day is in the period), late 1300 (END - 1 day - 1 s too)
        f = rows["me", "followers"]
        assert (f["user_value"], f["competitor_average"], f["competitor_median"], f["competitor_count"]) == (
            1100.0, 805.0, 805.0, 2)
        assert (f["percentile"], f["ratio"]) == (pytest.approx(100.0), pytest.approx(1100 / 805))
        assert (rows["edge", "followers"]["user_value"], rows["late", "followers"]["user_value"]) == (1200.0, 1300.0)
    finally:
        await conn.close()
