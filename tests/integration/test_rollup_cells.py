"""engagement_by_time cells never overflow (issue #23, item 14), on real PostgreSQL: gains that
would pass bigint saturate the cell at bigint's bound instead of failing every later rollup of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from db.rollups import write_rollups
from schemas.rollups import Rollup, series_key

pytestmark = pytest.mark.services

BIG = 9_000_000_000_000_000_000  # 9e18: two of them pass bigint's 9,223,372,036,854,775,807
MAX = 9_223_372_036_854_775_807


def window(ws: uuid.UUID, content: uuid.UUID, start: datetime, views: int, likes: int) -> Rollup:
    series = {"content_id": str(content), "platform": "tiktok", "connector_id": "me"}
    return Rollup(kind="engagement_update", workspace_id=ws, series_key=series_key(series), series=series,
                  window_s=60, step_s=60, window_start=start, window_end=start + timedelta(minutes=1),
                  closed_at=datetime.now(UTC),
                  stats={"updates": 2, "views_gained": views, "likes_gained": likes, "shares_gained": likes,
                         "comments_gained": likes, "saves_gained": likes, "resets": 0, "velocity_per_min": 1.0,
                         "engagement_rate": 0.1})


async def test_a_cell_past_bigint_saturates_and_later_rollups_of_it_still_land(stack):
    ws = uuid.uuid4()
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    conn = await connect(stack.dsn)
    try:
        # one window whose four interaction gains sum past bigint, then two more windows of the same hour
        assert await write_rollups(conn, [window(ws, uuid.uuid4(), start, BIG, BIG)]) == 1
        assert await write_rollups(conn, [window(ws, uuid.uuid4(), start + timedelta(minutes=1), BIG, 5)]) == 1
        assert await write_rollups(conn, [window(ws, uuid.uuid4(), start + timedelta(minutes=2), 7, 1)]) == 1
        cell = await conn.fetchrow("SELECT windows, updates, views_gained, interactions_gained FROM engagement_by_time "
                                   "WHERE workspace_id = $1", ws)
        assert dict(cell) == {"windows": 3, "updates": 6, "views_gained": MAX, "interactions_gained": MAX}
        assert await conn.fetchval("SELECT count(*) FROM engagement_rollups WHERE workspace_id = $1", ws) == 3
    finally:
        await conn.close()
