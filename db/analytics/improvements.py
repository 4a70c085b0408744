"""AI improvement tracking from model evaluations (seed 001 ai_improvement_tracking): each model
registered with a parent_model_id is compared with its parent on every numeric metric both have in
performance_metrics. One row per (model, metric), id derived from them, so a run twice (or after
the model's metrics change) keeps one row: before = the parent's value, after = the model's,
improvement_percentage = the change relative to the parent's, signed so that positive is better:
metric_improvement_percentage (migration 0032), the same function the routing of
improvement_measured / system_optimization uses (for metrics where lower is better, by the head
word of the name — metric_lower_is_better, migration 0048: a cost, an error score, a loss — the
sign is turned).
recorded_at = when the model was last updated; source_event_type 'model_evaluation'.
"""

from __future__ import annotations

import asyncpg

_COMPARE = """
WITH pairs AS (
    SELECT m.workspace_id, m.id AS model_id, m.name, m.version, m.updated_at, p.id AS parent_id,
        p.name AS parent_name, p.version AS parent_version, k.key AS metric,
        (p.performance_metrics ->> k.key)::double precision AS before,
        (m.performance_metrics ->> k.key)::double precision AS after
    FROM ml_models m
    JOIN ml_models p ON p.workspace_id = m.workspace_id AND p.id = m.parent_model_id
    CROSS JOIN LATERAL jsonb_each(m.performance_metrics) AS k(key, value)
    WHERE jsonb_typeof(k.value) = 'number' AND jsonb_typeof(p.performance_metrics -> k.key) = 'number'
)
INSERT INTO ai_improvement_tracking AS t (workspace_id, id, improvement_type, metric, before_metrics, after_metrics,
    improvement_percentage, model_id, context, source_event_type, recorded_at)
SELECT workspace_id, md5(workspace_id::text || model_id::text || metric)::uuid, 'model_evaluation', metric,
    jsonb_build_object(metric, before, 'model', parent_name || ' ' || parent_version),
    jsonb_build_object(metric, after, 'model', name || ' ' || version),
    metric_improvement_percentage(metric, before, after),
    model_id, jsonb_build_object('parent_model_id', parent_id), 'model_evaluation', updated_at
FROM pairs
ON CONFLICT (workspace_id, id) DO UPDATE SET
    before_metrics = excluded.before_metrics, after_metrics = excluded.after_metrics,
    improvement_percentage = excluded.improvement_percentage, recorded_at = excluded.recorded_at
WHERE (t.before_metrics, t.after_metrics, t.recorded_at) IS DISTINCT FROM
      (excluded.before_metrics, excluded.after_metrics, excluded.recorded_at)
"""


async def model_improvements(conn: asyncpg.Connection) -> int:
    """ai_improvement_tracking rows of the models against their parents; -> rows written or changed."""
    async with conn.transaction():
        status = await conn.execute(_COMPARE)
    return int(status.rsplit(" ", 1)[1])
