"""style_correlation on crafted posts (real PostgreSQL): Pearson's r per tag, each analysis the
mean of its tags', an analyser's own value kept, a second run changes nothing."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()
T = datetime(2026, 11, 30, tzinfo=UTC)


async def test_engagement_correlation_of_styles(stack):
    conn = await connect(stack.dsn)
    try:
        rates = [0.1, 0.2, 0.3, 0.4]
        tags = [["b"], [], ["a", "b"], ["a"]]
        given = {3: 0.9}  # the analyser of post 4 sent its own value
        rows = []
        for i, (rate, t) in enumerate(zip(rates, tags)):
            cid = uuid.uuid4()
            await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views,
                likes, recorded_at) VALUES ($1, $2, $3, 'tiktok', 1000, $4, $5)""", uuid.uuid4(), W, cid, int(rate * 1000), T)
            rid = uuid.uuid4()
            rows.append(rid)
            await conn.execute("""INSERT INTO content_style_analysis (workspace_id, id, content_id, style_tags,
                engagement_correlation, created_at) VALUES ($1, $2, $3, $4, $5, $6)""", W, rid, cid, t, given.get(i), T)
        r = await JobRunner(stack.dsn, JOBS).run("style_correlation")
        assert (r.status, r.rows) == ("succeeded", 2)  # posts 1 and 3 (post 2 has no tags, post 4 its own value)
        corr_a = statistics.correlation(rates, [0, 0, 1, 1])
        corr_b = statistics.correlation(rates, [1, 0, 1, 0])
        got = {rid: v for rid, v in await conn.fetch(
            "SELECT id, engagement_correlation FROM content_style_analysis")}
        assert got[rows[0]] == pytest.approx(corr_b)
        assert got[rows[2]] == pytest.approx((corr_a + corr_b) / 2)
        assert got[rows[3]] == 0.9 and got[rows[1]] is None
        again = await JobRunner(stack.dsn, JOBS).run("style_correlation")
        assert again.rows == 0  # nothing changed
    finally:
        await conn.close()


async def test_an_undefined_correlation_stays_null(stack):
    """Issue #25 item 1: a tag on every post (or a workspace with one analysed post) has no
    correlation, and its analyses' value stays NULL; it used to be +1.0, because GREATEST/LEAST
    ignore NULLs (greatest(-1, least(1, NULL)) = 1). A row with a defined tag beside it takes the
    mean of its defined tags'. Hand-computed: tag `a` on posts 1 and 3 of rates 0.1, 0.2, 0.3 is
    indicator (1, 0, 1), whose covariance with the rates is (-0.1/3 + 0 + 0.1/3) = 0: r = 0."""
    every, single = uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        rows = {}
        for ws, name, rate, tags in ((every, "p1", 0.1, ["x", "a"]), (every, "p2", 0.2, ["x"]),
                                     (every, "p3", 0.3, ["x", "a"]), (single, "only", 0.5, ["solo"])):
            cid = uuid.uuid4()
            await conn.execute("""INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views,
                likes, recorded_at) VALUES ($1, $2, $3, 'tiktok', 1000, $4, $5)""", uuid.uuid4(), ws, cid, int(rate * 1000), T)
            rows[name] = uuid.uuid4()
            await conn.execute("""INSERT INTO content_style_analysis (workspace_id, id, content_id, style_tags,
                created_at) VALUES ($1, $2, $3, $4, $5)""", ws, rows[name], cid, tags, T)
        r = await JobRunner(stack.dsn, JOBS).run("style_correlation")
        assert (r.status, r.rows) == ("succeeded", 2)  # p1 and p3; p2 and `only` stay NULL
        got = {rid: v for rid, v in await conn.fetch("SELECT id, engagement_correlation FROM content_style_analysis")}
        assert got[rows["p1"]] == pytest.approx(0.0, abs=1e-12) and got[rows["p3"]] == pytest.approx(0.0, abs=1e-12)
        assert got[rows["p2"]] is None and got[rows["only"]] is None
        assert (await JobRunner(stack.dsn, JOBS).run("style_correlation")).rows == 0
    finally:
        await conn.close()
