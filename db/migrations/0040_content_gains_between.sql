-- 0040: content_gains_between(ws, t0, t1): the content_gains rows (0028) of one workspace's
-- snapshots recorded in [t0, t1), computed from those snapshots only (issue #25, review finding 16).
--
-- content_gains compares each snapshot with its post's high-water marks through a window over the
-- post's whole history, so a filter on recorded_at cannot go below the window: a one-day Grafana
-- range over 200,000 snapshots read all 200,000 (355 ms, growing with history). The engagement
-- report source had its own copy of the arithmetic that avoided that; this function is that
-- technique, once, for every reader of a period's gains:
--
--  * the period's snapshots: workspace ws, recorded_at >= t0 and < t1 (half-open, as report periods
--    and UTC days are; idx_content_performance_workspace_time);
--  * one base row per post seen in the period, from before t0: the maxima of each counter over the
--    post's snapshots recorded before t0 (its high-water marks at t0, idx_content_performance_content),
--    none when the post has no earlier snapshot;
--  * the same window as content_gains over those rows (the base row first): a snapshot's gain is its
--    value minus the highest value before it, never negative; a post's first snapshot ever gains 0
--    (first_snapshot true: no base row and no earlier snapshot in the period).
--
-- So for every snapshot in [t0, t1) it returns exactly the row content_gains has for it:
--   SELECT * FROM content_gains_between(ws, t0, t1)
--     = SELECT * FROM content_gains WHERE workspace_id = ws AND recorded_at >= t0 AND recorded_at < t1
-- (tests/integration/test_content_gains.py). Views 1,000 (before t0), 1,300, 1,250, 1,400 in the
-- period gain 300, 0, 100. interactions_gained (0028) is the per-post sum over (t0, t1] that
-- detect_trends uses; this is the per-snapshot table over [t0, t1).
--
-- SECURITY INVOKER (the default, spelled out): row-level security of content_performance_metrics
-- applies to the caller, so a member sees only its workspaces' rows whatever ws it passes. It is a
-- single SELECT in LANGUAGE sql, STABLE and not STRICT, so PostgreSQL inlines it into the calling
-- query. Executable by members (Grafana's login, reports) and the service, not PUBLIC. The table is
-- named with its schema: the body is parsed where it is called, also under the refresh function's
-- search_path (pg_catalog, pg_temp; 0022).

CREATE FUNCTION content_gains_between(ws uuid, t0 timestamptz, t1 timestamptz)
    RETURNS TABLE (workspace_id uuid, content_id uuid, platform varchar(50), connector_id varchar(100),
                   recorded_at timestamptz, id uuid, views_gained bigint, likes_gained bigint,
                   shares_gained bigint, comments_gained bigint, saves_gained bigint,
                   interactions_gained numeric, first_snapshot boolean)
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
            count(*) OVER w = 0 AS first_snapshot
        FROM x
        WINDOW w AS (PARTITION BY x.content_id ORDER BY x.in_period, x.recorded_at, x.id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    SELECT ws, g.content_id, g.platform, g.connector_id, g.recorded_at, g.id,
        g.views_gained, g.likes_gained, g.shares_gained, g.comments_gained, g.saves_gained,
        -- numeric, as in content_gains: four gains of up to 2^63 - 1 can exceed bigint
        g.likes_gained::numeric + g.shares_gained + g.comments_gained + g.saves_gained, g.first_snapshot
    FROM g WHERE g.in_period
$$;

COMMENT ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz) IS
    'the content_gains rows of workspace ws recorded in [t0, t1), from those snapshots and one high-water-mark row per post before t0; 0040';

REVOKE ALL ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION content_gains_between(uuid, timestamptz, timestamptz)
    TO learnstream_member, learnstream_service;

-- analytics_aggregated_daily (0030) summed content_gains over the last 90 days: the view's window
-- sorted every snapshot ever recorded (200,000 snapshots over a year: 0.7 s per refresh, a 23 MB
-- sort on disk). It is made again from content_gains_between, per workspace with a snapshot in the
-- window, t0 the window's start (00:00 UTC 90 days ago), t1 infinity: the same rows (a snapshot's
-- gain still counts from its post's high-water marks before the window, through the base row),
-- reading the window's snapshots and one base row per post (0.4 s on the same data). Its columns,
-- unique index, _mine view and grants are 0030's, unchanged. analytics_aggregated_weekly stays on
-- content_gains: its 365-day window is most of the history, where the function was slower (1.4 s
-- against 0.95 s on a year of 200,000 snapshots).

DROP VIEW analytics_aggregated_daily_mine;
DROP MATERIALIZED VIEW analytics_aggregated_daily;

CREATE MATERIALIZED VIEW analytics_aggregated_daily AS
SELECT g.workspace_id, g.platform, (g.recorded_at AT TIME ZONE 'UTC')::date AS day,
    count(DISTINCT g.content_id) AS content_count,
    bigint_or_null(sum(g.views_gained)) AS views, bigint_or_null(sum(g.likes_gained)) AS likes,
    bigint_or_null(sum(g.shares_gained)) AS shares, bigint_or_null(sum(g.comments_gained)) AS comments,
    bigint_or_null(sum(g.saves_gained)) AS saves,
    sum(g.interactions_gained)::double precision / nullif(sum(g.views_gained), 0) AS engagement_rate
FROM (SELECT DISTINCT workspace_id FROM content_performance_metrics
      WHERE recorded_at >= date_trunc('day', now(), 'UTC') - interval '90 days') w
    CROSS JOIN LATERAL content_gains_between(w.workspace_id, date_trunc('day', now(), 'UTC') - interval '90 days',
                                             'infinity') g
GROUP BY g.workspace_id, g.platform, (g.recorded_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX idx_analytics_aggregated_daily ON analytics_aggregated_daily (workspace_id, platform, day);

COMMENT ON MATERIALIZED VIEW analytics_aggregated_daily IS
    'per workspace, platform and UTC day of the last 90: engagement gained (sums of content_gains, through content_gains_between); 0030, 0040';
COMMENT ON COLUMN analytics_aggregated_daily.content_count IS 'posts with a snapshot recorded in the period';
COMMENT ON COLUMN analytics_aggregated_daily.views IS 'views gained in the period (content_gains), not a total';
COMMENT ON COLUMN analytics_aggregated_daily.engagement_rate IS
    'interactions gained / views gained; NULL when no views were gained';

-- as 0013 and 0030 made them: the materialized view is the owner's (and the maintenance role's) only
CREATE VIEW analytics_aggregated_daily_mine WITH (security_barrier) AS
    SELECT * FROM analytics_aggregated_daily
    WHERE workspace_id IN (SELECT public.member_workspaces(current_user, 'viewer'));
REVOKE ALL ON analytics_aggregated_daily FROM PUBLIC, learnstream_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics_aggregated_daily TO learnstream_maintenance;
REVOKE ALL ON analytics_aggregated_daily_mine FROM PUBLIC, learnstream_service;
GRANT SELECT ON analytics_aggregated_daily_mine TO learnstream_member, learnstream_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON analytics_aggregated_daily_mine TO learnstream_maintenance;
