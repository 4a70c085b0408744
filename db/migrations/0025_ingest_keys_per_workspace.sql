-- 0025: the ingest tables' primary keys include workspace_id (issue #24).
--
-- Until now an ingest row's key was (time column, id): the producer's event id and timestamp. A
-- producer that knew (or guessed, or read off a shared dashboard) another workspace's event id and
-- timestamp could send it first under its own workspace; the other workspace's real event was then
-- a "duplicate" and silently skipped. The key is now (time column, id, workspace_id): an event is
-- a duplicate only of the same event id at the same time *in the same workspace*.
--
--  * time first, as before: the B-tree stays append-mostly (0001), key-order scans (the reroute's
--    keyset, db/domain/reroute.py) stay range scans; workspace_id last only breaks ties;
--  * a partitioned table's key must contain its partition key (the time column): it does;
--  * the archive copies (archive.*, 0014) get the same key, so that retention's
--    INSERT … ON CONFLICT DO NOTHING into them keeps both workspaces' rows, and a detached
--    partition (which has the new key) attaches to its archive without a new index;
--  * reroute_runs remembers the workspace of its last event too: two workspaces' events with the
--    same (timestamp, id) are both rerouted even when a batch ends between them.
--
-- Rebuilding the keys rewrites each table's primary-key index under an exclusive lock on the
-- table (its partitions included): writes to the three tables wait until this migration is done.
-- On a large installation run it in a maintenance window (see docs/security.md#ingest-keys).

ALTER TABLE learning_events DROP CONSTRAINT learning_events_pkey,
    ADD CONSTRAINT learning_events_pkey PRIMARY KEY ("timestamp", id, workspace_id);
ALTER TABLE system_performance_metrics DROP CONSTRAINT system_performance_metrics_pkey,
    ADD CONSTRAINT system_performance_metrics_pkey PRIMARY KEY ("timestamp", id, workspace_id);
ALTER TABLE content_performance_metrics DROP CONSTRAINT content_performance_metrics_pkey,
    ADD CONSTRAINT content_performance_metrics_pkey PRIMARY KEY (recorded_at, id, workspace_id);

ALTER TABLE archive.learning_events DROP CONSTRAINT learning_events_pkey,
    ADD CONSTRAINT learning_events_pkey PRIMARY KEY ("timestamp", id, workspace_id);
ALTER TABLE archive.system_performance_metrics DROP CONSTRAINT system_performance_metrics_pkey,
    ADD CONSTRAINT system_performance_metrics_pkey PRIMARY KEY ("timestamp", id, workspace_id);
ALTER TABLE archive.content_performance_metrics DROP CONSTRAINT content_performance_metrics_pkey,
    ADD CONSTRAINT content_performance_metrics_pkey PRIMARY KEY (recorded_at, id, workspace_id);

ALTER TABLE reroute_runs ADD COLUMN position_workspace uuid;  -- with position_ts, position_id
