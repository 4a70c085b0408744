-- 0043: an experiment's counts by increments, not recounts (issue #26, set-based routing).
--
-- Routing recounted every assignment of an experiment for each batch that assigned a subject or
-- recorded an outcome (db/domain/experiments.py), a cost that grew with the experiment. It now
-- adds what the batch changed; the exact sums the results are computed from are kept per variant
-- in variant_totals: {variant: {assigned, outcomes, converted, value_sum, values}} (value_sum the
-- numeric sum of outcome_value, values how many are not NULL), filled here from the assignments.

ALTER TABLE ab_testing_experiments ADD COLUMN variant_totals jsonb NOT NULL DEFAULT '{}';

UPDATE ab_testing_experiments e SET variant_totals = t.totals
FROM (
    SELECT workspace_id, experiment_id, jsonb_object_agg(variant, jsonb_build_object(
        'assigned', assigned, 'outcomes', outcomes, 'converted', converted, 'value_sum', value_sum,
        'values', n_values)) AS totals
    FROM (SELECT workspace_id, experiment_id, variant, count(*) AS assigned,
                 count(*) FILTER (WHERE outcome_at IS NOT NULL) AS outcomes,
                 count(*) FILTER (WHERE converted) AS converted,
                 coalesce(sum(outcome_value::numeric), 0) AS value_sum, count(outcome_value) AS n_values
          FROM ab_testing_assignments GROUP BY workspace_id, experiment_id, variant) AS a
    GROUP BY workspace_id, experiment_id
) AS t
WHERE e.workspace_id = t.workspace_id AND e.id = t.experiment_id;

COMMENT ON COLUMN ab_testing_experiments.variant_totals IS
    'per variant: assigned, outcomes, converted, value_sum (numeric sum of outcome_value), values (non-NULL outcome values); routing adds each batch''s changes, results are computed from them (0043)';
