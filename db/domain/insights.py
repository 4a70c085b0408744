"""content_style_analysis, trend_analysis, ai_improvement_tracking (seed 001): style_analysis,
trend_detected, improvement_measured and system_optimization."""

from __future__ import annotations

# one row per analysis event (an analysis of the same post later is another row, as in the seed);
# style_tags sorted and without repeats, so a GROUP BY style_tags (001's query 2) groups equal sets
STYLE_ANALYSIS = ("""
INSERT INTO content_style_analysis (workspace_id, id, content_id, visual_style, audio_style, text_style,
    engagement_correlation, style_tags, model_id, created_at)
SELECT r.workspace_id, r.event_id, r.content_id, r.visual_style, r.audio_style, r.text_style,
    r.engagement_correlation, ARRAY(SELECT DISTINCT t FROM unnest(r.style_tags) AS t ORDER BY t), r.model_id, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, content_id uuid,
    visual_style jsonb, audio_style jsonb, text_style jsonb, engagement_correlation double precision,
    style_tags text[], model_id uuid)
ON CONFLICT (workspace_id, id) DO NOTHING
""",)

#: advisory lock space of the trend_detected route (int4 "lstr"; db/jobs.py has the job runner's,
#: db/domain/experiments.py the experiments')
TREND_LOCK_SPACE = 0x6C737472

# A reported trend has a row per episode (issue 25 review 3 F5; migration 0048's
# route_reported_trends, the rule of detected trends, db/analytics/trends.py): each report, in
# event time, joins the key's reported episodes it overlaps or touches into one row (start the
# least, end the greatest given; a report without an end is still going, and so is its row,
# reported_open), else starts a new row. A key reported Dec 1 06-12 and Dec 8 06-12 is two rows,
# not active on Dec 3-6. trend_data and
# impact are the latest report's that carried them. The rows are the connected spans of the key's
# reports: any order or batching gives the same rows, a replayed report changes nothing. Routing
# runs per partition, so two batches may carry the same key: one lock per
# (workspace, platform, type, key) the records name, in key order, held to the transaction's end,
# serialises them (the function reads the rows once the other batch has committed).
TREND_DETECTED = (f"""
SELECT pg_advisory_xact_lock({TREND_LOCK_SPACE}, hashtext(k))
FROM (SELECT DISTINCT jsonb_build_array(r.workspace_id, r.platform, r.trend_type, r.trend_key)::text AS k
      FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, platform text, trend_type text, trend_key text)
      ORDER BY 1) AS keys
""", "SELECT route_reported_trends($1::jsonb)")

# improvement_percentage, positive = better: as sent, or when not given from `metric` in before/after
# by metric_improvement_percentage (migration 0032, the model_improvements job's too): (after - before)
# / |before| x 100, turned for lower-is-better metrics by the head word of the name (0048; latency 200 -> 100 ms: +50 %)
IMPROVEMENT = ("""
INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type, metric, before_metrics, after_metrics,
    improvement_percentage, model_id, context, source_event_type, recorded_at)
SELECT r.workspace_id, r.event_id, r.improvement_type, r.metric, r.before_metrics, r.after_metrics,
    coalesce(r.improvement_percentage,
        CASE WHEN jsonb_typeof(r.before_metrics -> r.metric) = 'number' AND jsonb_typeof(r.after_metrics -> r.metric) = 'number'
             THEN metric_improvement_percentage(r.metric, (r.before_metrics ->> r.metric)::double precision,
                                                (r.after_metrics ->> r.metric)::double precision) END),
    r.model_id, r.context, r.event_type, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, event_type text,
    improvement_type text, metric text, before_metrics jsonb, after_metrics jsonb,
    improvement_percentage double precision, model_id uuid, context jsonb)
ON CONFLICT (workspace_id, id) DO NOTHING
""",)
