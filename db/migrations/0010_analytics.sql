-- 0010: helpers of the analytics jobs (issue #10).

-- a post's interactions (likes + shares + comments + saves) as of time t: its latest snapshot at or
-- before t, 0 before its first (the counters are cumulative, so gains are differences of this)
CREATE FUNCTION interactions_at(ws uuid, post uuid, t timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT likes + shares + comments + saves FROM content_performance_metrics
                     WHERE workspace_id = ws AND content_id = post AND recorded_at <= t
                     ORDER BY recorded_at DESC LIMIT 1), 0)
$$;
