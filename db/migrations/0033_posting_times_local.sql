-- 0033: optimal posting times ranked on enough posts and measured without views; engagement by
-- hour in the account's zone (issue #25, items 7 and 8).
--
--  * optimal_posting_times.optimization_score becomes nullable: a cell with fewer posts than the
--    job's minimum (db/analytics/posting_times.py MIN_POSTS) is stored with its sample_size,
--    avg_engagement and confidence but no score (too few posts to rank), and an account whose
--    cells all have a lower bound of 0 has no score either (nothing to rank on).
--  * optimal_posting_times.metric names what avg_engagement (and the ranking) measures:
--    'engagement_rate' = (likes + shares + comments + saves) / views of each post's latest
--    snapshot, or 'interactions_per_post' = likes + shares + comments + saves of each post's latest
--    snapshot, for an account none of whose posts in the window reports views (a platform that
--    reports no views). Existing rows were computed as rates: the default.
--  * engagement_by_local_time: each engagement_by_time cell (UTC day, UTC hour) with the day, day
--    of week and hour in its account's zone (connectors.timezone; UTC when the account or its zone
--    is unknown): local = (day + hour) AT TIME ZONE 'UTC' AT TIME ZONE zone, the local time at which
--    the UTC hour starts. In a zone whose offset is not whole hours (Asia/Kolkata, +05:30) a UTC
--    hour cell goes whole to the local hour its start falls in (10:00 UTC = 15:30 IST -> hour 15).
--    Across a daylight-saving change each UTC hour keeps its own cell: in Europe/Berlin on the
--    last Sunday of March no cell has local hour 2 (01:00 UTC = 03:00 CEST), on the last Sunday
--    of October two do (00:00 UTC = 02:00 CEST and 01:00 UTC = 02:00 CET).
--  * engagement_summary_by_hour / engagement_summary_by_day (seed 003, 0007) keep their columns
--    and now group by the local hour / local day of week (they read engagement_by_local_time).

ALTER TABLE optimal_posting_times
    ALTER COLUMN optimization_score DROP NOT NULL,
    ADD COLUMN metric varchar(30) NOT NULL DEFAULT 'engagement_rate'
        CONSTRAINT optimal_posting_times_metric CHECK (metric IN ('engagement_rate', 'interactions_per_post'));

COMMENT ON COLUMN optimal_posting_times.optimization_score IS
    '0-100: the cell''s lower bound against the account''s best; NULL when the cell has fewer than MIN_POSTS '
    'posts or the account''s best lower bound is 0 (0033)';
COMMENT ON COLUMN optimal_posting_times.metric IS
    'what avg_engagement measures: engagement_rate, or interactions_per_post for an account whose posts report '
    'no views (0033)';

CREATE VIEW engagement_by_local_time WITH (security_invoker = true) AS
SELECT
    e.workspace_id,
    e.platform,
    e.connector_id,
    l.timezone,
    e.day,
    e.hour_of_day,
    l.local_start::date                         AS local_day,
    extract(dow FROM l.local_start)::smallint   AS local_day_of_week,
    extract(hour FROM l.local_start)::smallint  AS local_hour,
    e.windows,
    e.updates,
    e.minutes,
    e.views_gained,
    e.interactions_gained,
    e.engagement_rate,
    e.engagement_velocity
FROM engagement_by_time e
LEFT JOIN connectors k ON k.workspace_id = e.workspace_id AND k.id = e.connector_id
CROSS JOIN LATERAL (
    SELECT coalesce(k.timezone, 'UTC') AS timezone,
        ((e.day + make_interval(hours => e.hour_of_day)) AT TIME ZONE 'UTC') AT TIME ZONE coalesce(k.timezone, 'UTC')
            AS local_start
) AS l;

COMMENT ON VIEW engagement_by_local_time IS
    'engagement_by_time cells with their account''s local day, day of week and hour (connectors.timezone, else '
    'UTC): the local time the UTC hour starts at (a half-hour zone: the local hour the start falls in); 0033';

CREATE OR REPLACE VIEW engagement_summary_by_hour WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    local_hour                       AS hour_of_day,
    sum(windows)::bigint             AS windows,
    sum(updates)::bigint             AS updates,
    sum(minutes)                     AS minutes,
    sum(views_gained)::bigint        AS views_gained,
    sum(interactions_gained)::bigint AS interactions_gained,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0)::double precision
                                     AS engagement_rate,
    sum(views_gained)::double precision / nullif(sum(minutes), 0)
                                     AS engagement_velocity
FROM engagement_by_local_time
GROUP BY workspace_id, platform, local_hour;

CREATE OR REPLACE VIEW engagement_summary_by_day WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    local_day_of_week                AS day_of_week,
    sum(windows)::bigint             AS windows,
    sum(updates)::bigint             AS updates,
    sum(minutes)                     AS minutes,
    sum(views_gained)::bigint        AS views_gained,
    sum(interactions_gained)::bigint AS interactions_gained,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0)::double precision
                                     AS engagement_rate,
    sum(views_gained)::double precision / nullif(sum(minutes), 0)
                                     AS engagement_velocity
FROM engagement_by_local_time
GROUP BY workspace_id, platform, local_day_of_week;

COMMENT ON VIEW engagement_summary_by_hour IS
    'seed 003: engagement_by_time summed per workspace, platform and hour of day in each account''s zone '
    '(connectors.timezone, else UTC; engagement_by_local_time), over accounts and days; rates from the sums (0033)';
COMMENT ON VIEW engagement_summary_by_day IS
    'seed 003: engagement_by_time summed per workspace, platform and day of week (0 = Sunday) in each account''s '
    'zone (connectors.timezone, else UTC; engagement_by_local_time), over accounts and hours; rates from the sums '
    '(0033)';

GRANT SELECT ON engagement_by_local_time TO learnstream_member, learnstream_service;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_reader') THEN
        GRANT SELECT ON engagement_by_local_time TO learnstream_reader;  -- as the summaries (0007)
    END IF;
END
$$;
