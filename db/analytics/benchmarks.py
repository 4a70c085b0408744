"""Benchmarks (seed 003 benchmark_comparisons): each own account against the active competitors
on its platform in its workspace, per metric and period.

Metrics: `followers` (the latest count before the period's end) and `follower_growth` (% change
from the latest count at or before the period's start, or the first inside it, to that end), from
audience_growth (own) and competitor_metrics (competitors). Per own account and metric: the
competitors' average and median, their count, the account's percentile among them (those below it
plus half those equal, over the count, x 100) and ratio (value / average). A run for the same
period rewrites the same rows.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

_BENCHMARK = """
WITH own AS (
    SELECT k.workspace_id, k.id, k.platform,
        (SELECT g.follower_count FROM audience_growth g WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
            AND g.recorded_at < $2 ORDER BY g.recorded_at DESC LIMIT 1) AS last,
        coalesce(
            (SELECT g.follower_count FROM audience_growth g WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
                AND g.recorded_at <= $1 ORDER BY g.recorded_at DESC LIMIT 1),
            (SELECT g.follower_count FROM audience_growth g WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
                AND g.recorded_at > $1 AND g.recorded_at < $2 ORDER BY g.recorded_at LIMIT 1)) AS first
    FROM connectors k WHERE k.relationship = 'own'
), rivals AS (
    SELECT p.workspace_id, p.id, p.platform,
        (SELECT m.followers FROM competitor_metrics m WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
            AND m.recorded_at < $2 ORDER BY m.recorded_at DESC LIMIT 1) AS last,
        coalesce(
            (SELECT m.followers FROM competitor_metrics m WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
                AND m.recorded_at <= $1 ORDER BY m.recorded_at DESC LIMIT 1),
            (SELECT m.followers FROM competitor_metrics m WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
                AND m.recorded_at > $1 AND m.recorded_at < $2 ORDER BY m.recorded_at LIMIT 1)) AS first
    FROM competitor_profiles p WHERE p.is_active
), own_values AS (
    SELECT o.workspace_id, o.id, o.platform, v.metric, v.value
    FROM own o, LATERAL (VALUES ('followers', o.last::double precision),
                                ('follower_growth', 100.0 * (o.last - o.first) / nullif(o.first, 0))) AS v(metric, value)
    WHERE v.value IS NOT NULL
), rival_values AS (
    SELECT r.workspace_id, r.platform, v.metric, v.value
    FROM rivals r, LATERAL (VALUES ('followers', r.last::double precision),
                                   ('follower_growth', 100.0 * (r.last - r.first) / nullif(r.first, 0))) AS v(metric, value)
    WHERE v.value IS NOT NULL
), compared AS (
    SELECT o.workspace_id, o.id, o.platform, o.metric, o.value,
        avg(r.value) AS average, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.value) AS median, count(r.value) AS n,
        100.0 * (count(*) FILTER (WHERE r.value < o.value) + 0.5 * count(*) FILTER (WHERE r.value = o.value))
            / nullif(count(r.value), 0) AS percentile
    FROM own_values o
    LEFT JOIN rival_values r ON r.workspace_id = o.workspace_id AND r.platform = o.platform AND r.metric = o.metric
    GROUP BY o.workspace_id, o.id, o.platform, o.metric, o.value
)
INSERT INTO benchmark_comparisons AS b (workspace_id, connector_id, platform, metric, period_start, period_end,
    user_value, competitor_average, competitor_median, competitor_count, percentile, ratio, computed_at)
SELECT workspace_id, id, platform, metric, ($1 AT TIME ZONE 'UTC')::date, ($2 AT TIME ZONE 'UTC')::date, value,
    average, median, n, percentile, value / nullif(average, 0), clock_timestamp()
FROM compared
ON CONFLICT (workspace_id, connector_id, metric, period_start, period_end) DO UPDATE SET
    platform = excluded.platform, user_value = excluded.user_value, competitor_average = excluded.competitor_average,
    competitor_median = excluded.competitor_median, competitor_count = excluded.competitor_count,
    percentile = excluded.percentile, ratio = excluded.ratio, computed_at = excluded.computed_at
"""


async def benchmark_accounts(conn: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """benchmark_comparisons for the period [start, end) (dates in UTC); -> rows written."""
    async with conn.transaction():
        status = await conn.execute(_BENCHMARK, start, end)
    return int(status.rsplit(" ", 1)[1])
