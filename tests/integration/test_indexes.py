"""The indexes of migration 0042 (issue #26, "indexes by query"): the hot tables carry exactly the
indexes a product query uses, so none is added back silently, and the prediction_accuracy job's
due set is read through its partial index."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics.accuracy import DUE_PAGE_END, MEASURED_TYPES
from db.pool import connect

pytestmark = pytest.mark.services

#: every index of the hot tables after 0042, primary keys and unique constraints included
HOT_INDEXES = {
    "learning_events": {"learning_events_pkey", "idx_learning_events_workspace_timestamp"},
    "system_performance_metrics": {"system_performance_metrics_pkey", "idx_performance_metrics_workspace_timestamp"},
    "content_performance_metrics": {"content_performance_metrics_pkey", "idx_content_performance_workspace_time",
                                    "idx_content_performance_content"},
    "predictions": {"predictions_pkey", "idx_predictions_due"},
    "prediction_accuracy": {"prediction_accuracy_pkey", "idx_prediction_accuracy_measured"},
    "identified_patterns": {"identified_patterns_pkey",
                            "identified_patterns_workspace_id_pattern_type_signature_has_key"},
    "pattern_occurrences": {"pattern_occurrences_pkey"},
}


async def test_the_hot_tables_have_exactly_the_indexes_their_queries_use(stack):
    conn = await connect(stack.dsn)
    try:
        rows = await conn.fetch("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' "
                                "AND tablename = ANY($1::text[])", list(HOT_INDEXES))
        found: dict[str, set[str]] = {t: set() for t in HOT_INDEXES}
        for r in rows:
            found[r["tablename"]].add(r["indexname"])
        assert found == HOT_INDEXES
        # each partition of a partitioned one has its parent's indexes and no others
        parts = await conn.fetch("""
            SELECT p.relname AS parent, c.relname AS part,
                (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes
            FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent
            WHERE p.relname = ANY($1::text[]) AND p.relnamespace = 'public'::regnamespace""", list(HOT_INDEXES))
        assert {r["parent"] for r in parts} == {"learning_events", "system_performance_metrics",
                                                 "content_performance_metrics"}
        assert all(r["indexes"] == len(HOT_INDEXES[r["parent"]]) for r in parts), [tuple(r) for r in parts]
        # the new ones, as their statements need them
        defs = dict(await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY($1::text[])",
                                     ["idx_predictions_due", "idx_prediction_accuracy_measured",
                                      "idx_content_published", "idx_improvement_time"]))
        assert defs == {
            "idx_predictions_due": "CREATE INDEX idx_predictions_due ON public.predictions USING btree "
            "(prediction_timestamp, workspace_id, id) WHERE ((actual_score IS NULL) AND (outcome_at IS NULL) "
            "AND ((status)::text = 'active'::text) AND ((target_entity_type)::text = 'content'::text) "
            "AND (prediction_horizon IS NOT NULL) AND (predicted_score IS NOT NULL))",
            "idx_prediction_accuracy_measured": "CREATE INDEX idx_prediction_accuracy_measured ON "
            "public.prediction_accuracy USING btree (measured_at)",
            "idx_content_published": "CREATE INDEX idx_content_published ON public.content USING btree "
            "(workspace_id, published_at)",
            "idx_improvement_time": "CREATE INDEX idx_improvement_time ON public.ai_improvement_tracking "
            "USING btree (workspace_id, recorded_at)",
        }
    finally:
        await conn.close()


def _index_scans(plan: dict) -> set[str]:
    """The index names a JSON plan reads."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for sub in plan.get("Plans", []):
        found |= _index_scans(sub)
    return found


def _literals(now: datetime, cursor: tuple | None) -> str:
    """DUE_PAGE_END's arguments as SQL literals (EXPLAIN EXECUTE takes no bind parameters): the
    measured types, the run's time, the page cursor (none: the first page), a page of 100."""
    types = "ARRAY[" + ", ".join(f"'{t}'" for t in MEASURED_TYPES) + "]"
    after = ", ".join(f"'{v.isoformat() if isinstance(v, datetime) else v}'" for v in cursor) if cursor else \
        "NULL, NULL, NULL"
    return f"{types}, '{now.isoformat()}', {after}, 100"


async def test_the_accuracy_jobs_due_set_reads_idx_predictions_due(stack):
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    conn = await connect(stack.dsn)
    try:
        models = [(uuid.uuid4(), uuid.uuid4()) for _ in range(3)]  # (workspace, model)
        for ws, model in models:
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, status,
                created_at, updated_at, last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', 'active', $3, $3, $3)""",
                               ws, model, t0)
        rows = []
        for i in range(300):  # a third due, the rest measured, expired or not about content
            ws, model = models[i % 3]
            kind = i % 6
            rows.append((ws, uuid.uuid4(), model, "views", "content" if kind != 5 else "account", str(uuid.uuid4()),
                         100.0, 24, t0 + timedelta(minutes=i),
                         "active" if kind in (0, 1, 5) else ("validated" if kind in (2, 3) else "expired"),
                         80.0 if kind in (2, 3) else None))
        await conn.executemany(
            """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
                   target_entity_id, predicted_value, predicted_score, prediction_horizon, prediction_timestamp,
                   status, actual_score) VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, $9, $10, $11)""", rows)
        await conn.execute("ANALYZE predictions")
        await conn.execute("SET enable_seqscan = off")
        now = t0 + timedelta(days=30)
        args = [list(MEASURED_TYPES), now, None, None, None, 100]
        # the plan of the job's first page and of a later one, custom (the statement's first runs) and
        # generic (asyncpg's prepared statement after five): both read the partial index in its order
        await conn.execute("PREPARE due(text[], timestamptz, timestamptz, uuid, uuid, bigint) AS " + DUE_PAGE_END)
        cursor = (t0 + timedelta(minutes=30), models[0][0], uuid.uuid4())
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            for page in ((now, None), (now, cursor)):
                plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE due({_literals(*page)})"))
                plan = plan[0]["Plan"]
                assert _index_scans(plan) == {"idx_predictions_due"}, (mode, plan)
        # and the page it finds: the 100th due prediction in (time, workspace, id) order
        end = await conn.fetchrow(DUE_PAGE_END, *args)
        due = sorted((r[8], r[0], r[1]) for r in rows if r[9] == "active" and r[4] == "content")
        assert len(due) == 100 and tuple(end) == due[99]
    finally:
        await conn.close()
