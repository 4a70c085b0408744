-- 0002: ingested_at is when the row itself was written (clock_timestamp()), not when its
-- transaction began (now()): event -> row latency can then be read from the table
-- (ingested_at - event time), which `learnstream bench` does.
ALTER TABLE learning_events ALTER COLUMN ingested_at SET DEFAULT clock_timestamp();
ALTER TABLE system_performance_metrics ALTER COLUMN ingested_at SET DEFAULT clock_timestamp();
ALTER TABLE content_performance_metrics ALTER COLUMN ingested_at SET DEFAULT clock_timestamp();
