-- 0016: an alert rule's name is unique in its workspace. Rules as code (`learnstream alerts rules
-- apply FILE.yaml`) identify a rule by (workspace_id, alert_name), and `alerts rules show|rm NAME`
-- find it by name.
--
-- Rules that already share a name in a workspace: the oldest keeps it, the others get " (2)",
-- " (3)", ... appended (the name shortened to fit 100 characters); the audit trail (0015) records
-- each rename and the workers reload the renamed rules (the 0003 trigger NOTIFYs).

WITH dup AS (
    SELECT id, alert_name,
           row_number() OVER (PARTITION BY workspace_id, alert_name ORDER BY created_at, id) AS n
    FROM performance_alerts
)
UPDATE performance_alerts a
SET alert_name = left(d.alert_name, 100 - length(' (' || d.n || ')')) || ' (' || d.n || ')',
    updated_at = now()
FROM dup d
WHERE a.id = d.id AND d.n > 1;

ALTER TABLE performance_alerts
    ADD CONSTRAINT performance_alerts_workspace_name_key UNIQUE (workspace_id, alert_name);
