-- 0045: rates over what was judged (issue #25, second review: R1 and R8).
--
-- (1) A/B results (R1). ab_testing_experiments.results[variant].conversion_rate was converted /
--     outcomes (every subject with an outcome), while the experiment_significance job compares
--     converted / judged (the subjects whose outcome says `converted`, true or false): control
--     20/100, B 20 converted of 50 judged plus 50 outcomes carrying a value only showed 0.2 on
--     both rows next to a difference of +0.2 and winner B. The routing's recount
--     (db/domain/experiments.py) now stores `judged` and divides by it; here every experiment's
--     results are recounted the same way once, so stored rows agree before their next event.
--     The routing writes assignments under RowExclusiveLock and recounts in the same transaction:
--     SHARE on ab_testing_assignments waits for the batches in flight to commit and holds off new
--     ones until this migration commits, so the recount below (a statement of its own, its
--     snapshot taken after the lock) counts every assignment and no batch's newer count is
--     overwritten (a lock per experiment, as the routing takes, would need one lock-table slot per
--     experiment in one transaction).
--
-- (2) wilson_lower_bound (R8): the Wilson score interval's lower bound of a proportion, successes
--     of trials, for the normal quantile z (1.959964 for 95 %, two-sided). `analytics patterns`,
--     the demo's summary and the Grafana patterns panel rank patterns by it: 1 success of 1 has a
--     lower bound of 1 / (1 + z²) = 0.207, 90 of 100 one of 0.826, so 90/100 ranks first. NULL
--     for no trials (or counts that are no proportion); 0 for no success. Not STRICT, so the
--     planner inlines it (0043).

LOCK TABLE ab_testing_assignments IN SHARE MODE;

WITH stats AS (
    SELECT a.workspace_id, a.experiment_id,
        jsonb_object_agg(a.variant, jsonb_build_object(
            'assigned', a.assigned, 'outcomes', a.outcomes, 'judged', a.judged, 'converted', a.converted,
            'conversion_rate', round((a.converted::numeric / nullif(a.judged, 0)), 6),
            'mean_value', round(a.mean_value, 6)) ORDER BY a.variant) AS results,
        sum(a.assigned) AS assigned
    FROM (SELECT s.workspace_id, s.experiment_id, s.variant, count(*) AS assigned,
                 count(*) FILTER (WHERE s.outcome_at IS NOT NULL) AS outcomes,
                 count(*) FILTER (WHERE s.converted IS NOT NULL) AS judged,
                 count(*) FILTER (WHERE s.converted) AS converted,
                 avg(s.outcome_value::numeric) AS mean_value
          FROM ab_testing_assignments s
          GROUP BY s.workspace_id, s.experiment_id, s.variant) AS a
    GROUP BY a.workspace_id, a.experiment_id
)
UPDATE ab_testing_experiments e SET current_sample_size = stats.assigned, results = stats.results
FROM stats WHERE e.workspace_id = stats.workspace_id AND e.id = stats.experiment_id
  AND (e.current_sample_size, e.results) IS DISTINCT FROM (stats.assigned::integer, stats.results);

COMMENT ON COLUMN ab_testing_experiments.results IS
    'per variant: assigned, outcomes (subjects with an outcome), judged (outcome says converted, true or false), '
    'converted, conversion_rate = converted / judged (null with none judged), mean_value; recounted by the routing; 0045';

CREATE FUNCTION wilson_lower_bound(successes double precision, trials double precision, z double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN successes IS NULL OR trials IS NULL OR z IS NULL OR 'NaN' IN (successes, trials, z)
                     OR trials <= 0 OR successes < 0 OR successes > trials OR z < 0 THEN NULL
                WHEN successes = 0 THEN 0.0
                ELSE greatest(0.0, (successes / trials + z * z / (2 * trials)
                                    - z * sqrt(successes / trials * (1 - successes / trials) / trials
                                               + z * z / (4 * trials * trials)))
                                   / (1 + z * z / trials)) END
$$;

COMMENT ON FUNCTION wilson_lower_bound(double precision, double precision, double precision) IS
    'lower bound of the Wilson score interval of successes / trials for the normal quantile z '
    '(1.959964: 95 %, two-sided); null without trials, 0 without successes; 0045';
GRANT EXECUTE ON FUNCTION wilson_lower_bound(double precision, double precision, double precision)
    TO learnstream_member, learnstream_service;
