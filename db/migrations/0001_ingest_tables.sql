-- 0001: the three ingest tables, range-partitioned on their time column.
--
-- From ../shared/seeds/004 (learning_events, system_performance_metrics) and 001
-- (content_performance_metrics), with these deliberate changes:
--  * workspace_id on every table (multi-tenancy) with row-level security keyed on it;
--  * PRIMARY KEY (time column, id): a partitioned table's key must contain the partition key,
--    and time first keeps the B-tree append-mostly (measured faster: notes/performance-facts.md).
--    The id is the producer's event id, so a redelivered event is recognised by the key;
--  * timestamps are timestamptz and NOT NULL (the contracts reject naive ones);
--  * system_performance_metrics.value is double precision, not DECIMAL(15,6): metric values
--    (bytes, counts) exceed 10^9, and a float is what the samples carry;
--  * content_performance_metrics: content(id) is not ours to reference (it lives upstream), the
--    counters are bigint (cumulative counts pass 2^31), and the seed's `metrics JSONB NOT NULL`
--    is folded into platform_metrics;
--  * a DEFAULT partition per table catches far-out timestamps; the worker's partition manager
--    creates the current and next periods ahead of time and moves any rows out of DEFAULT.
--  * a BRIN index on the time column of each table, beside the seeds' B-tree indexes.

CREATE TABLE learning_events (
    id                 uuid         NOT NULL,
    workspace_id       uuid         NOT NULL,
    event_type         varchar(100) NOT NULL,
    event_subtype      varchar(100),
    "timestamp"        timestamptz  NOT NULL,
    source_system      varchar(100),
    entity_type        varchar(100),
    entity_id          varchar(255),
    event_data         jsonb        NOT NULL,
    user_id            varchar(255),
    session_id         varchar(255),
    processing_time_ms integer CHECK (processing_time_ms >= 0),
    metadata           jsonb,
    ingested_at        timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY ("timestamp", id)
) PARTITION BY RANGE ("timestamp");

CREATE TABLE learning_events_default PARTITION OF learning_events DEFAULT;

CREATE INDEX idx_learning_events_workspace_timestamp ON learning_events (workspace_id, "timestamp");
CREATE INDEX idx_learning_events_type_timestamp ON learning_events (event_type, "timestamp");
CREATE INDEX idx_learning_events_entity ON learning_events (entity_type, entity_id);
CREATE INDEX idx_learning_events_user ON learning_events (user_id, "timestamp");
CREATE INDEX idx_learning_events_session ON learning_events (session_id);
CREATE INDEX idx_learning_events_timestamp_brin ON learning_events USING brin ("timestamp");


CREATE TABLE system_performance_metrics (
    id                uuid             NOT NULL,
    workspace_id      uuid             NOT NULL,
    metric_name       varchar(100)     NOT NULL,
    metric_category   varchar(100),
    "timestamp"       timestamptz      NOT NULL,
    value             double precision NOT NULL,
    unit              varchar(50),
    tags              jsonb            NOT NULL DEFAULT '{}'::jsonb,
    source_component  varchar(100),
    aggregation_level varchar(10)      NOT NULL DEFAULT 'raw'
        CHECK (aggregation_level IN ('raw', 'minute', 'hour', 'day')),
    metadata          jsonb,
    ingested_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY ("timestamp", id)
) PARTITION BY RANGE ("timestamp");

CREATE TABLE system_performance_metrics_default PARTITION OF system_performance_metrics DEFAULT;

CREATE INDEX idx_performance_metrics_workspace_timestamp ON system_performance_metrics (workspace_id, "timestamp");
CREATE INDEX idx_performance_metrics_name_timestamp ON system_performance_metrics (metric_name, "timestamp");
CREATE INDEX idx_performance_metrics_category ON system_performance_metrics (metric_category, "timestamp");
CREATE INDEX idx_performance_metrics_component_time ON system_performance_metrics (source_component, "timestamp");
CREATE INDEX idx_performance_metrics_tags ON system_performance_metrics USING gin (tags jsonb_path_ops);
CREATE INDEX idx_performance_metrics_timestamp_brin ON system_performance_metrics USING brin ("timestamp");


CREATE TABLE content_performance_metrics (
    id                    uuid             NOT NULL,
    workspace_id          uuid             NOT NULL,
    content_id            uuid             NOT NULL,
    platform              varchar(50)      NOT NULL,
    connector_id          varchar(100),
    views                 bigint           NOT NULL DEFAULT 0 CHECK (views >= 0),
    likes                 bigint           NOT NULL DEFAULT 0 CHECK (likes >= 0),
    shares                bigint           NOT NULL DEFAULT 0 CHECK (shares >= 0),
    comments              bigint           NOT NULL DEFAULT 0 CHECK (comments >= 0),
    saves                 bigint           NOT NULL DEFAULT 0 CHECK (saves >= 0),
    peak_engagement_time  timestamptz,
    average_watch_time    double precision CHECK (average_watch_time >= 0),
    audience_demographics jsonb,
    platform_metrics      jsonb,
    recorded_at           timestamptz      NOT NULL,
    ingested_at           timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (recorded_at, id)
) PARTITION BY RANGE (recorded_at);

CREATE TABLE content_performance_metrics_default PARTITION OF content_performance_metrics DEFAULT;

CREATE INDEX idx_content_performance_workspace_time ON content_performance_metrics (workspace_id, recorded_at);
CREATE INDEX idx_content_performance_content ON content_performance_metrics (content_id, recorded_at);
CREATE INDEX idx_content_performance_platform ON content_performance_metrics (platform, recorded_at);
CREATE INDEX idx_content_performance_time_brin ON content_performance_metrics USING brin (recorded_at);


-- Row-level security: a session sees the rows of the workspace it names with
--   SET learnstream.workspace_id = '<uuid>'
-- The tables' owner (the ingest role) is not subject to it. Migrations create no roles (that needs
-- CREATEROLE); if an operator made a role learnstream_reader, it is granted SELECT here.

ALTER TABLE learning_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_performance_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE content_performance_metrics ENABLE ROW LEVEL SECURITY;

CREATE POLICY workspace_isolation ON learning_events
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON system_performance_metrics
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON content_performance_metrics
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_reader') THEN
        GRANT SELECT ON learning_events, system_performance_metrics, content_performance_metrics
            TO learnstream_reader;
    END IF;
END
$$;
