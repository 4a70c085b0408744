"""The daily and weekly aggregates (analytics_aggregated_daily/_weekly, refreshed by the
refresh_materialized_views job) and the `engagement` report source (issue #25 item 3), by hand.

Days 1 to 3 are last week's Monday to Wednesday (noon UTC): inside the views' 90- and 365-day
windows, one week. Likes are views / 10 in every snapshot.

tiktok, the issue's fixture (the trap: the scrape cadence): post A scraped on days 1 and 3 (1,000,
1,500 views), post B daily (200, 300, 400). Gained (a post's first snapshot gains 0):
    day 1: 0 (both first snapshots; no views gained: engagement_rate NULL), 2 posts
    day 2: 300 - 200 = 100 (B), 10 likes, 1 post
    day 3: (1,500 - 1,000) + (400 - 300) = 500 + 100 = 600, 50 + 10 = 60 likes, 2 posts
    week:  0 + 100 + 600 = 700 views, 70 likes, 2 posts, 70 / 700 = 0.1
Summing each post's latest cumulative snapshot (before the fix) gave 1,200 / 300 / 1,900 and 1,900.

instagram (the trap: the first scrape of an old post): post O published 60 days before day 1 and
first scraped on day 2 with 50,000 views (5,000 likes): that snapshot gains 0, not its lifetime;
day 3 50,600 views: 600 gained, 60 likes. Week: 600 views, 60 likes, 1 post. (Before: 50,000 on
day 2, 50,600 on day 3 and for the week.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from db.reports import query
from schemas.reports import ReportQuery
from tests.e2e.jobs.oracles import Feed, post, scrape

TODAY = datetime.now(UTC).date()
MONDAY = TODAY - timedelta(days=TODAY.weekday() + 7)  # last week's
POSTS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-aggregates-{name}")) for name in ("A", "B", "O")}


def day(n: int) -> date:
    return MONDAY + timedelta(days=n - 1)


def noon(n: int) -> datetime:
    return datetime.combine(day(n), time(12), UTC)


#: (post, platform, day, views); likes = views / 10
SNAPSHOTS = [("A", "tiktok", 1, 1000), ("A", "tiktok", 3, 1500),
             ("B", "tiktok", 1, 200), ("B", "tiktok", 2, 300), ("B", "tiktok", 3, 400),
             ("O", "instagram", 2, 50_000), ("O", "instagram", 3, 50_600)]

_COLS = "content_count, views, likes, shares, comments, saves, engagement_rate"


def feed(ws: str) -> Feed:
    f = Feed()
    f.content.append(post(ws, POSTS["A"], noon(1) - timedelta(hours=1)))
    f.content.append(post(ws, POSTS["B"], noon(1) - timedelta(hours=1)))
    f.content.append(post(ws, POSTS["O"], noon(1) - timedelta(days=60), platform="instagram", observed=noon(2)))
    for name, platform, n, views in SNAPSHOTS:
        f.engagement.append(scrape(ws, POSTS[name], noon(n), platform=platform, views=views, likes=views // 10))
    f.wait = {"content": 3, "content_performance_metrics": len(SNAPSHOTS)}
    return f


async def check(conn, ws: str, run) -> None:
    r = await run("refresh_materialized_views")
    assert (r.status, r.rows) == ("succeeded", 5), r.error
    w = uuid.UUID(ws)
    daily = [tuple(x) for x in await conn.fetch(
        f"SELECT platform, day, {_COLS} FROM analytics_aggregated_daily WHERE workspace_id = $1 ORDER BY 1, 2", w)]
    assert daily == [("instagram", day(2), 1, 0, 0, 0, 0, 0, None),               # O's first scrape: 0, not 50,000
                     ("instagram", day(3), 1, 600, 60, 0, 0, 0, 0.1),              # 50,600 - 50,000
                     ("tiktok", day(1), 2, 0, 0, 0, 0, 0, None),                   # was 1,200
                     ("tiktok", day(2), 1, 100, 10, 0, 0, 0, 0.1),                 # was 300
                     ("tiktok", day(3), 2, 500 + 100, 50 + 10, 0, 0, 0, 0.1)], daily  # was 1,900
    weekly = [tuple(x) for x in await conn.fetch(
        f"SELECT platform, week, {_COLS} FROM analytics_aggregated_weekly WHERE workspace_id = $1 ORDER BY 1", w)]
    assert weekly == [("instagram", MONDAY, 1, 600, 60, 0, 0, 0, 0.1),
                      ("tiktok", MONDAY, 2, 0 + 100 + 600, 0 + 10 + 60, 0, 0, 0, 0.1)], weekly  # was 1,900
    # the engagement report source, same definition: by day and platform over days 1 to 3
    q = ReportQuery(source="engagement", metrics=["posts", "views", "likes"], dimensions=["day", "platform"])
    _, rows = await query.fetch(conn, w, q, noon(1) - timedelta(hours=12), noon(3) + timedelta(hours=12))
    assert rows == [(day(1), "tiktok", 2, 0, 0), (day(2), "instagram", 1, 0, 0), (day(2), "tiktok", 1, 100, 10),
                    (day(3), "instagram", 1, 600, 60), (day(3), "tiktok", 2, 600, 60)], rows
