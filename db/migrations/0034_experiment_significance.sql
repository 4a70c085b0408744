-- 0034: A/B significance and a winner only when significant (issue #25, item 8).
--
-- The experiment_significance job (db/analytics/experiments.py) compares each treatment arm of an
-- experiment with its control arm on the conversion proportion of the subjects whose outcome says
-- converted true/false: a two-proportion z-test (pooled standard error, two-sided p-value) and a
-- Newcombe (hybrid Wilson score) interval of the difference treatment − control, at the
-- experiment's confidence level 1 − significance_level, Bonferroni-corrected over the treatments.
--
--  * winner_variant (seed 004 "which variant won (if any)") is now the job's: a variant only when
--    its comparison is significant with enough subjects in both arms, else NULL ("no winner yet").
--    A winner a producer sends in its ab_experiment event is kept apart, in
--    declared_winner_variant (the rows migrated keep theirs there too).
--  * p_value, difference_ci_low/high: the comparison of compared_variant with the control (the
--    winner's when a treatment wins, else the treatment with the highest rate); every comparison
--    and the arms' counts are in significance (jsonb).
--  * significance_computed_at: when the job last changed them (NULL: never evaluated).

ALTER TABLE ab_testing_experiments
    ADD COLUMN declared_winner_variant varchar(100),
    ADD COLUMN compared_variant varchar(100),
    ADD COLUMN p_value double precision CHECK (p_value BETWEEN 0 AND 1),
    ADD COLUMN difference_ci_low double precision CHECK (difference_ci_low BETWEEN -1 AND 1),
    ADD COLUMN difference_ci_high double precision CHECK (difference_ci_high BETWEEN -1 AND 1),
    ADD COLUMN significance jsonb,
    ADD COLUMN significance_computed_at timestamptz;

UPDATE ab_testing_experiments SET declared_winner_variant = winner_variant, winner_variant = NULL
WHERE winner_variant IS NOT NULL;

-- the winner and the compared variant are arms the job counted (written together with them)
ALTER TABLE ab_testing_experiments
    ADD CONSTRAINT ab_experiments_winner_is_an_arm
        CHECK (winner_variant IS NULL OR significance -> 'arms' ? winner_variant),
    ADD CONSTRAINT ab_experiments_compared_is_an_arm
        CHECK (compared_variant IS NULL OR significance -> 'arms' ? compared_variant),
    ADD CONSTRAINT ab_experiments_interval_ordered
        CHECK (difference_ci_low <= difference_ci_high);

COMMENT ON COLUMN ab_testing_experiments.winner_variant IS
    'the experiment_significance job''s winner: significant against the control (Bonferroni), enough subjects per arm; NULL = no winner yet (0034)';
COMMENT ON COLUMN ab_testing_experiments.declared_winner_variant IS
    'the winner_variant an ab_experiment event declared (not tested) (0034)';
COMMENT ON COLUMN ab_testing_experiments.p_value IS
    'two-sided p of the pooled two-proportion z-test of compared_variant against the control, Bonferroni-adjusted (0034)';
COMMENT ON COLUMN ab_testing_experiments.significance IS
    'experiment_significance: control, levels, arms (n, conversions, rate), each treatment against the control (0034)';
