"""Style correlation (seed 001 content_style_analysis.engagement_correlation): how a style goes
with engagement, from the posts' styles and their engagement.

Per workspace, over its analysed posts that have a snapshot: a post's tags are the union of its
analyses' style_tags, its engagement the engagement rate of its latest snapshot. A tag's
correlation is Pearson's r between "the post has the tag" (0/1) and the engagement rate (corr();
null when every post or none has it, when the rates do not vary, or with one post). An analysis
row's engagement_correlation is the mean of its tags' defined correlations, NULL when none is. Rows
whose value an analyser sent are kept. A run twice gives the same values. Each workspace has its
own transaction; one whose data fails the computation is skipped, its rows kept
(db/analytics/per_workspace.py; counted in job_workspaces_skipped).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from db.analytics.per_workspace import OnSkip, each_workspace

_WORKSPACES = "SELECT DISTINCT workspace_id FROM content_style_analysis"

_CORRELATE = """
WITH posts AS (
    -- every analysed post, also one whose analyses found no tag (it counts as "without" each tag)
    SELECT s.content_id, coalesce(array_agg(DISTINCT u.tag) FILTER (WHERE u.tag IS NOT NULL), '{}') AS tags
    FROM content_style_analysis s LEFT JOIN LATERAL unnest(s.style_tags) AS u(tag) ON true
    WHERE s.workspace_id = $1 GROUP BY s.content_id
), rated AS (
    SELECT p.*, r.rate FROM posts p
    CROSS JOIN LATERAL (
        SELECT (m.likes::numeric + m.shares + m.comments + m.saves)::double precision / nullif(m.views, 0) AS rate
        FROM content_performance_metrics m WHERE m.workspace_id = $1 AND m.content_id = p.content_id
        ORDER BY m.recorded_at DESC LIMIT 1) AS r
    WHERE r.rate IS NOT NULL
), tags AS (
    SELECT DISTINCT t FROM rated, unnest(rated.tags) AS t
), tag_corr AS (
    SELECT g.t, corr(r.rate, CASE WHEN g.t = ANY(r.tags) THEN 1.0 ELSE 0.0 END) AS r
    FROM tags g CROSS JOIN rated r GROUP BY g.t
), row_corr AS (
    SELECT s.id, avg(c.r) AS r
    FROM content_style_analysis s CROSS JOIN LATERAL unnest(s.style_tags) AS u(tag) JOIN tag_corr c ON c.t = u.tag
    WHERE s.workspace_id = $1 GROUP BY s.id
), clamped AS (
    -- rounding may leave r a hair outside [-1, 1]; NULL (no correlation) stays NULL: GREATEST and
    -- LEAST ignore NULLs, so greatest(-1, least(1, NULL)) would be 1
    SELECT id, CASE WHEN r IS NOT NULL THEN greatest(-1.0, least(1.0, r)) END AS r FROM row_corr
)
UPDATE content_style_analysis s SET engagement_correlation = x.r, correlation_computed_at = $2
FROM clamped x
WHERE s.workspace_id = $1 AND s.id = x.id
  AND (s.engagement_correlation IS NULL OR s.correlation_computed_at IS NOT NULL)
  AND s.engagement_correlation IS DISTINCT FROM x.r
"""


async def correlate_styles(conn: asyncpg.Connection, at: datetime, on_skip: OnSkip | None = None) -> int:
    """engagement_correlation of the analyses whose value changed, one transaction per workspace
    (one whose data fails is skipped: each_workspace); -> rows updated."""
    async def one(workspace) -> int:
        status = await conn.execute(_CORRELATE, workspace, at)
        return int(status.rsplit(" ", 1)[1])

    workspaces = [w for (w,) in await conn.fetch(_WORKSPACES)]
    return await each_workspace(conn, "style_correlation", workspaces, one, on_skip)
