"""Prediction accuracy from engagement, and accuracy per model and day (issue #10).

A content prediction whose prediction_type names an engagement figure (views, likes, shares,
comments, saves, interactions = likes + shares + comments + saves, engagement_rate = interactions /
views) and that has a horizon is measured on the post's first content_performance_metrics snapshot
recorded at or after prediction_timestamp + horizon. Only predictions without an outcome yet are
measured (an explicit prediction_outcome stands), in bounded transactions; a run twice changes
nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

#: prediction_type -> the figure of a snapshot it predicts
MEASURED_TYPES = ("views", "likes", "shares", "comments", "saves", "interactions", "engagement_rate")

#: due, unmeasured content predictions after the page cursor ($3, $4, $5): $1 types, $2 now
_DUE = """p.actual_score IS NULL AND p.outcome_at IS NULL AND p.status = 'active'
      AND p.target_entity_type = 'content' AND p.prediction_horizon IS NOT NULL AND p.predicted_score IS NOT NULL
      AND p.prediction_type = ANY($1::text[])
      AND p.prediction_timestamp + make_interval(hours => p.prediction_horizon) <= $2
      AND ($3::timestamptz IS NULL OR (p.prediction_timestamp, p.workspace_id, p.id) > ($3, $4::uuid, $5::uuid))"""

#: the last key of the next page of due predictions ($6 = page size)
_PAGE_END = """
SELECT prediction_timestamp, workspace_id, id FROM (
    SELECT p.prediction_timestamp, p.workspace_id, p.id FROM predictions p WHERE """ + _DUE + """
    ORDER BY 1, 2, 3 LIMIT $6) AS page
ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT 1
"""

_MEASURE = """
WITH due AS (
    SELECT p.workspace_id, p.id, p.model_id, p.prediction_type, p.predicted_score,
        uuid_or_null(p.target_entity_id) AS content_id,
        p.prediction_timestamp + make_interval(hours => p.prediction_horizon) AS due_at
    FROM predictions p
    WHERE """ + _DUE + """
      AND (p.prediction_timestamp, p.workspace_id, p.id) <= ($6::timestamptz, $7::uuid, $8::uuid)
), measured AS (
    SELECT d.*, s.recorded_at, s.views, s.likes, s.shares, s.comments, s.saves,
        CASE d.prediction_type
            WHEN 'views' THEN s.views::double precision
            WHEN 'likes' THEN s.likes::double precision
            WHEN 'shares' THEN s.shares::double precision
            WHEN 'comments' THEN s.comments::double precision
            WHEN 'saves' THEN s.saves::double precision
            WHEN 'interactions' THEN (s.likes + s.shares + s.comments + s.saves)::double precision
            WHEN 'engagement_rate' THEN (s.likes + s.shares + s.comments + s.saves)::double precision / nullif(s.views, 0)
        END AS actual
    FROM due d
    CROSS JOIN LATERAL (
        SELECT * FROM content_performance_metrics c
        WHERE c.workspace_id = d.workspace_id AND c.content_id = d.content_id AND c.recorded_at >= d.due_at
        ORDER BY c.recorded_at LIMIT 1
    ) AS s
), upd AS (
    UPDATE predictions p SET
        actual_score = m.actual,
        actual_outcome = jsonb_build_object('metric', m.prediction_type, 'value', m.actual, 'recorded_at', m.recorded_at),
        accuracy_score = prediction_accuracy_score(p.predicted_score, m.actual),
        status = 'validated', outcome_at = m.recorded_at
    FROM measured m
    WHERE p.workspace_id = m.workspace_id AND p.id = m.id AND m.actual IS NOT NULL
    RETURNING p.workspace_id, p.id
)
INSERT INTO prediction_accuracy (workspace_id, prediction_id, model_id, prediction_type, content_id, predicted_score,
    actual_score, absolute_error, percentage_error, accuracy_percentage, actual_metrics, source, measured_at)
SELECT m.workspace_id, m.id, m.model_id, m.prediction_type, m.content_id, m.predicted_score, m.actual,
    abs(m.predicted_score - m.actual), 100.0 * abs(m.predicted_score - m.actual) / nullif(abs(m.actual), 0),
    100.0 * prediction_accuracy_score(m.predicted_score, m.actual),
    jsonb_build_object('views', m.views, 'likes', m.likes, 'shares', m.shares, 'comments', m.comments,
                       'saves', m.saves, 'recorded_at', m.recorded_at),
    'engagement', m.recorded_at
FROM measured m JOIN upd USING (workspace_id, id)
ON CONFLICT (workspace_id, prediction_id) DO NOTHING
"""


async def measure_due_predictions(conn: asyncpg.Connection, now: datetime, batch: int = 5000) -> int:
    """Measure every due prediction, a page of `batch` per transaction, in (prediction time, key)
    order with a cursor: a page of predictions whose posts have no snapshot after the horizon yet
    does not hide the pages after it. -> predictions measured."""
    total = 0
    cursor: tuple = (None, None, None)
    while True:
        async with conn.transaction():
            end = await conn.fetchrow(_PAGE_END, list(MEASURED_TYPES), now, *cursor, batch)
            if end is None:
                return total
            status = await conn.execute(_MEASURE, list(MEASURED_TYPES), now, *cursor, *end)
        total += int(status.rsplit(" ", 1)[1])
        cursor = tuple(end)


_DAILY = """
INSERT INTO model_accuracy_daily AS d (workspace_id, model_id, prediction_type, day, predictions, mean_accuracy,
    mean_absolute_error, mean_percentage_error, computed_at)
SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date, count(*),
    avg(accuracy_percentage), avg(absolute_error), avg(percentage_error), clock_timestamp()
FROM prediction_accuracy
WHERE measured_at >= $1 AND measured_at < $2
GROUP BY workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date
ON CONFLICT (workspace_id, model_id, prediction_type, day) DO UPDATE SET
    predictions = excluded.predictions, mean_accuracy = excluded.mean_accuracy,
    mean_absolute_error = excluded.mean_absolute_error, mean_percentage_error = excluded.mean_percentage_error,
    computed_at = excluded.computed_at
"""


async def accuracy_per_day(conn: asyncpg.Connection, start: datetime, end: datetime) -> int:
    """model_accuracy_daily for the UTC days in [start, end), recomputed whole (idempotent)."""
    async with conn.transaction():
        status = await conn.execute(_DAILY, start, end)
    return int(status.rsplit(" ", 1)[1])
