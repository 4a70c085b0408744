-- 0032: prediction accuracy, a symmetric measure next to the old one; improvements, one sign
-- convention (issue #25 items 5 and 6).
--
-- Two accuracy measures of a numeric prediction p against the actual value a, both named:
--
--  * accuracy_percentage (0006's prediction_accuracy_score x 100), the "relative-error accuracy":
--        100 x max(0, 1 - |p - a| / |a|)          (a = 0: 100 when p = 0, else 0)
--    It is asymmetric: 3x too high (p = 3a) scores 100 x max(0, 1 - 2) = 0 %, 3x too low
--    (p = a/3) 100 x (1 - 2/3) = 33.3 %, 2x too low (p = a/2) 100 x (1 - 1/2) = 50 %.
--
--  * ratio_accuracy (prediction_ratio_accuracy x 100), the "ratio accuracy", symmetric:
--        100 x min(|p|, |a|) / max(|p|, |a|)      when p and a have the same sign (both > 0, or both < 0)
--        100                                      when p = a (0 = 0 included: exactly right)
--        NULL                                     otherwise (one is 0 and the other not, or a sign change:
--                                                  no ratio says how far off it is)
--    3x too high and 3x too low both score 100 x 1/3 = 33.3 %, 2x too low 100 x 1/2 = 50 %,
--    2x too high 50 % too: a factor k off scores 100 / k either way.
--
-- The job (db/analytics/accuracy.py) and the routing of prediction_outcome / user_feedback
-- (db/domain/predictions.py) compute both with these functions.

CREATE FUNCTION prediction_ratio_accuracy(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN predicted = actual THEN 1.0
                WHEN (predicted > 0 AND actual > 0) OR (predicted < 0 AND actual < 0) THEN
                    -- min / max <= 1 cannot overflow, but can underflow (1e-300 / 1e300): such a
                    -- quotient is taken in numeric and rounded to the nearest double (0 or subnormal)
                    CASE WHEN ln(greatest(abs(predicted), abs(actual))) - ln(least(abs(predicted), abs(actual))) < 700
                         THEN least(abs(predicted), abs(actual)) / greatest(abs(predicted), abs(actual))
                         ELSE float8_or_null(least(abs(predicted), abs(actual))::numeric
                                             / greatest(abs(predicted), abs(actual))::numeric) END END
$$;

COMMENT ON FUNCTION prediction_accuracy_score(double precision, double precision) IS
    'relative-error accuracy, 0..1: max(0, 1 - |p - a| / |a|); a = 0: 1 when p = 0, else 0 (asymmetric: 3x too high 0, 3x too low 1/3); 0006';
COMMENT ON FUNCTION prediction_ratio_accuracy(double precision, double precision) IS
    'ratio accuracy, 0..1: min(|p|, |a|) / max(|p|, |a|) when p, a have the same sign, 1 when p = a, else NULL (symmetric: k times off either way scores 1/k); 0032';

GRANT EXECUTE ON FUNCTION prediction_ratio_accuracy(double precision, double precision) TO learnstream_service;

ALTER TABLE prediction_accuracy ADD COLUMN ratio_accuracy double precision CHECK (ratio_accuracy BETWEEN 0 AND 100);
COMMENT ON COLUMN prediction_accuracy.accuracy_percentage IS
    'relative-error accuracy, %: 100 x max(0, 1 - |p - a| / |a|) (asymmetric)';
COMMENT ON COLUMN prediction_accuracy.ratio_accuracy IS
    'ratio accuracy, %: 100 x min(|p|, |a|) / max(|p|, |a|), NULL when p and a differ in sign or one is 0 (symmetric)';
-- rows only hand SQL can make are skipped, not a failed migration: a NaN score has no ratio accuracy
-- (NULL; prediction_ratio_accuracy gives NULL for it too)
UPDATE prediction_accuracy SET ratio_accuracy = 100.0 * prediction_ratio_accuracy(predicted_score, actual_score)
WHERE predicted_score <> 'NaN' AND actual_score <> 'NaN';

-- the mean of the defined ratio accuracies of the day's predictions (NULL when none is), and how many
ALTER TABLE model_accuracy_daily ADD COLUMN mean_ratio_accuracy double precision,
    ADD COLUMN ratio_predictions integer NOT NULL DEFAULT 0 CHECK (ratio_predictions >= 0);
COMMENT ON COLUMN model_accuracy_daily.mean_accuracy IS 'mean relative-error accuracy (accuracy_percentage), %';
COMMENT ON COLUMN model_accuracy_daily.mean_ratio_accuracy IS
    'mean ratio accuracy (ratio_accuracy) over the ratio_predictions whose ratio accuracy is defined, %; NULL when none is';
UPDATE model_accuracy_daily d SET mean_ratio_accuracy = a.mean, ratio_predictions = a.n
FROM (SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date AS day,
             avg(ratio_accuracy) AS mean, count(ratio_accuracy)::integer AS n
      FROM prediction_accuracy GROUP BY 1, 2, 3, 4) AS a
WHERE (d.workspace_id, d.model_id, d.prediction_type, d.day) = (a.workspace_id, a.model_id, a.prediction_type, a.day);

-- ----------------------------------------------------------------------------------------------
-- Improvements: positive = better, everywhere. A metric is lower-is-better when its name contains
-- (case-insensitively) loss, error, mae, mse, rmse, mape or latency; its change is turned around.
-- The model_improvements job (db/analytics/improvements.py) and the routing of
-- improvement_measured / system_optimization (db/domain/insights.py), when improvement_percentage
-- is computed from before/after, both use metric_improvement_percentage. Latency 200 -> 100 ms:
-- -1 x 100 x (100 - 200) / |200| = +50 %; accuracy 0.80 -> 0.84: 100 x 0.04 / 0.80 = +5 %.

CREATE FUNCTION metric_lower_is_better(metric text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT metric ~* '(loss|error|mae|mse|rmse|mape|latency)'
$$;

CREATE FUNCTION metric_improvement_percentage(metric text, before double precision, after double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (CASE WHEN metric_lower_is_better(metric) THEN -1 ELSE 1 END) * 100.0 * (after - before)
           / nullif(abs(before), 0)
$$;

COMMENT ON FUNCTION metric_lower_is_better(text) IS
    'a metric whose name contains loss, error, mae, mse, rmse, mape or latency (any case) is better when lower; 0032';
COMMENT ON FUNCTION metric_improvement_percentage(text, double precision, double precision) IS
    'the change from before to after in % of |before|, positive = better (turned for lower-is-better metrics); NULL when before = 0; 0032';
COMMENT ON COLUMN ai_improvement_tracking.improvement_percentage IS
    'positive = better: computed by metric_improvement_percentage, or as the event sent it';

GRANT EXECUTE ON FUNCTION metric_lower_is_better(text) TO learnstream_service;
GRANT EXECUTE ON FUNCTION metric_improvement_percentage(text, double precision, double precision) TO learnstream_service;

-- rows the routing computed before this migration with the plain (after - before) / |before|
-- sign, for a lower-is-better metric: the same change with the sign of the convention (a value
-- the event sent that differs from that plain change is left as sent)
-- Only JSON numbers 0 or of magnitude in [1e-150, 1e150] are read as doubles (a hand-written 1e400
-- is not a double at all, and in that range the change cannot overflow or underflow): a row with
-- another is left as it is. The guard comes first in a CASE, since AND does not fix an evaluation order.
UPDATE ai_improvement_tracking SET improvement_percentage = -improvement_percentage
WHERE source_event_type <> 'model_evaluation' AND metric_lower_is_better(metric)
  AND improvement_percentage <> 0 AND improvement_percentage <> 'NaN'
  AND CASE WHEN jsonb_typeof(before_metrics -> metric) IS DISTINCT FROM 'number'
                OR jsonb_typeof(after_metrics -> metric) IS DISTINCT FROM 'number'
                THEN false
           WHEN NOT ((before_metrics ->> metric)::numeric = 0 OR abs((before_metrics ->> metric)::numeric) BETWEEN 1e-150 AND 1e150)
             OR NOT ((after_metrics ->> metric)::numeric = 0 OR abs((after_metrics ->> metric)::numeric) BETWEEN 1e-150 AND 1e150)
                THEN false
           ELSE improvement_percentage
                = 100.0 * ((after_metrics ->> metric)::double precision - (before_metrics ->> metric)::double precision)
                  / nullif(abs((before_metrics ->> metric)::double precision), 0) END;
