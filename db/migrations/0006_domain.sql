-- 0006: the seeds' domain tables, fed by the streams (issue #9).
--
-- One table per concept; where seeds name the same concept twice, the other names are views
-- (0007_seed_views.sql). Sources: ../shared/seeds/001 (content, patterns, styles, trends,
-- improvements), 002 (posts, media, embeddings, AI context), 003 (predictions and their accuracy,
-- audiences, competitors, connectors), 004 (models, datasets, training, evolution, patterns,
-- predictions, A/B tests). Deliberate changes, for all of them:
--  * workspace_id on every table (tenancy) and in every key: ids are the producers' and unique only
--    within a workspace; row-level security on every table (the policy of 0001);
--  * timestamps are timestamptz; the time a row describes is the event's time, not now();
--  * last_event_at on the mutable tables: an event changes a row only when it is newer than what
--    made the row, so redeliveries and out-of-order arrivals leave the same result;
--  * references between the domain's own entities are foreign keys where the seeds have them
--    (predictions -> ml_models, sessions -> models/datasets, A/B and evolution children -> their
--    experiment, occurrences -> patterns); an event whose referent has not arrived is parked in
--    parked_events (below), never written half. content_id is a soft reference: a style analysis
--    or an engagement update for a post the scrapers have not described yet is kept;
--  * DECIMAL(3,2)/(5,2) scores of the seeds are double precision with CHECKs on their ranges
--    (an improvement of 1,200 % does not fit DECIMAL(5,2));
--  * left out: 004's git_operation_learning_events (it belongs to the graph-sitter system, not to
--    this platform); 002's organizations/organization_members, 003's workspaces and user_profiles
--    come with tenant isolation (issue #11); 004's data_retention_policies and 001's
--    archived_performance_metrics with retention (issue #11); 003's optimal_posting_times,
--    benchmark_comparisons, custom_reports, report_schedules, report_executions and the
--    materialized views are computed by jobs (issue #10);
--  * embeddings (002) are real[] with a dimension CHECK (Debian's PostgreSQL 15 has no pgvector; a
--    later migration can ALTER ... TYPE vector USING vector::vector), with exact cosine search by SQL;
--  * none of these tables is partitioned: they hold entities and moderate append streams; the
--    high-volume raw log stays learning_events.

-- ----------------------------------------------------------------------------------------------
-- Content (001 content, 003 content / published_posts, 002 posts_core / posts_content)

CREATE TABLE connectors (
    workspace_id   uuid         NOT NULL,
    id             varchar(100) NOT NULL,           -- the connector / account id producers use
    platform       varchar(50)  NOT NULL,
    handle         varchar(255),
    display_name   varchar(255),
    relationship   varchar(20)  NOT NULL DEFAULT 'own' CHECK (relationship IN ('own', 'competitor')),
    timezone       varchar(64),
    first_seen_at  timestamptz  NOT NULL,
    last_seen_at   timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE content (
    workspace_id   uuid         NOT NULL,
    id             uuid         NOT NULL,           -- content_id, as in content_performance_metrics
    platform       varchar(50)  NOT NULL,
    connector_id   varchar(100),
    external_id    varchar(255),                    -- the platform's own post id
    url            text,
    title          text,
    caption        text,
    hashtags       text[]       NOT NULL DEFAULT '{}',
    mentions       text[]       NOT NULL DEFAULT '{}',
    author         varchar(255),
    content_type   varchar(50),                     -- video, image, carousel, text, ...
    status         varchar(20)  NOT NULL DEFAULT 'published'
        CHECK (status IN ('draft', 'scheduled', 'published', 'deleted')),
    published_at   timestamptz,
    first_seen_at  timestamptz  NOT NULL,
    last_seen_at   timestamptz  NOT NULL,
    last_event_id  uuid         NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX idx_content_platform_published ON content (workspace_id, platform, published_at DESC);
CREATE INDEX idx_content_connector ON content (workspace_id, connector_id);
CREATE INDEX idx_content_hashtags ON content USING gin (hashtags);

CREATE TABLE media_files (
    workspace_id   uuid         NOT NULL,
    id             uuid         NOT NULL DEFAULT gen_random_uuid(),
    url            text         NOT NULL,
    media_type     varchar(20)  NOT NULL CHECK (media_type IN ('image', 'video', 'audio', 'gif', 'document')),
    duration_s     double precision CHECK (duration_s >= 0),
    width          integer      CHECK (width > 0),
    height         integer      CHECK (height > 0),
    mime_type      varchar(100),
    first_seen_at  timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, url)
);

CREATE TABLE post_media_links (
    workspace_id   uuid         NOT NULL,
    content_id     uuid         NOT NULL,
    position       smallint     NOT NULL CHECK (position >= 0),
    media_id       uuid         NOT NULL,
    PRIMARY KEY (workspace_id, content_id, position),
    FOREIGN KEY (workspace_id, content_id) REFERENCES content (workspace_id, id) ON DELETE CASCADE,
    FOREIGN KEY (workspace_id, media_id) REFERENCES media_files (workspace_id, id)
);
CREATE INDEX idx_post_media_links_media ON post_media_links (workspace_id, media_id);

-- ----------------------------------------------------------------------------------------------
-- Audiences and competitors (003), from account-snapshots

CREATE TABLE audience_growth (
    workspace_id    uuid         NOT NULL,
    connector_id    varchar(100) NOT NULL,
    platform        varchar(50)  NOT NULL,
    recorded_at     timestamptz  NOT NULL,
    follower_count  bigint       NOT NULL CHECK (follower_count >= 0),
    following_count bigint       CHECK (following_count >= 0),
    posts_count     bigint       CHECK (posts_count >= 0),
    follower_change bigint,                          -- vs the previous snapshot (by recorded_at)
    growth_rate     double precision,                -- follower_change / previous count, %
    retention_rate  double precision CHECK (retention_rate BETWEEN 0 AND 100),
    snapshot_id     uuid         NOT NULL,
    PRIMARY KEY (workspace_id, connector_id, recorded_at)
);

CREATE TABLE audience_demographics (
    workspace_id        uuid         NOT NULL,
    connector_id        varchar(100) NOT NULL,
    platform            varchar(50)  NOT NULL,
    recorded_at         timestamptz  NOT NULL,
    age_ranges          jsonb        NOT NULL DEFAULT '{}',   -- {"18-24": 31.5, ...} in %
    gender_distribution jsonb        NOT NULL DEFAULT '{}',
    top_countries       jsonb        NOT NULL DEFAULT '{}',
    top_cities          jsonb        NOT NULL DEFAULT '{}',
    total_followers     bigint       NOT NULL CHECK (total_followers >= 0),
    snapshot_id         uuid         NOT NULL,
    PRIMARY KEY (workspace_id, connector_id, recorded_at)
);

CREATE TABLE audience_interests (
    workspace_id        uuid         NOT NULL,
    connector_id        varchar(100) NOT NULL,
    platform            varchar(50)  NOT NULL,
    interest_category   varchar(100) NOT NULL,
    recorded_at         timestamptz  NOT NULL,
    affinity_score      double precision CHECK (affinity_score BETWEEN 0 AND 1),
    audience_percentage double precision CHECK (audience_percentage BETWEEN 0 AND 100),
    engagement_rate     double precision CHECK (engagement_rate >= 0),
    PRIMARY KEY (workspace_id, connector_id, interest_category, recorded_at)
);

CREATE TABLE competitor_profiles (
    workspace_id   uuid         NOT NULL,
    id             varchar(100) NOT NULL,            -- the competitor account's connector id
    name           varchar(255) NOT NULL,
    platform       varchar(50)  NOT NULL,
    handle         varchar(255),
    is_active      boolean      NOT NULL DEFAULT true,
    first_seen_at  timestamptz  NOT NULL,
    last_seen_at   timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

CREATE TABLE competitor_metrics (
    workspace_id    uuid         NOT NULL,
    competitor_id   varchar(100) NOT NULL,
    recorded_date   date         NOT NULL,           -- one row a day: the day's latest snapshot
    recorded_at     timestamptz  NOT NULL,
    followers       bigint       NOT NULL CHECK (followers >= 0),
    following       bigint       CHECK (following >= 0),
    posts_count     bigint       CHECK (posts_count >= 0),
    engagement_rate double precision CHECK (engagement_rate >= 0),
    posts_per_week  double precision CHECK (posts_per_week >= 0),
    avg_likes       double precision CHECK (avg_likes >= 0),
    avg_comments    double precision CHECK (avg_comments >= 0),
    snapshot_id     uuid         NOT NULL,
    PRIMARY KEY (workspace_id, competitor_id, recorded_date),
    FOREIGN KEY (workspace_id, competitor_id) REFERENCES competitor_profiles (workspace_id, id)
);

-- ----------------------------------------------------------------------------------------------
-- Models, datasets, training (004)

CREATE TABLE ml_models (
    workspace_id        uuid         NOT NULL,
    id                  uuid         NOT NULL,
    name                varchar(255) NOT NULL,
    version             varchar(50)  NOT NULL,
    model_type          varchar(100) NOT NULL,
    framework           varchar(50),
    model_data          jsonb,
    hyperparameters     jsonb,
    training_config     jsonb,
    performance_metrics jsonb,
    status              varchar(20)  NOT NULL DEFAULT 'training'
        CHECK (status IN ('training', 'active', 'deprecated', 'archived')),
    created_by          varchar(255),
    parent_model_id     uuid,
    created_at          timestamptz  NOT NULL,
    updated_at          timestamptz  NOT NULL,
    last_event_at       timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name, version)
);
CREATE INDEX idx_ml_models_type_status ON ml_models (workspace_id, model_type, status);

CREATE TABLE training_datasets (
    workspace_id         uuid         NOT NULL,
    id                   uuid         NOT NULL,
    name                 varchar(255) NOT NULL,
    version              varchar(50)  NOT NULL,
    dataset_type         varchar(100) NOT NULL,
    source_type          varchar(100),
    data_schema          jsonb,
    storage_location     text,
    size_bytes           bigint       CHECK (size_bytes >= 0),
    record_count         bigint       CHECK (record_count >= 0),
    quality_score        double precision CHECK (quality_score BETWEEN 0 AND 1),
    preprocessing_config jsonb,
    created_at           timestamptz  NOT NULL,
    updated_at           timestamptz  NOT NULL,
    last_event_at        timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name, version)
);

CREATE TABLE model_training_sessions (
    workspace_id        uuid         NOT NULL,
    id                  uuid         NOT NULL,
    model_id            uuid         NOT NULL,
    dataset_id          uuid,
    training_start      timestamptz  NOT NULL,
    training_end        timestamptz,
    status              varchar(20)  NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    progress_percentage double precision NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
    current_epoch       integer      NOT NULL DEFAULT 0 CHECK (current_epoch >= 0),
    total_epochs        integer      CHECK (total_epochs >= 0),
    loss_history        jsonb        NOT NULL DEFAULT '[]',   -- [{"epoch": n, "loss": x, "val_loss": y}] by epoch
    validation_metrics  jsonb,
    resource_usage      jsonb,
    error_log           text,
    created_at          timestamptz  NOT NULL,
    updated_at          timestamptz  NOT NULL,
    last_event_at       timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, model_id) REFERENCES ml_models (workspace_id, id),
    FOREIGN KEY (workspace_id, dataset_id) REFERENCES training_datasets (workspace_id, id)
);
CREATE INDEX idx_training_sessions_model ON model_training_sessions (workspace_id, model_id);
CREATE INDEX idx_training_sessions_status ON model_training_sessions (workspace_id, status);

-- ----------------------------------------------------------------------------------------------
-- Predictions (004 predictions; 003 viral_score_predictions is a view) and their accuracy (003)

CREATE TABLE predictions (
    workspace_id         uuid         NOT NULL,
    id                   uuid         NOT NULL,
    model_id             uuid         NOT NULL,
    prediction_type      varchar(100) NOT NULL,
    target_entity_type   varchar(100),
    target_entity_id     varchar(255),
    predicted_value      jsonb        NOT NULL,
    predicted_score      double precision,        -- the numeric prediction accuracy is measured on
    confidence_score     double precision CHECK (confidence_score BETWEEN 0 AND 1),
    confidence_interval  jsonb,
    prediction_horizon   integer      CHECK (prediction_horizon >= 0),   -- hours
    input_features       jsonb,
    prediction_timestamp timestamptz  NOT NULL,
    actual_outcome       jsonb,
    actual_score         double precision,
    accuracy_score       double precision CHECK (accuracy_score BETWEEN 0 AND 1),
    feedback_received    jsonb,
    status               varchar(20)  NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'validated', 'invalidated', 'expired')),
    outcome_at           timestamptz,
    feedback_at          timestamptz,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, model_id) REFERENCES ml_models (workspace_id, id)
);
CREATE INDEX idx_predictions_model ON predictions (workspace_id, model_id, prediction_timestamp);
CREATE INDEX idx_predictions_target ON predictions (workspace_id, target_entity_type, target_entity_id);
CREATE INDEX idx_predictions_timestamp ON predictions (workspace_id, prediction_timestamp);
CREATE INDEX idx_active_predictions ON predictions (workspace_id, id) WHERE status = 'active';

CREATE TABLE prediction_accuracy (
    workspace_id        uuid         NOT NULL,
    prediction_id       uuid         NOT NULL,
    model_id            uuid         NOT NULL,
    prediction_type     varchar(100) NOT NULL,
    content_id          uuid,                     -- when the prediction's target is a content item
    predicted_score     double precision NOT NULL,
    actual_score        double precision NOT NULL,
    absolute_error      double precision NOT NULL,
    percentage_error    double precision,         -- null when the actual value is 0
    accuracy_percentage double precision NOT NULL CHECK (accuracy_percentage BETWEEN 0 AND 100),
    actual_metrics      jsonb,
    source              varchar(20)  NOT NULL CHECK (source IN ('outcome', 'feedback')),
    measured_at         timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, prediction_id),
    FOREIGN KEY (workspace_id, prediction_id) REFERENCES predictions (workspace_id, id)
);
CREATE INDEX idx_prediction_accuracy_model ON prediction_accuracy (workspace_id, model_id, measured_at);

-- ----------------------------------------------------------------------------------------------
-- Patterns (004 identified_patterns + pattern_occurrences; 001 ai_learning_patterns is a view)

CREATE TABLE identified_patterns (
    workspace_id            uuid         NOT NULL,
    id                      uuid         NOT NULL DEFAULT gen_random_uuid(),
    pattern_type            varchar(100) NOT NULL,
    pattern_name            varchar(255) NOT NULL,
    pattern_description     text,
    detection_algorithm     varchar(100),
    confidence_score        double precision CHECK (confidence_score BETWEEN 0 AND 1),
    pattern_signature       jsonb        NOT NULL,
    signature_hash          text         NOT NULL,  -- md5 of the signature's canonical jsonb text
    occurrence_frequency    integer      NOT NULL DEFAULT 0,
    judged_count            integer      NOT NULL DEFAULT 0,   -- occurrences that say success or not
    success_count           integer      NOT NULL DEFAULT 0,
    engagement_sum          double precision NOT NULL DEFAULT 0,
    engagement_count        integer      NOT NULL DEFAULT 0,
    success_rate            double precision   -- % of judged occurrences that succeeded
        GENERATED ALWAYS AS (100.0 * success_count / nullif(judged_count, 0)) STORED,
    average_engagement      double precision
        GENERATED ALWAYS AS (engagement_sum / nullif(engagement_count, 0)) STORED,
    context                 jsonb,
    first_detected          timestamptz  NOT NULL,
    last_detected           timestamptz  NOT NULL,
    severity_level          varchar(20)  CHECK (severity_level IN ('low', 'medium', 'high', 'critical')),
    impact_metrics          jsonb,
    remediation_suggestions jsonb,
    status                  varchar(20)  NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'resolved', 'ignored', 'false_positive')),
    created_at              timestamptz  NOT NULL,           -- the first detection's event time
    last_event_at           timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, pattern_type, signature_hash)
);
CREATE INDEX idx_patterns_type_status ON identified_patterns (workspace_id, pattern_type, status);
CREATE INDEX idx_patterns_success ON identified_patterns (workspace_id, success_rate DESC);
CREATE INDEX idx_pattern_signatures ON identified_patterns USING gin (pattern_signature);

CREATE TABLE pattern_occurrences (
    workspace_id        uuid         NOT NULL,
    id                  uuid         NOT NULL,   -- the pattern_detection event's id
    pattern_id          uuid         NOT NULL,
    source_type         varchar(100) NOT NULL,
    source_id           varchar(255) NOT NULL,
    content_id          uuid,
    location_data       jsonb,
    context_data        jsonb,
    detection_timestamp timestamptz  NOT NULL,
    detection_model_id  uuid,
    confidence_score    double precision CHECK (confidence_score BETWEEN 0 AND 1),
    success             boolean,                 -- did the content it was seen on succeed
    engagement          double precision,
    metadata            jsonb,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, pattern_id) REFERENCES identified_patterns (workspace_id, id)
);
CREATE INDEX idx_pattern_occurrences_pattern ON pattern_occurrences (workspace_id, pattern_id);
CREATE INDEX idx_pattern_occurrences_source ON pattern_occurrences (workspace_id, source_type, source_id);
CREATE INDEX idx_pattern_occurrences_content ON pattern_occurrences (workspace_id, content_id);
CREATE INDEX idx_pattern_occurrences_timestamp ON pattern_occurrences (detection_timestamp);

-- ----------------------------------------------------------------------------------------------
-- A/B tests (004)

CREATE TABLE ab_testing_experiments (
    workspace_id        uuid         NOT NULL,
    id                  uuid         NOT NULL,
    experiment_name     varchar(255) NOT NULL,
    description         text,
    hypothesis          text,
    feature_flag        varchar(255),
    control_variant     jsonb,
    treatment_variants  jsonb,
    target_metrics      jsonb,
    traffic_allocation  jsonb,
    start_date          timestamptz,
    end_date            timestamptz,
    status              varchar(20)  NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'running', 'completed', 'cancelled')),
    statistical_power   double precision NOT NULL DEFAULT 0.80 CHECK (statistical_power BETWEEN 0 AND 1),
    significance_level  double precision NOT NULL DEFAULT 0.05 CHECK (significance_level BETWEEN 0 AND 1),
    minimum_sample_size integer      CHECK (minimum_sample_size >= 0),
    current_sample_size integer      NOT NULL DEFAULT 0,
    results             jsonb        NOT NULL DEFAULT '{}',  -- per variant: assigned, outcomes, converted, conversion_rate, mean_value
    winner_variant      varchar(100),
    created_by          varchar(255),
    created_at          timestamptz  NOT NULL,
    updated_at          timestamptz  NOT NULL,
    last_event_at       timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, experiment_name)
);
CREATE INDEX idx_ab_experiments_status ON ab_testing_experiments (workspace_id, status);

CREATE TABLE ab_testing_assignments (
    workspace_id         uuid         NOT NULL,
    id                   uuid         NOT NULL,   -- the ab_assignment event's id
    experiment_id        uuid         NOT NULL,
    user_id              varchar(255) NOT NULL,   -- the subject: a user, an account, a post
    variant              varchar(100) NOT NULL,
    assignment_timestamp timestamptz  NOT NULL,
    session_id           varchar(255),
    user_agent           text,
    metadata             jsonb,
    converted            boolean,                 -- from ab_outcome
    outcome_value        double precision,
    outcome_metrics      jsonb,
    outcome_at           timestamptz,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, experiment_id, user_id),
    FOREIGN KEY (workspace_id, experiment_id) REFERENCES ab_testing_experiments (workspace_id, id)
);
CREATE INDEX idx_ab_assignments_variant ON ab_testing_assignments (workspace_id, experiment_id, variant);

-- ----------------------------------------------------------------------------------------------
-- Evolution (004, OpenEvolve)

CREATE TABLE evolution_experiments (
    workspace_id          uuid         NOT NULL,
    id                    uuid         NOT NULL,
    name                  varchar(255) NOT NULL,
    description           text,
    problem_definition    jsonb        NOT NULL,
    objective_function    jsonb        NOT NULL,
    population_size       integer      NOT NULL DEFAULT 50 CHECK (population_size > 0),
    max_generations       integer      NOT NULL DEFAULT 100 CHECK (max_generations > 0),
    current_generation    integer      NOT NULL DEFAULT 0,
    status                varchar(20)  NOT NULL DEFAULT 'initialized'
        CHECK (status IN ('initialized', 'running', 'completed', 'failed')),
    best_score            double precision,
    convergence_threshold double precision,
    mutation_rate         double precision NOT NULL DEFAULT 0.1 CHECK (mutation_rate BETWEEN 0 AND 1),
    crossover_rate        double precision NOT NULL DEFAULT 0.8 CHECK (crossover_rate BETWEEN 0 AND 1),
    selection_strategy    varchar(100) NOT NULL DEFAULT 'tournament',
    llm_config            jsonb,
    evaluation_config     jsonb,
    created_by            varchar(255),
    created_at            timestamptz  NOT NULL,
    updated_at            timestamptz  NOT NULL,
    last_event_at         timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX idx_active_experiments ON evolution_experiments (workspace_id, id) WHERE status = 'running';

CREATE TABLE evolution_generations (
    workspace_id       uuid         NOT NULL,
    id                 uuid         NOT NULL,
    experiment_id      uuid         NOT NULL,
    generation_number  integer      NOT NULL CHECK (generation_number >= 0),
    population_data    jsonb        NOT NULL DEFAULT '[]',
    generation_stats   jsonb,
    best_individual_id uuid,
    diversity_metrics  jsonb,
    selection_pressure double precision,
    convergence_metrics jsonb,
    generation_start   timestamptz  NOT NULL,
    generation_end     timestamptz,
    last_event_at      timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, experiment_id, generation_number),
    FOREIGN KEY (workspace_id, experiment_id) REFERENCES evolution_experiments (workspace_id, id)
);

CREATE TABLE evolution_individuals (
    workspace_id       uuid         NOT NULL,
    id                 uuid         NOT NULL,
    generation_id      uuid         NOT NULL,
    experiment_id      uuid         NOT NULL,
    individual_index   integer      NOT NULL CHECK (individual_index >= 0),
    genotype           jsonb        NOT NULL,
    phenotype          text,
    fitness_score      double precision,
    evaluation_metrics jsonb,
    parent_ids         uuid[]       NOT NULL DEFAULT '{}',
    mutation_applied   jsonb,
    crossover_applied  jsonb,
    evaluation_time_ms integer      CHECK (evaluation_time_ms >= 0),
    evaluation_status  varchar(20)  CHECK (evaluation_status IN ('pending', 'evaluating', 'completed', 'failed')),
    error_log          text,
    created_at         timestamptz  NOT NULL,
    last_event_at      timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, generation_id, individual_index),
    FOREIGN KEY (workspace_id, generation_id) REFERENCES evolution_generations (workspace_id, id),
    FOREIGN KEY (workspace_id, experiment_id) REFERENCES evolution_experiments (workspace_id, id)
);
CREATE INDEX idx_evolution_individuals_fitness ON evolution_individuals (workspace_id, experiment_id, fitness_score DESC);

-- ----------------------------------------------------------------------------------------------
-- Styles, trends, improvements (001)

CREATE TABLE content_style_analysis (
    workspace_id           uuid         NOT NULL,
    id                     uuid         NOT NULL,  -- the style_analysis event's id
    content_id             uuid         NOT NULL,
    visual_style           jsonb,
    audio_style            jsonb,
    text_style             jsonb,
    engagement_correlation double precision CHECK (engagement_correlation BETWEEN -1 AND 1),  -- a job computes it (#10) unless the analyser gives it
    style_tags             text[]       NOT NULL DEFAULT '{}',
    model_id               uuid,
    created_at             timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX idx_style_content ON content_style_analysis (workspace_id, content_id);
CREATE INDEX idx_style_tags ON content_style_analysis USING gin (style_tags);

CREATE TABLE trend_analysis (
    workspace_id      uuid         NOT NULL,
    id                uuid         NOT NULL DEFAULT gen_random_uuid(),
    platform          varchar(50)  NOT NULL,
    trend_type        varchar(50)  NOT NULL,     -- hashtag, audio, style, topic, format
    trend_key         varchar(255) NOT NULL,     -- the hashtag, the audio id, ...
    trend_data        jsonb        NOT NULL DEFAULT '{}',
    engagement_impact double precision,          -- % engagement over the baseline
    start_time        timestamptz  NOT NULL,
    end_time          timestamptz,
    source            varchar(20)  NOT NULL DEFAULT 'reported' CHECK (source IN ('reported', 'detected')),
    created_at        timestamptz  NOT NULL,
    last_event_at     timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, platform, trend_type, trend_key, source)
);
CREATE INDEX idx_trend_platform_type ON trend_analysis (workspace_id, platform, trend_type);
CREATE INDEX idx_trend_time ON trend_analysis (workspace_id, start_time, end_time);

CREATE TABLE ai_improvement_tracking (
    workspace_id           uuid         NOT NULL,
    id                     uuid         NOT NULL,  -- the event's id
    improvement_type       varchar(50)  NOT NULL,
    metric                 varchar(100),
    before_metrics         jsonb,
    after_metrics          jsonb,
    improvement_percentage double precision,
    model_id               uuid,
    context                jsonb,
    source_event_type      varchar(50)  NOT NULL,  -- improvement_measured or system_optimization
    recorded_at            timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX idx_improvement_type_time ON ai_improvement_tracking (workspace_id, improvement_type, recorded_at);

-- ----------------------------------------------------------------------------------------------
-- AI context (002): conversations, prompt templates, suggestions, embeddings

CREATE TABLE ai_prompts (
    workspace_id  uuid         NOT NULL,
    id            uuid         NOT NULL DEFAULT gen_random_uuid(),
    name          varchar(255) NOT NULL,
    version       varchar(50)  NOT NULL,
    template      text         NOT NULL,
    variables     text[]       NOT NULL DEFAULT '{}',
    first_used_at timestamptz  NOT NULL,
    last_used_at  timestamptz  NOT NULL,
    uses          bigint       NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name, version)
);

CREATE TABLE ai_context_logs (
    workspace_id      uuid         NOT NULL,
    id                uuid         NOT NULL,   -- the ai_interaction event's id
    conversation_id   varchar(255),
    user_id           varchar(255),
    model             varchar(100) NOT NULL,
    prompt_id         uuid,
    prompt            text         NOT NULL,
    response          text,
    prompt_tokens     integer      CHECK (prompt_tokens >= 0),
    completion_tokens integer      CHECK (completion_tokens >= 0),
    total_tokens      integer      GENERATED ALWAYS AS (coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)) STORED,
    latency_ms        integer      CHECK (latency_ms >= 0),
    context           jsonb,
    created_at        timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX idx_ai_context_conversation ON ai_context_logs (workspace_id, conversation_id, created_at);

CREATE TABLE ai_suggestions (
    workspace_id       uuid         NOT NULL,
    id                 uuid         NOT NULL,
    interaction_id     uuid         NOT NULL,
    suggestion_type    varchar(100) NOT NULL,
    content            text         NOT NULL,
    target_entity_type varchar(100),
    target_entity_id   varchar(255),
    status             varchar(20)  NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
    feedback           jsonb,
    created_at         timestamptz  NOT NULL,
    feedback_at        timestamptz,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, interaction_id) REFERENCES ai_context_logs (workspace_id, id)
);

CREATE TABLE embeddings (
    workspace_id  uuid         NOT NULL,
    entity_type   varchar(100) NOT NULL,
    entity_id     varchar(255) NOT NULL,
    model         varchar(100) NOT NULL,
    version       integer      NOT NULL DEFAULT 1 CHECK (version > 0),
    dimension     integer      NOT NULL CHECK (dimension BETWEEN 1 AND 4096),
    vector        real[]       NOT NULL,
    created_at    timestamptz  NOT NULL,
    PRIMARY KEY (workspace_id, entity_type, entity_id, model, version),
    CHECK (array_ndims(vector) = 1 AND cardinality(vector) = dimension)
);
CREATE INDEX idx_embeddings_model ON embeddings (workspace_id, model, dimension);

-- exact cosine similarity of two vectors of one dimension (null for a zero vector)
CREATE FUNCTION cosine_similarity(a real[], b real[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sum(x::double precision * y) / nullif(sqrt(sum(x::double precision * x)) * sqrt(sum(y::double precision * y)), 0)
    FROM unnest(a, b) AS t(x, y)
$$;

-- ----------------------------------------------------------------------------------------------
-- Functions the routing statements use (db/domain/)

-- loss histories merged by epoch: b's entry wins for an epoch both have; sorted by epoch
CREATE FUNCTION merge_by_epoch(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_agg(e ORDER BY (e ->> 'epoch')::integer), '[]'::jsonb)
    FROM (SELECT DISTINCT ON ((e ->> 'epoch')::integer) e
          FROM (SELECT e, 1 AS pri FROM jsonb_array_elements(coalesce(b, '[]'::jsonb)) AS e
                UNION ALL
                SELECT e, 2 FROM jsonb_array_elements(coalesce(a, '[]'::jsonb)) AS e) AS both_
          ORDER BY (e ->> 'epoch')::integer, pri) AS merged
$$;

-- accuracy of a numeric prediction, 0..1: 1 - |predicted - actual| / |actual| (floored at 0);
-- for an actual of 0, 1 when the prediction is 0 too, else 0
CREATE FUNCTION prediction_accuracy_score(predicted double precision, actual double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN actual = 0 THEN CASE WHEN predicted = 0 THEN 1.0 ELSE 0.0 END
                ELSE greatest(0.0, 1.0 - abs(predicted - actual) / abs(actual)) END
$$;

-- a content item's uuid from a target_entity_id text, null when it is not one
CREATE FUNCTION uuid_or_null(t text) RETURNS uuid LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' THEN t::uuid END
$$;

-- ----------------------------------------------------------------------------------------------
-- Parked events: a learning event whose referent (a prediction, a model, an experiment, an
-- assignment, a generation) has not arrived. Stored with what it waits for; the worker applies it
-- when the referent arrives, or dead-letters it after domain_park_max_age_s.

CREATE TABLE parked_events (
    workspace_id  uuid         NOT NULL,
    event_id      uuid         NOT NULL,
    event_type    varchar(50)  NOT NULL,
    waiting_for   text         NOT NULL,     -- e.g. prediction 6f1c...
    record        jsonb        NOT NULL,     -- the routed record (the event's fields and event_data)
    event_time    timestamptz  NOT NULL,
    parked_at     timestamptz  NOT NULL DEFAULT now(),
    attempts      integer      NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, event_id)
);
CREATE INDEX idx_parked_events_parked_at ON parked_events (parked_at);

-- ----------------------------------------------------------------------------------------------
-- Row-level security on every table above (as 0001: the session's learnstream.workspace_id)

-- enable_workspace_isolation(table): row-level security with the workspace_isolation policy (and
-- SELECT for learnstream_reader when an operator made that role); later migrations use it too
CREATE FUNCTION enable_workspace_isolation(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY workspace_isolation ON %s USING (workspace_id = '
                   'nullif(current_setting(''learnstream.workspace_id'', true), '''')::uuid)', t);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_reader') THEN
        EXECUTE format('GRANT SELECT ON %s TO learnstream_reader', t);
    END IF;
END
$$;

SELECT enable_workspace_isolation(t::regclass) FROM unnest(ARRAY[
    'connectors', 'content', 'media_files', 'post_media_links', 'audience_growth',
    'audience_demographics', 'audience_interests', 'competitor_profiles', 'competitor_metrics',
    'ml_models', 'training_datasets', 'model_training_sessions', 'predictions',
    'prediction_accuracy', 'identified_patterns', 'pattern_occurrences', 'ab_testing_experiments',
    'ab_testing_assignments', 'evolution_experiments', 'evolution_generations',
    'evolution_individuals', 'content_style_analysis', 'trend_analysis', 'ai_improvement_tracking',
    'ai_prompts', 'ai_context_logs', 'ai_suggestions', 'embeddings', 'parked_events']) AS t;
