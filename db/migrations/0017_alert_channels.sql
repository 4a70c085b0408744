-- 0017: alert notification channels (issue #13): where the notifications of a rule that names
-- them (performance_alerts.notification_channels) are delivered by the workers.
--
--  * one row per (workspace, name); kind alertmanager (url: the Alertmanager's base URL) or
--    webhook (url, and secret: the HMAC-SHA256 key every request is signed with) or topic
--    (nothing to deliver: the notifications are on the alert-notifications topic already; the
--    name `topic` is built in and needs no row);
--  * timeout_s bounds one HTTP attempt;
--  * the secret is never readable by members (column privileges) and never in audit_log (the
--    audit trigger leaves it out; secret_changed_at records a rotation instead).

CREATE TABLE alert_channels (
    workspace_id      uuid             NOT NULL,
    name              varchar(100)     NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'),
    kind              varchar(16)      NOT NULL CHECK (kind IN ('alertmanager', 'webhook', 'topic')),
    url               varchar(2048),
    secret            text,
    secret_changed_at timestamptz,
    timeout_s         double precision NOT NULL DEFAULT 10 CHECK (timeout_s > 0 AND timeout_s <= 300),
    is_active         boolean          NOT NULL DEFAULT true,
    created_by        varchar(255),
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, name),
    CHECK ((kind = 'topic') = (url IS NULL)),
    CHECK ((kind = 'webhook') = (secret IS NOT NULL))
);

SELECT enable_workspace_isolation('alert_channels', 'admin');
-- members read everything but the secret
REVOKE SELECT ON alert_channels FROM learnstream_member;
GRANT SELECT (workspace_id, name, kind, url, secret_changed_at, timeout_s, is_active, created_by, created_at,
              updated_at) ON alert_channels TO learnstream_member;

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON alert_channels
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,name', 'updated_at,secret');
