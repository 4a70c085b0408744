-- 0020: alert state that outlives a worker (issue #23 item 8).
--
--  * alert_mutes: one row per mute in force (`learnstream alerts mute`, an alert-commands
--    message): of a whole rule (scope 'rule', target its id) or of one alert instance (scope
--    'fingerprint', target the fingerprint), until muted_until. The worker that owns the workspace
--    writes it when it applies the command (an unmute deletes it) and reads it back when it starts
--    or takes the workspace up in a rebalance, so a mute is not forgotten by a restart. Rows past
--    muted_until are deleted when the mutes are read.
--  * alert_notifications.published_at: when the notification was on the alert-notifications topic
--    (the outbox, below). NULL: recorded, not yet published; a worker publishes such rows when it
--    takes their workspace up (a crash between recording and publishing loses nothing). Rows
--    stored before this migration count as published (the column is added with the migration's
--    time as its value, then the default is dropped: no rewrite of the table). rule_name,
--    condition_op and window_s make a row the whole notification, so it can be published from
--    the row alone, even once its rule is deleted (NULL in rows stored before).

CREATE TABLE alert_mutes (
    workspace_id uuid         NOT NULL,
    scope        varchar(16)  NOT NULL CHECK (scope IN ('rule', 'fingerprint')),
    target       varchar(64)  NOT NULL CHECK (target ~ '[^[:space:]]'),
    muted_until  timestamptz  NOT NULL,
    muted_by     varchar(255),
    issued_at    timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, scope, target)
);

CREATE INDEX idx_alert_mutes_until ON alert_mutes (muted_until);

SELECT enable_workspace_isolation('alert_mutes');

ALTER TABLE alert_notifications ADD COLUMN published_at timestamptz DEFAULT now(),
    ADD COLUMN rule_name varchar(100), ADD COLUMN condition_op varchar(16), ADD COLUMN window_s double precision;
ALTER TABLE alert_notifications ALTER COLUMN published_at DROP DEFAULT;
-- retention archives alert_notifications' rows into archive.alert_notifications: the same columns
ALTER TABLE archive.alert_notifications ADD COLUMN published_at timestamptz,
    ADD COLUMN rule_name varchar(100), ADD COLUMN condition_op varchar(16), ADD COLUMN window_s double precision;

CREATE INDEX idx_alert_notifications_unpublished ON alert_notifications (workspace_id, sent_at)
    WHERE published_at IS NULL;
