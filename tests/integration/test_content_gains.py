"""The one definition of "gained" (migration 0028, issue #25): content_gains and
interactions_gained() against hand-computed gains, high-water marks as the window stage keeps them
(streams/windows/state.py) and db/rollups.py recomputes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from tests.integration.access.logins import member_logins

pytestmark = pytest.mark.services

T = datetime(2026, 11, 2, 12, tzinfo=UTC)


async def test_gains_over_high_water_marks(stack):
    """Likes of one post: 100 (first: 0), 130 (+30), 80 (a bad scrape: 0), 150 (+20 over the mark
    130, not +70 over 80), 150 (0); views 1,000, 1,300, 1,250, 1,400, 1,400 -> 0, 300, 0, 100, 0.
    Shares appear at the fourth snapshot (+5). Interactions gained in (T+1h, T+3h]: the snapshots at
    T+2h (0) and T+3h (20 + 5) -> 25; in (T-1h, T]: the first snapshot alone -> 0; in (T, T+4h]:
    30 + 0 + 25 + 0 = 55; in (T+3h, T+9h]: 0 (the last snapshot is at the marks)."""
    ws, post = uuid.uuid4(), uuid.uuid4()
    rows = [(0, 1000, 100, 0), (1, 1300, 130, 0), (2, 1250, 80, 0), (3, 1400, 150, 5), (4, 1400, 150, 5)]
    conn = await connect(stack.dsn)
    try:
        for h, views, likes, shares in rows:
            await conn.execute(
                """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes, shares,
                       recorded_at) VALUES ($1, $2, $3, 'tiktok', $4, $5, $6, $7)""",
                uuid.uuid4(), ws, post, views, likes, shares, T + timedelta(hours=h))
        got = [tuple(r) for r in await conn.fetch(
            """SELECT views_gained, likes_gained, shares_gained, interactions_gained, first_snapshot
               FROM content_gains WHERE workspace_id = $1 ORDER BY recorded_at""", ws)]
        assert got == [(0, 0, 0, 0, True), (300, 30, 0, 30, False), (0, 0, 0, 0, False), (100, 20, 5, 25, False),
                       (0, 0, 0, 0, False)]

        async def gained(a: float, b: float) -> int:
            return await conn.fetchval("SELECT interactions_gained($1, $2, $3, $4)", ws, post,
                                       T + timedelta(hours=a), T + timedelta(hours=b))

        assert [await gained(1, 3), await gained(-1, 0), await gained(0, 4), await gained(3, 9)] == [25, 0, 55, 0]
        assert await gained(-5, -1) == 0  # no snapshot at all
    finally:
        await conn.close()


async def test_interactions_gained_is_not_public(stack):
    """EXECUTE on interactions_gained() was PUBLIC's (CREATE FUNCTION's default; review finding 17):
    revoked by 0036, kept for learnstream_service."""
    conn = await connect(stack.dsn)
    try:
        fn = "interactions_gained(uuid, uuid, timestamptz, timestamptz)"
        assert await conn.fetchval("SELECT has_function_privilege('public', $1, 'EXECUTE')", fn) is False
        assert await conn.fetchval("SELECT has_function_privilege('learnstream_service', $1, 'EXECUTE')", fn) is True
    finally:
        await conn.close()


_INSERT = """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes, shares,
                 recorded_at) VALUES ($1, $2, $3, 'tiktok', $4, $5, $6, $7)"""
_COLUMNS = ("workspace_id, content_id, platform, connector_id, recorded_at, id, views_gained, likes_gained, "
            "shares_gained, comments_gained, saves_gained, interactions_gained, first_snapshot, reports_views")


async def test_content_gains_between_is_content_gains_of_the_period(stack):
    """Migration 0040, review finding 16: content_gains_between(ws, t0, t1) is the content_gains rows
    recorded in [t0, t1), computed from those and one high-water-mark row per post before t0.
    Post P: views 1,000 (T), 1,300 (T+1h), 1,250 (T+2h, a bad scrape), 1,400 (T+3h); likes 100, 130,
    80, 150. Over [T, T+4h): views 0 (first), 300, 0, 100 (over the mark 1,300, not 150 over 1,250).
    Over [T+30min, T+4h): T's snapshot is the base row (views 1,000, likes 100): 300, 0, 100; likes
    30, 0, 20; no row is a first snapshot. Over [T+2h, T+4h): the base row holds the marks 1,300 / 130
    (maxima before t0, not the latest 1,000 / 100): 0, 100 and likes 0, 20. Post Q is first seen at T+3h
    (views 50: 0, first). Another workspace's post in the same hours does not appear."""
    ws, other, p, q = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        for h, views, likes in ((0, 1000, 100), (1, 1300, 130), (2, 1250, 80), (3, 1400, 150)):
            await conn.execute(_INSERT, uuid.uuid4(), ws, p, views, likes, 0, T + timedelta(hours=h))
            await conn.execute(_INSERT, uuid.uuid4(), other, uuid.uuid4(), 7, 7, 7, T + timedelta(hours=h))
        await conn.execute(_INSERT, uuid.uuid4(), ws, q, 50, 5, 0, T + timedelta(hours=3))

        async def between(a: float, b: float) -> list[tuple]:
            return [tuple(r) for r in await conn.fetch(
                """SELECT content_id = $4, views_gained, likes_gained, interactions_gained, first_snapshot
                   FROM content_gains_between($1, $2, $3) ORDER BY recorded_at, content_id = $4 DESC""",
                ws, T + timedelta(hours=a), T + timedelta(hours=b), p)]

        assert await between(0, 4) == [(True, 0, 0, 0, True), (True, 1300 - 1000, 130 - 100, 30, False),
                                        (True, 0, 0, 0, False), (True, 1400 - 1300, 150 - 130, 20, False),
                                        (False, 0, 0, 0, True)]
        assert await between(0.5, 4) == [(True, 300, 30, 30, False), (True, 0, 0, 0, False),
                                          (True, 100, 20, 20, False), (False, 0, 0, 0, True)]
        assert await between(2, 4) == [(True, 0, 0, 0, False), (True, 1400 - 1300, 150 - 130, 20, False),
                                        (False, 0, 0, 0, True)]
        assert await between(3, 3) == [] and await between(4, 9) == []  # [t0, t1): T+3h is not in [T+3h, T+3h)
        # every column equals content_gains' row, for every range bounded by the snapshots and between
        for a in (-1, 0, 0.5, 1, 2, 2.5, 3):
            for b in (a + 0.5, a + 1, 9):
                t0, t1 = T + timedelta(hours=a), T + timedelta(hours=b)
                assert [tuple(r) for r in await conn.fetch(
                    f"SELECT {_COLUMNS} FROM content_gains_between($1, $2, $3) ORDER BY recorded_at, id", ws, t0, t1)
                ] == [tuple(r) for r in await conn.fetch(
                    f"""SELECT {_COLUMNS} FROM content_gains WHERE workspace_id = $1 AND recorded_at >= $2
                        AND recorded_at < $3 ORDER BY recorded_at, id""", ws, t0, t1)], (a, b)
    finally:
        await conn.close()


async def test_a_member_sees_only_its_workspace_through_content_gains_between(stack):
    """The function is security invoker: row-level security filters what a member's login reads,
    whatever workspace it names; PUBLIC cannot execute it."""
    async with member_logins(stack, [("viewer", 1, "viewer")]) as (owner, w1, w2, logins):
        for ws, views in ((w1, (10, 25)), (w2, (100, 400))):
            post = uuid.uuid4()
            for h, v in enumerate(views):
                await owner.execute(_INSERT, uuid.uuid4(), ws, post, v, 0, 0, T + timedelta(hours=h))
        member = await connect(logins["viewer"][1])
        try:
            sql = "SELECT views_gained FROM content_gains_between($1, $2, $3) ORDER BY recorded_at"
            t0, t1 = T - timedelta(hours=1), T + timedelta(hours=5)
            assert [r[0] for r in await member.fetch(sql, w1, t0, t1)] == [0, 25 - 10]
            assert await member.fetch(sql, w2, t0, t1) == []  # w2 has rows (below), not for this login
            assert [r[0] for r in await owner.fetch(sql, w2, t0, t1)] == [0, 400 - 100]
        finally:
            await member.close()
        assert not await owner.fetchval("SELECT has_function_privilege('public', "
                                        "'content_gains_between(uuid, timestamptz, timestamptz)', 'EXECUTE')")


async def test_a_snapshot_reports_views_from_its_posts_first_view_on(stack):
    """Migration 0047, review 2 R5: reports_views (the interactions an engagement rate counts) is
    true when the post's views at the snapshot or an earlier one are above 0. Post P: views 0, 0,
    500, 0 (a bad scrape: P still reports views) -> false, false, true, true; post N (a platform
    without views) 0 throughout -> false. content_gains_between gives the same from its base row:
    over [T+3h, T+4h) P's only snapshot has 0 views but its mark before T+3h is 500 -> true."""
    ws, p, n = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        for h, views in enumerate((0, 0, 500, 0)):
            await conn.execute(_INSERT, uuid.uuid4(), ws, p, views, h, 0, T + timedelta(hours=h))
            await conn.execute(_INSERT, uuid.uuid4(), ws, n, 0, h, 0, T + timedelta(hours=h, minutes=30))
        sql = "SELECT content_id = $2, reports_views FROM content_gains WHERE workspace_id = $1 ORDER BY recorded_at"
        assert [tuple(r) for r in await conn.fetch(sql, ws, p)] == [
            (True, False), (False, False), (True, False), (False, False), (True, True), (False, False),
            (True, True), (False, False)]
        assert [tuple(r) for r in await conn.fetch(
            "SELECT content_id = $4, reports_views FROM content_gains_between($1, $2, $3) ORDER BY recorded_at",
            ws, T + timedelta(hours=3), T + timedelta(hours=4), p)] == [(True, True), (False, False)]
    finally:
        await conn.close()
