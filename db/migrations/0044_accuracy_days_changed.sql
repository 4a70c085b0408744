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
-- transition tables, ONE row per key (review 3 F8: one row per key and statement grew without bound
-- between daily runs, 1000 updates of one accuracy row -> 1001 rows): a key already there has its
-- changed_at moved forward (ON CONFLICT DO UPDATE, strictly later than before), so the table holds at
-- most the keys changed since the last run. The job (db/analytics/accuracy.py accuracy_per_day) reads
-- the keys with their changed_at, recomputes those keys' days whole, with the days of its own period
-- (a key left without accuracy rows loses its daily row), and deletes only the keys whose changed_at
-- is still the one it read: a change committed while it runs (changed_at moved on; the writer's row
-- lock makes the job's delete wait for it) stays for the next run. A DO NOTHING would have let a
-- writer rely on a row the job was about to delete with a snapshot that predates the writer's data.
-- Writers of the same key now wait on each other (a row lock on the key until commit); the trigger
-- takes its keys in key order. Its work is bounded by what changed.
--
-- Existing data: every key of prediction_accuracy and of model_accuracy_daily is recorded once here,
-- so the first run after this migration recomputes every day (the stale ones get right).

CREATE TABLE prediction_accuracy_changes (
    workspace_id    uuid         NOT NULL,
    model_id        uuid         NOT NULL,
    prediction_type varchar(100) NOT NULL,
    day             date         NOT NULL,   -- UTC day of measured_at
    changed_at      timestamptz  NOT NULL DEFAULT clock_timestamp(),   -- the key's latest change (its writer's clock)
    PRIMARY KEY (workspace_id, model_id, prediction_type, day)
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

-- a key already recorded: changed_at strictly later (the job deletes a key only with the changed_at it read)
CREATE FUNCTION prediction_accuracy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.prediction_accuracy_changes AS c (workspace_id, model_id, prediction_type, day)
        SELECT DISTINCT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM new_rows
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, model_id, prediction_type, day) DO UPDATE
        SET changed_at = greatest(clock_timestamp(), c.changed_at + interval '1 microsecond');
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO public.prediction_accuracy_changes AS c (workspace_id, model_id, prediction_type, day)
        SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM old_rows
        UNION
        SELECT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM new_rows
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, model_id, prediction_type, day) DO UPDATE
        SET changed_at = greatest(clock_timestamp(), c.changed_at + interval '1 microsecond');
    ELSE
        INSERT INTO public.prediction_accuracy_changes AS c (workspace_id, model_id, prediction_type, day)
        SELECT DISTINCT workspace_id, model_id, prediction_type, (measured_at AT TIME ZONE 'UTC')::date FROM old_rows
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (workspace_id, model_id, prediction_type, day) DO UPDATE
        SET changed_at = greatest(clock_timestamp(), c.changed_at + interval '1 microsecond');
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
