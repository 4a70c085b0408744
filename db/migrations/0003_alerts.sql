-- 0003: alert rules and notifications (seed 003: performance_alerts, alert_notifications,
-- alert_severity, alert_status), with these changes:
--  * alert_status gains 'nodata' (a watched metric that went silent) beside the seed's
--    active (= firing), acknowledged, resolved, muted;
--  * performance_alerts carries the lifecycle timings (for / keep_firing_for / repeat_interval /
--    nodata_after, in seconds) and the window the metric is aggregated over;
--  * a change to a rule NOTIFYs channel learnstream_alert_rules, so workers reload without restart;
--  * alert_notifications has one row per notification sent, keyed by (fingerprint, status,
--    sent_at): a redelivered notification is not recorded twice.

CREATE TYPE alert_severity AS ENUM ('info', 'warning', 'critical');
CREATE TYPE alert_status AS ENUM ('active', 'acknowledged', 'resolved', 'muted', 'nodata');

CREATE TABLE performance_alerts (
    id                    uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id          uuid             NOT NULL,
    alert_name            varchar(100)     NOT NULL,
    alert_type            varchar(100)     NOT NULL DEFAULT 'threshold',
    metric                varchar(100)     NOT NULL,
    condition_op          varchar(16)      NOT NULL
        CHECK (condition_op IN ('>', '>=', '<', '<=', '=', '!=', 'pct_change')),
    threshold_value       double precision NOT NULL,
    window_s              double precision NOT NULL DEFAULT 60 CHECK (window_s > 0),
    severity              alert_severity   NOT NULL DEFAULT 'warning',
    notification_channels text[]           NOT NULL DEFAULT '{}',
    is_active             boolean          NOT NULL DEFAULT true,
    for_duration_s        double precision NOT NULL DEFAULT 0 CHECK (for_duration_s >= 0),
    keep_firing_for_s     double precision NOT NULL DEFAULT 0 CHECK (keep_firing_for_s >= 0),
    repeat_interval_s     double precision NOT NULL DEFAULT 3600 CHECK (repeat_interval_s > 0),
    nodata_after_s        double precision CHECK (nodata_after_s > 0),
    created_by            varchar(255),
    created_at            timestamptz      NOT NULL DEFAULT now(),
    updated_at            timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX idx_performance_alerts_workspace_active ON performance_alerts (workspace_id, is_active);
CREATE INDEX idx_performance_alerts_metric ON performance_alerts (metric) WHERE is_active;

CREATE FUNCTION learnstream_alert_rules_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('learnstream_alert_rules', coalesce(NEW.id, OLD.id)::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER performance_alerts_changed
    AFTER INSERT OR UPDATE OR DELETE ON performance_alerts
    FOR EACH ROW EXECUTE FUNCTION learnstream_alert_rules_changed();

CREATE TABLE alert_notifications (
    id              uuid             NOT NULL DEFAULT gen_random_uuid(),
    alert_id        uuid             NOT NULL,  -- performance_alerts.id (not a foreign key: a deleted rule keeps its history)
    workspace_id    uuid             NOT NULL,
    fingerprint     varchar(32)      NOT NULL,
    status          alert_status     NOT NULL,
    severity        alert_severity   NOT NULL,
    current_value   double precision,
    threshold_value double precision NOT NULL,
    labels          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    alert_message   text             NOT NULL,
    triggered_at    timestamptz      NOT NULL,
    resolved_at     timestamptz,
    acknowledged_by varchar(255),
    is_repeat       boolean          NOT NULL DEFAULT false,
    sent_at         timestamptz      NOT NULL,
    PRIMARY KEY (fingerprint, status, sent_at)
);

CREATE INDEX idx_alert_notifications_workspace_sent ON alert_notifications (workspace_id, sent_at);
CREATE INDEX idx_alert_notifications_alert ON alert_notifications (alert_id, sent_at);

ALTER TABLE performance_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON performance_alerts
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
CREATE POLICY workspace_isolation ON alert_notifications
    USING (workspace_id = nullif(current_setting('learnstream.workspace_id', true), '')::uuid);
