"""The one definition of "gained" (migration 0028, issue #25): content_gains and
interactions_gained() against hand-computed gains, high-water marks as the window stage keeps them
(streams/windows/state.py) and db/rollups.py recomputes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect

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
