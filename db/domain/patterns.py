"""identified_patterns + pattern_occurrences (seed 004; 001's ai_learning_patterns is a view):
pattern_detection. A pattern is one row per (workspace, pattern_type, signature); each detection
is an occurrence (keyed by the event id), and the pattern's counts (occurrences, judged,
succeeded, engagement) grow by the occurrences actually inserted, in the same statement: exact,
and a redelivery or a replay adds nothing. A pattern's id is derived from its key (workspace, type,
signature), so every database that routes the same events gives it the same id."""

from __future__ import annotations

_R = """jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, pattern_type text,
    pattern_name text, signature jsonb, description text, detection_algorithm text, confidence double precision,
    severity text, impact_metrics jsonb, remediation_suggestions jsonb, source_type text, source_id text,
    content_id uuid, location_data jsonb, context jsonb, success boolean, engagement double precision,
    model_id uuid, metadata jsonb)"""

PATTERN_DETECTION = (
    f"""
INSERT INTO identified_patterns AS p (workspace_id, id, pattern_type, pattern_name, pattern_description,
    detection_algorithm, confidence_score, pattern_signature, signature_hash, context, first_detected,
    last_detected, severity_level, impact_metrics, remediation_suggestions, created_at, last_event_at)
SELECT DISTINCT ON (r.workspace_id, r.pattern_type, md5(r.signature::text))
    r.workspace_id, md5(jsonb_build_array(r.workspace_id, r.pattern_type, md5(r.signature::text))::text)::uuid,
    r.pattern_type, r.pattern_name, r.description, r.detection_algorithm, r.confidence,
    r.signature, md5(r.signature::text), r.context, r.ts, r.ts, r.severity, r.impact_metrics,
    r.remediation_suggestions, r.ts, r.ts
FROM {_R}
ORDER BY r.workspace_id, r.pattern_type, md5(r.signature::text), r.ts DESC
ON CONFLICT (workspace_id, pattern_type, signature_hash) DO UPDATE SET
    pattern_name = excluded.pattern_name,
    pattern_description = coalesce(excluded.pattern_description, p.pattern_description),
    detection_algorithm = coalesce(excluded.detection_algorithm, p.detection_algorithm),
    confidence_score = coalesce(excluded.confidence_score, p.confidence_score),
    context = coalesce(excluded.context, p.context),
    severity_level = coalesce(excluded.severity_level, p.severity_level),
    impact_metrics = coalesce(excluded.impact_metrics, p.impact_metrics),
    remediation_suggestions = coalesce(excluded.remediation_suggestions, p.remediation_suggestions),
    last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > p.last_event_at
""",
    f"""
WITH ins AS (
    INSERT INTO pattern_occurrences (workspace_id, id, pattern_id, source_type, source_id, content_id,
        location_data, context_data, detection_timestamp, detection_model_id, confidence_score, success,
        engagement, metadata)
    SELECT r.workspace_id, r.event_id, p.id, r.source_type, r.source_id, r.content_id, r.location_data, r.context,
        r.ts, r.model_id, r.confidence, r.success, r.engagement, r.metadata
    FROM {_R}
    JOIN identified_patterns p ON p.workspace_id = r.workspace_id AND p.pattern_type = r.pattern_type
                              AND p.signature_hash = md5(r.signature::text)
    ON CONFLICT (workspace_id, id) DO NOTHING
    RETURNING workspace_id, pattern_id, detection_timestamp, success, engagement
), n AS (
    SELECT workspace_id, pattern_id, count(*) AS occurrences, count(success) AS judged,
        count(*) FILTER (WHERE success) AS succeeded, coalesce(sum(engagement), 0) AS engagement_sum,
        count(engagement) AS engagement_count, min(detection_timestamp) AS first_at, max(detection_timestamp) AS last_at
    FROM ins GROUP BY workspace_id, pattern_id
)
UPDATE identified_patterns p SET
    occurrence_frequency = p.occurrence_frequency + n.occurrences,
    judged_count = p.judged_count + n.judged, success_count = p.success_count + n.succeeded,
    engagement_sum = p.engagement_sum + n.engagement_sum, engagement_count = p.engagement_count + n.engagement_count,
    first_detected = least(p.first_detected, n.first_at), last_detected = greatest(p.last_detected, n.last_at),
    created_at = least(p.created_at, n.first_at)
FROM n WHERE p.workspace_id = n.workspace_id AND p.id = n.pattern_id
""",
)
