"""Trends detected from the streams themselves (seed 001 trend_analysis, source 'detected'):
hashtags (content.hashtags) and styles (content_style_analysis.style_tags) whose engagement
velocity in the recent window rises well above their baseline.

For a run at time T: a post's gain in a window (t0, t1] is interactions_gained(ws, post, t0, t1)
(migration 0028, the one definition of "gained": the gains of its snapshots recorded then, each
the excess over the post's high-water mark; a post's first snapshot gains 0, so old posts
first scraped now gained nothing now; a decrease gains 0). A key's gain is its posts' gains, its
velocity that gain per hour. Recent window: the RECENT_HOURS before T; baseline: the same hours
of the day on each of the BASELINE_DAYS days before (so a daily rhythm, posts every evening, is
no trend). A key trends when its posts gained at least MIN_GAIN interactions recently and its
recent velocity is at least RATIO times its baseline's (any velocity over a zero baseline).

A baseline of fewer than MIN_BASELINE_GAIN interactions (over all BASELINE_DAYS windows together)
is too small to divide by (a count of n has a relative error of about 1/sqrt(n): 10 % at 100; one
interaction made +1,049,900 %): such a trend is labelled new, trend_data 'status' = 'new', and its
engagement_impact is NULL. Otherwise 'status' = 'rising' and engagement_impact =
100 x (recent / baseline velocity - 1) %. So AVG(engagement_impact) (seed 001 key query 3,
trend_analysis_view) averages measured rises only; new trends still count as trends.

A trending key's row starts at the earliest recent window it trended in and ends at the latest run
it still trended at; its trend_data and impact are the latest run's. A run for the same T gives
the same rows.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

RECENT_HOURS = 6
BASELINE_DAYS = 7
RATIO = 3.0
MIN_GAIN = 1000
MIN_BASELINE_GAIN = 100

_WORKSPACES = "SELECT DISTINCT workspace_id FROM content WHERE published_at < $1"

_DETECT = """
WITH posts AS (
    SELECT c.workspace_id, c.platform, c.id,
        interactions_gained(c.workspace_id, c.id, $2::timestamptz - make_interval(hours => $3::integer),
                            $2::timestamptz) AS recent,
        (SELECT sum(interactions_gained(c.workspace_id, c.id,
                                        $2::timestamptz - make_interval(days => d, hours => $3::integer),
                                        $2::timestamptz - make_interval(days => d)))
         FROM generate_series(1, $4::integer) AS d) AS base
    FROM content c
    WHERE c.workspace_id = $1 AND c.published_at < $2
      AND EXISTS (SELECT 1 FROM content_performance_metrics m WHERE m.workspace_id = c.workspace_id
                  AND m.content_id = c.id AND m.recorded_at > $2 - make_interval(days => $4::integer, hours => $3::integer)
                  AND m.recorded_at <= $2)
), keys AS (
    SELECT p.*, 'hashtag' AS trend_type, lower(t) AS trend_key
    FROM posts p JOIN content c ON c.workspace_id = p.workspace_id AND c.id = p.id, unnest(c.hashtags) AS t
    UNION ALL
    SELECT DISTINCT ON (p.id, t) p.*, 'style', t
    FROM posts p JOIN content_style_analysis s ON s.workspace_id = p.workspace_id AND s.content_id = p.id,
         unnest(s.style_tags) AS t
), velocity AS (
    SELECT workspace_id, platform, trend_type, trend_key, count(*) AS posts, sum(recent) AS recent_gain,
        sum(base) AS baseline_gain,
        sum(recent)::double precision / $3 AS recent_rate, sum(base)::double precision / ($4 * $3) AS baseline_rate
    FROM keys GROUP BY 1, 2, 3, 4
)
INSERT INTO trend_analysis AS a (workspace_id, platform, trend_type, trend_key, trend_data, engagement_impact,
    start_time, end_time, source, created_at, last_event_at)
SELECT workspace_id, platform, trend_type, trend_key,
    jsonb_build_object('status', CASE WHEN baseline_gain < $7 THEN 'new' ELSE 'rising' END,
                       'posts', posts, 'recent_gain', recent_gain, 'baseline_gain', baseline_gain,
                       'recent_per_hour', recent_rate, 'baseline_per_hour', baseline_rate,
                       'recent_hours', $3, 'baseline_days', $4),
    CASE WHEN baseline_gain >= $7 THEN 100.0 * (recent_rate / baseline_rate - 1) END,
    $2 - make_interval(hours => $3), $2, 'detected', $2, $2
FROM velocity
WHERE recent_gain >= $6 AND recent_rate >= $5 * baseline_rate
ON CONFLICT (workspace_id, platform, trend_type, trend_key, source) DO UPDATE SET
    start_time = least(a.start_time, excluded.start_time),
    end_time = greatest(a.end_time, excluded.end_time),
    trend_data = CASE WHEN excluded.last_event_at >= a.last_event_at THEN excluded.trend_data ELSE a.trend_data END,
    engagement_impact = CASE WHEN excluded.last_event_at >= a.last_event_at
        THEN excluded.engagement_impact ELSE a.engagement_impact END,
    created_at = least(a.created_at, excluded.created_at),
    last_event_at = greatest(a.last_event_at, excluded.last_event_at)
"""


async def detect_trends(conn: asyncpg.Connection, at: datetime, recent_hours: int = RECENT_HOURS,
                        baseline_days: int = BASELINE_DAYS, ratio: float = RATIO, min_gain: int = MIN_GAIN,
                        min_baseline_gain: int = MIN_BASELINE_GAIN) -> int:
    """Detect the trends at time `at`, one transaction per workspace; -> trends written."""
    total = 0
    for (workspace,) in await conn.fetch(_WORKSPACES, at):
        async with conn.transaction():
            status = await conn.execute(_DETECT, workspace, at, recent_hours, baseline_days, ratio, min_gain,
                                        min_baseline_gain)
        total += int(status.rsplit(" ", 1)[1])
    return total
