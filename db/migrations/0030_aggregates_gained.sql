-- 0030: the daily and weekly aggregates report engagement *gained* in the day / week (issue #25,
-- item 3).
--
-- 0008 summed, per day (week) and platform, each post's latest snapshot of that day (week). The
-- counters are cumulative, so that is neither what the posts gained that day nor a running total:
-- a post counts only on the days it happens to be scraped, with its whole lifetime. Post A scraped
-- on days 1 and 3 (1,000 and 1,500 views) and post B daily (200, 300, 400) gave 1,200 / 300 / 1,900
-- views; the numbers moved with the scrape cadence.
--
-- From here both materialized views are sums of content_gains (0028, the one definition of
-- "gained": a snapshot's counters minus its post's high-water marks, the first snapshot 0, a
-- decrease 0) over the snapshots recorded in the day / week (UTC), per workspace and platform. The
-- same fixture gives 0 / 100 / 600 (day 1: both first snapshots; day 2: B +100; day 3: A +500,
-- B +100). The columns keep the seed's names; what they mean changes:
--   content_count    posts with at least one snapshot recorded in the day / week;
--   views, likes, shares, comments, saves
--                    gained in the day / week (bigint; summed in numeric, NULL when the sum is
--                    beyond bigint: counters near 2^63 must not fail the refresh for everyone);
--   engagement_rate  interactions gained / views gained (likes + shares + comments + saves, each
--                    clamped as content_gains does), NULL when no views were gained.
-- A snapshot's gain is counted from its post's high-water marks wherever reached, also before the
-- 90-day (365-day) window: the window bounds the rows shown, not the history compared with. The
-- windows start at 00:00 UTC (0008 compared with a date, cut in the session's time zone).
--
-- platform_performance_summary is not changed: it takes one snapshot per post (its latest ever)
-- and describes the posts' lifetime counts as last seen (total_views is that sum, a latest
-- cumulative total by name and definition), never summing snapshots of one post.
--
-- The materialized views are dropped and created again, with their unique indexes (REFRESH ...
-- CONCURRENTLY needs them), their <name>_mine security_barrier views (0013) and the grants they had:
-- nothing to the service or PUBLIC on the materialized view (0013, 0022: ls_refresh_materialized_view
-- refreshes as the owner), SELECT on <name>_mine to learnstream_member and learnstream_service, and
-- learnstream_maintenance's SELECT, INSERT, UPDATE, DELETE (0013 gave it on every relation).
-- tests/integration/jobs/test_aggregates.py compares both ACLs with platform_performance_summary's.

DROP VIEW analytics_aggregated_daily_mine;
DROP MATERIALIZED VIEW analytics_aggregated_daily;
DROP VIEW analytics_aggregated_weekly_mine;
DROP MATERIALIZED VIEW analytics_aggregated_weekly;

CREATE MATERIALIZED VIEW analytics_aggregated_daily AS
SELECT workspace_id, platform, (recorded_at AT TIME ZONE 'UTC')::date AS day,
    count(DISTINCT content_id) AS content_count,
    bigint_or_null(sum(views_gained)) AS views, bigint_or_null(sum(likes_gained)) AS likes,
    bigint_or_null(sum(shares_gained)) AS shares, bigint_or_null(sum(comments_gained)) AS comments,
    bigint_or_null(sum(saves_gained)) AS saves,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0) AS engagement_rate
FROM content_gains
WHERE recorded_at >= date_trunc('day', now(), 'UTC') - interval '90 days'
GROUP BY workspace_id, platform, (recorded_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX idx_analytics_aggregated_daily ON analytics_aggregated_daily (workspace_id, platform, day);

CREATE MATERIALIZED VIEW analytics_aggregated_weekly AS
SELECT workspace_id, platform, date_trunc('week', recorded_at AT TIME ZONE 'UTC')::date AS week,
    count(DISTINCT content_id) AS content_count,
    bigint_or_null(sum(views_gained)) AS views, bigint_or_null(sum(likes_gained)) AS likes,
    bigint_or_null(sum(shares_gained)) AS shares, bigint_or_null(sum(comments_gained)) AS comments,
    bigint_or_null(sum(saves_gained)) AS saves,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0) AS engagement_rate
FROM content_gains
WHERE recorded_at >= date_trunc('day', now(), 'UTC') - interval '365 days'
GROUP BY workspace_id, platform, date_trunc('week', recorded_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX idx_analytics_aggregated_weekly ON analytics_aggregated_weekly (workspace_id, platform, week);

COMMENT ON MATERIALIZED VIEW analytics_aggregated_daily IS
    'per workspace, platform and UTC day of the last 90: engagement gained (sums of content_gains); 0030';
COMMENT ON MATERIALIZED VIEW analytics_aggregated_weekly IS
    'per workspace, platform and UTC week (Monday) of the last 365 days: engagement gained (sums of content_gains); 0030';

DO $$
DECLARE m text;
BEGIN
    FOREACH m IN ARRAY ARRAY['analytics_aggregated_daily', 'analytics_aggregated_weekly'] LOOP
        EXECUTE format('COMMENT ON COLUMN %I.content_count IS %L', m, 'posts with a snapshot recorded in the period');
        EXECUTE format('COMMENT ON COLUMN %I.views IS %L', m, 'views gained in the period (content_gains), not a total');
        EXECUTE format('COMMENT ON COLUMN %I.engagement_rate IS %L', m,
                       'interactions gained / views gained; NULL when no views were gained');
        -- as 0013 made them
        EXECUTE format('CREATE VIEW %I WITH (security_barrier) AS SELECT * FROM %I WHERE workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, ''viewer''))', m || '_mine', m);
        -- 0013 and 0022: the materialized view is the owner's (and the maintenance role's) only
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, learnstream_service', m);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO learnstream_maintenance', m);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, learnstream_service', m || '_mine');
        EXECUTE format('GRANT SELECT ON %I TO learnstream_member, learnstream_service', m || '_mine');
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO learnstream_maintenance', m || '_mine');
    END LOOP;
END
$$;
