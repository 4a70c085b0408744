"""ab_testing_experiments + ab_testing_assignments (seed 004): ab_experiment, ab_assignment,
ab_outcome. An experiment's current_sample_size and per-variant results change by what each batch
changed in its assignments (exact sums per variant in variant_totals, migration 0043, instead of a
recount of all its assignments per batch, whose cost grew with the experiment; the mean value is a
numeric average rounded to 6 places, so the order of arrival does not change its last digits).
A winner_variant the ab_experiment event declares is stored as declared_winner_variant:
winner_variant is the experiment_significance job's, a variant only when significant
(db/analytics/experiments.py)."""

from __future__ import annotations

from db.domain.earliest import earliest_created_at
from db.domain.parking import park_sql

AB_EXPERIMENT = ("""
INSERT INTO ab_testing_experiments AS e (workspace_id, id, experiment_name, description, hypothesis, feature_flag,
    control_variant, treatment_variants, target_metrics, traffic_allocation, start_date, end_date, status,
    statistical_power, significance_level, minimum_sample_size, declared_winner_variant, created_by, created_at,
    updated_at, last_event_at)
SELECT DISTINCT ON (r.workspace_id, r.experiment_id)
    r.workspace_id, r.experiment_id, r.name, r.description, r.hypothesis, r.feature_flag, r.control_variant,
    r.treatment_variants, r.target_metrics, r.traffic_allocation, r.start_date, r.end_date, r.status,
    r.statistical_power, r.significance_level, r.minimum_sample_size, r.winner_variant, r.created_by, r.ts, r.ts, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, experiment_id uuid, name text,
    description text, hypothesis text, feature_flag text, control_variant jsonb, treatment_variants jsonb,
    target_metrics jsonb, traffic_allocation jsonb, start_date timestamptz, end_date timestamptz, status text,
    statistical_power double precision, significance_level double precision, minimum_sample_size integer,
    winner_variant text, created_by text)
ORDER BY r.workspace_id, r.experiment_id, r.ts DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    experiment_name = excluded.experiment_name, description = coalesce(excluded.description, e.description),
    hypothesis = coalesce(excluded.hypothesis, e.hypothesis), feature_flag = coalesce(excluded.feature_flag, e.feature_flag),
    control_variant = coalesce(excluded.control_variant, e.control_variant),
    treatment_variants = coalesce(excluded.treatment_variants, e.treatment_variants),
    target_metrics = coalesce(excluded.target_metrics, e.target_metrics),
    traffic_allocation = coalesce(excluded.traffic_allocation, e.traffic_allocation),
    start_date = coalesce(excluded.start_date, e.start_date), end_date = coalesce(excluded.end_date, e.end_date),
    status = excluded.status, statistical_power = excluded.statistical_power,
    significance_level = excluded.significance_level,
    minimum_sample_size = coalesce(excluded.minimum_sample_size, e.minimum_sample_size),
    declared_winner_variant = coalesce(excluded.declared_winner_variant, e.declared_winner_variant),
    updated_at = excluded.last_event_at, last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > e.last_event_at
""", earliest_created_at("ab_testing_experiments", "experiment_id"))

_EXPERIMENT_MISSING = (
    "NOT EXISTS (SELECT 1 FROM ab_testing_experiments e WHERE e.workspace_id = r.workspace_id AND e.id = r.experiment_id)",
    "'ab experiment ' || r.experiment_id")

PARK_AB_ASSIGNMENT = park_sql("ab_assignment", "experiment_id uuid", (_EXPERIMENT_MISSING,))

# An experiment's counts change by what a statement changed: `delta` holds, per assignment row the
# statement inserted or changed, its contribution now (+) and, for a row it changed, its
# contribution before (-), read in the same statement's snapshot. The touched experiments are
# locked first (_LOCK, a statement of its own, so the delta's snapshot is taken after any other
# transaction changing their assignments has committed): every writer of assignments is a route
# here and takes that lock, so the old values are the ones the change replaced. variant_totals
# keeps per variant the exact sums the results are computed from (migration 0043); a variant whose
# last assignment moved to another one is dropped, as a recount would not see it.
_LOCK = """
SELECT 1 FROM ab_testing_experiments e
WHERE (e.workspace_id, e.id) IN (SELECT r.workspace_id, r.experiment_id
                                 FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, experiment_id uuid))
ORDER BY e.workspace_id, e.id
FOR UPDATE OF e
"""


def _contribution(row: str, sign: str) -> str:
    return (f"SELECT {row}.workspace_id, {row}.experiment_id, {row}.variant, {sign}1 AS assigned, "
            f"{sign}(({row}.outcome_at IS NOT NULL)::int) AS outcomes, {sign}(({row}.converted IS TRUE)::int) AS converted, "
            f"{sign}coalesce({row}.outcome_value::numeric, 0) AS value_sum, "
            f"{sign}(({row}.outcome_value IS NOT NULL)::int) AS n_values")


_DELTA = f"""
, delta AS (
    {_contribution("up", "")} FROM up
    UNION ALL
    {_contribution("b", "-")} FROM before b JOIN up USING (workspace_id, experiment_id, user_id)
)"""

# the mean value is a numeric division of the exact sum by the count, rounded to 6 places: avg's
# own arithmetic, so the figures are those a recount of every assignment gives
_MERGE = _DELTA + """
, tot AS (
    SELECT workspace_id, experiment_id, variant, sum(assigned) AS assigned, sum(outcomes) AS outcomes,
        sum(converted) AS converted, sum(value_sum) AS value_sum, sum(n_values) AS n_values
    FROM (SELECT * FROM delta
          UNION ALL
          SELECT e.workspace_id, e.id, x.key, (x.value ->> 'assigned')::int, (x.value ->> 'outcomes')::int,
              (x.value ->> 'converted')::int, (x.value ->> 'value_sum')::numeric, (x.value ->> 'values')::int
          FROM ab_testing_experiments e, jsonb_each(e.variant_totals) AS x
          WHERE (e.workspace_id, e.id) IN (SELECT workspace_id, experiment_id FROM delta)) AS u
    GROUP BY workspace_id, experiment_id, variant
    HAVING sum(assigned) > 0
), stats AS (
    SELECT workspace_id, experiment_id, sum(assigned) AS assigned,
        jsonb_object_agg(variant, jsonb_build_object(
            'assigned', assigned, 'outcomes', outcomes, 'converted', converted,
            'conversion_rate', round(converted::numeric / nullif(outcomes, 0), 6),
            'mean_value', round(value_sum / nullif(n_values, 0), 6))) AS results,
        jsonb_object_agg(variant, jsonb_build_object(
            'assigned', assigned, 'outcomes', outcomes, 'converted', converted, 'value_sum', value_sum,
            'values', n_values)) AS totals
    FROM tot GROUP BY workspace_id, experiment_id
)
UPDATE ab_testing_experiments e SET current_sample_size = stats.assigned, results = stats.results,
    variant_totals = stats.totals
FROM stats WHERE e.workspace_id = stats.workspace_id AND e.id = stats.experiment_id
"""

_ASSIGNMENTS = """WITH r AS (
    SELECT r.* FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz,
        experiment_id uuid, subject_id text, variant text, session_id text, user_agent text, metadata jsonb)
    JOIN ab_testing_experiments e ON e.workspace_id = r.workspace_id AND e.id = r.experiment_id
), d AS (
    SELECT DISTINCT ON (workspace_id, experiment_id, subject_id) *
    FROM r ORDER BY workspace_id, experiment_id, subject_id, ts, event_id
), before AS (
    SELECT a.workspace_id, a.experiment_id, a.user_id, a.variant, a.outcome_at, a.converted, a.outcome_value
    FROM ab_testing_assignments a
    JOIN d ON a.workspace_id = d.workspace_id AND a.experiment_id = d.experiment_id AND a.user_id = d.subject_id
)"""

# one assignment per experiment and subject: the earliest (in event time, whatever arrives first;
# at the same instant the lower event id) stands, a later one is ignored; an earlier one arriving
# later moves the subject (its outcome with it) to its variant
AB_ASSIGNMENT = (
    _LOCK,
    _ASSIGNMENTS + """
, up AS (
    INSERT INTO ab_testing_assignments AS a (workspace_id, id, experiment_id, user_id, variant, assignment_timestamp,
        session_id, user_agent, metadata)
    SELECT workspace_id, event_id, experiment_id, subject_id, variant, ts, session_id, user_agent, metadata FROM d
    ON CONFLICT (workspace_id, experiment_id, user_id) DO UPDATE SET
        id = excluded.id, variant = excluded.variant, assignment_timestamp = excluded.assignment_timestamp,
        session_id = excluded.session_id, user_agent = excluded.user_agent, metadata = excluded.metadata
    WHERE (excluded.assignment_timestamp, excluded.id) < (a.assignment_timestamp, a.id)
    RETURNING a.workspace_id, a.experiment_id, a.user_id, a.variant, a.outcome_at, a.converted, a.outcome_value
)""" + _MERGE,
)

PARK_AB_OUTCOME = park_sql("ab_outcome", "experiment_id uuid, subject_id text", (
    ("NOT EXISTS (SELECT 1 FROM ab_testing_assignments a WHERE a.workspace_id = r.workspace_id "
     "AND a.experiment_id = r.experiment_id AND a.user_id = r.subject_id)",
     "'ab assignment ' || r.experiment_id || ' / ' || r.subject_id"),
))

_OUTCOMES = """WITH r AS (
    SELECT DISTINCT ON (r.workspace_id, r.experiment_id, r.subject_id) r.*
    FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, experiment_id uuid, subject_id text,
        converted boolean, value double precision, metrics jsonb)
    ORDER BY r.workspace_id, r.experiment_id, r.subject_id, r.ts DESC
), before AS (
    SELECT a.workspace_id, a.experiment_id, a.user_id, a.variant, a.outcome_at, a.converted, a.outcome_value
    FROM ab_testing_assignments a
    JOIN r ON a.workspace_id = r.workspace_id AND a.experiment_id = r.experiment_id AND a.user_id = r.subject_id
)"""

# the latest outcome per subject stands
AB_OUTCOME = (
    _LOCK,
    _OUTCOMES + """
, up AS (
    UPDATE ab_testing_assignments a SET converted = r.converted, outcome_value = r.value, outcome_metrics = r.metrics,
        outcome_at = r.ts
    FROM r
    WHERE a.workspace_id = r.workspace_id AND a.experiment_id = r.experiment_id AND a.user_id = r.subject_id
      AND (a.outcome_at IS NULL OR r.ts > a.outcome_at)
    RETURNING a.workspace_id, a.experiment_id, a.user_id, a.variant, a.outcome_at, a.converted, a.outcome_value
)""" + _MERGE,
)
