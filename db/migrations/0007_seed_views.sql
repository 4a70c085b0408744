-- 0007: the seeds' other names for the concepts of 0006, as views (issue #9).
--
-- 0006 keeps one table per concept; a seed that calls the same concept by another name, with other
-- columns, gets a view of that name with its columns, so the seed's key queries and views run as
-- written. For all of them:
--  * WITH (security_invoker = true) (PostgreSQL 15): the underlying tables' row-level security
--    (workspace_isolation on learnstream.workspace_id) is applied as the *caller*, not as the
--    view's owner (who is the tables' owner and so bypasses RLS). Without it, a reader role given
--    SELECT on a view would see every workspace. No SECURITY DEFINER functions anywhere;
--  * every view exposes workspace_id, joins on (workspace_id, id) (ids are unique only within a
--    workspace) and aggregates per workspace (workspace_id in SELECT and GROUP BY), so a view never
--    mixes workspaces even for a caller that RLS does not restrict (the owner, the worker);
--  * a view orders nothing (callers order); types are the tables' (double precision, timestamptz).
--
-- Seed 001 (AI learning tracking)
--  * ai_learning_patterns: identified_patterns with 001's columns. pattern_data = pattern_signature
--    plus the keys pattern_name and pattern_description (description only when set); a signature
--    key of the same name wins (jsonb ||), so pattern_data always contains the signature unchanged.
--    first_observed / last_observed = first_detected / last_detected. Key query 1 runs on it as
--    written.
--  * Key queries 2, 3, 4 run as written on the tables content_style_analysis, trend_analysis and
--    ai_improvement_tracking of 0006 (same names, 001's columns). Note, not changed: a GROUP BY on
--    style_tags groups arrays as stored ({a,b} and {b,a} are two groups), and ORDER BY ... DESC puts
--    a group whose average is NULL first; both are the queries' own behaviour.
--  * FIX key query 5 (cross-platform learning) joins content_performance_metrics.content_id =
--    ai_learning_patterns.content_id, a column 001's ai_learning_patterns does not have (the query
--    fails). A pattern is tied to content through its occurrences, and a platform through that
--    content. Joining the metrics table would also have counted each pattern once per metrics
--    snapshot. The view cross_platform_patterns answers the query's intent instead:
--    identified_patterns -> pattern_occurrences (content_id) -> content (platform), per workspace,
--    pattern_type and platform:
--      platform_success   = % of the occurrences on that platform judged (success not null) that
--                           succeeded: 001's success_rate ("% of judged occurrences", as
--                           identified_patterns.success_rate) restricted to the platform. The
--                           patterns' own success_rate spans all platforms, so averaging it (as
--                           the query does) would give every platform the same number;
--      pattern_count      = distinct patterns seen on the platform; occurrence_count,
--      judged_occurrences = occurrences (judged ones) on it; average_engagement = mean engagement
--                           of its occurrences.
--    Occurrences without content_id, or on content not described yet (content_id is a soft
--    reference), have no platform and are left out. Query 5 becomes
--      SELECT pattern_type, platform, platform_success FROM cross_platform_patterns
--      ORDER BY platform_success DESC;
--  * Monitoring views ai_performance_dashboard, style_performance_view, trend_analysis_view as
--    written, with workspace_id in SELECT and GROUP BY. FIX ai_performance_dashboard: 001's
--    DATE_TRUNC('day', recorded_at) ran on a naive timestamp; on timestamptz it would cut days at
--    the session's TimeZone, so one row could belong to different days for different callers. Days
--    are cut in UTC (date_trunc('day', recorded_at, 'UTC'), a timestamptz at 00:00 UTC), as
--    engagement_by_time's hours are UTC. trend_analysis_view keeps 001's window (start_time within
--    the last 30 days of now()).
--
-- Seed 003 (advanced analytics)
--  * viral_score_predictions: predictions whose target_entity_type is 'content'. content_id is
--    target_entity_id as uuid when it is a uuid in canonical form (checked by a regular expression
--    before the cast, so a malformed id never makes the view fail); otherwise null, the row stays.
--    prediction_factors = input_features; model_version = ml_models.version; predicted_at =
--    prediction_timestamp. status in 003's prediction_status words: a stored prediction has been
--    made, so 'active' (awaiting its outcome) and 'validated' are 'completed'; 'invalidated' and
--    'expired' (the outcome proved it wrong / never came) are 'failed'; 'pending' and 'processing'
--    never occur (a prediction is stored once made). 004's status stays in lifecycle_status;
--    prediction_type and model_id are kept too (callers wanting only viral scores filter on it).
--  * published_posts: content with status 'published'; content_id = id, platform_post_id =
--    external_id, created_at / updated_at = first_seen_at / last_seen_at.
--  * engagement_summary_by_hour / engagement_summary_by_day: engagement_by_time (0004) summed per
--    workspace, platform and hour_of_day (UTC) / day_of_week (0 = Sunday) over connectors (and
--    days / hours). engagement_rate and engagement_velocity are recomputed from the sums
--    (interactions / views, views / minutes), not averaged from the rows' rates, so an hour with
--    little traffic does not weigh as much as a busy one.
--  * audience_demographics_latest: the latest audience_demographics row (by recorded_at) per
--    workspace, connector and platform (DISTINCT ON).
--  * competitor_benchmark_summary: every competitor_profiles row (also one without metrics yet)
--    with its latest competitor_metrics row and follower_change_7d / _30d = latest followers minus
--    the followers of the latest row recorded at least 7 / 30 days before the latest row's date
--    (null when there is none); follower_change_7d_since / _30d_since give that row's date. The
--    change is relative to the latest measurement, not to today, so it does not vanish when
--    measurements pause.
--
-- Seed 002 (posts normalisation)
--  * posts_core: content's status, scheduling and ownership (platform, connector_id, author,
--    published_at), created_at / updated_at = first_seen_at / last_seen_at.
--  * posts_content: content's text (title, caption, hashtags, mentions, content_type); post_id = id.
--  * post_insights: content_performance_metrics per snapshot; post_id = content_id;
--    engagement_rate = (likes + comments + shares + saves) / views (null at 0 views).
--  * time_series_metrics: 002's unified long-format metrics, UNION ALL of
--      content_performance_metrics unpivoted by a LATERAL VALUES into one row per counter
--        (entity_type 'content', entity_id = content_id::text, metric_name views / likes / shares /
--        comments / saves, metric_value, recorded_at, platform, connector_id, metric_category
--        'engagement', unit 'count', aggregation_level 'raw'), and
--      system_performance_metrics (entity_type 'system', entity_id = source_component, metric_name,
--        metric_value = value, recorded_at = timestamp, metric_category, unit, tags,
--        aggregation_level; platform and connector_id null).
--  * media_files, post_media_links, embeddings, ai_context_logs, ai_prompts, ai_suggestions are
--    tables of 0006 under 002's names already.

-- ----------------------------------------------------------------------------------------------
-- Seed 001

CREATE VIEW ai_learning_patterns WITH (security_invoker = true) AS
SELECT
    p.workspace_id,
    p.id,
    p.pattern_type,
    jsonb_strip_nulls(jsonb_build_object('pattern_name', p.pattern_name,
                                         'pattern_description', p.pattern_description))
        || p.pattern_signature AS pattern_data,
    p.success_rate,
    p.average_engagement,
    p.context,
    p.first_detected AS first_observed,
    p.last_detected  AS last_observed,
    p.created_at
FROM identified_patterns p;

CREATE VIEW cross_platform_patterns WITH (security_invoker = true) AS
SELECT
    p.workspace_id,
    p.pattern_type,
    c.platform,
    100 * (count(*) FILTER (WHERE o.success))::double precision
        / nullif(count(o.success), 0)               AS platform_success,
    count(DISTINCT p.id)                            AS pattern_count,
    count(*)                                        AS occurrence_count,
    count(o.success)                                AS judged_occurrences,
    avg(o.engagement)                               AS average_engagement
FROM identified_patterns p
JOIN pattern_occurrences o ON o.workspace_id = p.workspace_id AND o.pattern_id = p.id
JOIN content c ON c.workspace_id = o.workspace_id AND c.id = o.content_id
GROUP BY p.workspace_id, p.pattern_type, c.platform;

CREATE VIEW ai_performance_dashboard WITH (security_invoker = true) AS
SELECT
    workspace_id,
    date_trunc('day', recorded_at, 'UTC') AS date,
    improvement_type,
    avg(improvement_percentage) AS daily_improvement,
    count(*) AS improvement_count
FROM ai_improvement_tracking
GROUP BY workspace_id, date_trunc('day', recorded_at, 'UTC'), improvement_type;

CREATE VIEW style_performance_view WITH (security_invoker = true) AS
SELECT
    workspace_id,
    style_tags,
    avg(engagement_correlation) AS avg_engagement,
    count(*) AS usage_count
FROM content_style_analysis
GROUP BY workspace_id, style_tags;

CREATE VIEW trend_analysis_view WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    trend_type,
    avg(engagement_impact) AS avg_impact,
    count(*) AS trend_count
FROM trend_analysis
WHERE start_time >= now() - interval '30 days'
GROUP BY workspace_id, platform, trend_type;

-- ----------------------------------------------------------------------------------------------
-- Seed 003

CREATE VIEW viral_score_predictions WITH (security_invoker = true) AS
SELECT
    p.id,
    p.workspace_id,
    CASE WHEN p.target_entity_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         THEN p.target_entity_id::uuid END AS content_id,
    p.prediction_type,
    p.predicted_score,
    p.confidence_score,
    p.input_features AS prediction_factors,
    p.model_id,
    m.version AS model_version,
    (CASE p.status
        WHEN 'active'      THEN 'completed'
        WHEN 'validated'   THEN 'completed'
        WHEN 'invalidated' THEN 'failed'
        WHEN 'expired'     THEN 'failed'
     END)::varchar(20) AS status,
    p.status AS lifecycle_status,
    p.prediction_timestamp AS predicted_at
FROM predictions p
JOIN ml_models m ON m.workspace_id = p.workspace_id AND m.id = p.model_id
WHERE p.target_entity_type = 'content';

CREATE VIEW published_posts WITH (security_invoker = true) AS
SELECT
    c.id,
    c.workspace_id,
    c.id AS content_id,
    c.connector_id,
    c.platform,
    c.external_id AS platform_post_id,
    c.url,
    c.published_at,
    c.first_seen_at AS created_at,
    c.last_seen_at  AS updated_at
FROM content c
WHERE c.status = 'published';

CREATE VIEW engagement_summary_by_hour WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    hour_of_day,
    sum(windows)::bigint             AS windows,
    sum(updates)::bigint             AS updates,
    sum(minutes)                     AS minutes,
    sum(views_gained)::bigint        AS views_gained,
    sum(interactions_gained)::bigint AS interactions_gained,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0)::double precision
                                     AS engagement_rate,
    sum(views_gained)::double precision / nullif(sum(minutes), 0)
                                     AS engagement_velocity
FROM engagement_by_time
GROUP BY workspace_id, platform, hour_of_day;

CREATE VIEW engagement_summary_by_day WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    day_of_week,
    sum(windows)::bigint             AS windows,
    sum(updates)::bigint             AS updates,
    sum(minutes)                     AS minutes,
    sum(views_gained)::bigint        AS views_gained,
    sum(interactions_gained)::bigint AS interactions_gained,
    sum(interactions_gained)::double precision / nullif(sum(views_gained), 0)::double precision
                                     AS engagement_rate,
    sum(views_gained)::double precision / nullif(sum(minutes), 0)
                                     AS engagement_velocity
FROM engagement_by_time
GROUP BY workspace_id, platform, day_of_week;

CREATE VIEW audience_demographics_latest WITH (security_invoker = true) AS
SELECT DISTINCT ON (d.workspace_id, d.connector_id, d.platform)
    d.workspace_id,
    d.connector_id,
    d.platform,
    d.recorded_at,
    d.age_ranges,
    d.gender_distribution,
    d.top_countries,
    d.top_cities,
    d.total_followers,
    d.snapshot_id
FROM audience_demographics d
ORDER BY d.workspace_id, d.connector_id, d.platform, d.recorded_at DESC;

CREATE VIEW competitor_benchmark_summary WITH (security_invoker = true) AS
SELECT
    p.workspace_id,
    p.id AS competitor_id,
    p.name,
    p.platform,
    p.handle,
    p.is_active,
    p.first_seen_at,
    p.last_seen_at,
    l.recorded_date,
    l.recorded_at,
    l.followers,
    l.following,
    l.posts_count,
    l.engagement_rate,
    l.posts_per_week,
    l.avg_likes,
    l.avg_comments,
    l.followers - w7.followers   AS follower_change_7d,
    w7.recorded_date             AS follower_change_7d_since,
    l.followers - w30.followers  AS follower_change_30d,
    w30.recorded_date            AS follower_change_30d_since
FROM competitor_profiles p
LEFT JOIN LATERAL (
    SELECT m.*
    FROM competitor_metrics m
    WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
    ORDER BY m.recorded_date DESC
    LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT m.followers, m.recorded_date
    FROM competitor_metrics m
    WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
      AND m.recorded_date <= l.recorded_date - 7
    ORDER BY m.recorded_date DESC
    LIMIT 1
) w7 ON true
LEFT JOIN LATERAL (
    SELECT m.followers, m.recorded_date
    FROM competitor_metrics m
    WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
      AND m.recorded_date <= l.recorded_date - 30
    ORDER BY m.recorded_date DESC
    LIMIT 1
) w30 ON true;

-- ----------------------------------------------------------------------------------------------
-- Seed 002

CREATE VIEW posts_core WITH (security_invoker = true) AS
SELECT
    c.id,
    c.workspace_id,
    c.status,
    c.platform,
    c.connector_id,
    c.author,
    c.published_at,
    c.first_seen_at AS created_at,
    c.last_seen_at  AS updated_at
FROM content c;

CREATE VIEW posts_content WITH (security_invoker = true) AS
SELECT
    c.id AS post_id,
    c.workspace_id,
    c.title,
    c.caption,
    c.hashtags,
    c.mentions,
    c.content_type
FROM content c;

CREATE VIEW post_insights WITH (security_invoker = true) AS
SELECT
    m.id,
    m.workspace_id,
    m.content_id AS post_id,
    m.platform,
    m.connector_id,
    m.views,
    m.likes,
    m.shares,
    m.comments,
    m.saves,
    (m.likes + m.comments + m.shares + m.saves)::double precision / nullif(m.views, 0)
        AS engagement_rate,
    m.average_watch_time,
    m.peak_engagement_time,
    m.platform_metrics,
    m.recorded_at
FROM content_performance_metrics m;

CREATE VIEW time_series_metrics WITH (security_invoker = true) AS
SELECT
    m.workspace_id,
    'content'::varchar(20)   AS entity_type,
    m.content_id::text       AS entity_id,
    v.metric_name::varchar(100) AS metric_name,
    v.metric_value           AS metric_value,
    m.recorded_at,
    m.platform,
    m.connector_id,
    'engagement'::varchar(100) AS metric_category,
    'count'::varchar(50)     AS unit,
    '{}'::jsonb              AS tags,
    'raw'::varchar(10)       AS aggregation_level
FROM content_performance_metrics m
CROSS JOIN LATERAL (VALUES
    ('views',    m.views::double precision),
    ('likes',    m.likes::double precision),
    ('shares',   m.shares::double precision),
    ('comments', m.comments::double precision),
    ('saves',    m.saves::double precision)
) AS v(metric_name, metric_value)
UNION ALL
SELECT
    s.workspace_id,
    'system'::varchar(20),
    s.source_component::text,
    s.metric_name,
    s.value,
    s."timestamp",
    NULL::varchar(50),
    NULL::varchar(100),
    s.metric_category,
    s.unit,
    s.tags,
    s.aggregation_level
FROM system_performance_metrics s;

-- ----------------------------------------------------------------------------------------------
-- A reader role (if an operator made one) reads the views as itself: it needs SELECT on the views
-- (here) and on the tables (0001, 0006; engagement_by_time of 0004 had no grant: given here, the
-- engagement summaries read it), and sees only its workspace's rows.

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_reader') THEN
        GRANT SELECT ON ai_learning_patterns, cross_platform_patterns, ai_performance_dashboard,
            style_performance_view, trend_analysis_view, viral_score_predictions, published_posts,
            engagement_summary_by_hour, engagement_summary_by_day, audience_demographics_latest,
            competitor_benchmark_summary, posts_core, posts_content, post_insights,
            time_series_metrics
            TO learnstream_reader;
        GRANT SELECT ON engagement_by_time TO learnstream_reader;
    END IF;
END
$$;
