-- 0041: which metrics are better when lower, by the words of their names (issue #25, review of item 6).
--
-- 0032 turned the sign of improvement_percentage for a metric whose name *contains* loss, error,
-- mae, mse, rmse, mape or latency. A review found names it judges wrong, 200 -> 100 reported as a
-- loss of 50 %: response_time_ms, p95_duration_s, cost_usd, perplexity, bounce_rate; and
-- error_detection_recall, a recall (better when higher), reported as better when it fell.
--
-- Now the name is split into words (on anything but letters and digits, lower-cased) and:
--   1. a word that names a higher-is-better measure decides "higher" (recall, precision, accuracy,
--      f1, auc, ...: error_detection_recall is a recall);
--   2. else a word that names a lower-is-better one decides "lower" (loss, error, latency, time,
--      duration, cost, perplexity, bounce, churn, ...);
--   3. else 0032's rule, by substring, so an unseparated name like `valloss` keeps its meaning;
--   4. else higher is better.
-- A declared direction would be better than any name rule; producers can send improvement_percentage
-- themselves (positive = better), which is stored as sent.
--
-- The stored rows whose direction this changes get their sign turned: every model_evaluation row
-- (the model_improvements job computed it by the old rule and rewrites a row only when its values
-- change), and an event's row when its value is the one 0032's rule computed (a value the producer
-- sent is left as sent).

CREATE OR REPLACE FUNCTION metric_lower_is_better(metric text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN w && ARRAY['accuracy', 'acc', 'precision', 'recall', 'f1', 'f2', 'fbeta', 'auc', 'roc', 'ap', 'map',
                        'ndcg', 'mrr', 'bleu', 'rouge', 'meteor', 'r2', 'iou', 'dice', 'hit', 'hits', 'coverage',
                        'throughput', 'qps', 'rps', 'uptime', 'availability', 'success', 'ctr', 'conversion',
                        'engagement', 'retention', 'reward', 'score', 'sharpe', 'gain', 'speedup']
            THEN false
        WHEN w && ARRAY['loss', 'error', 'errors', 'err', 'mae', 'mse', 'rmse', 'mape', 'smape', 'wer', 'cer',
                        'latency', 'time', 'duration', 'delay', 'lag', 'ms', 'seconds', 'sec', 'cost', 'usd', 'price',
                        'perplexity', 'ppl', 'bounce', 'churn', 'failures', 'failure', 'fpr', 'fnr', 'regret',
                        'memory', 'cpu', 'tokens']
            THEN true
        ELSE metric ~* '(loss|error|mae|mse|rmse|mape|latency)'
    END
    FROM (SELECT regexp_split_to_array(lower(metric), '[^a-z0-9]+') AS w) AS words
$$;

COMMENT ON FUNCTION metric_lower_is_better(text) IS
    'better when lower, by the words of the name: a higher-is-better word (recall, accuracy, auc, ...) wins, '
    'then a lower-is-better one (loss, error, latency, time, duration, cost, perplexity, bounce, ...), '
    'then 0032''s substring rule (loss|error|mae|mse|rmse|mape|latency); else higher is better; 0041';

-- the rows whose direction changed: turn the sign where the old rule computed it
UPDATE ai_improvement_tracking SET improvement_percentage = -improvement_percentage
WHERE metric_lower_is_better(metric) <> (metric ~* '(loss|error|mae|mse|rmse|mape|latency)')
  AND improvement_percentage IS NOT NULL AND improvement_percentage <> 0
  AND (source_event_type = 'model_evaluation'
       OR (jsonb_typeof(before_metrics -> metric) = 'number' AND jsonb_typeof(after_metrics -> metric) = 'number'
           AND abs((before_metrics ->> metric)::numeric) BETWEEN 1e-300 AND 1e300
           AND abs((after_metrics ->> metric)::numeric) <= 1e300
           AND improvement_percentage = (CASE WHEN metric ~* '(loss|error|mae|mse|rmse|mape|latency)' THEN -1 ELSE 1 END) * 100.0
               * ((after_metrics ->> metric)::double precision - (before_metrics ->> metric)::double precision)
               / abs((before_metrics ->> metric)::double precision)));
