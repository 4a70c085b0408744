"""Read-side summaries of the domain tables (the demo prints them; operators can call them)."""

from __future__ import annotations

import asyncpg

from db.analytics.read import PATTERN_LOWER_BOUND

#: ranked as `learnstream analytics patterns` ranks them: by the success rate's Wilson lower bound
TOP_PATTERNS = f"""
SELECT workspace_id, pattern_type, pattern_name, occurrence_frequency, success_rate, average_engagement
FROM identified_patterns WHERE judged_count >= $1
ORDER BY {PATTERN_LOWER_BOUND} DESC NULLS LAST, success_rate DESC NULLS LAST, occurrence_frequency DESC LIMIT $2
"""

TRAINING_CURVE = """
SELECT m.name, m.version, s.status, s.current_epoch, s.total_epochs, s.loss_history
FROM model_training_sessions s JOIN ml_models m ON m.workspace_id = s.workspace_id AND m.id = s.model_id
ORDER BY s.updated_at DESC LIMIT 1
"""

AB_ARMS = """
SELECT experiment_name, status, current_sample_size, results FROM ab_testing_experiments
ORDER BY current_sample_size DESC LIMIT 1
"""

COMPETITOR_GROWTH = """
SELECT p.name, p.platform, min(m.recorded_date) AS since, max(m.recorded_date) AS until,
    (array_agg(m.followers ORDER BY m.recorded_date))[1] AS first,
    (array_agg(m.followers ORDER BY m.recorded_date DESC))[1] AS last
FROM competitor_profiles p JOIN competitor_metrics m ON m.workspace_id = p.workspace_id AND m.competitor_id = p.id
GROUP BY p.workspace_id, p.id, p.name, p.platform ORDER BY p.name LIMIT $1
"""

PREDICTION_ACCURACY = """
SELECT m.name, m.version, count(*) AS n, avg(a.accuracy_percentage) AS accuracy, avg(a.absolute_error) AS mae
FROM prediction_accuracy a JOIN ml_models m ON m.workspace_id = a.workspace_id AND m.id = a.model_id
GROUP BY m.name, m.version ORDER BY m.name, m.version
"""


async def table_counts(conn: asyncpg.Connection, tables: list[str]) -> dict[str, int]:
    """Rows per table; `tables` are the caller's constants (the demo's list), never event data."""
    return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}


async def top_patterns(conn: asyncpg.Connection, min_judged: int = 5, limit: int = 5) -> list[asyncpg.Record]:
    return await conn.fetch(TOP_PATTERNS, min_judged, limit)


async def training_curve(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(TRAINING_CURVE)


async def ab_arms(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(AB_ARMS)


async def competitor_growth(conn: asyncpg.Connection, limit: int = 4) -> list[asyncpg.Record]:
    return await conn.fetch(COMPETITOR_GROWTH, limit)


async def prediction_accuracy(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(PREDICTION_ACCURACY)
