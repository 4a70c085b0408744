"""evolution_experiments, evolution_generations, evolution_individuals (seed 004, OpenEvolve):
evolution_experiment, evolution_generation, evolution_individual. A generation is one row per
(experiment, generation_number); the experiment's current_generation is the highest seen, its
best_score the best fitness of its individuals, a generation's best_individual_id its fittest."""

from __future__ import annotations

from db.domain.earliest import earliest_created_at
from db.domain.parking import park_sql

EVOLUTION_EXPERIMENT = ("""
INSERT INTO evolution_experiments AS e (workspace_id, id, name, description, problem_definition, objective_function,
    population_size, max_generations, status, convergence_threshold, mutation_rate, crossover_rate,
    selection_strategy, llm_config, evaluation_config, created_by, created_at, updated_at, last_event_at)
SELECT DISTINCT ON (r.workspace_id, r.experiment_id)
    r.workspace_id, r.experiment_id, r.name, r.description, r.problem_definition, r.objective_function,
    r.population_size, r.max_generations, r.status, r.convergence_threshold, r.mutation_rate, r.crossover_rate,
    r.selection_strategy, r.llm_config, r.evaluation_config, r.created_by, r.ts, r.ts, r.ts
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, experiment_id uuid, name text,
    description text, problem_definition jsonb, objective_function jsonb, population_size integer,
    max_generations integer, status text, convergence_threshold double precision, mutation_rate double precision,
    crossover_rate double precision, selection_strategy text, llm_config jsonb, evaluation_config jsonb,
    created_by text)
ORDER BY r.workspace_id, r.experiment_id, r.ts DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    name = excluded.name, description = coalesce(excluded.description, e.description),
    problem_definition = excluded.problem_definition, objective_function = excluded.objective_function,
    population_size = excluded.population_size, max_generations = excluded.max_generations,
    status = excluded.status, convergence_threshold = coalesce(excluded.convergence_threshold, e.convergence_threshold),
    mutation_rate = excluded.mutation_rate, crossover_rate = excluded.crossover_rate,
    selection_strategy = excluded.selection_strategy, llm_config = coalesce(excluded.llm_config, e.llm_config),
    evaluation_config = coalesce(excluded.evaluation_config, e.evaluation_config),
    updated_at = excluded.last_event_at, last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > e.last_event_at
""", earliest_created_at("evolution_experiments", "experiment_id"))

PARK_EVOLUTION_GENERATION = park_sql("evolution_generation", "experiment_id uuid", (
    ("NOT EXISTS (SELECT 1 FROM evolution_experiments e WHERE e.workspace_id = r.workspace_id AND e.id = r.experiment_id)",
     "'evolution experiment ' || r.experiment_id"),
))

_GENERATIONS = """WITH r AS (
    SELECT r.* FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, experiment_id uuid,
        generation_id uuid, generation_number integer, population_data jsonb, generation_stats jsonb,
        diversity_metrics jsonb, selection_pressure double precision, convergence_metrics jsonb, completed boolean)
    JOIN evolution_experiments e ON e.workspace_id = r.workspace_id AND e.id = r.experiment_id
)"""

#: a generation's metrics: the latest event's value (in event time, whatever the arrival order),
#: an earlier one's where the latest left it out
_LATEST_METRICS = ",\n".join(
    f"""    {c} = CASE WHEN excluded.last_event_at >= t.last_event_at
        THEN coalesce(excluded.{c}, t.{c}) ELSE coalesce(t.{c}, excluded.{c}) END"""
    for c in ("generation_stats", "diversity_metrics", "selection_pressure", "convergence_metrics")
)

EVOLUTION_GENERATION = (
    _GENERATIONS + f"""
, g AS (
    SELECT workspace_id, experiment_id, generation_number,
        (array_agg(generation_id ORDER BY ts))[1] AS generation_id,
        min(ts) AS first_ts, max(ts) AS last_ts, max(ts) FILTER (WHERE completed) AS end_ts,
        (array_agg(population_data ORDER BY ts DESC) FILTER (WHERE population_data IS NOT NULL))[1] AS population_data,
        (array_agg(generation_stats ORDER BY ts DESC) FILTER (WHERE generation_stats IS NOT NULL))[1] AS generation_stats,
        (array_agg(diversity_metrics ORDER BY ts DESC) FILTER (WHERE diversity_metrics IS NOT NULL))[1] AS diversity_metrics,
        (array_agg(selection_pressure ORDER BY ts DESC) FILTER (WHERE selection_pressure IS NOT NULL))[1] AS selection_pressure,
        (array_agg(convergence_metrics ORDER BY ts DESC) FILTER (WHERE convergence_metrics IS NOT NULL))[1] AS convergence_metrics
    FROM r GROUP BY workspace_id, experiment_id, generation_number
)
INSERT INTO evolution_generations AS t (workspace_id, id, experiment_id, generation_number, population_data,
    generation_stats, diversity_metrics, selection_pressure, convergence_metrics, generation_start,
    generation_end, last_event_at)
SELECT workspace_id, generation_id, experiment_id, generation_number, coalesce(population_data, '[]'),
    generation_stats, diversity_metrics, selection_pressure, convergence_metrics, first_ts, end_ts, last_ts
FROM g
ON CONFLICT (workspace_id, experiment_id, generation_number) DO UPDATE SET
    population_data = CASE WHEN excluded.last_event_at >= t.last_event_at AND excluded.population_data <> '[]'
        THEN excluded.population_data ELSE t.population_data END,
{_LATEST_METRICS},
    generation_start = least(t.generation_start, excluded.generation_start),
    generation_end = greatest(t.generation_end, excluded.generation_end),
    last_event_at = greatest(t.last_event_at, excluded.last_event_at)
""",
    _GENERATIONS + """
, m AS (SELECT workspace_id, experiment_id, max(generation_number) AS n FROM r GROUP BY workspace_id, experiment_id)
UPDATE evolution_experiments e SET current_generation = greatest(e.current_generation, m.n),
    status = CASE WHEN e.status = 'initialized' THEN 'running' ELSE e.status END
FROM m WHERE e.workspace_id = m.workspace_id AND e.id = m.experiment_id
""",
)

PARK_EVOLUTION_INDIVIDUAL = park_sql("evolution_individual", "experiment_id uuid, generation_number integer", (
    ("NOT EXISTS (SELECT 1 FROM evolution_generations g WHERE g.workspace_id = r.workspace_id "
     "AND g.experiment_id = r.experiment_id AND g.generation_number = r.generation_number)",
     "'evolution generation ' || r.experiment_id || ' #' || r.generation_number"),
))

_INDIVIDUALS = """WITH r AS (
    SELECT DISTINCT ON (r.workspace_id, r.individual_id) r.*, g.id AS generation_id
    FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, ts timestamptz, experiment_id uuid,
        generation_number integer, individual_id uuid, individual_index integer, genotype jsonb, phenotype text,
        fitness_score double precision, evaluation_metrics jsonb, parent_ids uuid[], mutation_applied jsonb,
        crossover_applied jsonb, evaluation_time_ms integer, evaluation_status text, error_log text)
    JOIN evolution_generations g ON g.workspace_id = r.workspace_id AND g.experiment_id = r.experiment_id
                                AND g.generation_number = r.generation_number
    ORDER BY r.workspace_id, r.individual_id, r.ts DESC
)"""

# an individual's later event (its evaluation finished) updates it
EVOLUTION_INDIVIDUAL = (
    _INDIVIDUALS + """
INSERT INTO evolution_individuals AS i (workspace_id, id, generation_id, experiment_id, individual_index, genotype,
    phenotype, fitness_score, evaluation_metrics, parent_ids, mutation_applied, crossover_applied,
    evaluation_time_ms, evaluation_status, error_log, created_at, last_event_at)
SELECT workspace_id, individual_id, generation_id, experiment_id, individual_index, genotype, phenotype,
    fitness_score, evaluation_metrics, coalesce(parent_ids, '{}'), mutation_applied, crossover_applied,
    evaluation_time_ms, evaluation_status, error_log, ts, ts
FROM r
ON CONFLICT (workspace_id, id) DO UPDATE SET
    genotype = excluded.genotype, phenotype = coalesce(excluded.phenotype, i.phenotype),
    fitness_score = coalesce(excluded.fitness_score, i.fitness_score),
    evaluation_metrics = coalesce(excluded.evaluation_metrics, i.evaluation_metrics),
    evaluation_time_ms = coalesce(excluded.evaluation_time_ms, i.evaluation_time_ms),
    evaluation_status = coalesce(excluded.evaluation_status, i.evaluation_status),
    error_log = coalesce(excluded.error_log, i.error_log),
    created_at = least(i.created_at, excluded.created_at), last_event_at = excluded.last_event_at
WHERE excluded.last_event_at > i.last_event_at
""",
    earliest_created_at("evolution_individuals", "individual_id"),
    _INDIVIDUALS + """
, best AS (
    SELECT DISTINCT ON (i.workspace_id, i.generation_id) i.workspace_id, i.generation_id, i.id
    FROM evolution_individuals i JOIN (SELECT DISTINCT workspace_id, generation_id FROM r) t USING (workspace_id, generation_id)
    WHERE i.fitness_score IS NOT NULL
    ORDER BY i.workspace_id, i.generation_id, i.fitness_score DESC, i.individual_index
)
UPDATE evolution_generations g SET best_individual_id = best.id
FROM best WHERE g.workspace_id = best.workspace_id AND g.id = best.generation_id
""",
    # the best fitness of the experiment's individuals: the first entry of its range of
    # idx_evolution_individuals_fitness (one index probe per experiment, not a read of every
    # individual of it; an individual's fitness may also fall, so it is not a running maximum)
    _INDIVIDUALS + """
, best AS (
    SELECT t.workspace_id, t.experiment_id, (
        SELECT i.fitness_score FROM evolution_individuals i
        WHERE i.workspace_id = t.workspace_id AND i.experiment_id = t.experiment_id AND i.fitness_score IS NOT NULL
        ORDER BY i.fitness_score DESC LIMIT 1) AS score
    FROM (SELECT DISTINCT workspace_id, experiment_id FROM r) AS t
)
UPDATE evolution_experiments e SET best_score = best.score
FROM best WHERE e.workspace_id = best.workspace_id AND e.id = best.experiment_id AND best.score IS NOT NULL
""",
)
