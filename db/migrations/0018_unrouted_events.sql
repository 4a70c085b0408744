-- 0018: learning events stored in the raw log but not routed into the domain tables (issue #22).
--
--  * unrouted_events: one row per stored learning event of a known type whose event_data misses
--    its type's contract (reason 'contract') or whose record a domain table refused ('refused');
--    the event itself is in learning_events (its key: event_timestamp, event_id). A successful
--    `learnstream domain reroute` deletes the row; events of unknown types are only counted
--    (learnstream_unrouted_total{reason="unknown_type"}) and listed from learning_events.
--  * reroute_runs: the progress of `learnstream domain reroute`, one row per run, advanced in the
--    transaction of each batch (a run interrupted resumes after its last committed batch, when the
--    same arguments, as given, are run again).

CREATE TABLE unrouted_events (
    workspace_id     uuid          NOT NULL,
    event_id         uuid          NOT NULL,
    event_timestamp  timestamptz   NOT NULL,
    event_type       varchar(100)  NOT NULL,
    reason           varchar(16)   NOT NULL CHECK (reason IN ('contract', 'refused')),
    errors           text[]        NOT NULL CHECK (cardinality(errors) BETWEEN 1 AND 10),
    detected_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, event_id, event_timestamp)
);
CREATE INDEX idx_unrouted_events_type ON unrouted_events (workspace_id, event_type, event_timestamp);
CREATE INDEX idx_unrouted_events_time ON unrouted_events (event_timestamp);

SELECT enable_workspace_isolation('unrouted_events');

CREATE TABLE reroute_runs (
    id              bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request         text          NOT NULL,  -- the arguments as given (`--since 7d`): what resumes the run
    workspace_id    uuid,                      -- NULL: every workspace
    event_type      varchar(100),              -- NULL: every type
    since           timestamptz   NOT NULL,
    until           timestamptz   NOT NULL CHECK (until > since),
    position_ts     timestamptz,               -- the last event done: (timestamp, id)
    position_id     uuid,
    events          bigint        NOT NULL DEFAULT 0,
    routed          bigint        NOT NULL DEFAULT 0,
    unrouted        bigint        NOT NULL DEFAULT 0,
    unknown_type    bigint        NOT NULL DEFAULT 0,
    started_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
-- a run of one workspace is readable by its members; a run over every workspace (workspace_id NULL)
-- by the service and maintenance only
SELECT enable_workspace_isolation('reroute_runs');
