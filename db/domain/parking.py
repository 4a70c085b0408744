"""The park statement of a route: the records whose referent is missing go to parked_events,
with what they wait for. Built at import from the routes' constant SQL fragments only."""

from __future__ import annotations


def park_sql(event_type: str, columns: str, missing: tuple[tuple[str, str], ...]) -> str:
    """INSERT INTO parked_events the records (r: `columns`, plus workspace_id, event_id, ts) for
    which one of `missing`'s conditions holds; `missing` is ((condition, waiting_for text), ...)."""
    assert event_type.isidentifier()
    where = " OR ".join(f"({cond})" for cond, _ in missing)
    waiting = " ".join(f"WHEN {cond} THEN {text}" for cond, text in missing)
    return f"""
INSERT INTO parked_events (workspace_id, event_id, event_type, waiting_for, record, event_time)
SELECT r.workspace_id, r.event_id, '{event_type}', CASE {waiting} END, x.rec, r.ts
FROM jsonb_array_elements($1::jsonb) AS x(rec),
     jsonb_to_record(x.rec) AS r(workspace_id uuid, event_id uuid, ts timestamptz, {columns})
WHERE {where}
ON CONFLICT (workspace_id, event_id) DO NOTHING
"""


#: a parked row `p` whose referent (its waiting_for, refreshed whenever it is parked again) now
#: exists: what a resume round takes first
_KINDS = (
    ("model ", "ml_models x WHERE x.workspace_id = p.workspace_id AND x.id = uuid_or_null(substr(p.waiting_for, 7))"),
    ("dataset ", "training_datasets x WHERE x.workspace_id = p.workspace_id "
                 "AND x.id = uuid_or_null(substr(p.waiting_for, 9))"),
    ("prediction ", "predictions x WHERE x.workspace_id = p.workspace_id "
                    "AND x.id = uuid_or_null(substr(p.waiting_for, 12))"),
    ("suggestion ", "ai_suggestions x WHERE x.workspace_id = p.workspace_id "
                    "AND x.id = uuid_or_null(substr(p.waiting_for, 12))"),
    ("ab experiment ", "ab_testing_experiments x WHERE x.workspace_id = p.workspace_id "
                       "AND x.id = uuid_or_null(substr(p.waiting_for, 15))"),
    ("ab assignment ", "ab_testing_assignments x WHERE x.workspace_id = p.workspace_id "
                       "AND x.experiment_id = uuid_or_null(substr(p.waiting_for, 15, 36)) "
                       "AND x.user_id = substr(p.waiting_for, 54)"),
    ("evolution experiment ", "evolution_experiments x WHERE x.workspace_id = p.workspace_id "
                              "AND x.id = uuid_or_null(substr(p.waiting_for, 22))"),
    ("evolution generation ", "evolution_generations x WHERE x.workspace_id = p.workspace_id "
                              "AND x.experiment_id = uuid_or_null(substr(p.waiting_for, 22, 36)) "
                              "AND x.generation_number::text = substr(p.waiting_for, 60)"),
)
RESOLVABLE = "CASE " + " ".join(
    f"WHEN p.waiting_for LIKE '{prefix}%' THEN EXISTS (SELECT 1 FROM {lookup})" for prefix, lookup in _KINDS
) + " ELSE true END"
