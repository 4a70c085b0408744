"""benchmarks (issue #25 item 4), by hand.

Period [START, END): the 7 UTC days before yesterday's midnight. Times: B = a day before START,
M = 3 days into the period, L = 2 hours before END, A = 2 hours after END (outside the period).
All on tiktok, in one workspace; snapshots (followers, engagement_rate %, posts_per_week):

own `me`     B 1000 (4.0, 5.0), M 1050 (3.0, 7.0), L 1100 (neither sent), A 5000 (9.0, 1.0)
             -> followers 1100, growth (1100 - 1000) / 1000 = +10 % over B..L = 190 h, x 168 / 190 per
             the period's 168 h (review 3 F6) = 8.842 %, rate 3.0 and posts 7.0 (M's:
             L sent none, A is after the end)
own `solo`   M 700 (2.5, -)  -> followers 700, rate 2.5; one snapshot: no growth (was a 0 % row)
own `stale`  START-60d 1000, L 1100 -> followers 1100; growth NULL: no count within a day of START
             (EDGE_TOLERANCE; review 2 R3: was +10 % "this week", a growth over 67 days)
rival `r1`   B 5000, L 5250 (2.0, 7.0)                     -> 5250, +5 % x 168 / 190, 2.0, 7.0
rival `r2`   B 2000 (1.0, 1.0), L-3h 2300 (9.0, 9.0), L 2400 (5.0, 3.5): L-3h and L are one UTC day,
             whose latest (L) is the day's row               -> 2400, +20 % x 168 / 190, 5.0, 3.5
rival `r3`   M 800 (4.0, 14.0)   one snapshot                -> 800, growth NULL (was 0 %), 4.0, 14.0
rival `r4`   START-3d 900        one snapshot, before START  -> no value of the period (review 2 R3:
             was 900 followers), growth NULL (was 0 %), -, -
Values are the latest recorded in [START, END) (B's rates are before the period); growth's counts are
the latest at or before START and at or before END, each at most 1 day before its edge (B = START - 1 day:
in), the change scaled to the period's length: x (END - START) / (t_end - t_start) = 168 h / 190 h here.

followers, me 1100 vs 5250, 2400, 800: average 8450 / 3, median 2400, count 3, percentile
100 x 1 / 3 (above 800), ratio 1100 / (8450 / 3) = 3300 / 8450; stale 1100: the same;
solo 700: percentile 0, ratio 2100 / 8450. (Before review 2 R3, r4's 900 from before the period
counted: average 9350 / 4 = 2337.5, median 1650, count 4, me percentile 50.)
follower_growth (x k = 168 / 190 each: all spans are B..L), me 10k vs 5k, 20k: average 12.5k, median
12.5k, count 2, percentile 50, ratio 0.8
(before: vs 5, 20, 0, 0: average 6.25, median 2.5, count 4, percentile 75, ratio 1.6); solo: no row
(before: 0 %, percentile 25).
engagement_rate, me 3.0 vs 2.0, 5.0, 4.0 (r4 sent none): average 11 / 3, median 4.0, count 3,
percentile 100 x 1 / 3 (above r1), ratio 3 / (11 / 3) = 9 / 11; solo 2.5: percentile 100 x 1 / 3
(above r1 too), ratio 2.5 / (11 / 3) = 7.5 / 11.
posts_per_week, me 7.0 vs 7.0, 3.5, 14.0: average 24.5 / 3, median 7.0, count 3, percentile
100 x (1 + 0.5 x 1 tie) / 3 = 50, ratio 7 / (24.5 / 3) = 6 / 7; solo sent none: no row.
industry_average NULL on every row: off by default (LEARNSTREAM_INDUSTRY_BENCHMARKS), and on it
would still be NULL: a workspace's own competitors never enter its own figure, which needs 10 accounts
that 2 other workspaces each track (review finding 14).
Rows: me 4 + solo 2 + stale 1 = 7 (before issue #25: followers and follower_growth for each; before
review 2 R3: stale's follower_growth too).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.jobs.oracles import Feed, account

END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
START = END - timedelta(days=7)
B, M, L, A = START - timedelta(days=1), START + timedelta(days=3), END - timedelta(hours=2), END + timedelta(hours=2)


def _snap(ws, cid, at, followers, rate=None, posts=None, relationship="competitor"):
    extra = {k: v for k, v in (("engagement_rate", rate), ("posts_per_week", posts)) if v is not None}
    return account(ws, cid, at, followers, relationship=relationship, **extra)


def feed(ws: str) -> Feed:
    own = [("me", B, 1000, 4.0, 5.0), ("me", M, 1050, 3.0, 7.0), ("me", L, 1100, None, None),
           ("me", A, 5000, 9.0, 1.0), ("solo", M, 700, 2.5, None),
           ("stale", START - timedelta(days=60), 1000, None, None), ("stale", L, 1100, None, None)]
    rivals = [("r1", B, 5000, None, None), ("r1", L, 5250, 2.0, 7.0),
              ("r2", B, 2000, 1.0, 1.0), ("r2", L, 2400, 5.0, 3.5), ("r2", L - timedelta(hours=3), 2300, 9.0, 9.0),
              ("r3", M, 800, 4.0, 14.0), ("r4", START - timedelta(days=3), 900, None, None)]
    f = Feed(accounts=[_snap(ws, *s, relationship="own") for s in own] + [_snap(ws, *s) for s in rivals])
    f.wait = {"audience_growth": 7, "competitor_profiles": 4, "competitor_metrics": 6}
    return f


async def check(conn, ws: str, run) -> None:
    # r2's day holds its latest snapshot, whichever arrived first
    assert await conn.fetchval("""SELECT followers FROM competitor_metrics WHERE workspace_id = $1
        AND competitor_id = 'r2' AND recorded_date = $2""", uuid.UUID(ws), L.date()) == 2400
    r = await run("benchmarks", period=(START, END))
    assert r.status == "succeeded", r.error
    rows = {(x["connector_id"], x["metric"]): x for x in await conn.fetch(
        "SELECT * FROM benchmark_comparisons WHERE workspace_id = $1", uuid.UUID(ws))}
    assert sorted(rows) == [("me", "engagement_rate"), ("me", "follower_growth"), ("me", "followers"),
                            ("me", "posts_per_week"), ("solo", "engagement_rate"), ("solo", "followers"),
                            ("stale", "followers")]

    def row(cid, metric):
        x = rows[cid, metric]
        return (x["user_value"], x["competitor_average"], x["competitor_median"], x["competitor_count"],
                x["percentile"], x["ratio"])

    # r4's only count is 3 days before the period: out (was 2337.5, 1650, 4, 50, 1100 / 2337.5)
    assert row("me", "followers") == pytest.approx((1100, 8450 / 3, 2400, 3, 100 / 3, 3300 / 8450))
    assert row("stale", "followers") == pytest.approx((1100, 8450 / 3, 2400, 3, 100 / 3, 3300 / 8450))
    assert row("solo", "followers") == pytest.approx((700, 8450 / 3, 2400, 3, 0, 2100 / 8450))
    k = 168 / 190  # review 3 F6: growth per the period's 168 h, every span here B..L = 190 h (was x 1)
    assert row("me", "follower_growth") == pytest.approx((10 * k, 12.5 * k, 12.5 * k, 2, 50, 0.8))  # was 6.25, 2.5, 4, 75, 1.6
    assert row("me", "engagement_rate") == pytest.approx((3, 11 / 3, 4, 3, 100 / 3, 9 / 11))
    assert row("solo", "engagement_rate") == pytest.approx((2.5, 11 / 3, 4, 3, 100 / 3, 7.5 / 11))
    assert row("me", "posts_per_week") == pytest.approx((7, 24.5 / 3, 7, 3, 50, 6 / 7))
    assert all(x["industry_average"] is None for x in rows.values())
    assert {(x["period_start"], x["period_end"]) for x in rows.values()} == {(START.date(), END.date())}
