"""optimal_posting_times (issue #25 item 7; zones and DST), by hand. Run at AT = 1 Nov 2026 00:00
UTC: the window is the 90 days before, so every post below is in it. Each post is measured by its
counts at age 24 h (review 2 R7; before: its latest snapshot): each is scraped at exactly 24 h.

Account `be` (Europe/Berlin; CEST = UTC+2 until 25 Oct 2026 01:00 UTC, then CET = UTC+1):
  * 25 Oct 2026, the last Sunday of October: three posts at 00:10/00:20/00:30 UTC (02:xx CEST)
    and three at 01:10/01:20/01:30 UTC (02:xx CET): all Sunday 02h, n = 6, each 100 / 1000 =
    10 % (one had 90 % in a snapshot at 50 minutes: its counts at 24 h count).
  * Monday 19 Oct 17:00 UTC = 19:00 CEST: one lucky post at 500 / 1000 = 50 %.
  * Saturday 31 Oct 15:00 UTC, 9 h old at AT, scraped at 1 h at 90 %: younger than 24 h, not
    measured, no cell (before review 2 R7: a Saturday 16h cell, 1 post at 0.9).
  Before: shrunk means (0.5 + 10 x 1.1/7) / 11 = 0.1883 against (0.6 + 10 x 1.1/7) / 16 = 0.1357,
  the lucky post scored 100 and the six 72.1. After: the lucky cell has 1 < 3 posts (MIN_POSTS):
  stored, score NULL, confidence 1/11; Sunday 02h is the one ranked cell: 100.
Account `in` (Asia/Kolkata, UTC+05:30):
  * Monday 26 Oct 10:00 UTC = 15:30 IST: three posts at 20 %, Monday 15h; a fourth there has 0
    views (50 likes) and is left out of the rate (the account has views).
  * Monday 26 Oct 19:00 UTC = Tuesday 00:30 IST: three posts at 5 %, Tuesday 00h.
  account mean (0.6 + 0.15) / 6 = 0.125, deviations +-0.075, sd = sqrt(6 x 0.075^2 / 5) =
  0.0821584; shrunk (0.6 + 1.25) / 13 = 0.1423077 and (0.15 + 1.25) / 13 = 0.1076923; lower bound
  minus 1.645 x 0.0821584 / sqrt(13) = 0.0374840: 0.1048237 and 0.0702083; scores 100 and
  100 x 0.0702083 / 0.1048237 = 66.978.
Account `nv` (linkedin, no zone: UTC; no post reports views): Wednesday 28 Oct 12:xx UTC, three
  posts with 7, 8, 9 likes: interactions per post, mean 8, score 100 (before: no row at all).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from math import sqrt

import pytest

from streams.jobs.runner import parse_period
from tests.e2e.jobs.oracles import Feed, account, post, scrape

AT = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = "2026-10-31T00:00:00+00:00/2026-11-01T00:00:00+00:00"


def _id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-posting-times-{name}"))


# (name, connector, platform, published, views, likes)
POSTS = [
    *[(f"be-dst-{i}", "be", "tiktok", datetime(2026, 10, 25, h, 10 * m, tzinfo=UTC), 1000, 100)
      for i, (h, m) in enumerate([(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)])],
    ("be-lucky", "be", "tiktok", datetime(2026, 10, 19, 17, 0, tzinfo=UTC), 1000, 500),
    *[(f"in-15-{i}", "in", "instagram", datetime(2026, 10, 26, 10, i, tzinfo=UTC), 1000, 200) for i in range(3)],
    ("in-15-noviews", "in", "instagram", datetime(2026, 10, 26, 10, 30, tzinfo=UTC), 0, 50),
    *[(f"in-00-{i}", "in", "instagram", datetime(2026, 10, 26, 19, i, tzinfo=UTC), 1000, 50) for i in range(3)],
    *[(f"nv-{likes}", "nv", "linkedin", datetime(2026, 10, 28, 12, likes, tzinfo=UTC), 0, likes) for likes in (7, 8, 9)],
]


def feed(ws: str) -> Feed:
    f = Feed()
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    f.accounts += [account(ws, "be", t0, 100, timezone="Europe/Berlin"),
                   account(ws, "in", t0, 100, platform="instagram", timezone="Asia/Kolkata"),
                   account(ws, "nv", t0, 100, platform="linkedin")]
    for name, connector, platform, published, views, likes in POSTS:
        f.content.append(post(ws, _id(name), published, platform=platform, connector=connector))
        f.engagement.append(scrape(ws, _id(name), published + timedelta(days=1), platform=platform,
                                   connector=connector, views=views, likes=likes))
    # an earlier snapshot of a Sunday post at 90 %: before its age of 24 h, does not count
    f.engagement.append(scrape(ws, _id("be-dst-0"), datetime(2026, 10, 25, 1, 0, tzinfo=UTC), views=10, likes=9,
                               connector="be"))
    # a post 9 h old at AT, 90 % at 1 h: too young to measure
    young = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
    f.content.append(post(ws, _id("be-young"), young, connector="be"))
    f.engagement.append(scrape(ws, _id("be-young"), young + timedelta(hours=1), views=1000, likes=900, connector="be"))
    f.wait = {"connectors": 3, "content": len(POSTS) + 1, "content_performance_metrics": len(POSTS) + 2}
    return f


async def check(conn, ws: str, run) -> None:
    r = await run("optimal_posting_times", period=parse_period(PERIOD))
    assert r.status == "succeeded", r.error
    rows = await conn.fetch(
        """SELECT connector_id, platform, timezone, day_of_week, hour_of_day, metric, sample_size, avg_engagement,
                  confidence, optimization_score
           FROM optimal_posting_times WHERE workspace_id = $1 ORDER BY connector_id, day_of_week, hour_of_day""",
        uuid.UUID(ws))
    got = {(x["connector_id"], x["day_of_week"], x["hour_of_day"]): x for x in rows}
    assert set(got) == {("be", 0, 2), ("be", 1, 19), ("in", 1, 15), ("in", 2, 0), ("nv", 3, 12)}

    def row(key):
        x = got[key]
        return x["platform"], x["timezone"], x["metric"], x["sample_size"]

    assert row(("be", 0, 2)) == ("tiktok", "Europe/Berlin", "engagement_rate", 6)  # both 02h of 25 Oct
    assert got[("be", 0, 2)]["avg_engagement"] == pytest.approx(0.1)
    assert got[("be", 0, 2)]["optimization_score"] == 100.0
    assert row(("be", 1, 19)) == ("tiktok", "Europe/Berlin", "engagement_rate", 1)  # the lucky post
    assert (got[("be", 1, 19)]["avg_engagement"], got[("be", 1, 19)]["optimization_score"]) == (0.5, None)
    assert got[("be", 1, 19)]["confidence"] == pytest.approx(1 / 11)
    # before: the lucky post's shrunk mean beat the six's, it scored 100 and they 72.1
    acct = (0.5 + 6 * 0.1) / 7
    assert round(100 * ((0.6 + 10 * acct) / 16) / ((0.5 + 10 * acct) / 11), 1) == 72.1

    assert row(("in", 1, 15)) == ("instagram", "Asia/Kolkata", "engagement_rate", 3)  # the 0-view post left out
    assert row(("in", 2, 0)) == ("instagram", "Asia/Kolkata", "engagement_rate", 3)   # 19:00 UTC = 00:30 Tuesday
    sd = sqrt(6 * 0.075 ** 2 / 5)
    lower_15 = (0.6 + 10 * 0.125) / 13 - 1.645 * sd / sqrt(13)
    lower_00 = (0.15 + 10 * 0.125) / 13 - 1.645 * sd / sqrt(13)
    assert (round(sd, 7), round(lower_15, 7), round(lower_00, 7)) == (0.0821584, 0.1048237, 0.0702083)
    assert got[("in", 1, 15)]["avg_engagement"] == pytest.approx(0.2)
    assert got[("in", 1, 15)]["optimization_score"] == 100.0
    assert got[("in", 2, 0)]["optimization_score"] == pytest.approx(100 * lower_00 / lower_15)
    assert round(got[("in", 2, 0)]["optimization_score"], 3) == 66.978

    assert row(("nv", 3, 12)) == ("linkedin", "UTC", "interactions_per_post", 3)
    assert (got[("nv", 3, 12)]["avg_engagement"], got[("nv", 3, 12)]["optimization_score"]) == (8.0, 100.0)
