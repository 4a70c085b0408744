-- 0047: engagement rates count only posts that report views; whole weeks in the weekly aggregate;
-- an overflow-safe mean in ai_performance_dashboard (issue #25, review 2
-- findings R5, R11, R6b).
--
-- (R5) engagement_rate = interactions gained / views gained. A platform that reports no views
-- (Instagram's posts: views always 0) gains interactions and never views, so its interactions were
-- divided by the views of other posts: a TikTok post +1,000 views +100 interactions and an
-- Instagram post +1,000 interactions gave 1,100 / 1,000 = 110 %. Posting times (0033,
-- db/analytics/posting_times.py) already leave a post out of the rate when its latest snapshot has
-- 0 views. The one definition, for every rate computed from gains (the daily and weekly aggregates
-- below, the engagement report source db/reports/query.py):
--
--   engagement_rate = (interactions gained on snapshots that report views) / views gained,
--   a snapshot reporting views when its post's views are above 0 at it or at an earlier snapshot
--   (its high-water mark of views > 0); NULL when no views were gained.
--
-- A views gain is only possible on such a snapshot, so numerator and denominator cover the same
-- posts: the example gives 100 / 1,000 = 0.1. A post counts from its first snapshot with views on
-- (an interaction gained while it still showed 0 views does not), so a post seen as posting times
-- sees it (latest snapshot 0 views: no rate) contributes nothing; interactions and the other sums
-- still count every post. content_gains (0028) and content_gains_between (0040) gain the column
-- `reports_views` (the same in both: the high-water mark of views through the snapshot > 0) so
-- that every reader applies it the same way: sum(interactions_gained) FILTER (WHERE reports_views).
--
-- (R11) analytics_aggregated_weekly kept the snapshots of the last 365 days, cut at a day: the
-- oldest week began on a weekday other than Monday and showed part of a week as a week (+1,000 on
-- its Monday dropped, 500 shown instead of 1,500). Its window now starts at the Monday (00:00 UTC)
-- of the week that contains the day 365 days ago, so every row is a whole ISO week (the current
-- one up to now).
--
-- (R6b) ai_performance_dashboard (0007) averaged improvement_percentage with avg(), which fails the
-- whole query ("value out of range: overflow") when a valid value's square leaves the double range
-- (a metric going 1e-150 -> 1e150 is +1e302 %). It uses the overflow-safe mean of
-- db/analytics/safe.py now (in doubles, bit for bit as before, while every value is under 1e150 in
-- magnitude; else in numeric, brought back by float8_or_null, 0028); its columns and names are
-- unchanged. trend_analysis_view gets the same mean of engagement_impact (a reported trend may
-- carry up to 1.8e308) where 0048 redefines it.
--
-- The materialized views are dropped and created again as 0030 and 0040 did: the same columns,
-- unique indexes, <name>_mine views and grants.

-- (R5) the column, appended (CREATE OR REPLACE keeps 0028's grants and security_invoker)
CREATE OR REPLACE VIEW content_gains WITH (security_invoker = true) AS
SELECT workspace_id, content_id, platform, connector_id, recorded_at, id,
    greatest(views - max(views) OVER w, 0) AS views_gained,
    greatest(likes - max(likes) OVER w, 0) AS likes_gained,
    greatest(shares - max(shares) OVER w, 0) AS shares_gained,
    greatest(comments - max(comments) OVER w, 0) AS comments_gained,
    greatest(saves - max(saves) OVER w, 0) AS saves_gained,
    -- numeric: four gains of up to 2^63 - 1 each can exceed bigint (likes = shares = 5e18)
    greatest(likes - max(likes) OVER w, 0)::numeric + greatest(shares - max(shares) OVER w, 0)
        + greatest(comments - max(comments) OVER w, 0) + greatest(saves - max(saves) OVER w, 0) AS interactions_gained,
    (count(*) OVER w = 0) AS first_snapshot,
    -- GREATEST ignores the NULL of a first snapshot
    greatest(views, max(views) OVER w) > 0 AS reports_views
FROM content_performance_metrics
WINDOW w AS (PARTITION BY workspace_id, content_id ORDER BY recorded_at, id
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);

COMMENT ON COLUMN content_gains.reports_views IS
    'the post reports views at this snapshot: its views here or at an earlier snapshot are above 0; the '
    'interactions counted in engagement_rate; 0047';

-- content_gains_between returns one more column: dropped (with the materialized view that calls
-- it) and created again; the rest is 0040's definition.
DROP VIEW analytics_aggregated_daily_mine;
DROP MATERIALIZED VIEW analytics_aggregated_daily;
DROP VIEW analytics_aggregated_weekly_mine;
DROP MATERIALIZED VIEW analytics_aggregated_weekly;
DROP FUNCTION content_gains_between(uuid, timestamptz, timestamptz);

CREATE FUNCTION content_gains_between(ws uuid, t0 timestamptz, t1 timestamptz)
    RETURNS TABLE (workspace_id uuid, content_id uuid, platform varchar(50), connector_id varchar(100),
                   recorded_at timestamptz, id uuid, views_gained bigint, likes_gained bigint,
                   shares_gained bigint, comments_gained bigint, saves_gained bigint,
                   interactions_gained numeric, first_snapshot boolean, reports_views boolean)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER AS $$
    WITH cur AS (
        SELECT m.content_id, m.platform, m.connector_id, m.recorded_at, m.id,
            m.views, m.likes, m.shares, m.comments, m.saves
        FROM public.content_performance_metrics m
        WHERE m.workspace_id = ws AND m.recorded_at >= t0 AND m.recorded_at < t1
    ), x AS (
        SELECT c.*, true AS in_period FROM cur c
        UNION ALL
        SELECT k.content_id, NULL, NULL, NULL, NULL, b.views, b.likes, b.shares, b.comments, b.saves, false
        FROM (SELECT DISTINCT content_id FROM cur) k CROSS JOIN LATERAL (
            SELECT max(m.views) AS views, max(m.likes) AS likes, max(m.shares) AS shares,
                max(m.comments) AS comments, max(m.saves) AS saves
            FROM public.content_performance_metrics m
            WHERE m.content_id = k.content_id AND m.workspace_id = ws AND m.recorded_at < t0
            HAVING count(*) > 0) b
    ), g AS (
        SELECT x.*,
            greatest(x.views - max(x.views) OVER w, 0) AS views_gained,
            greatest(x.likes - max(x.likes) OVER w, 0) AS likes_gained,
            greatest(x.shares - max(x.shares) OVER w, 0) AS shares_gained,
            greatest(x.comments - max(x.comments) OVER w, 0) AS comments_gained,
            greatest(x.saves - max(x.saves) OVER w, 0) AS saves_gained,
            count(*) OVER w = 0 AS first_snapshot,
            greatest(x.views, max(x.views) OVER w) > 0 AS reports_views
        FROM x
        WINDOW w AS (PARTITION BY x.content_id ORDER BY x.in_period, x.recorded_at, x.id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    SELECT ws, g.content_id, g.platform, g.connector_id, g.recorded_at, g.id,
        g.views_gained, g.likes_gained, g.shares_gained, g.comments_gained, g.saves_gained,
        -- numeric, as in content_gains: four gains of up to 2^63 - 1 can exceed bigint
        g.likes_gained::numeric + g.shares_gained + g.comments_gained + g.saves_gained, g.first_snapshot,
        g.reports_views
    FROM g WHERE g.in_period
$$;

COMMENT ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz) IS
    'the content_gains rows of workspace ws recorded in [t0, t1), from those snapshots and one high-water-mark row per post before t0; 0040, 0047';

REVOKE ALL ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz)
    TO learnstream_member, learnstream_service;

-- (R5) 0040's definition, the rate over the snapshots that report views
CREATE MATERIALIZED VIEW analytics_aggregated_daily AS
SELECT g.workspace_id, g.platform, (g.recorded_at AT TIME ZONE 'UTC')::date AS day,
    count(DISTINCT g.content_id) AS content_count,
    bigint_or_null(sum(g.views_gained)) AS views, bigint_or_null(sum(g.likes_gained)) AS likes,
    bigint_or_null(sum(g.shares_gained)) AS shares, bigint_or_null(sum(g.comments_gained)) AS comments,
    bigint_or_null(sum(g.saves_gained)) AS saves,
    (sum(g.interactions_gained) FILTER (WHERE g.reports_views))::double precision
        / nullif(sum(g.views_gained), 0) AS engagement_rate
FROM (SELECT DISTINCT workspace_id FROM content_performance_metrics
      WHERE recorded_at >= date_trunc('day', now(), 'UTC') - interval '90 days') w
    CROSS JOIN LATERAL content_gains_between(w.workspace_id, date_trunc('day', now(), 'UTC') - interval '90 days',
                                             'infinity') g
GROUP BY g.workspace_id, g.platform, (g.recorded_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX idx_analytics_aggregated_daily ON analytics_aggregated_daily (workspace_id, platform, day);

-- (R5, R11) 0030's definition (on content_gains, see 0040), the rate over the snapshots that report
-- views, from the Monday of the week 365 days ago (computed in UTC timestamps: no session time zone)
CREATE MATERIALIZED VIEW analytics_aggregated_weekly AS
SELECT workspace_id, platform, date_trunc('week', recorded_at AT TIME ZONE 'UTC')::date AS week,
    count(DISTINCT content_id) AS content_count,
    bigint_or_null(sum(views_gained)) AS views, bigint_or_null(sum(likes_gained)) AS likes,
    bigint_or_null(sum(shares_gained)) AS shares, bigint_or_null(sum(comments_gained)) AS comments,
    bigint_or_null(sum(saves_gained)) AS saves,
    (sum(interactions_gained) FILTER (WHERE reports_views))::double precision
        / nullif(sum(views_gained), 0) AS engagement_rate
FROM content_gains
WHERE recorded_at >= date_trunc('week', (now() AT TIME ZONE 'UTC') - interval '365 days') AT TIME ZONE 'UTC'
GROUP BY workspace_id, platform, date_trunc('week', recorded_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX idx_analytics_aggregated_weekly ON analytics_aggregated_weekly (workspace_id, platform, week);

COMMENT ON MATERIALIZED VIEW analytics_aggregated_daily IS
    'per workspace, platform and UTC day of the last 90: engagement gained (sums of content_gains, through content_gains_between); 0030, 0040, 0047';
COMMENT ON MATERIALIZED VIEW analytics_aggregated_weekly IS
    'per workspace, platform and whole UTC week (Monday) from the week of 365 days ago: engagement gained (sums of content_gains); 0030, 0047';

DO $$
DECLARE m text;
BEGIN
    FOREACH m IN ARRAY ARRAY['analytics_aggregated_daily', 'analytics_aggregated_weekly'] LOOP
        EXECUTE format('COMMENT ON COLUMN %I.content_count IS %L', m, 'posts with a snapshot recorded in the period');
        EXECUTE format('COMMENT ON COLUMN %I.views IS %L', m, 'views gained in the period (content_gains), not a total');
        EXECUTE format('COMMENT ON COLUMN %I.engagement_rate IS %L', m,
                       'interactions gained on snapshots that report views (content_gains.reports_views) / views '
                       'gained; NULL when no views were gained');
        -- as 0013, 0030 and 0040 made them
        EXECUTE format('CREATE VIEW %I WITH (security_barrier) AS SELECT * FROM %I WHERE workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, ''viewer''))', m || '_mine', m);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, learnstream_service', m);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO learnstream_maintenance', m);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, learnstream_service', m || '_mine');
        EXECUTE format('GRANT SELECT ON %I TO learnstream_member, learnstream_service', m || '_mine');
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO learnstream_maintenance', m || '_mine');
    END LOOP;
END
$$;

-- (R6b) the safe mean of db/analytics/safe.py (avg), spelled out; the rest is 0007's definition
CREATE OR REPLACE VIEW ai_performance_dashboard WITH (security_invoker = true) AS
SELECT
    workspace_id,
    date_trunc('day', recorded_at, 'UTC') AS date,
    improvement_type,
    CASE WHEN bool_and(abs(improvement_percentage) < 1e150) IS NOT FALSE
         THEN avg(improvement_percentage) FILTER (WHERE abs(improvement_percentage) < 1e150)
         ELSE float8_or_null(avg(improvement_percentage::numeric)) END AS daily_improvement,
    count(*) AS improvement_count
FROM ai_improvement_tracking
GROUP BY workspace_id, date_trunc('day', recorded_at, 'UTC'), improvement_type;

-- (review 3 F7) optimal posting times fall back, per account, to a lifetime basis when its posts
-- measured at age 24 h (R7) score no cell: e.g. a history imported in one go, a snapshot per post
-- taken weeks after it was published. Such a basis is named in the measure itself, so every reader
-- of `metric` (the CLI's measure, the report source's measure, the Grafana panel) shows it and an
-- account's cells never mix bases: 'engagement_rate (lifetime, posts >= 7 days)' and
-- 'interactions_per_post (lifetime, posts >= 7 days)' = the measure on each post's latest snapshot,
-- posts at least 7 days old at it (db/analytics/posting_times.py LIFETIME_MIN_AGE_DAYS).
ALTER TABLE optimal_posting_times
    DROP CONSTRAINT optimal_posting_times_metric,
    ALTER COLUMN metric TYPE varchar(60),
    ADD CONSTRAINT optimal_posting_times_metric CHECK (metric IN ('engagement_rate', 'interactions_per_post',
        'engagement_rate (lifetime, posts >= 7 days)', 'interactions_per_post (lifetime, posts >= 7 days)'));

COMMENT ON COLUMN optimal_posting_times.metric IS
    'what avg_engagement measures: engagement_rate, or interactions_per_post for an account whose posts report '
    'no views (0033), at age 24 h; with " (lifetime, posts >= 7 days)" when the account scored no cell at 24 h and '
    'its posts at least 7 days old at their latest snapshot are measured on it (0047, review 3 F7)';
