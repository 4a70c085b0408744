-- 0014: retention and archival of old data (issue #11; 0013 is tenant isolation's).
--
--  * schema `archive`: where 'archive' policies move expired data. Nothing is granted on it or on
--    anything in it (no USAGE, no SELECT): only the owner reads it. Every archive table has
--    workspace_id, so each also gets FORCE row-level security with the service's policy only (0013):
--    no member policy, so a grant made by mistake would still show a member nothing.
--  * archive.<table> for each time-partitioned table (learning_events, system_performance_metrics,
--    content_performance_metrics, the three *_rollups): the table's columns plus archived_at, range-
--    partitioned on the same time column, with its DEFAULT partition. An expired partition of the live
--    table is detached, moved into schema archive and ATTACHed here (so one parent reads all the
--    archive, and moving a whole partition copies no row); rows that were in the live table's DEFAULT
--    partition are moved in bounded batches and land in archive.<table>_default (or in an archived
--    partition of their period). Primary key as the live table's.
--  * archive.<table> for the non-partitioned tables with retention (alert_notifications,
--    report_executions, engagement_by_time): their columns plus archived_at, no key (rows are moved
--    in, never updated; an engagement_by_time cell archived twice, after a late correction, is two rows
--    whose counters add up). Generated columns become plain columns holding the values they had.
--  * 001's archived_performance_metrics (a table since 0008, which nothing wrote) becomes the seed's
--    name for the archived content metrics: a security_invoker view over archive.content_performance_metrics
--    (its rows, if any, are moved there first). It reads the archive with the caller's rights, so it is
--    readable by the owner only, like the archive.
--  * data_retention_policies gains batch_size (rows per transaction when rows are moved or deleted)
--    and a CHECK that table_name is one the code supports (db/retention.py RETAINED; the code checks
--    again and logs a policy for any other table as an error, running no SQL for it). The defaults
--    (README, "Retention and maintenance"):
--      content_performance_metrics  6 months  archive   001 archive_old_performance_data (0008)
--      learning_events              2 years   drop      004 cleanup_old_learning_events (0008): its
--                                                       comment says "archive to cold storage" but its code
--                                                       deletes; an archive schema in the same database is
--                                                       not cold storage, and what the events meant is
--                                                       kept in the domain tables they were routed to
--      system_performance_metrics   30 days   drop      raw samples, daily partitions; their aggregates
--                                                       stay in performance_rollups
--      performance_rollups, learning_rollups, engagement_rollups
--                                   180 days  drop      twice the 90 days a backfill recomputes
--      alert_notifications          90 days   archive   003 "archive old alert notifications" (daily)
--      report_executions            90 days   drop      003 "cleanup old report executions" (weekly)
--      engagement_by_time           13 months archive   003 "archive old engagement_by_time data" (monthly);
--                                                       a year back and the same month before
--    One daily job runs them all: what the seeds run daily, weekly or monthly is done at the latest a
--    day after it expires.
--  * maintenance_runs: one row per run (dry or real) and maintenance_actions, one row per thing a run
--    did or would do (a partition created, detached, dropped or archived; rows archived or deleted in
--    batches; an ANALYZE; a table's error). No workspace_id: the operator's log, not a tenant's.

CREATE SCHEMA archive;
REVOKE ALL ON SCHEMA archive FROM PUBLIC;

-- archive.<name> for a live table; `key` is the primary key of a partitioned one (NULL: none)
CREATE FUNCTION pg_temp.archive_of(src regclass, time_column text, key text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = src);
BEGIN
    IF key IS NOT NULL THEN
        EXECUTE format('CREATE TABLE archive.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                       'archived_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (%s)) '
                       'PARTITION BY RANGE (%I)', name, src, key, time_column);
        EXECUTE format('CREATE TABLE archive.%I PARTITION OF archive.%I DEFAULT', name || '_default', name);
    ELSE
        EXECUTE format('CREATE TABLE archive.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                       'archived_at timestamptz NOT NULL DEFAULT now())', name, src);
    END IF;
    EXECUTE format('ALTER TABLE archive.%I ENABLE ROW LEVEL SECURITY', name);
    EXECUTE format('ALTER TABLE archive.%I FORCE ROW LEVEL SECURITY', name);
    EXECUTE format('CREATE POLICY service_all ON archive.%I TO learnstream_service USING (true) WITH CHECK (true)', name);
    EXECUTE format('REVOKE ALL ON archive.%I FROM PUBLIC', name);
END
$$;

SELECT pg_temp.archive_of('learning_events', 'timestamp', '"timestamp", id');
SELECT pg_temp.archive_of('system_performance_metrics', 'timestamp', '"timestamp", id');
SELECT pg_temp.archive_of('content_performance_metrics', 'recorded_at', 'recorded_at, id');
SELECT pg_temp.archive_of(t::regclass, 'window_start', 'window_start, workspace_id, series_key, window_s, step_s')
FROM unnest(ARRAY['performance_rollups', 'learning_rollups', 'engagement_rollups']) AS t;
SELECT pg_temp.archive_of('alert_notifications', 'sent_at', NULL);
SELECT pg_temp.archive_of('report_executions', 'started_at', NULL);
SELECT pg_temp.archive_of('engagement_by_time', 'day', NULL);

-- 001's name for the archived content metrics
INSERT INTO archive.content_performance_metrics SELECT * FROM archived_performance_metrics;
DROP TABLE archived_performance_metrics;
CREATE VIEW archived_performance_metrics WITH (security_invoker = true) AS
    SELECT * FROM archive.content_performance_metrics;

ALTER TABLE data_retention_policies
    ADD COLUMN batch_size integer NOT NULL DEFAULT 5000 CHECK (batch_size BETWEEN 1 AND 1000000),
    ADD CONSTRAINT data_retention_policies_supported_table CHECK (table_name IN (
        'learning_events', 'system_performance_metrics', 'content_performance_metrics', 'performance_rollups',
        'learning_rollups', 'engagement_rollups', 'alert_notifications', 'report_executions',
        'engagement_by_time'));

INSERT INTO data_retention_policies (table_name, retention_period, archive_strategy) VALUES
    ('system_performance_metrics', interval '30 days', 'drop'),
    ('performance_rollups', interval '180 days', 'drop'),
    ('learning_rollups', interval '180 days', 'drop'),
    ('engagement_rollups', interval '180 days', 'drop'),
    ('alert_notifications', interval '90 days', 'archive'),
    ('report_executions', interval '90 days', 'drop'),
    ('engagement_by_time', interval '13 months', 'archive')
ON CONFLICT (table_name) DO NOTHING;

CREATE TABLE maintenance_runs (
    id                  bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of               timestamptz  NOT NULL,              -- the time the cutoffs are computed from
    dry_run             boolean      NOT NULL,
    only_table          text,                               -- --table, else every policy
    trigger             varchar(20)  NOT NULL CHECK (trigger IN ('cli', 'job')),
    worker              text,
    started_at          timestamptz  NOT NULL DEFAULT clock_timestamp(),
    finished_at         timestamptz,
    -- failed: a table failed (the other tables still ran) or the run could not go on
    status              varchar(20)  NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    partitions_created  integer      NOT NULL DEFAULT 0,
    partitions_detached integer      NOT NULL DEFAULT 0,
    partitions_skipped  integer      NOT NULL DEFAULT 0,
    rows_archived       bigint       NOT NULL DEFAULT 0,
    rows_deleted        bigint       NOT NULL DEFAULT 0,
    error               text
);
CREATE INDEX idx_maintenance_runs_started ON maintenance_runs (started_at DESC);

CREATE TABLE maintenance_actions (
    run_id      bigint       NOT NULL REFERENCES maintenance_runs (id) ON DELETE CASCADE,
    seq         integer      NOT NULL,
    table_name  text         NOT NULL,
    action      varchar(30)  NOT NULL CHECK (action IN (
        'create_partition', 'finalize_detach', 'detach_partition', 'drop_partition', 'archive_partition',
        'archive_rows', 'delete_rows', 'analyze', 'error')),
    object      text,                          -- the partition or table acted on
    range_start timestamptz,                   -- a partition's bounds
    range_end   timestamptz,
    rows        bigint,                        -- rows moved, deleted, or in the partition
    batches     integer,                       -- transactions of a batched move or delete
    attempts    integer,                       -- detach: lock attempts (lock_timeout each)
    -- pending: an archived partition detached and moved to schema archive, not yet attached to
    -- archive.<table> (the next run finishes it)
    status      varchar(20)  NOT NULL CHECK (status IN ('planned', 'done', 'pending', 'skipped', 'failed')),
    detail      text,
    seconds     double precision,
    at          timestamptz  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX idx_maintenance_actions_pending ON maintenance_actions (action) WHERE status = 'pending';
