-- 0048: a detected trend is a row per episode; a metric's direction by the head word of its name
-- (issue #25, second review, R4 and R10).
--
-- R4. trend_analysis had one row per (workspace, platform, type, key, source), so detect_trends
-- folded every detection of a key into one row from the earliest start to the latest end: #sale,
-- rising in the 6 h before Dec 1 12:00 and again before Dec 8 12:00, flat in between, was one row
-- Dec 1 06:00 .. Dec 8 12:00 and counted active on Dec 3-6. Now a detected key has a row per
-- episode (db/analytics/trends.py: a detection whose window overlaps or touches an episode extends
-- it; after a gap a new row starts). A reported trend has a row per episode too (review 3 F5, by
-- route_reported_trends below, db/domain/insights.py: a key reported Dec 1 06-12 and Dec 8 06-12 was
-- one row Dec 1 06:00 .. Dec 8 12:00). Rows written before stay as they are (the runs and
-- reports they merged are not kept, so they cannot be split).
-- Readers that count trends count a key once, by its latest episode in their window (the report
-- source `trends` once per time bucket, db/reports/query.py) and trend_analysis_view, whose columns stay.

ALTER TABLE trend_analysis DROP CONSTRAINT trend_analysis_workspace_id_platform_trend_type_trend_key_s_key;
-- a key's episodes (detect_trends looks up the ones a window touches); its prefix serves the
-- filters on platform and type as the unique key's did (0042)
CREATE INDEX idx_trend_key_episodes ON trend_analysis (workspace_id, platform, trend_type, trend_key, source, end_time);

-- The trend_detected route (db/domain/insights.py; the caller holds a transaction advisory lock
-- per workspace, platform, type and key, so two batches of a key are applied one after the other).
-- Reports are applied one at a time in event time (at the same instant, in batch order). A report
-- spans [s, e]: s = start_time (default: its timestamp), e = end_time; without an end it is still
-- going: [s, infinity). A reported row spans [start_time, end_time], or [start_time, infinity) when
-- a report of it had no end (reported_open). The key's reported rows the report overlaps or touches
-- and the report become one row: the earliest is kept, the others merged into it (none: a new
-- row); start the least; end the greatest end given (none if none was); reported_open if one of
-- them was; trend_data and impact the latest report's that carried one. A row is so a connected
-- span of the key's reports whatever order they come in: routing them again, in any order or
-- batches, gives the same rows. Its id is derived from the key and its start (re-derived when a
-- merge or an earlier report moves the start).
ALTER TABLE trend_analysis ADD COLUMN reported_open boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN trend_analysis.reported_open IS
    'a reported trend one of whose reports had no end: still going, it joins any later report of its key (0048)';
CREATE OR REPLACE FUNCTION route_reported_trends(reports jsonb) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    n integer := 0;
    hi timestamptz;
    ids uuid[];
    keep uuid;
    e record;
BEGIN
    FOR r IN
        SELECT x.workspace_id, x.platform, x.trend_type, x.trend_key, x.ts, coalesce(x.start_time, x.ts) AS s,
            x.end_time AS e, nullif(x.trend_data, '{}'::jsonb) AS trend_data, x.engagement_impact
        FROM jsonb_array_elements(reports) WITH ORDINALITY AS j(v, i)
            CROSS JOIN LATERAL jsonb_to_record(j.v) AS x(workspace_id uuid, ts timestamptz, platform text,
                trend_type text, trend_key text, trend_data jsonb, engagement_impact double precision,
                start_time timestamptz, end_time timestamptz)
        ORDER BY x.ts, j.i
    LOOP
        hi := coalesce(r.e, 'infinity');
        SELECT array_agg(a.id ORDER BY a.start_time, a.id) INTO ids
        FROM trend_analysis a
        WHERE a.workspace_id = r.workspace_id AND a.platform = r.platform AND a.trend_type = r.trend_type
          AND a.trend_key = r.trend_key AND a.source = 'reported'
          AND a.start_time <= hi AND (a.reported_open OR a.end_time IS NULL OR a.end_time >= r.s);
        keep := ids[1];
        SELECT least(r.s, min(a.start_time)) AS start_time,
            greatest(r.e, max(a.end_time)) AS end_time, r.e IS NULL OR coalesce(bool_or(a.reported_open), false) AS is_open,
            coalesce(CASE WHEN r.ts >= coalesce(max(a.last_event_at), '-infinity') THEN r.trend_data END,
                     (array_agg(a.trend_data ORDER BY a.last_event_at DESC, a.start_time DESC)
                         FILTER (WHERE a.trend_data <> '{}'))[1],
                     r.trend_data, '{}') AS trend_data,
            coalesce(CASE WHEN r.ts >= coalesce(max(a.last_event_at), '-infinity') THEN r.engagement_impact END,
                     (array_agg(a.engagement_impact ORDER BY a.last_event_at DESC, a.start_time DESC)
                         FILTER (WHERE a.engagement_impact IS NOT NULL))[1],
                     r.engagement_impact) AS engagement_impact,
            least(r.ts, min(a.created_at)) AS created_at, greatest(r.ts, max(a.last_event_at)) AS last_event_at
        INTO e
        FROM trend_analysis a WHERE a.workspace_id = r.workspace_id AND a.id = ANY (coalesce(ids, '{}'));
        IF keep IS NULL THEN
            INSERT INTO trend_analysis (workspace_id, id, platform, trend_type, trend_key, trend_data, engagement_impact,
                start_time, end_time, reported_open, source, created_at, last_event_at)
            VALUES (r.workspace_id, md5(jsonb_build_array(r.workspace_id, r.platform, r.trend_type, r.trend_key,
                    'reported', e.start_time AT TIME ZONE 'UTC')::text)::uuid, r.platform, r.trend_type, r.trend_key, e.trend_data, e.engagement_impact,
                e.start_time, e.end_time, e.is_open, 'reported', e.created_at, e.last_event_at);
        ELSE
            DELETE FROM trend_analysis a WHERE a.workspace_id = r.workspace_id AND a.id = ANY (ids) AND a.id <> keep;
            UPDATE trend_analysis a SET id = md5(jsonb_build_array(r.workspace_id, r.platform, r.trend_type,
                    r.trend_key, 'reported', e.start_time AT TIME ZONE 'UTC')::text)::uuid,
                start_time = e.start_time, end_time = e.end_time, reported_open = e.is_open, trend_data = e.trend_data,
                engagement_impact = e.engagement_impact, created_at = e.created_at, last_event_at = e.last_event_at
            WHERE a.workspace_id = r.workspace_id AND a.id = keep;
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$fn$;
REVOKE ALL ON FUNCTION route_reported_trends(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION route_reported_trends(jsonb) TO learnstream_service;
COMMENT ON FUNCTION route_reported_trends(jsonb) IS
    'the trend_detected route: each report (in event time) joins the key''s reported episodes it overlaps or '
    'touches into one row, else starts a new one (a report without an end is still going, reported_open); the '
    'same rows in any order and on replay; 0048';

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
    'impacts counted, not averaged; the overflow-safe mean of db/analytics/safe.py); 0035, 0048';

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
