"""detect_trends (issue #25 item 2; review findings 2 and 3), by hand.

A run at T (RECENT_HOURS 6, BASELINE_DAYS 7, RATIO 3, MIN_GAIN 1,000, MIN_BASELINE_GAIN 100).
A post's interactions at t, C(t): its high-water-mark interactions (likes + shares + comments +
saves, each counter's highest so far) interpolated linearly between its snapshot at or before t
and its first after t; before its first snapshot, the first's value (the first snapshot gains 0);
after its last, the last's. A window (t0, t1] gains C(t1) - C(t0). Recent: (T - 6 h, T];
baseline: the same 6 hours of each of the 7 days before (42 h).

* #backlog (the onboarding trap): 10 posts published 60 days ago, first scraped at T - 1 h with
  500 likes each, then at T with 510: C(T - 6 h) = 500 (the first value), C(T) = 510: recent
  10 x (510 - 500) = 100 < 1,000 -> no trend. (It was detected: interactions_at() read
  10 x 510 = 5,100 as gained recently, over a zero baseline.)
* #quiet (the near-zero baseline): snapshots 0 at T - 8 d and T - 3 d - 6 h, 1 at T - 3 d and
  T - 6 h, 1,501 at T, all on window bounds: the window of day 3 gains 1 - 0 = 1 (1/42 per
  hour), the recent one 1,501 - 1 = 1,500 (250/h): 10,500 x its baseline, reported as
  +1,049,900 %. Its baseline gain 1 < 100: status 'new', engagement_impact NULL.
* #Steady (a genuine rise; lower-cased to #steady): snapshots on every window bound, C flat
  between a window's end and the next day's window start: 60 in each baseline window (420 in
  42 h = 10/h), 1,200 in the last 6 h (200/h): 'rising', 100 x (200 / 10 - 1) = +1,900 %.
* #evening (a daily rhythm): 1,200 in each baseline window and 1,200 recently: 1 x -> no trend.
* style fast-cut, on the #Steady post and on one #backlog post: recent 1,200 + 10 = 1,210 (201.67
  per hour), baseline 420 + 0 (10/h): 100 x (1,210 / 60 - 1) = +1,916.67 %, 2 posts. (It was
  100 x ((1,200 + 510) / 60 - 1) = +2,750 %.)
* #sale (finding 2): one post tagged #Sale and #sale, 0 at T - 6 h (its first snapshot), 600 at
  T: 1 post, recent 600 < 1,000 -> no trend. (It counted twice: 2 posts, 1,200, detected 'new'.)
* #cadence (finding 3): 10 posts each gaining a steady 50 interactions an hour, scraped every 3
  days at T's hour (T - 12 d, - 9 d, - 6 d, - 3 d, T: +3,600 each time). C rises 50 an hour per
  post: every window gains 10 x 50 x 6 = 3,000: recent 3,000 (500/h), baseline 7 x 3,000 =
  21,000 (500/h): 1 x -> no trend. (Each scrape's 3,600 landed in the window holding it: recent
  36,000, baseline the scrapes of T - 3 d and T - 6 d, 72,000 (1,714/h): 'rising', +250 %.)

trend_analysis_view (seed 001, the average over engagement_impact): hashtag 2 trends averaging
1,900 % (the new one counts, it is not averaged: it was (1,049,900 + 1,900) / 2 = 525,900 %),
style 1 trend at 1,916.67 %.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.jobs.oracles import Feed, event, post, scrape

T = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def _id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-trends-{name}"))


BACKLOG = [_id(f"backlog-{i}") for i in range(10)]
QUIET, STEADY, EVENING, SALE = _id("quiet"), _id("steady"), _id("evening"), _id("sale")
CADENCE = [_id(f"cadence-{i}") for i in range(10)]


def _daily(per_window: int, recent: int) -> list[tuple[datetime, int]]:
    """(time, interactions): 0 at T - 8 days, `per_window` more in (T - d days - 6 h, T - d days] for
    d = 7..1, `recent` more in (T - 6 h, T]"""
    points, v = [(T - 8 * D, 0)], 0
    for d in range(7, 0, -1):
        points.append((T - d * D - 6 * H, v))
        v += per_window
        points.append((T - d * D, v))
    return points + [(T - 6 * H, v), (T, v + recent)]


def feed(ws: str) -> Feed:
    f = Feed()
    for cid in BACKLOG:
        f.content.append(post(ws, cid, T - 60 * D, hashtags=["#backlog"]))
        f.engagement += [scrape(ws, cid, T - H, views=9000, likes=500), scrape(ws, cid, T, views=9100, likes=510)]
    f.content.append(post(ws, QUIET, T - 8 * D, hashtags=["#quiet"]))
    f.engagement += [scrape(ws, QUIET, T - 8 * D, views=10), scrape(ws, QUIET, T - 3 * D - 6 * H, views=20),
                     scrape(ws, QUIET, T - 3 * D, views=30, likes=1), scrape(ws, QUIET, T - 6 * H, views=40, likes=1),
                     # 1 + 1,500 interactions, counted over all four counters
                     scrape(ws, QUIET, T, views=50_000, likes=1001, shares=200, comments=200, saves=100)]
    f.content.append(post(ws, STEADY, T - 8 * D, hashtags=["#Steady"]))
    f.engagement += [scrape(ws, STEADY, at, views=100_000, likes=v) for at, v in _daily(60, 1200)]
    f.content.append(post(ws, EVENING, T - 8 * D, hashtags=["#evening"]))
    f.engagement += [scrape(ws, EVENING, at, views=100_000, comments=v) for at, v in _daily(1200, 1200)]
    f.content.append(post(ws, SALE, T - 8 * D, hashtags=["#Sale", "#sale"]))
    f.engagement += [scrape(ws, SALE, T - 6 * H, views=100), scrape(ws, SALE, T, views=9000, likes=600)]
    for cid in CADENCE:
        f.content.append(post(ws, cid, T - 20 * D, hashtags=["#cadence"]))
        f.engagement += [scrape(ws, cid, T - 3 * k * D, views=1000 * (4 - k), likes=50 * 72 * (4 - k))
                         for k in range(4, -1, -1)]
    for cid in (STEADY, BACKLOG[0]):
        f.learning.append(event(ws, "style_analysis", T - 2 * D, {"content_id": cid, "style_tags": ["fast-cut"]}))
    f.wait = {"content": 13 + 1 + 10, "content_performance_metrics": 20 + 5 + 17 + 17 + 2 + 10 * 5,
              "content_style_analysis": 2}
    return f


async def check(conn, ws: str, run) -> None:
    r = await run("detect_trends", period=(T - timedelta(minutes=30), T))
    assert r.status == "succeeded", r.error
    w = uuid.UUID(ws)
    got = {(t["trend_type"], t["trend_key"]): dict(t) for t in await conn.fetch(
        "SELECT * FROM trend_analysis WHERE workspace_id = $1 AND source = 'detected'", w)}
    # no #backlog (was detected, recent_gain 5,100), no #evening, no #sale (was 2 posts, 1,200), no
    # #cadence (was +250 %)
    assert sorted(got) == [("hashtag", "#quiet"), ("hashtag", "#steady"), ("style", "fast-cut")], sorted(got)
    for t in got.values():
        assert (t["platform"], t["start_time"], t["end_time"]) == ("tiktok", T - 6 * H, T)
    quiet, steady, style = got["hashtag", "#quiet"], got["hashtag", "#steady"], got["style", "fast-cut"]
    assert quiet["engagement_impact"] is None  # was +1,049,900 %
    assert quiet["trend_data"] == {"status": "new", "posts": 1, "recent_gain": 1500, "baseline_gain": 1,
                                   "recent_per_hour": 1500 / 6, "baseline_per_hour": 1 / 42,
                                   "recent_hours": 6, "baseline_days": 7}
    assert steady["engagement_impact"] == pytest.approx(100 * (1200 / 6 / (420 / 42) - 1)) == pytest.approx(1900)
    assert {k: steady["trend_data"][k] for k in ("status", "posts", "recent_gain", "baseline_gain")} == {
        "status": "rising", "posts": 1, "recent_gain": 1200, "baseline_gain": 420}
    assert style["engagement_impact"] == pytest.approx(100 * ((1200 + 10) / 6 / (420 / 42) - 1))
    assert style["engagement_impact"] == pytest.approx(1916.6666667)
    assert {k: style["trend_data"][k] for k in ("status", "posts", "recent_gain", "baseline_gain")} == {
        "status": "rising", "posts": 2, "recent_gain": 1210, "baseline_gain": 420}
    view = {r["trend_type"]: (r["platform"], r["trend_count"], r["avg_impact"]) for r in await conn.fetch(
        "SELECT * FROM trend_analysis_view WHERE workspace_id = $1", w)}
    assert view == {"hashtag": ("tiktok", 2, pytest.approx(1900)), "style": ("tiktok", 1, pytest.approx(1916.6666667))}
