"""Optimal posting times (seed 003): per workspace, platform and account, the hours of the week
whose posts engaged best, in the account's time zone (connectors.timezone; UTC when unknown).

A post's engagement is the engagement rate of its latest snapshot ((likes + shares + comments +
saves) / views); a cell is (day of week, hour) of its publish time in the account's zone, over the
posts published in the window (90 days before the run). So that a cell with three lucky posts does
not win, a cell's mean is shrunk toward the account's mean with a prior worth PRIOR_POSTS posts:
shrunk = (n * cell_mean + PRIOR_POSTS * account_mean) / (n + PRIOR_POSTS), confidence = n / (n +
PRIOR_POSTS); optimization_score = 100 * shrunk / the account's best shrunk. Each workspace is
recomputed whole in its own transaction (its old cells deleted), so a run twice gives the same rows.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

PRIOR_POSTS = 10
WINDOW_DAYS = 90

_WORKSPACES = """
SELECT workspace_id FROM content
 WHERE published_at >= $1::timestamptz - make_interval(days => $2::integer) AND published_at < $1::timestamptz
UNION SELECT workspace_id FROM optimal_posting_times
"""

_DELETE = "DELETE FROM optimal_posting_times WHERE workspace_id = $1"

_INSERT = """
WITH posts AS (
    SELECT c.workspace_id, c.platform, coalesce(c.connector_id, '') AS connector_id,
        coalesce(k.timezone, 'UTC') AS tz, c.published_at, s.rate
    FROM content c
    LEFT JOIN connectors k ON k.workspace_id = c.workspace_id AND k.id = c.connector_id
    CROSS JOIN LATERAL (
        SELECT (m.likes + m.shares + m.comments + m.saves)::double precision / nullif(m.views, 0) AS rate
        FROM content_performance_metrics m
        WHERE m.workspace_id = c.workspace_id AND m.content_id = c.id
        ORDER BY m.recorded_at DESC LIMIT 1
    ) AS s
    WHERE c.workspace_id = $1
      AND c.published_at >= $2::timestamptz - make_interval(days => $3::integer) AND c.published_at < $2::timestamptz
      AND s.rate IS NOT NULL
), cells AS (
    SELECT workspace_id, platform, connector_id, tz,
        extract(dow FROM published_at AT TIME ZONE tz)::smallint AS dow,
        extract(hour FROM published_at AT TIME ZONE tz)::smallint AS hour,
        count(*) AS n, avg(rate) AS mean
    FROM posts GROUP BY 1, 2, 3, 4, 5, 6
), account AS (
    SELECT workspace_id, platform, connector_id, avg(rate) AS mean FROM posts GROUP BY 1, 2, 3
), scored AS (
    SELECT c.*, (c.n * c.mean + $4 * a.mean) / (c.n + $4) AS shrunk, c.n::double precision / (c.n + $4) AS confidence
    FROM cells c JOIN account a USING (workspace_id, platform, connector_id)
)
INSERT INTO optimal_posting_times (workspace_id, platform, connector_id, day_of_week, hour_of_day, timezone,
    optimization_score, avg_engagement, sample_size, confidence, window_days, computed_at)
SELECT workspace_id, platform, connector_id, dow, hour, tz,
    least(100.0, coalesce(100.0 * shrunk / nullif(max(shrunk) OVER (PARTITION BY workspace_id, platform, connector_id), 0), 0)),
    mean, n, confidence, $3, $2
FROM scored
"""


async def optimal_posting_times(conn: asyncpg.Connection, until: datetime, window_days: int = WINDOW_DAYS,
                                prior_posts: int = PRIOR_POSTS) -> int:
    """Recompute optimal_posting_times from the posts published in the `window_days` before
    `until`, one transaction per workspace; -> cells written."""
    total = 0
    for (workspace,) in await conn.fetch(_WORKSPACES, until, window_days):
        async with conn.transaction():
            await conn.execute(_DELETE, workspace)
            status = await conn.execute(_INSERT, workspace, until, window_days, prior_posts)
        total += int(status.rsplit(" ", 1)[1])
    return total
