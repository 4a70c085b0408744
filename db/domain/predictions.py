"""predictions (seed 004; 003's viral_score_predictions is a view of it) and prediction_accuracy
(003): model_prediction, prediction_outcome, user_feedback."""

from __future__ import annotations

from db.domain.parking import park_sql

PARK_MODEL_PREDICTION = park_sql("model_prediction", "model_id uuid", (
    ("NOT EXISTS (SELECT 1 FROM ml_models m WHERE m.workspace_id = r.workspace_id AND m.id = r.model_id)",
     "'model ' || r.model_id"),
))

# a prediction is what the model said: the earliest event for a prediction_id (in event time,
# whatever arrives first; of two at the same instant, the lower event id within a batch, the one
# routed first across batches) stands. An earlier one arriving later replaces the prediction's own
# fields; its outcome and feedback stay, their accuracy is measured again on the new score.
MODEL_PREDICTION = ("""
INSERT INTO predictions AS p (workspace_id, id, model_id, prediction_type, target_entity_type, target_entity_id,
    predicted_value, predicted_score, confidence_score, confidence_interval, prediction_horizon, input_features,
    prediction_timestamp)
SELECT DISTINCT ON (r.workspace_id, r.prediction_id)
    r.workspace_id, r.prediction_id, r.model_id, r.prediction_type, r.target_entity_type, r.target_entity_id,
    coalesce(r.predicted_value, jsonb_build_object('score', r.predicted_score)), r.predicted_score, r.confidence,
    r.confidence_interval, r.horizon_hours, r.features, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, prediction_id uuid,
    model_id uuid, prediction_type text, target_entity_type text, target_entity_id text, predicted_value jsonb,
    predicted_score double precision, confidence double precision, confidence_interval jsonb,
    horizon_hours integer, features jsonb)
JOIN ml_models m ON m.workspace_id = r.workspace_id AND m.id = r.model_id
ORDER BY r.workspace_id, r.prediction_id, r.ts, r.event_id
ON CONFLICT (workspace_id, id) DO UPDATE SET
    model_id = excluded.model_id, prediction_type = excluded.prediction_type,
    target_entity_type = excluded.target_entity_type, target_entity_id = excluded.target_entity_id,
    predicted_value = excluded.predicted_value, predicted_score = excluded.predicted_score,
    confidence_score = excluded.confidence_score, confidence_interval = excluded.confidence_interval,
    prediction_horizon = excluded.prediction_horizon, input_features = excluded.input_features,
    prediction_timestamp = excluded.prediction_timestamp,
    accuracy_score = prediction_accuracy_score(excluded.predicted_score, p.actual_score)
WHERE excluded.prediction_timestamp < p.prediction_timestamp
""",
    # the accuracy rows of this batch's predictions, measured again where the prediction changed
    # (a no-op for a prediction seen first: it has no accuracy row yet)
    """
WITH r AS (
    SELECT DISTINCT r.workspace_id, r.prediction_id FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, prediction_id uuid)
), p AS (
    SELECT p.workspace_id, p.id, p.model_id, p.prediction_type, p.predicted_score,
        CASE WHEN p.target_entity_type = 'content' THEN uuid_or_null(p.target_entity_id) END AS content_id
    FROM r JOIN predictions p ON p.workspace_id = r.workspace_id AND p.id = r.prediction_id
)
UPDATE prediction_accuracy a SET model_id = p.model_id, prediction_type = p.prediction_type, content_id = p.content_id,
    predicted_score = p.predicted_score, absolute_error = prediction_absolute_error(p.predicted_score, a.actual_score),
    percentage_error = prediction_percentage_error(p.predicted_score, a.actual_score),
    accuracy_percentage = 100.0 * prediction_accuracy_score(p.predicted_score, a.actual_score),
    ratio_accuracy = 100.0 * prediction_ratio_accuracy(p.predicted_score, a.actual_score)
FROM p
WHERE a.workspace_id = p.workspace_id AND a.prediction_id = p.id AND p.predicted_score IS NOT NULL
  AND (a.model_id, a.prediction_type, a.content_id, a.predicted_score)
      IS DISTINCT FROM (p.model_id, p.prediction_type, p.content_id, p.predicted_score)
""",
    # an earlier prediction without a numeric score has no accuracy to measure
    """
DELETE FROM prediction_accuracy a
USING jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, prediction_id uuid), predictions p
WHERE p.workspace_id = r.workspace_id AND p.id = r.prediction_id AND p.predicted_score IS NULL
  AND a.workspace_id = p.workspace_id AND a.prediction_id = p.id
""",
)

_PREDICTION_MISSING = (
    "r.prediction_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM predictions p "
    "WHERE p.workspace_id = r.workspace_id AND p.id = r.prediction_id)", "'prediction ' || r.prediction_id")

PARK_PREDICTION_OUTCOME = park_sql("prediction_outcome", "prediction_id uuid", (_PREDICTION_MISSING,))

# the accuracy row of the predictions whose outcome (or feedback's actual value) `o` just set; an
# explicit outcome is never replaced by feedback or by the prediction_accuracy job's measurement on
# an engagement snapshot (the job measures only predictions without an outcome) and replaces either
# of them whatever its time (review 2 R12: `predictions` and prediction_accuracy then agree); a later
# one of the same source replaces an earlier.
# Both measures of migration 0032, the same functions as the prediction_accuracy job's:
# accuracy_percentage (relative-error, asymmetric) and ratio_accuracy (min / max, symmetric, NULL
# across a sign change or a zero). An explicit outcome has no staleness bound: its sender says
# what the outcome was.
_ACCURACY = """
INSERT INTO prediction_accuracy AS a (workspace_id, prediction_id, model_id, prediction_type, content_id,
    predicted_score, actual_score, absolute_error, percentage_error, accuracy_percentage, ratio_accuracy,
    actual_metrics, source, measured_at)
SELECT p.workspace_id, p.id, p.model_id, p.prediction_type,
    CASE WHEN p.target_entity_type = 'content' THEN uuid_or_null(p.target_entity_id) END,
    p.predicted_score, o.actual_score, prediction_absolute_error(p.predicted_score, o.actual_score),
    prediction_percentage_error(p.predicted_score, o.actual_score),
    100.0 * prediction_accuracy_score(p.predicted_score, o.actual_score),
    100.0 * prediction_ratio_accuracy(p.predicted_score, o.actual_score), o.actual_metrics, '{source}', o.ts
FROM o JOIN predictions p ON p.workspace_id = o.workspace_id AND p.id = o.prediction_id
WHERE p.predicted_score IS NOT NULL AND o.actual_score IS NOT NULL
ON CONFLICT (workspace_id, prediction_id) DO UPDATE SET
    predicted_score = excluded.predicted_score, actual_score = excluded.actual_score,
    absolute_error = excluded.absolute_error, percentage_error = excluded.percentage_error,
    accuracy_percentage = excluded.accuracy_percentage, ratio_accuracy = excluded.ratio_accuracy,
    actual_metrics = excluded.actual_metrics,
    source = excluded.source, measured_at = excluded.measured_at
WHERE (a.source = excluded.source AND excluded.measured_at > a.measured_at)
   OR (a.source IN ('feedback', 'engagement') AND excluded.source = 'outcome')
"""

_OUTCOMES = """
WITH o AS (
    SELECT DISTINCT ON (r.workspace_id, r.prediction_id) r.*
    FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, prediction_id uuid,
        actual_score double precision, actual_outcome jsonb, actual_metrics jsonb)
    ORDER BY r.workspace_id, r.prediction_id, r.ts DESC
)"""

# one statement per batch: the predictions' update is a data-modifying CTE beside the accuracy
# insert, which reads of the prediction only what the update leaves alone (its model, type,
# target and predicted score), so the two give what they gave as statements of their own
PREDICTION_OUTCOME = (
    _OUTCOMES + """, updated AS (
    UPDATE predictions p SET
        actual_outcome = coalesce(o.actual_outcome, jsonb_build_object('score', o.actual_score)),
        actual_score = o.actual_score,
        accuracy_score = prediction_accuracy_score(p.predicted_score, o.actual_score),
        status = CASE WHEN p.status = 'invalidated' THEN p.status ELSE 'validated' END,
        outcome_at = o.ts
    FROM o
    WHERE p.workspace_id = o.workspace_id AND p.id = o.prediction_id
      AND (p.outcome_at IS NULL OR o.ts > p.outcome_at
           -- the job's measurement on a snapshot: an explicit outcome replaces it, whatever its time
           OR EXISTS (SELECT 1 FROM prediction_accuracy a WHERE a.workspace_id = p.workspace_id
                      AND a.prediction_id = p.id AND a.source = 'engagement'))
)""" + _ACCURACY.replace("{source}", "outcome"),
)

PARK_USER_FEEDBACK = park_sql("user_feedback", "prediction_id uuid, suggestion_id uuid", (
    _PREDICTION_MISSING,
    ("r.suggestion_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ai_suggestions s "
     "WHERE s.workspace_id = r.workspace_id AND s.id = r.suggestion_id)", "'suggestion ' || r.suggestion_id"),
))

_FEEDBACK = """
WITH o AS (
    SELECT DISTINCT ON (r.workspace_id, r.prediction_id, r.suggestion_id) r.*,
        jsonb_strip_nulls(jsonb_build_object('rating', r.rating, 'correct', r.correct, 'accepted', r.accepted,
            'actual_score', r.actual_score, 'comment', r.comment, 'user_id', r.user_id, 'at', r.ts)) AS feedback,
        NULL::jsonb AS actual_metrics
    FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, user_id text, prediction_id uuid,
        suggestion_id uuid, rating integer, correct boolean, accepted boolean, actual_score double precision,
        comment text)
    ORDER BY r.workspace_id, r.prediction_id, r.suggestion_id, r.ts DESC
)"""

# the latest feedback per prediction stands; `correct` = false invalidates it; an actual value in
# feedback counts for accuracy only while no explicit outcome has come
# one statement per batch, as PREDICTION_OUTCOME: the accuracy insert reads nothing the two updates change
USER_FEEDBACK = (
    _FEEDBACK + """, updated AS (
    UPDATE predictions p SET
        feedback_received = o.feedback, feedback_at = o.ts,
        status = CASE WHEN o.correct IS FALSE THEN 'invalidated' WHEN o.correct IS TRUE THEN 'validated' ELSE p.status END,
        actual_score = CASE WHEN p.outcome_at IS NULL AND o.actual_score IS NOT NULL THEN o.actual_score ELSE p.actual_score END,
        accuracy_score = CASE WHEN p.outcome_at IS NULL AND o.actual_score IS NOT NULL
            THEN prediction_accuracy_score(p.predicted_score, o.actual_score) ELSE p.accuracy_score END
    FROM o
    WHERE o.prediction_id IS NOT NULL AND p.workspace_id = o.workspace_id AND p.id = o.prediction_id
      AND (p.feedback_at IS NULL OR o.ts > p.feedback_at)
), suggestions AS (
    UPDATE ai_suggestions s SET
        status = CASE WHEN o.accepted IS TRUE THEN 'accepted' WHEN o.accepted IS FALSE THEN 'rejected' ELSE s.status END,
        feedback = o.feedback, feedback_at = o.ts
    FROM o
    WHERE o.suggestion_id IS NOT NULL AND s.workspace_id = o.workspace_id AND s.id = o.suggestion_id
      AND (s.feedback_at IS NULL OR o.ts > s.feedback_at)
)""" + _ACCURACY.replace("{source}", "feedback"),
)
