-- 0042: indexes by query (issue #26, lever 1; the audit is docs/scaling.md, "Index audit").
--
-- Every secondary index on the hot tables (the three ingest tables, predictions,
-- prediction_accuracy, identified_patterns, pattern_occurrences) and on the tables the routing
-- writes per event is kept only where a statement the product runs uses it: a job (db/analytics),
-- a view or materialized view, a report source (db/reports/query.py), the read path
-- (db/analytics/read.py), a Grafana panel, a routing lookup, retention, or one of the seeds' key
-- queries that run as written (0007; tests/integration/jobs/test_seed_queries.py). Each index
-- costs a B-tree (or GIN) insert per stored row: with the seeds' six on learning_events a COPY
-- stored 39.5k rows/s, with the primary key only 167k (docs/bench.md). Primary keys and unique
-- constraints (conflict targets, uniqueness) stay.
--
-- Dropped (no statement in db/, streams/, the Grafana dashboard or the seeds' key queries and
-- views filters, joins or orders on the index's leading columns in a way it serves):
--  * learning_events: (event_type, timestamp), (entity_type, entity_id), (user_id, timestamp),
--    (session_id), BRIN (timestamp). Kept: (workspace_id, timestamp) (report source `learning`,
--    learning windows' recomputation); time ranges are the primary key's (timestamp first).
--  * system_performance_metrics: (metric_name, timestamp), (metric_category, timestamp),
--    (source_component, timestamp), GIN (tags) (nothing uses @> on tags), BRIN (timestamp). Kept:
--    (workspace_id, timestamp) (performance windows' recomputation). The seed view
--    time_series_metrics exposes metric_name; no product query filters on it.
--  * content_performance_metrics: (platform, recorded_at) (platform filters sit inside a
--    workspace), BRIN (recorded_at). Kept: (workspace_id, recorded_at), (content_id, recorded_at)
--    (a post's snapshots: accuracy, posting times, styles, trends, content_gains_between).
--  * predictions: (workspace_id, model_id, prediction_timestamp) (model_performance_summary joins
--    every prediction of a model: an aggregate), (workspace_id, target_entity_type,
--    target_entity_id), (workspace_id, prediction_timestamp), and (workspace_id, id) WHERE status =
--    'active', replaced by idx_predictions_due (below).
--  * prediction_accuracy: (workspace_id, model_id, measured_at): the per-workspace reads use the
--    primary key's workspace_id prefix; replaced by idx_prediction_accuracy_measured (below).
--  * identified_patterns: (workspace_id, pattern_type, status) (the unique key's (workspace_id,
--    pattern_type) prefix serves `analytics patterns`), (workspace_id, success_rate DESC) (the
--    reads order DESC NULLS LAST, which it does not give; and it made every counter update of a
--    pattern non-HOT), GIN (pattern_signature) (patterns are matched by signature_hash).
--  * pattern_occurrences: all four, (workspace_id, pattern_id), (workspace_id, source_type,
--    source_id), (workspace_id, content_id), (detection_timestamp): cross_platform_patterns
--    aggregates a workspace's occurrences, nothing looks one up, patterns are never deleted.
--  * learning_rollups (workspace_id, event_type, window_start), engagement_rollups (content_id,
--    window_start): nothing reads them by those columns.
--  * content: (workspace_id, platform, published_at DESC) replaced by idx_content_published
--    (below), (workspace_id, connector_id), GIN (hashtags) (the engagement report's hashtag filter
--    is applied to the content rows joined by key to the period's snapshots, which drive the plan).
--  * post_media_links (workspace_id, media_id); ml_models (workspace_id, model_type, status);
--    model_training_sessions (workspace_id, model_id), (workspace_id, status);
--    ab_testing_experiments (workspace_id, status) (the unique key's prefix serves `--status`);
--    ab_testing_assignments (workspace_id, experiment_id, variant) (the unique key's prefix serves
--    the per-experiment scans); evolution_experiments (workspace_id, id) WHERE status = 'running';
--    content_style_analysis GIN (style_tags) (tags are unnested, never searched); trend_analysis
--    (workspace_id, platform, trend_type) (the unique key's prefix); ai_context_logs
--    (workspace_id, conversation_id, created_at).
--
-- New, each matching the statement it serves:
--  * idx_predictions_due: the prediction_accuracy job's due set (db/analytics/accuracy.py _DUE:
--    the same six constant conditions as the predicate, so a generic plan uses it too; ordered by
--    its page order (prediction_timestamp, workspace_id, id), across workspaces). A prediction
--    leaves it when measured, expired or given an outcome.
--  * idx_prediction_accuracy_measured: model_accuracy_daily reads [day, day + 1) across
--    workspaces (accuracy.py _DAILY); the Grafana accuracy panel's time range too.
--  * idx_content_published (workspace_id, published_at): the posts of a workspace published in a
--    window (posting_times.py _INSERT, trends.py posts); the platform column in between made
--    published_at a filter inside the workspace's whole range.
--  * idx_improvement_time (workspace_id, recorded_at), instead of (workspace_id, improvement_type,
--    recorded_at): the audit proposed dropping it, but seed 001's key query 4 (AI improvement
--    tracking, run as written) filters recorded_at >= now() - 7 days per workspace (row-level
--    security's workspace_id) and groups by improvement_type; with improvement_type in between,
--    the time filter was not a range of the index. The name is seed 001's idx_improvement_time.
--
-- The seeds' indexes left out (never created by 0001/0006, or dropped here), besides those above:
--  * 001: idx_content_performance_time (recorded_at): the primary key (recorded_at, id,
--    workspace_id) leads with it; idx_ai_patterns_type, idx_ai_patterns_success:
--    ai_learning_patterns is a view (0007) of identified_patterns; idx_trend_platform,
--    idx_trend_type: the unique key (workspace_id, platform, trend_type, ...) leads with them;
--    idx_improvement_type: key query 4 groups by it over a time range, it filters nothing.
--  * 004: idx_event_data GIN (event_data) and idx_learning_events_type_time_entity (docs/ingest.md);
--    idx_ml_models_created_at, idx_ml_models_parent, idx_ml_models_hyperparameters,
--    idx_training_datasets_type, idx_training_datasets_created_at, idx_training_sessions_start,
--    idx_evolution_experiments_status, idx_evolution_experiments_created_at,
--    idx_evolution_generations_number, idx_evolution_individuals_status,
--    idx_patterns_confidence, idx_patterns_severity, idx_patterns_last_detected,
--    idx_predictions_type, idx_predictions_status, idx_ab_experiments_dates,
--    idx_ab_assignments_user: no statement filters or orders on those columns;
--    idx_evolution_generations_experiment, idx_evolution_individuals_generation,
--    idx_ab_assignments_experiment: the unique keys lead with the same columns;
--    idx_git_learning_events_*: the table is left out (0006).
--  * 003 names no index by its columns ("60+ indexes"); 002 names an HNSW index on embeddings
--    (no pgvector here, 0006).
--
-- Locks: a DROP INDEX on a partitioned table's index drops its partitions' indexes with it and
-- takes an ACCESS EXCLUSIVE lock on the parent (CONCURRENTLY is refused for partitioned indexes);
-- the CREATE INDEXes lock their (unpartitioned) tables against writes while they build. Writes to
-- those tables wait until this migration commits: on a large installation run it in a maintenance
-- window, as 0025 says of its key rebuild.

DROP INDEX IF EXISTS idx_learning_events_type_timestamp, idx_learning_events_entity, idx_learning_events_user,
    idx_learning_events_session, idx_learning_events_timestamp_brin;

DROP INDEX IF EXISTS idx_performance_metrics_name_timestamp, idx_performance_metrics_category,
    idx_performance_metrics_component_time, idx_performance_metrics_tags, idx_performance_metrics_timestamp_brin;

DROP INDEX IF EXISTS idx_content_performance_platform, idx_content_performance_time_brin;

DROP INDEX IF EXISTS idx_predictions_model, idx_predictions_target, idx_predictions_timestamp, idx_active_predictions;
CREATE INDEX IF NOT EXISTS idx_predictions_due ON predictions (prediction_timestamp, workspace_id, id)
    WHERE actual_score IS NULL AND outcome_at IS NULL AND status = 'active'
      AND target_entity_type = 'content' AND prediction_horizon IS NOT NULL AND predicted_score IS NOT NULL;

DROP INDEX IF EXISTS idx_prediction_accuracy_model;
CREATE INDEX IF NOT EXISTS idx_prediction_accuracy_measured ON prediction_accuracy (measured_at);

DROP INDEX IF EXISTS idx_patterns_type_status, idx_patterns_success, idx_pattern_signatures,
    idx_pattern_occurrences_pattern, idx_pattern_occurrences_source, idx_pattern_occurrences_content,
    idx_pattern_occurrences_timestamp;

DROP INDEX IF EXISTS idx_learning_rollups_type, idx_engagement_rollups_content;

DROP INDEX IF EXISTS idx_content_platform_published, idx_content_connector, idx_content_hashtags;
CREATE INDEX IF NOT EXISTS idx_content_published ON content (workspace_id, published_at);

DROP INDEX IF EXISTS idx_improvement_type_time;
CREATE INDEX IF NOT EXISTS idx_improvement_time ON ai_improvement_tracking (workspace_id, recorded_at);

DROP INDEX IF EXISTS idx_post_media_links_media, idx_ml_models_type_status, idx_training_sessions_model,
    idx_training_sessions_status, idx_ab_experiments_status, idx_ab_assignments_variant, idx_active_experiments,
    idx_style_tags, idx_trend_platform_type, idx_ai_context_conversation;
