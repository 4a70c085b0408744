-- 0038: values that are valid to the stream but not to PostgreSQL's arithmetic or zones must not
-- fail a job for every tenant (issue #25 review items 4, 5, 6).
--
-- (4) Time zones. The stream checks connectors.timezone against Python's zone list; PostgreSQL has
-- its own (another tzdata build may lack a zone, or know one Python does not). A zone PostgreSQL
-- does not know made every `AT TIME ZONE` on the column fail ("time zone ... not recognized"):
-- optimal_posting_times stopped at that workspace, engagement_by_local_time and the
-- engagement_summary_by_hour / _by_day views (0033) failed for every unfiltered reader. The column
-- now holds only zones PostgreSQL knows (CHECK timezone_known): rows already holding another are
-- set to NULL here (counted in a NOTICE), and the routing of account snapshots
-- (db/domain/accounts.py) stores such a zone as NULL (the account counts as UTC, as one without a
-- zone) instead of dead-lettering the snapshot: its followers and rates are good data.
--
-- (5) Doubles. prediction_accuracy_score (0006) could overflow (p = 1e308, a = 0.5) and gave NaN
-- for a NaN prediction; the absolute and percentage errors (100 x |p - a| / |a|, p = 1e308, a = 1)
-- overflowed and failed the prediction_accuracy job for every workspace. They are functions now,
-- the job's and the outcome routing's one definition: the same double arithmetic as before where it
-- cannot leave the double range (identical results there), numeric beyond it, NULL when the
-- figure is not a double (float8_or_null, 0028) or a NaN came in.

-- (4) ------------------------------------------------------------------------------------------

-- true when PostgreSQL knows the zone (`AT TIME ZONE` accepts it). Declared IMMUTABLE for the
-- CHECK: the zone list changes only with the server's tzdata, and a zone dropped by an upgrade is
-- not re-checked in stored rows (the readers' coalesce(timezone_or_null(...), 'UTC') covers those).
CREATE FUNCTION timezone_known(tz text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    PERFORM now() AT TIME ZONE tz;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
    RETURN false;
END
$$;

-- the zone when PostgreSQL knows it, else NULL
CREATE FUNCTION timezone_or_null(tz text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN timezone_known(tz) THEN tz END
$$;

COMMENT ON FUNCTION timezone_known(text) IS 'true when PostgreSQL knows the time zone (AT TIME ZONE accepts it); 0038';
COMMENT ON FUNCTION timezone_or_null(text) IS 'the time zone when PostgreSQL knows it, else NULL; 0038';
GRANT EXECUTE ON FUNCTION timezone_known(text) TO learnstream_member, learnstream_service;
GRANT EXECUTE ON FUNCTION timezone_or_null(text) TO learnstream_member, learnstream_service;

DO $$
DECLARE n bigint;
BEGIN
    UPDATE connectors SET timezone = NULL WHERE timezone IS NOT NULL AND NOT timezone_known(timezone);
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE NOTICE '0038: % connectors had a time zone PostgreSQL does not know; set to NULL (UTC)', n;
END
$$;

ALTER TABLE connectors ADD CONSTRAINT connectors_timezone_known CHECK (timezone_known(timezone));
COMMENT ON COLUMN connectors.timezone IS
    'IANA zone of the account, one PostgreSQL knows (CHECK; a snapshot''s other zone is stored NULL); NULL = UTC (0038)';

-- (5) ------------------------------------------------------------------------------------------

-- relative-error accuracy, 0..1: max(0, 1 - |p - a| / |a|); a = 0: 1 when p = 0, else 0 (as 0006).
-- Where |p - a| >= |a| the score is 0 without dividing (p and a of opposite signs included, whose
-- difference may overflow); below that the quotient is < 1 and computed as before. NULL for a NaN.
CREATE OR REPLACE FUNCTION prediction_accuracy_score(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN actual = 0 THEN CASE WHEN predicted = 0 THEN 1.0 ELSE 0.0 END
                WHEN sign(predicted) <> sign(actual) THEN 0.0
                WHEN abs(predicted - actual) >= abs(actual) THEN 0.0
                ELSE 1.0 - abs(predicted - actual) / abs(actual) END
$$;

-- |p - a|; NULL beyond the double range (p = 1.7e308, a = -1.7e308) or for a NaN
CREATE FUNCTION prediction_absolute_error(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted = 'NaN' OR actual = 'NaN' THEN NULL
                WHEN abs(predicted) <= 8e307 AND abs(actual) <= 8e307 THEN abs(predicted - actual)
                ELSE float8_or_null(abs(predicted::numeric - actual::numeric)) END
$$;

-- 100 x |p - a| / |a|, %; NULL when a = 0, for a NaN, and beyond the double range (p = 1e308,
-- a = 1: 1e310 %). Within |p|, |a| <= 1e150 and |a| >= 1e-150 the double arithmetic cannot
-- overflow or underflow and is used as before; outside it numeric.
CREATE FUNCTION prediction_percentage_error(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN predicted = 'NaN' OR actual = 'NaN' OR actual = 0 THEN NULL
                WHEN abs(predicted) <= 1e150 AND abs(actual) <= 1e150 AND abs(actual) >= 1e-150
                THEN 100.0 * abs(predicted - actual) / abs(actual)
                ELSE float8_or_null(100 * abs(predicted::numeric - actual::numeric) / abs(actual::numeric)) END
$$;

COMMENT ON FUNCTION prediction_accuracy_score(double precision, double precision) IS
    'relative-error accuracy, 0..1: max(0, 1 - |p - a| / |a|); a = 0: 1 when p = 0, else 0; NULL for a NaN (asymmetric: 3x too high 0, 3x too low 1/3); 0006, 0038';
COMMENT ON FUNCTION prediction_absolute_error(double precision, double precision) IS
    '|p - a|; NULL beyond the double range or for a NaN; 0038';
COMMENT ON FUNCTION prediction_percentage_error(double precision, double precision) IS
    '100 x |p - a| / |a|; NULL when a = 0, beyond the double range or for a NaN; 0038';
GRANT EXECUTE ON FUNCTION prediction_absolute_error(double precision, double precision) TO learnstream_service;
GRANT EXECUTE ON FUNCTION prediction_percentage_error(double precision, double precision) TO learnstream_service;

-- (6) ------------------------------------------------------------------------------------------
-- platform_performance_summary (0008): a post's interactions likes + shares + comments + saves
-- were added in bigint, which four counters near 2^63 leave (likes = shares = 5e18): the hourly
-- refresh failed, and with it every materialized view after it, for every workspace. Added in
-- numeric now; the rest is 0008's definition. Dropped and created again as 0030 did its
-- neighbours: unique index, <name>_mine view (0013), grants (0013, 0022).

DROP VIEW platform_performance_summary_mine;
DROP MATERIALIZED VIEW platform_performance_summary;

CREATE MATERIALIZED VIEW platform_performance_summary AS
SELECT workspace_id, platform, count(*) AS content_count, sum(views) AS total_views,
    avg(views) AS avg_views,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY views) AS p50_views,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY views) AS p90_views,
    avg(rate) AS avg_engagement_rate,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY rate) AS p50_engagement_rate,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY rate) AS p90_engagement_rate
FROM (
    SELECT DISTINCT ON (workspace_id, platform, content_id) workspace_id, platform, content_id, views,
        (likes::numeric + shares + comments + saves)::double precision / nullif(views, 0) AS rate
    FROM content_performance_metrics
    ORDER BY workspace_id, platform, content_id, recorded_at DESC
) AS latest
GROUP BY workspace_id, platform;
CREATE UNIQUE INDEX idx_platform_performance_summary ON platform_performance_summary (workspace_id, platform);

COMMENT ON MATERIALIZED VIEW platform_performance_summary IS
    'per workspace and platform, each post''s latest snapshot: counts, views, engagement rates (0008; numeric interactions 0038)';

CREATE VIEW platform_performance_summary_mine WITH (security_barrier) AS
    SELECT * FROM platform_performance_summary
    WHERE workspace_id IN (SELECT public.member_workspaces(current_user, 'viewer'));
REVOKE ALL ON platform_performance_summary FROM PUBLIC, learnstream_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON platform_performance_summary TO learnstream_maintenance;
REVOKE ALL ON platform_performance_summary_mine FROM PUBLIC, learnstream_service;
GRANT SELECT ON platform_performance_summary_mine TO learnstream_member, learnstream_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON platform_performance_summary_mine TO learnstream_maintenance;
