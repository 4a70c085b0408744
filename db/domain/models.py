"""ml_models, training_datasets, model_training_sessions (seed 004): model_registered,
dataset_registered, training_progress."""

from __future__ import annotations

from db.domain.earliest import earliest_created_at
from db.domain.parking import park_sql

MODEL_REGISTERED = ("""
INSERT INTO ml_models AS m (workspace_id, id, name, version, model_type, framework, model_data, hyperparameters,
    training_config, performance_metrics, status, created_by, parent_model_id, created_at, updated_at, last_event_at)
SELECT DISTINCT ON (r.workspace_id, r.model_id)
    r.workspace_id, r.model_id, r.name, r.version, r.model_type, r.framework, r.model_data, r.hyperparameters,
    r.training_config, r.performance_metrics, r.status, r.created_by, r.parent_model_id, r.ts, r.ts, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, model_id uuid, name text, version text,
    model_type text, framework text, model_data jsonb, hyperparameters jsonb, training_config jsonb,
    performance_metrics jsonb, status text, created_by text, parent_model_id uuid)
ORDER BY r.workspace_id, r.model_id, r.ts DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    name = excluded.name, version = excluded.version, model_type = excluded.model_type,
    framework = excluded.framework, model_data = coalesce(excluded.model_data, m.model_data),
    hyperparameters = coalesce(excluded.hyperparameters, m.hyperparameters),
    training_config = coalesce(excluded.training_config, m.training_config),
    performance_metrics = coalesce(excluded.performance_metrics, m.performance_metrics),
    status = excluded.status, created_by = coalesce(excluded.created_by, m.created_by),
    parent_model_id = coalesce(excluded.parent_model_id, m.parent_model_id),
    updated_at = excluded.last_event_at, last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > m.last_event_at
""", earliest_created_at("ml_models", "model_id"))

DATASET_REGISTERED = ("""
INSERT INTO training_datasets AS d (workspace_id, id, name, version, dataset_type, source_type, data_schema,
    storage_location, size_bytes, record_count, quality_score, preprocessing_config, created_at, updated_at, last_event_at)
SELECT DISTINCT ON (r.workspace_id, r.dataset_id)
    r.workspace_id, r.dataset_id, r.name, r.version, r.dataset_type, r.source_type, r.data_schema,
    r.storage_location, r.size_bytes, r.record_count, r.quality_score, r.preprocessing_config, r.ts, r.ts, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, dataset_id uuid, name text, version text,
    dataset_type text, source_type text, data_schema jsonb, storage_location text, size_bytes bigint,
    record_count bigint, quality_score double precision, preprocessing_config jsonb)
ORDER BY r.workspace_id, r.dataset_id, r.ts DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    name = excluded.name, version = excluded.version, dataset_type = excluded.dataset_type,
    source_type = coalesce(excluded.source_type, d.source_type), data_schema = coalesce(excluded.data_schema, d.data_schema),
    storage_location = coalesce(excluded.storage_location, d.storage_location),
    size_bytes = coalesce(excluded.size_bytes, d.size_bytes), record_count = coalesce(excluded.record_count, d.record_count),
    quality_score = coalesce(excluded.quality_score, d.quality_score),
    preprocessing_config = coalesce(excluded.preprocessing_config, d.preprocessing_config),
    updated_at = excluded.last_event_at, last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > d.last_event_at
""", earliest_created_at("training_datasets", "dataset_id"))

_MODEL_MISSING = ("NOT EXISTS (SELECT 1 FROM ml_models m WHERE m.workspace_id = r.workspace_id AND m.id = r.model_id)",
                  "'model ' || r.model_id")
_DATASET_MISSING = ("r.dataset_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM training_datasets d "
                    "WHERE d.workspace_id = r.workspace_id AND d.id = r.dataset_id)", "'dataset ' || r.dataset_id")
PARK_TRAINING_PROGRESS = park_sql("training_progress", "model_id uuid, dataset_id uuid", (_MODEL_MISSING, _DATASET_MISSING))

# progress events of one session are folded per batch (latest status by event time, max epochs,
# losses merged by epoch), then merged with the stored session the same way: any order of arrival
# gives the same row (see docs/domain.md for what it does not cover: a session's model and dataset
# are taken as constant, an epoch reported twice with other losses keeps the one routed last)
TRAINING_PROGRESS = ("""
WITH r AS (
    SELECT r.* FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, session_id uuid,
        model_id uuid, dataset_id uuid, status text, epoch integer, total_epochs integer, loss double precision,
        val_loss double precision, progress_percentage double precision, validation_metrics jsonb,
        resource_usage jsonb, error_log text)
    WHERE EXISTS (SELECT 1 FROM ml_models m WHERE m.workspace_id = r.workspace_id AND m.id = r.model_id)
      AND (r.dataset_id IS NULL OR EXISTS (SELECT 1 FROM training_datasets d
                                           WHERE d.workspace_id = r.workspace_id AND d.id = r.dataset_id))
), s AS (
    SELECT workspace_id, session_id,
        (array_agg(model_id ORDER BY ts DESC))[1] AS model_id,
        (array_agg(dataset_id ORDER BY ts DESC) FILTER (WHERE dataset_id IS NOT NULL))[1] AS dataset_id,
        (array_agg(status ORDER BY ts DESC))[1] AS status,
        min(ts) AS first_ts, max(ts) AS last_ts,
        max(epoch) AS epoch, max(total_epochs) AS total_epochs,
        max(coalesce(progress_percentage, CASE WHEN status = 'completed' THEN 100 END)) AS progress,
        merge_by_epoch('[]', jsonb_agg(jsonb_strip_nulls(jsonb_build_object('epoch', epoch, 'loss', loss, 'val_loss', val_loss)))
            FILTER (WHERE epoch IS NOT NULL AND (loss IS NOT NULL OR val_loss IS NOT NULL))) AS losses,
        (array_agg(validation_metrics ORDER BY ts DESC) FILTER (WHERE validation_metrics IS NOT NULL))[1] AS validation_metrics,
        (array_agg(resource_usage ORDER BY ts DESC) FILTER (WHERE resource_usage IS NOT NULL))[1] AS resource_usage,
        (array_agg(error_log ORDER BY ts DESC) FILTER (WHERE error_log IS NOT NULL))[1] AS error_log
    FROM r GROUP BY workspace_id, session_id
)
INSERT INTO model_training_sessions AS t (workspace_id, id, model_id, dataset_id, training_start, training_end, status,
    progress_percentage, current_epoch, total_epochs, loss_history, validation_metrics, resource_usage, error_log,
    created_at, updated_at, last_event_at)
SELECT workspace_id, session_id, model_id, dataset_id, first_ts, CASE WHEN status <> 'running' THEN last_ts END, status,
    coalesce(progress, 0), coalesce(epoch, 0), total_epochs, losses, validation_metrics, resource_usage, error_log,
    first_ts, last_ts, last_ts
FROM s
ON CONFLICT (workspace_id, id) DO UPDATE SET
    training_start = least(t.training_start, excluded.training_start),
    status = CASE WHEN excluded.last_event_at >= t.last_event_at THEN excluded.status ELSE t.status END,
    training_end = CASE WHEN excluded.last_event_at >= t.last_event_at THEN excluded.training_end ELSE t.training_end END,
    dataset_id = coalesce(t.dataset_id, excluded.dataset_id),
    progress_percentage = greatest(t.progress_percentage, excluded.progress_percentage),
    current_epoch = greatest(t.current_epoch, excluded.current_epoch),
    total_epochs = greatest(t.total_epochs, excluded.total_epochs),
    loss_history = merge_by_epoch(t.loss_history, excluded.loss_history),
    validation_metrics = CASE WHEN excluded.last_event_at >= t.last_event_at
        THEN coalesce(excluded.validation_metrics, t.validation_metrics)
        ELSE coalesce(t.validation_metrics, excluded.validation_metrics) END,
    resource_usage = CASE WHEN excluded.last_event_at >= t.last_event_at
        THEN coalesce(excluded.resource_usage, t.resource_usage) ELSE coalesce(t.resource_usage, excluded.resource_usage) END,
    error_log = CASE WHEN excluded.last_event_at >= t.last_event_at
        THEN coalesce(excluded.error_log, t.error_log) ELSE coalesce(t.error_log, excluded.error_log) END,
    created_at = least(t.created_at, excluded.created_at),
    updated_at = greatest(t.updated_at, excluded.updated_at),
    last_event_at = greatest(t.last_event_at, excluded.last_event_at)
""",)
