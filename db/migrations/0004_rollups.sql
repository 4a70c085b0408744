-- 0004: closed windows (issue #4) and the engagement_by_time accumulation of seed 003.
--
--  * one rollup table per event kind, range-partitioned by day on window_start (DEFAULT
--    partition + the partition manager, as the ingest tables), keyed by
--    (window_start, workspace, series, window size, step): a window closed twice (a worker
--    restarted between closing it and recording that) is stored once;
--  * series_key is the canonical JSON of the series' labels (what the worker keys windows by);
--  * engagement_by_time (seed 003: day_of_week, hour_of_day, engagement_rate,
--    engagement_velocity) per (workspace, platform, connector): sums of the *tumbling* windows'
--    gains, added only for rollup rows actually inserted, so it is exact under redelivery;
--    the rate and velocity are derived columns.

CREATE TABLE performance_rollups (
    workspace_id uuid             NOT NULL,
    series_key   text             NOT NULL,
    metric_name  varchar(100)     NOT NULL,
    tags         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    window_s     double precision NOT NULL,
    step_s       double precision NOT NULL,
    window_start timestamptz      NOT NULL,
    window_end   timestamptz      NOT NULL,
    count        bigint           NOT NULL,
    sum          double precision NOT NULL,
    min          double precision,
    max          double precision,
    mean         double precision,
    p50          double precision,
    p95          double precision,
    p99          double precision,
    closed_at    timestamptz      NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (window_start, workspace_id, series_key, window_s, step_s)
) PARTITION BY RANGE (window_start);
CREATE TABLE performance_rollups_default PARTITION OF performance_rollups DEFAULT;
CREATE INDEX idx_performance_rollups_metric ON performance_rollups (workspace_id, metric_name, window_start);

CREATE TABLE learning_rollups (
    workspace_id  uuid             NOT NULL,
    series_key    text             NOT NULL,
    event_type    varchar(100)     NOT NULL,
    source_system varchar(100),
    window_s      double precision NOT NULL,
    step_s        double precision NOT NULL,
    window_start  timestamptz      NOT NULL,
    window_end    timestamptz      NOT NULL,
    count         bigint           NOT NULL,
    errors        bigint           NOT NULL,
    error_rate    double precision,
    processing_ms_mean double precision,
    processing_ms_p50  double precision,
    processing_ms_p95  double precision,
    processing_ms_p99  double precision,
    processing_ms_max  double precision,
    closed_at     timestamptz      NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (window_start, workspace_id, series_key, window_s, step_s)
) PARTITION BY RANGE (window_start);
CREATE TABLE learning_rollups_default PARTITION OF learning_rollups DEFAULT;
CREATE INDEX idx_learning_rollups_type ON learning_rollups (workspace_id, event_type, window_start);

CREATE TABLE engagement_rollups (
    workspace_id     uuid             NOT NULL,
    series_key       text             NOT NULL,
    content_id       uuid             NOT NULL,
    platform         varchar(50)      NOT NULL,
    connector_id     varchar(100),
    window_s         double precision NOT NULL,
    step_s           double precision NOT NULL,
    window_start     timestamptz      NOT NULL,
    window_end       timestamptz      NOT NULL,
    updates          bigint           NOT NULL,
    views_gained     bigint           NOT NULL,
    likes_gained     bigint           NOT NULL,
    shares_gained    bigint           NOT NULL,
    comments_gained  bigint           NOT NULL,
    saves_gained     bigint           NOT NULL,
    resets           bigint           NOT NULL,  -- counters seen going down: flagged, not subtracted
    velocity_per_min double precision NOT NULL,
    engagement_rate  double precision,
    closed_at        timestamptz      NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (window_start, workspace_id, series_key, window_s, step_s)
) PARTITION BY RANGE (window_start);
CREATE TABLE engagement_rollups_default PARTITION OF engagement_rollups DEFAULT;
CREATE INDEX idx_engagement_rollups_content ON engagement_rollups (content_id, window_start);

CREATE TABLE engagement_by_time (
    workspace_id        uuid        NOT NULL,
    platform            varchar(50) NOT NULL,
    connector_id        varchar(100) NOT NULL DEFAULT '',
    day_of_week         smallint    NOT NULL CHECK (day_of_week BETWEEN 0 AND 6),   -- 0 = Sunday
    hour_of_day         smallint    NOT NULL CHECK (hour_of_day BETWEEN 0 AND 23),  -- UTC
    windows             bigint      NOT NULL DEFAULT 0,
    updates             bigint      NOT NULL DEFAULT 0,
    minutes             double precision NOT NULL DEFAULT 0,
    views_gained        bigint      NOT NULL DEFAULT 0,
    interactions_gained bigint      NOT NULL DEFAULT 0,  -- likes + comments + shares + saves
    engagement_rate     double precision
        GENERATED ALWAYS AS (interactions_gained::double precision / nullif(views_gained, 0)) STORED,
    engagement_velocity double precision  -- views gained per minute
        GENERATED ALWAYS AS (views_gained / nullif(minutes, 0)) STORED,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, platform, connector_id, day_of_week, hour_of_day)
);

ALTER TABLE performance_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE learning_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE engagement_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE engagement_by_time ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON performance_rollups
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON learning_rollups
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON engagement_rollups
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON engagement_by_time
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
