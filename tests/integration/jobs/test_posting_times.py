"""optimal_posting_times on crafted months (real PostgreSQL): hours in the account's zone, the
engagement at age 24 h, the window, the shrinkage and lower bound that keep a few lucky
posts from winning, the minimum sample per ranked cell, accounts whose platform reports no views,
a daylight-saving change, and a second run giving the same rows (issue 25 item 7)."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime, timedelta
from math import sqrt

import pytest

from db.analytics.posting_times import MIN_POSTS, PRIOR_POSTS, Z
from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner, parse_period

pytestmark = pytest.mark.services

W = uuid.uuid4()
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
PERIOD = parse_period(f"2026-11-30/{UNTIL.isoformat()}")
# Berlin is UTC+1 in November: Monday 16 Nov 18:xx Berlin = 17:xx UTC
MON_18 = datetime(2026, 11, 16, 17, 0, tzinfo=UTC)
TUE_09 = datetime(2026, 11, 17, 8, 0, tzinfo=UTC)
WED_12 = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)
K = PRIOR_POSTS


async def _account(conn, connector: str, timezone: str | None, platform: str = "tiktok") -> None:
    await conn.execute("""INSERT INTO connectors (workspace_id, id, platform, timezone, first_seen_at, last_seen_at)
        VALUES ($1, $2, $3, $4, $5, $5)""", W, connector, platform, timezone, UNTIL)


async def _post(conn, published: datetime, likes: int, connector: str = "me", snapshots: tuple = (),
                views: int = 1000, platform: str = "tiktok") -> None:
    cid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO content (workspace_id, id, platform, connector_id, published_at, first_seen_at, last_seen_at,
               last_event_id) VALUES ($1, $2, $3, $4, $5, $5, $5, $6)""",
        W, cid, platform, connector, published, uuid.uuid4())
    # the last snapshot, at age 24 h (AGE_HOURS), is the post's measure (review 2 R7; it was at 48 h, the
    # latest counting: at 24 h a post with only it would now count half its views and likes from 0 at publication)
    for hours, n_views, n_likes in (*snapshots, (24, views, likes)):
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            uuid.uuid4(), W, cid, platform, n_views, n_likes, published + timedelta(hours=hours))


async def _run(stack) -> tuple[int, dict]:
    run = await JobRunner(stack.dsn, JOBS).run("optimal_posting_times", period=PERIOD)
    assert run.status == "succeeded", run.error
    conn = await connect(stack.dsn)
    try:
        rows = await conn.fetch("SELECT * FROM optimal_posting_times ORDER BY connector_id, day_of_week, hour_of_day")
    finally:
        await conn.close()
    return run.rows, {(r["connector_id"], r["day_of_week"], r["hour_of_day"]): r for r in rows}


def _lower(n: int, mean: float, account: list[float]) -> float:
    """The ranked quantity, by hand: the shrunk mean's lower bound (never below 0)."""
    shrunk = (n * mean + K * statistics.fmean(account)) / (n + K)
    return max(0.0, shrunk - Z * statistics.stdev(account) / sqrt(n + K))


async def test_the_best_hours_of_a_crafted_month_in_the_accounts_zone(stack):
    conn = await connect(stack.dsn)
    try:
        await _account(conn, "me", "Europe/Berlin")
        for i in range(20):  # Monday 18:00 Berlin, 20 posts at 12%; one had 90% in a snapshot at 1 h
            await _post(conn, MON_18 + timedelta(minutes=2 * i), 120, snapshots=((1, 10, 9),) if i == 0 else ())
        for i in range(3):  # Tuesday 09:00: three posts at 14%, a better mean on few posts
            await _post(conn, TUE_09 + timedelta(minutes=i), 140)
        for i in range(7):  # Wednesday 12:00: 7 posts at 5%
            await _post(conn, WED_12 + timedelta(minutes=i), 50)
        await _post(conn, UNTIL - timedelta(days=100), 1000)  # outside the 90-day window
        await _post(conn, TUE_09, 300, connector="other")      # an account without a known zone: UTC
    finally:
        await conn.close()

    n1, rows1 = await _run(stack)
    n2, rows2 = await _run(stack)
    assert n1 == n2 == 4
    assert [tuple(r) for r in rows1.values()] == [tuple(r) for r in rows2.values()]  # the same rows

    me = {(d, h): r for (c, d, h), r in rows1.items() if c == "me"}
    assert set(me) == {(1, 18), (2, 9), (3, 12)}  # Monday 18h, Tuesday 9h, Wednesday 12h, Berlin time
    account = [0.12] * 20 + [0.14] * 3 + [0.05] * 7
    n = {(1, 18): 20, (2, 9): 3, (3, 12): 7}
    mean = {(1, 18): 0.12, (2, 9): 0.14, (3, 12): 0.05}
    lower = {cell: _lower(n[cell], mean[cell], account) for cell in n}
    best = max(lower.values())
    assert best == lower[(1, 18)]  # the 20-post cell wins over the 3-post cell with the higher mean
    for cell, r in me.items():
        assert (r["sample_size"], r["timezone"], r["metric"]) == (n[cell], "Europe/Berlin", "engagement_rate")
        assert r["avg_engagement"] == pytest.approx(mean[cell])
        assert r["confidence"] == pytest.approx(n[cell] / (n[cell] + K))
        assert r["optimization_score"] == pytest.approx(100 * lower[cell] / best)
    (other,) = [r for (c, _d, _h), r in rows1.items() if c == "other"]
    assert (other["day_of_week"], other["hour_of_day"], other["timezone"]) == (2, 8, "UTC")
    # one post (< MIN_POSTS): stored with its sample, unranked (it used to score 100)
    assert (other["sample_size"], other["optimization_score"], other["avg_engagement"]) == (1, None, 0.3)
    assert other["confidence"] == pytest.approx(1 / (1 + K))


async def test_one_lucky_post_does_not_outrank_twelve_consistent_ones(stack):
    """1 post at 50 % (Monday 10 UTC) against 12 at 10 % (Tuesday 10 UTC), account in UTC.
    Before: shrunk means (0.5 + 10 * 1.7/13) / 11 = 0.1643 and (1.2 + 10 * 1.7/13) / 22 = 0.1140, the
    lucky post scored 100 and the twelve 69.4. After: the lucky cell has 1 < MIN_POSTS posts, no
    score; the twelve are the account's one ranked cell: 100."""
    conn = await connect(stack.dsn)
    try:
        await _account(conn, "lucky", None)
        await _post(conn, datetime(2026, 11, 16, 10, 0, tzinfo=UTC), 500, connector="lucky")
        for i in range(12):
            await _post(conn, datetime(2026, 11, 17, 10, i, tzinfo=UTC), 100, connector="lucky")
    finally:
        await conn.close()
    assert MIN_POSTS == 3
    rows, cells = await _run(stack)
    assert rows == 2
    one, twelve = cells[("lucky", 1, 10)], cells[("lucky", 2, 10)]
    assert (one["sample_size"], one["avg_engagement"], one["optimization_score"]) == (1, 0.5, None)
    assert (twelve["sample_size"], twelve["optimization_score"]) == (12, 100.0)
    assert twelve["avg_engagement"] == pytest.approx(0.1)
    # even without the minimum the shrunk means alone would rank the lucky post first (the bug):
    acct = (0.5 + 12 * 0.1) / 13
    assert (0.5 + K * acct) / (1 + K) > (12 * 0.1 + K * acct) / (12 + K)


async def test_a_platform_that_reports_no_views_is_ranked_by_interactions_per_post(stack):
    """Account `nv` (platform `linkedin`, no views on any post): interactions per post.
    Monday 09 UTC: 30, 40, 50 (mean 40); Wednesday 09 UTC: 10, 10, 10 (mean 10).
    Account: mean (120 + 30) / 6 = 25; deviations 5, 15, 25, -15, -15, -15; squares 25 + 225 +
    625 + 3 x 225 = 1550; sd = sqrt(1550 / 5) = 17.6068.
    shrunk: Monday (3 x 40 + 10 x 25) / 13 = 370 / 13 = 28.4615; Wednesday 280 / 13 = 21.5385;
    lower: minus 1.645 x 17.6068 / sqrt(13) = 8.0330: 20.4286 and 13.5055; scores 100 and
    100 x 13.5055 / 20.4286 = 66.11.
    Before: every rate NULL (views 0), no row at all.
    Account `mix` (tiktok): three posts at 10 % and one with 0 views (5 likes) in the same hour:
    the 0-view post is left out of the rate: sample 3, mean 0.1."""
    conn = await connect(stack.dsn)
    try:
        for likes in (30, 40, 50):
            await _post(conn, datetime(2026, 11, 16, 9, likes, tzinfo=UTC), likes, connector="nv", views=0,
                        platform="linkedin")
        for i in range(3):
            await _post(conn, datetime(2026, 11, 18, 9, i, tzinfo=UTC), 10, connector="nv", views=0,
                        platform="linkedin")
        for i in range(3):
            await _post(conn, datetime(2026, 11, 19, 9, i, tzinfo=UTC), 100, connector="mix")
        await _post(conn, datetime(2026, 11, 19, 9, 30, tzinfo=UTC), 5, connector="mix", views=0)
    finally:
        await conn.close()
    rows, cells = await _run(stack)
    assert rows == 3
    mon, wed = cells[("nv", 1, 9)], cells[("nv", 3, 9)]
    sd = sqrt((5 ** 2 + 15 ** 2 + 25 ** 2 + 3 * 15 ** 2) / 5)
    lower_mon = (3 * 40 + 10 * 25) / 13 - 1.645 * sd / sqrt(13)
    lower_wed = (3 * 10 + 10 * 25) / 13 - 1.645 * sd / sqrt(13)
    assert (round(sd, 4), round(lower_mon, 4), round(lower_wed, 4)) == (17.6068, 20.4286, 13.5055)
    assert (mon["metric"], mon["sample_size"], mon["avg_engagement"], mon["optimization_score"]) == (
        "interactions_per_post", 3, 40.0, 100.0)
    assert (wed["metric"], wed["sample_size"], wed["avg_engagement"]) == ("interactions_per_post", 3, 10.0)
    assert wed["optimization_score"] == pytest.approx(100 * lower_wed / lower_mon)
    assert round(wed["optimization_score"], 2) == 66.11
    mix = cells[("mix", 4, 9)]
    assert (mix["metric"], mix["sample_size"]) == ("engagement_rate", 3)
    assert mix["avg_engagement"] == pytest.approx(0.1)


async def test_posts_across_a_daylight_saving_change_go_to_their_local_hour(stack):
    """Europe/Berlin. 25 Oct 2026 (last Sunday of October): 00:xx UTC = 02:xx CEST and 01:xx UTC
    = 02:xx CET: both Sunday 02h, one cell of six posts. 29 Mar 2026 (last Sunday of March):
    00:xx UTC = 01:xx CET, 01:xx UTC = 03:xx CEST (02h does not exist that day): two cells of
    three. Each run covers the 90 days before its end, so it sees one of the two Sundays."""
    conn = await connect(stack.dsn)
    try:
        await _account(conn, "be", "Europe/Berlin")
        for minute in (30, 40, 50):
            for day in (datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC)):
                await _post(conn, day + timedelta(minutes=minute), 100, connector="be")
                await _post(conn, day + timedelta(hours=1, minutes=minute), 100, connector="be")
    finally:
        await conn.close()
    runner = JobRunner(stack.dsn, JOBS)
    conn = await connect(stack.dsn)
    try:
        for period, want in (("2026-10-30T00:00:00+00:00/2026-10-31T00:00:00+00:00", [(0, 2, 6, 100.0)]),
                             ("2026-03-31T00:00:00+00:00/2026-04-01T00:00:00+00:00", [(0, 1, 3, 100.0),
                                                                                      (0, 3, 3, 100.0)])):
            run = await runner.run("optimal_posting_times", period=parse_period(period))
            assert (run.status, run.rows) == ("succeeded", len(want))
            got = await conn.fetch("""SELECT day_of_week, hour_of_day, sample_size, optimization_score
                                      FROM optimal_posting_times ORDER BY hour_of_day""")
            assert [tuple(r) for r in got] == want
    finally:
        await conn.close()


async def test_posts_are_compared_at_the_same_age(stack):
    """Review 2 R7: a post's measure is its counts at age 24 h, interpolated linearly between its last
    snapshot at or before (else 0 at publication) and its first at or after, recorded by 48 h and by the
    run. Account `age` (linkedin, no views: interactions per post), UTC, run at UNTIL = 1 Dec 00:00:
      * Monday 16 Nov 10:0x, three posts, snapshots at 12 h (100) and 36 h (300): at 24 h
        100 + (300 - 100) x 12 / 24 = 200 each (before: the latest, 300);
      * Tuesday 17 Nov 10:0x, three posts, one snapshot at 48 h (400): from 0 at publication,
        400 x 24 / 48 = 200 each (before: 400, and Tuesday beat Monday);
      * Wednesday 18 Nov 10:00, one snapshot at 72 h (9,000): none between 24 and 48 h: left out;
      * Monday 30 Nov 10:00, one snapshot at 1 h (5,000): 14 h old at the run, left out;
      * Sunday 29 Nov 10:00, snapshots at 10 h (0), 26 h (600), 30 h (9,000): at 24 h
        0 + 600 x 14 / 16 = 525 (the 30 h one does not enter); one post: unranked.
    Monday and Tuesday: mean 200 each, the same shrunk mean and lower bound: 100 both."""
    conn = await connect(stack.dsn)
    try:
        await _account(conn, "age", "UTC", platform="linkedin")

        async def post(published, snaps):
            cid = uuid.uuid4()
            await conn.execute("""INSERT INTO content (workspace_id, id, platform, connector_id, published_at,
                first_seen_at, last_seen_at, last_event_id) VALUES ($1, $2, 'linkedin', 'age', $3, $3, $3, $4)""",
                               W, cid, published, uuid.uuid4())
            for hours, likes in snaps:
                await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform,
                    views, likes, recorded_at) VALUES ($1, $2, $3, 'linkedin', 0, $4, $5)""",
                                   uuid.uuid4(), W, cid, likes, published + timedelta(hours=hours))

        for i in range(3):
            await post(datetime(2026, 11, 16, 10, i, tzinfo=UTC), [(12, 100), (36, 300)])
            await post(datetime(2026, 11, 17, 10, i, tzinfo=UTC), [(48, 400)])
        await post(datetime(2026, 11, 18, 10, 0, tzinfo=UTC), [(72, 9000)])
        await post(datetime(2026, 11, 30, 10, 0, tzinfo=UTC), [(1, 5000)])
        await post(datetime(2026, 11, 29, 10, 0, tzinfo=UTC), [(10, 0), (26, 600), (30, 9000)])
    finally:
        await conn.close()
    rows, cells = await _run(stack)
    assert rows == 3 and set(cells) == {("age", 1, 10), ("age", 2, 10), ("age", 0, 10)}
    mon, tue, sun = cells[("age", 1, 10)], cells[("age", 2, 10)], cells[("age", 0, 10)]
    assert (mon["metric"], mon["sample_size"], mon["avg_engagement"], mon["optimization_score"]) == (
        "interactions_per_post", 3, 200.0, 100.0)
    assert (tue["sample_size"], tue["avg_engagement"], tue["optimization_score"]) == (3, 200.0, 100.0)
    assert (sun["sample_size"], sun["avg_engagement"], sun["optimization_score"]) == (1, 525.0, None)
