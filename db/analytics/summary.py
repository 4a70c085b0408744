"""Read-side summaries of what the jobs computed (the demo prints them)."""

from __future__ import annotations

import asyncpg

_POSTING_HOURS = """
SELECT connector_id, platform, timezone, hour_of_day, optimization_score, sample_size, avg_engagement, confidence,
    metric, (ARRAY['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'])[day_of_week + 1] AS day
FROM (SELECT t.*, row_number() OVER (PARTITION BY workspace_id, platform, connector_id
                                     ORDER BY optimization_score DESC NULLS LAST, sample_size DESC) AS rank
      FROM optimal_posting_times t) AS ranked
WHERE rank <= $1 ORDER BY connector_id, rank
"""

_TRENDS = """
SELECT trend_type, trend_key, platform, engagement_impact, start_time, end_time, (trend_data ->> 'posts')::int AS posts,
    trend_data ->> 'status' AS status, (trend_data ->> 'recent_gain')::bigint AS recent_gain,
    (trend_data ->> 'recent_hours')::int AS recent_hours
FROM trend_analysis WHERE source = 'detected'
ORDER BY engagement_impact DESC NULLS LAST, (trend_data ->> 'recent_gain')::bigint DESC NULLS LAST, trend_key
"""

_ACCURACY = """
SELECT m.name, m.version, a.prediction_type, count(*) AS n, avg(a.accuracy_percentage) AS accuracy,
    avg(a.absolute_error) AS mae
FROM prediction_accuracy a JOIN ml_models m ON m.workspace_id = a.workspace_id AND m.id = a.model_id
WHERE a.source = 'engagement'
GROUP BY m.name, m.version, a.prediction_type ORDER BY m.name, m.version
"""


async def posting_hours(conn: asyncpg.Connection, per_account: int = 3) -> list[asyncpg.Record]:
    return await conn.fetch(_POSTING_HOURS, per_account)


async def detected_trends(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The detected trends, measured rises first (highest impact); a 'new' one (a baseline too small
    to compare with, db/analytics/trends.py) has engagement_impact NULL."""
    return await conn.fetch(_TRENDS)


async def accuracy_per_model(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_ACCURACY)
