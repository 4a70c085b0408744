"""The domain tables that routing writes, read whole for comparison: two databases fed the same
learning events (once, twice, in another order or batching) must hold the same rows.

`domain_snapshot` reads every routed table (all columns but the few listed in EXCLUDED, each with
its reason), rows sorted by all their columns in table order (the key columns come first in every
one of these tables); `snapshot_diff` compares two snapshots, floats (also inside jsonb) within a
relative tolerance.
"""

from __future__ import annotations

import math
from typing import Any

import asyncpg

#: the tables db/domain's routes write (db/domain/routing.py ROUTES, and the park statements)
DOMAIN_TABLES: tuple[str, ...] = (
    "ml_models", "training_datasets", "model_training_sessions",
    "predictions", "prediction_accuracy",
    "identified_patterns", "pattern_occurrences",
    "ab_testing_experiments", "ab_testing_assignments",
    "evolution_experiments", "evolution_generations", "evolution_individuals",
    "content_style_analysis", "trend_analysis", "ai_improvement_tracking",
    "ai_context_logs", "ai_prompts", "ai_suggestions", "embeddings",
    "parked_events",
)

#: columns left out of the comparison, each legitimately different between two databases fed the
#: same events. Every other column, surrogate ids included (the routes derive ai_prompts',
#: identified_patterns' and trend_analysis' ids from their natural keys), must be equal.
EXCLUDED: dict[str, frozenset[str]] = {
    # parked_at is now() when the event was first parked (bookkeeping of the resume timer, which
    # measures how long it waited in wall-clock time); attempts counts resume rounds, which depend
    # on when the referent happened to arrive. The parked record itself (and what it waits for)
    # is compared.
    "parked_events": frozenset({"parked_at", "attempts"}),
}

#: relative tolerance for floats: sums grown batch by batch (identified_patterns.engagement_sum
#: and its average) are float additions whose last bits depend on the batching
REL_TOL = 1e-9

#: table -> the compared columns, as the last domain_snapshot read them (for snapshot_diff's messages)
_COLUMNS: dict[str, list[str]] = {}


async def domain_snapshot(conn: asyncpg.Connection, workspace_ids=None) -> dict[str, list[tuple]]:
    """{table: rows as tuples (of the compared columns), sorted} for every table in DOMAIN_TABLES,
    limited to `workspace_ids` when given. `conn` must bypass row-level security (the owner) or
    have its workspace set. jsonb comes back decoded when `conn` is from db.pool.connect."""
    out: dict[str, list[tuple]] = {}
    for table in DOMAIN_TABLES:
        cols = [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
            "ORDER BY ordinal_position", table)]
        assert cols, f"no table {table}"
        cols = [c for c in cols if c not in EXCLUDED.get(table, ())]
        _COLUMNS[table] = cols
        select = ", ".join(f'"{c}"' for c in cols)
        order = ", ".join(str(i + 1) for i in range(len(cols)))
        if workspace_ids is None:
            rows = await conn.fetch(f"SELECT {select} FROM {table} ORDER BY {order}")
        else:
            rows = await conn.fetch(f"SELECT {select} FROM {table} WHERE workspace_id = ANY($1::uuid[]) ORDER BY {order}",
                                    list(workspace_ids))
        out[table] = [tuple(r) for r in rows]
    return out


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=rel_tol) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel_tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rel_tol) for x, y in zip(a, b, strict=True))
    return a == b


def snapshot_diff(a: dict[str, list[tuple]], b: dict[str, list[tuple]], rel_tol: float = REL_TOL,
                  limit: int = 5) -> list[str]:
    """What differs between two snapshots (empty when they are the same): per table the row
    counts, or the first `limit` rows that differ (rows are compared in their sorted order; their
    leading columns are the table's key)."""
    out: list[str] = []
    for table in sorted(a.keys() | b.keys()):
        ra, rb = a.get(table, []), b.get(table, [])
        if len(ra) != len(rb):
            only_a = set(map(repr, ra)) - set(map(repr, rb))
            only_b = set(map(repr, rb)) - set(map(repr, ra))
            out.append(f"{table}: {len(ra)} rows vs {len(rb)}; only in a: {sorted(only_a)[:limit]}; "
                       f"only in b: {sorted(only_b)[:limit]}")
            continue
        bad = [(x, y) for x, y in zip(ra, rb, strict=True) if not _same(x, y, rel_tol)]
        for x, y in bad[:limit]:
            names = _COLUMNS.get(table, [])
            cols = [names[i] if i < len(names) else i
                    for i, (u, v) in enumerate(zip(x, y, strict=True)) if not _same(u, v, rel_tol)]
            out.append(f"{table}: columns {cols} differ:\n  a={x}\n  b={y}")
        if len(bad) > limit:
            out.append(f"{table}: ... {len(bad) - limit} more rows differ")
    return out
