"""Values at the edge of their types, through the topics (issue #25 review items 5, 6): the jobs
must succeed for every workspace (the other oracles' workspaces share the database and run after
or before this one) and give this workspace's figures exactly or NULL. Before the fixes each of
these jobs failed for every workspace ("bigint out of range", "value out of range: overflow").

Post P (tiktok, account `me`, UTC) published on last week's Monday 12:00 UTC, scraped at 13:00
(0 views, its first snapshot: gains 0) and on Tuesday 13:00: 10 views, likes = shares = 5e18 (a
Count may be up to 2^63 - 1 = 9.2e18).
  * analytics_aggregated_daily, Tuesday: views gained 10, likes and shares gained 5e18 each ->
    bigint holds them: 5,000,000,000,000,000,000; interactions 5e18 + 5e18 = 1e19 > 2^63 - 1,
    held in numeric: engagement_rate 1e19 / 10 = 1e18. (Before: the refresh failed.)
  * platform_performance_summary: 1 post, total_views 10, avg_engagement_rate 1e19 / 10 = 1e18.
  * optimal_posting_times: one cell, Monday 12h UTC, 1 post, avg_engagement 1e18, unranked
    (under MIN_POSTS). (Before: "bigint out of range".)
Benchmarks over the 7 days before yesterday's midnight, snapshots 3 days into it: own `me` 1,000
followers, engagement_rate 1.0; competitors `r1`, `r2` 10 followers, engagement_rate 1.7e308 each
(a Rate is unbounded): their average 1.7e308 (the double sum 3.4e308 overflows; taken in numeric),
median 1.7e308, count 2, percentile 0, ratio 1 / 1.7e308 = 5.9e-309. followers: 1000 vs 10, 10:
average 10, percentile 100, ratio 100. (Before: the job failed for every workspace.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest

from streams.jobs.runner import parse_period
from tests.e2e.jobs.oracles import Feed, account, post, scrape

BIG, HUGE = 5 * 10**18, 1.7e308
TODAY = datetime.now(UTC).date()
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 7)  # last week's
PUBLISHED = datetime.combine(MONDAY, time(12), UTC)
P = str(uuid.uuid4())
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
START = END - timedelta(days=7)
MID = START + timedelta(days=3)


def feed(ws: str) -> Feed:
    f = Feed(content=[post(ws, P, PUBLISHED)],
             engagement=[scrape(ws, P, PUBLISHED + timedelta(hours=1)),
                         scrape(ws, P, PUBLISHED + timedelta(hours=25), views=10, likes=BIG, shares=BIG)],
             accounts=[account(ws, "me", MID, 1000, engagement_rate=1.0),
                       account(ws, "r1", MID, 10, relationship="competitor", engagement_rate=HUGE),
                       account(ws, "r2", MID, 10, relationship="competitor", engagement_rate=HUGE)])
    f.wait = {"content": 1, "content_performance_metrics": 2, "audience_growth": 1, "competitor_metrics": 2}
    return f


async def check(conn, ws: str, run) -> None:
    w = uuid.UUID(ws)
    r = await run("refresh_materialized_views")
    assert r.status == "succeeded", r.error
    daily = await conn.fetch("""SELECT day, content_count, views, likes, shares, engagement_rate
        FROM analytics_aggregated_daily WHERE workspace_id = $1 ORDER BY day""", w)
    assert [tuple(x) for x in daily] == [(MONDAY, 1, 0, 0, 0, None),
                                         (MONDAY + timedelta(days=1), 1, 10, BIG, BIG, 1e18)]
    summary = await conn.fetchrow("""SELECT content_count, total_views, avg_engagement_rate
        FROM platform_performance_summary WHERE workspace_id = $1""", w)
    assert tuple(summary) == (1, 10, 1e18)

    r = await run("optimal_posting_times")
    assert r.status == "succeeded", r.error
    cells = await conn.fetch("""SELECT day_of_week, hour_of_day, sample_size, avg_engagement, optimization_score
        FROM optimal_posting_times WHERE workspace_id = $1""", w)
    assert [tuple(x) for x in cells] == [(1, 12, 1, 1e18, None)]

    r = await run("benchmarks", period=parse_period(f"{START.isoformat()}/{END.isoformat()}"))
    assert r.status == "succeeded", r.error
    rows = {x["metric"]: x for x in await conn.fetch(
        "SELECT * FROM benchmark_comparisons WHERE workspace_id = $1 AND period_end = $2", w, END.date())}
    er = rows["engagement_rate"]
    assert (er["user_value"], er["competitor_average"], er["competitor_median"], er["competitor_count"],
            er["percentile"]) == (1.0, HUGE, HUGE, 2, 0.0)
    assert er["ratio"] == pytest.approx(1 / HUGE, rel=1e-12, abs=0)
    fo = rows["followers"]
    assert (fo["user_value"], fo["competitor_average"], fo["percentile"], fo["ratio"]) == (1000.0, 10.0, 100.0, 100.0)
