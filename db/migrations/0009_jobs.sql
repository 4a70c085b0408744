-- 0009: the job runner's record (issue #10). One row per run of a job for a scheduled time:
-- status running -> succeeded | failed; a run that succeeded for a scheduled time is not repeated by
-- the schedule (an operator's `learnstream jobs run` always runs). System-wide, not per workspace
-- (a job spans workspaces), so no workspace_id and no RLS.

CREATE TABLE job_runs (
    id            bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job           varchar(100) NOT NULL,
    scheduled_for timestamptz  NOT NULL,            -- the schedule's fire time this run is for
    period_start  timestamptz,                      -- the data period it computed, when it has one
    period_end    timestamptz,
    trigger       varchar(20)  NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    worker        varchar(255) NOT NULL,            -- host:pid
    started_at    timestamptz  NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    status        varchar(20)  NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    rows          bigint       CHECK (rows >= 0),
    error         text
);
CREATE INDEX idx_job_runs_job_scheduled ON job_runs (job, scheduled_for DESC);
CREATE INDEX idx_job_runs_succeeded ON job_runs (job, scheduled_for) WHERE status = 'succeeded';

-- prediction_accuracy also from engagement: a content prediction of a counter (views, likes, ...)
-- or of the engagement rate is measured on the post's first snapshot at or after its horizon
ALTER TABLE prediction_accuracy DROP CONSTRAINT prediction_accuracy_source_check;
ALTER TABLE prediction_accuracy ADD CONSTRAINT prediction_accuracy_source_check
    CHECK (source IN ('outcome', 'feedback', 'engagement'));

-- accuracy per model, prediction type and UTC day of measurement (the model_accuracy_daily job)
CREATE TABLE model_accuracy_daily (
    workspace_id     uuid         NOT NULL,
    model_id         uuid         NOT NULL,
    prediction_type  varchar(100) NOT NULL,
    day              date         NOT NULL,
    predictions      integer      NOT NULL CHECK (predictions > 0),
    mean_accuracy    double precision NOT NULL,   -- mean accuracy_percentage
    mean_absolute_error double precision NOT NULL,
    mean_percentage_error double precision,       -- over the predictions whose actual was not 0
    computed_at      timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, model_id, prediction_type, day)
);
SELECT enable_workspace_isolation('model_accuracy_daily');
