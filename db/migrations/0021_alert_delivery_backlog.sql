-- 0021: the alert-delivery backlog (issue #23 item 9, "one channel down delays only itself").
--
-- A delivery lane (one workspace's channel) holds at most delivery_max_pending_per_channel
-- notifications in memory. The notifications it is sent beyond that are written here, and the
-- delivery consumer's offset moves on past them: a channel that is down or slow fills its own
-- backlog, never the consumer's memory, so the other channels' notifications keep flowing. The
-- lane reads its backlog back as it makes room, in the order of the notifications-topic offsets it
-- came from (per partition: an alert's firing before its resolved); a row is deleted once the
-- channel has taken the notification, or it was dead-lettered or skipped. The rows of a
-- partition are delivered by the worker that owns it (the next owner takes them up after a
-- rebalance or a crash). One row per (consumer group, source record, channel): writing a row again
-- (a notification consumed again after a crash) is a no-op.

CREATE TABLE alert_delivery_backlog (
    consumer_group   text         NOT NULL,
    workspace_id     uuid         NOT NULL,
    channel          varchar(255) NOT NULL,
    source_topic     text         NOT NULL,
    source_partition int          NOT NULL,
    source_offset    bigint       NOT NULL,
    notification     bytea        NOT NULL,
    deferred_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, source_topic, source_partition, workspace_id, channel, source_offset)
);

SELECT enable_workspace_isolation('alert_delivery_backlog');
