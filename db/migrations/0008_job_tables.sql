-- 0008: the seed tables and materialized views that jobs fill (issue #9 makes them exist; the jobs
-- come with issue #10, retention with issue #11).
--
--  * 003 optimal_posting_times, benchmark_comparisons, custom_reports, report_schedules,
--    report_executions (with 003's report_status and report_format types), in 003's words with
--    workspace_id in every key and row-level security as 0001;
--  * 004 data_retention_policies is per table, not per workspace (retention is the operator's, not
--    a tenant's): no workspace_id, so no RLS. Its two defaults are the seeds': 6 months for
--    engagement metrics (001's archive_old_performance_data), 2 years for learning events (004's
--    cleanup_old_learning_events). The seeds disagree on nothing else here;
--  * 001 archived_performance_metrics: content_performance_metrics' columns plus archived_at, not
--    partitioned (the retention job of #11 writes it in bounded batches);
--  * the materialized views of 003 (analytics_aggregated_daily/_weekly, platform_performance_summary)
--    and 004 (daily_learning_metrics, model_performance_summary as written, with workspace_id added
--    to their SELECT and GROUP BY, days cut in UTC), each with the unique index REFRESH ...
--    CONCURRENTLY needs. Created empty here would not be queryable, so they are created with
--    data (an empty database makes that instant) and #10's jobs refresh them.
--    A materialized view cannot have row-level security: they are readable by their owner only
--    (nothing is granted on them, also not to learnstream_reader) until #11 gives each workspace
--    its own access to them.
--  * 003 engagement cells: counter gains are cumulative counters' differences; a day's figure of a
--    post is its latest snapshot that day (the counters are cumulative), summed over the posts.

CREATE TYPE report_status AS ENUM ('scheduled', 'generating', 'completed', 'failed');
CREATE TYPE report_format AS ENUM ('pdf', 'csv', 'json', 'html');

CREATE TABLE optimal_posting_times (
    workspace_id       uuid         NOT NULL,
    platform           varchar(50)  NOT NULL,
    connector_id       varchar(100) NOT NULL DEFAULT '',
    day_of_week        smallint     NOT NULL CHECK (day_of_week BETWEEN 0 AND 6),   -- 0 = Sunday, in timezone
    hour_of_day        smallint     NOT NULL CHECK (hour_of_day BETWEEN 0 AND 23),  -- in timezone
    timezone           varchar(64)  NOT NULL DEFAULT 'UTC',
    optimization_score double precision NOT NULL CHECK (optimization_score BETWEEN 0 AND 100),
    avg_engagement     double precision,
    sample_size        integer      NOT NULL CHECK (sample_size >= 0),
    confidence         double precision CHECK (confidence BETWEEN 0 AND 1),
    window_days        integer      NOT NULL DEFAULT 90,
    computed_at        timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, platform, connector_id, day_of_week, hour_of_day)
);

CREATE TABLE benchmark_comparisons (
    workspace_id       uuid         NOT NULL,
    id                 uuid         NOT NULL DEFAULT gen_random_uuid(),
    connector_id       varchar(100) NOT NULL,
    platform           varchar(50)  NOT NULL,
    metric             varchar(100) NOT NULL,
    period_start       date         NOT NULL,
    period_end         date         NOT NULL,
    user_value         double precision,
    industry_average   double precision,
    competitor_average double precision,
    competitor_median  double precision,
    competitor_count   integer      NOT NULL DEFAULT 0,
    percentile         double precision CHECK (percentile BETWEEN 0 AND 100),
    ratio              double precision,            -- user_value / competitor_average
    computed_at        timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, connector_id, metric, period_start, period_end),
    CHECK (period_end >= period_start)
);

CREATE TABLE custom_reports (
    workspace_id  uuid          NOT NULL,
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    name          varchar(255)  NOT NULL,
    description   text,
    report_type   varchar(50)   NOT NULL,
    query_config  jsonb         NOT NULL,           -- metrics/dimensions from a whitelist, filters, period: never SQL
    metrics       text[]        NOT NULL DEFAULT '{}',
    dimensions    text[]        NOT NULL DEFAULT '{}',
    formats       report_format[] NOT NULL DEFAULT '{csv}',
    is_public     boolean       NOT NULL DEFAULT false,
    created_by    varchar(255),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name)
);

CREATE TABLE report_schedules (
    workspace_id    uuid         NOT NULL,
    id              uuid         NOT NULL DEFAULT gen_random_uuid(),
    report_id       uuid         NOT NULL,
    cron_expr       varchar(100) NOT NULL,
    timezone        varchar(64)  NOT NULL DEFAULT 'UTC',
    delivery_method varchar(50)  NOT NULL DEFAULT 'folder',
    recipients      text[]       NOT NULL DEFAULT '{}',
    is_active       boolean      NOT NULL DEFAULT true,
    next_run_at     timestamptz,
    last_run_at     timestamptz,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, report_id) REFERENCES custom_reports (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_report_schedules_due ON report_schedules (next_run_at) WHERE is_active;

CREATE TABLE report_executions (
    workspace_id  uuid          NOT NULL,
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    report_id     uuid          NOT NULL,
    schedule_id   uuid,
    status        report_status NOT NULL DEFAULT 'scheduled',
    format        report_format NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    duration_ms   integer       CHECK (duration_ms >= 0),
    rows          bigint        CHECK (rows >= 0),
    output_url    text,
    error_message text,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, report_id) REFERENCES custom_reports (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX idx_report_executions_report ON report_executions (workspace_id, report_id, started_at DESC);

CREATE TABLE archived_performance_metrics (
    LIKE content_performance_metrics INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recorded_at, id)
);

CREATE TABLE data_retention_policies (
    id               uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    table_name       varchar(255) NOT NULL UNIQUE,
    retention_period interval     NOT NULL CHECK (retention_period > interval '0'),
    archive_strategy varchar(20)  NOT NULL DEFAULT 'drop' CHECK (archive_strategy IN ('drop', 'archive')),
    last_cleanup     timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now()
);
INSERT INTO data_retention_policies (table_name, retention_period, archive_strategy) VALUES
    ('content_performance_metrics', interval '6 months', 'archive'),
    ('learning_events', interval '2 years', 'drop');

SELECT enable_workspace_isolation(t::regclass) FROM unnest(ARRAY[
    'optimal_posting_times', 'benchmark_comparisons', 'custom_reports', 'report_schedules', 'report_executions',
    'archived_performance_metrics']) AS t;

-- ----------------------------------------------------------------------------------------------
-- Materialized views (refreshed by #10's jobs)

-- a post's figures on a day: its latest snapshot that day
CREATE MATERIALIZED VIEW analytics_aggregated_daily AS
SELECT workspace_id, platform, day, count(*) AS content_count,
    sum(views) AS views, sum(likes) AS likes, sum(shares) AS shares, sum(comments) AS comments, sum(saves) AS saves,
    (sum(likes + shares + comments + saves))::double precision / nullif(sum(views), 0) AS engagement_rate
FROM (
    SELECT DISTINCT ON (workspace_id, platform, content_id, (recorded_at AT TIME ZONE 'UTC')::date)
        workspace_id, platform, content_id, (recorded_at AT TIME ZONE 'UTC')::date AS day,
        views, likes, shares, comments, saves
    FROM content_performance_metrics
    WHERE recorded_at >= (now() AT TIME ZONE 'UTC')::date - 90
    ORDER BY workspace_id, platform, content_id, (recorded_at AT TIME ZONE 'UTC')::date, recorded_at DESC
) AS latest
GROUP BY workspace_id, platform, day;
CREATE UNIQUE INDEX idx_analytics_aggregated_daily ON analytics_aggregated_daily (workspace_id, platform, day);

CREATE MATERIALIZED VIEW analytics_aggregated_weekly AS
SELECT workspace_id, platform, week, count(*) AS content_count,
    sum(views) AS views, sum(likes) AS likes, sum(shares) AS shares, sum(comments) AS comments, sum(saves) AS saves,
    (sum(likes + shares + comments + saves))::double precision / nullif(sum(views), 0) AS engagement_rate
FROM (
    SELECT DISTINCT ON (workspace_id, platform, content_id, date_trunc('week', recorded_at AT TIME ZONE 'UTC'))
        workspace_id, platform, content_id, date_trunc('week', recorded_at AT TIME ZONE 'UTC')::date AS week,
        views, likes, shares, comments, saves
    FROM content_performance_metrics
    WHERE recorded_at >= (now() AT TIME ZONE 'UTC')::date - 365
    ORDER BY workspace_id, platform, content_id, date_trunc('week', recorded_at AT TIME ZONE 'UTC'), recorded_at DESC
) AS latest
GROUP BY workspace_id, platform, week;
CREATE UNIQUE INDEX idx_analytics_aggregated_weekly ON analytics_aggregated_weekly (workspace_id, platform, week);

-- per platform, over each post's latest snapshot: views and engagement-rate percentiles
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
        (likes + shares + comments + saves)::double precision / nullif(views, 0) AS rate
    FROM content_performance_metrics
    ORDER BY workspace_id, platform, content_id, recorded_at DESC
) AS latest
GROUP BY workspace_id, platform;
CREATE UNIQUE INDEX idx_platform_performance_summary ON platform_performance_summary (workspace_id, platform);

-- 004, as written (+ workspace_id; DATE() of a timestamptz cut in UTC)
CREATE MATERIALIZED VIEW daily_learning_metrics AS
SELECT workspace_id,
    ("timestamp" AT TIME ZONE 'UTC')::date AS date,
    event_type,
    source_system,
    COUNT(*) AS event_count,
    AVG(processing_time_ms) AS avg_processing_time,
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY processing_time_ms) AS p95_processing_time
FROM learning_events
WHERE "timestamp" >= CURRENT_DATE - INTERVAL '90 days'
GROUP BY workspace_id, ("timestamp" AT TIME ZONE 'UTC')::date, event_type, source_system;
CREATE UNIQUE INDEX idx_daily_learning_metrics ON daily_learning_metrics (workspace_id, date, event_type, source_system)
    NULLS NOT DISTINCT;

CREATE MATERIALIZED VIEW model_performance_summary AS
SELECT
    m.workspace_id,
    m.id,
    m.name,
    m.version,
    m.model_type,
    COUNT(p.id) AS prediction_count,
    AVG(p.accuracy_score) AS avg_accuracy,
    COUNT(CASE WHEN p.status = 'validated' THEN 1 END) AS validated_predictions,
    MAX(p.prediction_timestamp) AS last_prediction
FROM ml_models m
LEFT JOIN predictions p ON p.workspace_id = m.workspace_id AND m.id = p.model_id
WHERE m.status = 'active'
GROUP BY m.workspace_id, m.id, m.name, m.version, m.model_type;
CREATE UNIQUE INDEX idx_model_performance_summary ON model_performance_summary (workspace_id, id);
