-- 0048: a detected trend is a row per episode; a metric's direction by the head word of its name
-- (issue #25, second review, R4 and R10).
--
-- R4. trend_analysis had one row per (workspace, platform, type, key, source), so detect_trends
-- folded every detection of a key into one row from the earliest start to the latest end: #sale,
-- rising in the 6 h before Dec 1 12:00 and again before Dec 8 12:00, flat in between, was one row
-- Dec 1 06:00 .. Dec 8 12:00 and counted active on Dec 3-6. Now a detected key has a row per
-- episode (db/analytics/trends.py: a detection whose window overlaps or touches an episode extends
-- it; after a gap a new row starts). A reported trend keeps its one row (db/domain/insights.py),
-- now by a partial unique index. Rows written before stay as they are (the runs they merged are
-- not kept, so they cannot be split).
-- Readers that count trends count a key once, by its latest episode in their window: the report
-- source `trends` (db/reports/query.py) and trend_analysis_view, whose columns stay.

ALTER TABLE trend_analysis DROP CONSTRAINT trend_analysis_workspace_id_platform_trend_type_trend_key_s_key;
CREATE UNIQUE INDEX trend_analysis_reported_key ON trend_analysis (workspace_id, platform, trend_type, trend_key, source)
    WHERE source = 'reported';
-- a key's episodes (detect_trends looks up the ones a window touches); its prefix serves the
-- filters on platform and type as the unique key's did (0042)
CREATE INDEX idx_trend_key_episodes ON trend_analysis (workspace_id, platform, trend_type, trend_key, source, end_time);

CREATE OR REPLACE VIEW trend_analysis_view WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    trend_type,
    CASE WHEN bool_and(abs(engagement_impact) < 1e150) IS NOT FALSE
         THEN avg(engagement_impact) FILTER (WHERE abs(engagement_impact) < 1e150)
         ELSE float8_or_null(avg(engagement_impact::numeric)) END AS avg_impact,
    count(*) AS trend_count
FROM (
    SELECT DISTINCT ON (workspace_id, platform, trend_type, trend_key, source) workspace_id, platform, trend_type,
        engagement_impact
    FROM trend_analysis
    WHERE coalesce(end_time, start_time) >= now() - interval '30 days'
    ORDER BY workspace_id, platform, trend_type, trend_key, source, start_time DESC
) AS latest
GROUP BY workspace_id, platform, trend_type;

COMMENT ON VIEW trend_analysis_view IS
    'seed 001: per workspace, platform and trend type, the trends active in the last 30 days (end_time, else '
    'start_time, within them), each once by its latest episode: count and average engagement_impact (NULL '
    'impacts counted, not averaged; the overflow-safe mean of 0047); 0035, 0047, 0048';

-- R10. 0041's rule, "a higher-is-better word decides first", signed 200 -> 100 as -50 % for
-- error_score (score), retention_cost (retention), brier_score, false_positive_rate and
-- hallucination_rate (no lower-is-better word): all are better when lower, +50 %. Now the head of
-- the name decides, as in an English compound noun (a retention cost is a cost, an error score an
-- error's score, an error-detection recall a recall). The name is split into words (on anything but
-- letters and digits, lower-cased); the first rule that applies decides:
--   1. mtbf, or the words time_between_failure(s): higher (mean_time_between_failures);
--   2. the word false anywhere: lower (false_positive_rate, rate_of_false_positives);
--   3. the head: the part before the first of per, to, at, of, for, by, vs (cost_per_conversion is a
--      cost, recall_at_10 a recall, time_to_first_token a time); its last word with a direction
--      decides; if it has none, the last such word after it. Units (ms, s, seconds, tokens, usd, mb,
--      ...) and words like score, rate, ratio, value, p95, val have no direction here (f1_score is
--      an f1, bounce_rate a bounce, throughput_tokens_per_sec a throughput, uptime_seconds an uptime,
--      error_detection_rate a detection, error_free_sessions free ones, errors_per_second errors);
--   4. no word with a direction, and per followed by a time unit (second, s, sec, minute, min, hour,
--      hr, h, day), no money unit: a throughput, higher (tokens_per_second);
--   5. else a unit anywhere: an amount of time, tokens, money or memory, lower (inference_seconds,
--      total_tokens, seconds_per_token);
--   6. 0032's substring rule (loss|error|mae|mse|rmse|mape|latency), so `valloss` keeps its
--      meaning; else higher is better (0041's `note`).
-- Every name of 0032's, 0041's and 0048's tests keeps its direction (review 3 F1: the first version
-- of this rule counted units and time as heads, so tokens_per_second, throughput_tokens_per_sec,
-- uptime_seconds and mean_time_between_failures were lower, and the UPDATE below re-signed stored
-- rows 0041 had right, F2). A producer that knows better sends improvement_percentage itself
-- (positive = better), which is stored as sent.

CREATE TEMPORARY TABLE metric_direction_0041 ON COMMIT DROP AS
SELECT DISTINCT metric, metric_lower_is_better(metric) AS lower_is_better
FROM ai_improvement_tracking WHERE metric IS NOT NULL;

CREATE OR REPLACE FUNCTION metric_lower_is_better(metric text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        -- 1. a mean time between failures (mtbf) is better when longer
        WHEN 'mtbf' = ANY (w) OR array_to_string(w, '_') ~ '(^|_)time_between_failures?(_|$)' THEN false
        -- 2. a false anything (false_positive_rate, rate_of_false_positives) is better when lower
        WHEN 'false' = ANY (w) THEN true
        ELSE coalesce(
            -- 3. the head: the last word with a direction (units skipped) before any per/to/at/of/...,
            --    else the last such word after it
            (SELECT d.lower FROM unnest(w) WITH ORDINALITY AS x(word, i)
                CROSS JOIN LATERAL (SELECT CASE
                    WHEN x.word = ANY (ARRAY['accuracy', 'acc', 'precision', 'recall', 'f1', 'f2', 'fbeta', 'auc',
                        'roc', 'ap', 'map', 'ndcg', 'mrr', 'bleu', 'rouge', 'meteor', 'r2', 'iou', 'dice', 'hit',
                        'hits', 'coverage', 'throughput', 'qps', 'rps', 'uptime', 'availability', 'success', 'ctr',
                        'conversion', 'conversions', 'engagement', 'retention', 'reward', 'sharpe', 'gain', 'gains',
                        'speedup', 'lift', 'improvement', 'reduction', 'savings', 'saving', 'saved', 'true', 'tpr',
                        'tnr', 'specificity', 'sensitivity', 'kappa', 'mcc', 'relevance', 'faithfulness',
                        'satisfaction', 'revenue', 'profit', 'roi', 'detection', 'detected', 'free', 'mtbf'])
                        THEN false
                    WHEN x.word = ANY (ARRAY['loss', 'error', 'errors', 'err', 'mae', 'mse', 'rmse', 'mape', 'smape',
                        'wer', 'cer', 'latency', 'time', 'duration', 'delay', 'lag', 'cost', 'costs', 'price',
                        'perplexity', 'ppl', 'bounce', 'churn', 'failures', 'failure', 'fpr', 'fnr', 'regret',
                        'memory', 'cpu', 'brier', 'hallucination', 'hallucinations', 'toxicity', 'risk', 'drift',
                        'overhead', 'downtime', 'crash', 'crashes', 'outage', 'outages', 'timeout', 'timeouts'])
                        THEN true END AS lower) AS d
             WHERE d.lower IS NOT NULL
             ORDER BY x.i > coalesce((SELECT min(y.i) FROM unnest(w) WITH ORDINALITY AS y(word, i)
                                      WHERE y.word IN ('per', 'to', 'at', 'of', 'for', 'by', 'vs')), x.i + 1),
                      x.i DESC
             LIMIT 1),
            -- 4. no such word, a count per unit of time (tokens_per_second): a throughput, higher
            CASE WHEN EXISTS (SELECT FROM unnest(w) WITH ORDINALITY AS x(word, i)
                              WHERE x.word = 'per' AND w[x.i::int + 1] = ANY (ARRAY['second', 'seconds', 'sec', 'secs', 's',
                                  'minute', 'minutes', 'min', 'mins', 'hour', 'hours', 'hr', 'hrs', 'h', 'day', 'days']))
                      AND NOT w && ARRAY['usd', 'eur', 'cents']
                 THEN false END,
            -- 5. else a unit: an amount of time, tokens, money or memory (inference_seconds, total_tokens)
            CASE WHEN w && ARRAY['ms', 'us', 'ns', 's', 'sec', 'secs', 'second', 'seconds', 'min', 'mins', 'minute',
                                 'minutes', 'hr', 'hrs', 'hour', 'hours', 'tokens', 'token', 'usd', 'eur', 'cents',
                                 'bytes', 'kb', 'mb', 'gb']
                 THEN true END,
            -- 6. 0032's substring rule (valloss); else higher is better
            metric ~* '(loss|error|mae|mse|rmse|mape|latency)')
    END
    FROM (SELECT regexp_split_to_array(lower(metric), '[^a-z0-9]+') AS w) AS words
$$;

COMMENT ON FUNCTION metric_lower_is_better(text) IS
    'better when lower, by the name''s words, first rule that applies: (1) mtbf or time_between_failure(s): '
    'higher; (2) the word false: lower; (3) the head: the last word with a direction (recall, accuracy, f1, '
    'throughput, uptime, detection, free, ... higher; loss, error, cost, time, latency, brier, ... lower; '
    'units, score, rate, ... none) before any per/to/at/of/for/by/vs, else after it; (4) per + a time unit '
    '(tokens_per_second, not money): higher; (5) a unit (ms, seconds, tokens, usd, mb, ...): lower; '
    '(6) 0032''s substring rule (loss|error|mae|mse|rmse|mape|latency); else higher is better; 0048';

-- the rows whose direction changed: turn the sign where 0041's rule computed it (every
-- model_evaluation row; an event's row whose value is 0041's computation; a value the producer sent
-- is left as sent)
UPDATE ai_improvement_tracking a SET improvement_percentage = -a.improvement_percentage
FROM metric_direction_0041 o
WHERE o.metric = a.metric AND o.lower_is_better <> metric_lower_is_better(a.metric)
  AND a.improvement_percentage IS NOT NULL AND a.improvement_percentage <> 0
  AND (a.source_event_type = 'model_evaluation'
       OR CASE WHEN jsonb_typeof(a.before_metrics -> a.metric) IS DISTINCT FROM 'number'
                    OR jsonb_typeof(a.after_metrics -> a.metric) IS DISTINCT FROM 'number' THEN false
               WHEN NOT abs((a.before_metrics ->> a.metric)::numeric) BETWEEN 1e-300 AND 1e300
                    OR NOT abs((a.after_metrics ->> a.metric)::numeric) <= 1e300 THEN false
               ELSE a.improvement_percentage = (CASE WHEN o.lower_is_better THEN -1 ELSE 1 END) * 100.0
                   * ((a.after_metrics ->> a.metric)::double precision - (a.before_metrics ->> a.metric)::double precision)
                   / abs((a.before_metrics ->> a.metric)::double precision) END);
