"""style_correlation (issue #25 item 1), by hand.

Four posts, engagement rate from each post's latest snapshot ((likes + shares + comments + saves)
/ views): p1 0.1, p2 0.2, p3 0.3, p4 0.4 (an earlier snapshot of p1 at 0.9 is not its latest).
Tags: `x` on every post (an indicator with no variance: r undefined), `a` on p3 and p4.
r(a) = Pearson of (0.1, 0.2, 0.3, 0.4) with (0, 0, 1, 1): deviations of the rates -0.15, -0.05,
0.05, 0.15, of the indicator -0.5, -0.5, 0.5, 0.5; covariance sum 0.075 + 0.025 + 0.025 + 0.075 =
0.2; sum of squares 0.05 and 1; r = 0.2 / sqrt(0.05 x 1) = 0.2 / 0.2236068 = 0.894427191.
Analyses: p1 and p2 [x] -> NULL (their only tag undefined; it used to be +1.0), p3 and p4 [x, a]
-> 0.894427191 (the mean of their defined tags: `a` alone).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.jobs.oracles import Feed, event, post, scrape

T = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
POSTS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-styles-{name}")) for name in ("p1", "p2", "p3", "p4")}
TAGS = {"p1": ["x"], "p2": ["x"], "p3": ["x", "a"], "p4": ["x", "a"]}
R_A = 0.2 / (0.05 ** 0.5)


def feed(ws: str) -> Feed:
    f = Feed()
    for i, name in enumerate(POSTS, start=1):
        cid = POSTS[name]
        f.content.append(post(ws, cid, T - timedelta(days=1)))
        f.engagement.append(scrape(ws, cid, T, views=1000, likes=100 * i))
        if name == "p1":
            f.engagement.append(scrape(ws, cid, T - timedelta(hours=1), views=100, likes=90))
        f.learning.append(event(ws, "style_analysis", T, {"content_id": cid, "style_tags": TAGS[name]}))
    f.wait = {"content": 4, "content_performance_metrics": 5, "content_style_analysis": 4}
    return f


async def check(conn, ws: str, run) -> None:
    r = await run("style_correlation")
    assert r.status == "succeeded", r.error
    got = {str(c): v for c, v in await conn.fetch(
        "SELECT content_id, engagement_correlation FROM content_style_analysis WHERE workspace_id = $1", uuid.UUID(ws))}
    assert got[POSTS["p1"]] is None, got  # `x` alone: on every post, no correlation (was +1.0)
    assert got[POSTS["p2"]] is None
    assert got[POSTS["p3"]] == pytest.approx(R_A) and got[POSTS["p4"]] == pytest.approx(R_A)
    assert R_A == pytest.approx(0.894427191)
