-- 0044: model_accuracy_daily revisits every day whose accuracy rows changed (issue #25, review 2 R2).
--
-- The model_accuracy_daily job computed the day before its run, once. prediction_accuracy rows are
-- dated by when the outcome happened (measured_at: the outcome event's time, the snapshot's time),
-- not by when they arrive, and they change later: an outcome routed the next morning for a
-- prediction settled the evening before, a backfill of old outcomes, an explicit outcome replacing
-- feedback or an engagement measurement, an earlier model_prediction event changing the predicted
-- score (db/domain/predictions.py), a row deleted because the prediction lost its score. The
-- predictions report and Grafana's per-day panel kept the day's first figures for good.
--
-- Now every write to prediction_accuracy records the (workspace, model, prediction type, UTC day of
-- measured_at) it touched, before and after the change (an update that moves a row to another day,
-- model or type marks both), in prediction_accuracy_changes: statement-level triggers over the
-- transition tables, one row per key and statement, append-only (no unique key, so concurrent
-- writers never wait on each other). The job (db/analytics/accuracy.py accuracy_per_day) takes the
-- rows it sees out of that table and recomputes those keys' days whole, with the days of its own
-- period; a key left without accuracy rows loses its daily row. Its work is bounded by what changed.
--
-- Existing data: every key of prediction_accuracy and of model_accuracy_daily is recorded once here,
-- so the first run after this migration recomputes every day (the stale ones get right).

CREATE TABLE prediction_accuracy_changes (
    workspace_id    uuid         NOT NULL,
    model_id        uuid         NOT NULL,
    prediction_type varchar(100) NOT NULL,
    day             date         NOT NULL,   -- UTC day of measured_at
    changed_at      timestamptz  NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE prediction_accuracy_changes IS
    'the (workspace, model, prediction type, UTC day) keys whose prediction_accuracy rows changed since the '
    'model_accuracy_daily job last ran (it consumes them); written by the prediction_accuracy triggers (0044)';
-- the keys of the existing data (before the row-level security, which the owner's session is under)
INSERT INTO prediction_accuracy_changes (workspace_id, model_id, prediction_type, day)
SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM prediction_accuracy
UNION
SELECT workspace_id, model_id, prediction_type, day FROM model_accuracy_daily;
SELECT enable_workspace_isolation('prediction_accuracy_changes');

CREATE FUNCTION prediction_accuracy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.prediction_accuracy_changes (workspace_id, model_id, prediction_type, day)
        SELECT DISTINCT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO public.prediction_accuracy_changes (workspace_id, model_id, prediction_type, day)
        SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM old_rows
        UNION
        SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM new_rows;
    ELSE
        INSERT INTO public.prediction_accuracy_changes (workspace_id, model_id, prediction_type, day)
        SELECT DISTINCT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM old_rows;
    END IF;
    RETURN NULL;
END
$$;

-- a trigger with transition tables takes one event each
CREATE TRIGGER accuracy_inserted AFTER INSERT ON prediction_accuracy
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prediction_accuracy_changed();
CREATE TRIGGER accuracy_updated AFTER UPDATE ON prediction_accuracy
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prediction_accuracy_changed();
CREATE TRIGGER accuracy_deleted AFTER DELETE ON prediction_accuracy
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION prediction_accuracy_changed();
