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

# one row per reported trend (workspace, platform, type, key; its id derived from those): it starts
# at its earliest report's start and ends at the latest end; data and impact are the latest
# report's (of reports at the same instant, the one routed last)
TREND_DETECTED = ("""
WITH r AS (
    SELECT r.*, coalesce(r.start_time, r.ts) AS starts
    FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, platform text, trend_type text,
        trend_key text, trend_data jsonb, engagement_impact double precision, start_time timestamptz,
        end_time timestamptz)
), t AS (
    SELECT workspace_id, platform, trend_type, trend_key, min(starts) AS start_time, max(end_time) AS end_time,
        max(ts) AS last_ts, min(ts) AS first_ts,
        (array_agg(trend_data ORDER BY ts DESC) FILTER (WHERE trend_data IS NOT NULL))[1] AS trend_data,
        (array_agg(engagement_impact ORDER BY ts DESC) FILTER (WHERE engagement_impact IS NOT NULL))[1] AS impact
    FROM r GROUP BY workspace_id, platform, trend_type, trend_key
)
INSERT INTO trend_analysis AS a (workspace_id, id, platform, trend_type, trend_key, trend_data, engagement_impact,
    start_time, end_time, source, created_at, last_event_at)
SELECT workspace_id, md5(jsonb_build_array(workspace_id, platform, trend_type, trend_key, 'reported')::text)::uuid,
    platform, trend_type, trend_key, coalesce(trend_data, '{}'), impact, start_time, end_time,
    'reported', first_ts, last_ts
FROM t
ON CONFLICT (workspace_id, platform, trend_type, trend_key, source) WHERE source = 'reported' DO UPDATE SET
    start_time = least(a.start_time, excluded.start_time),
    end_time = greatest(a.end_time, excluded.end_time),
    trend_data = CASE WHEN excluded.last_event_at >= a.last_event_at AND excluded.trend_data <> '{}'
        THEN excluded.trend_data ELSE a.trend_data END,
    engagement_impact = CASE WHEN excluded.last_event_at >= a.last_event_at
        THEN coalesce(excluded.engagement_impact, a.engagement_impact)
        ELSE coalesce(a.engagement_impact, excluded.engagement_impact) END,
    created_at = least(a.created_at, excluded.created_at),
    last_event_at = greatest(a.last_event_at, excluded.last_event_at)
""",)

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
