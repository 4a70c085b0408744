"""model_improvements on crafted models (real PostgreSQL): a model against its parent per metric,
signed so positive is better, one row per model and metric however often it runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()
T = datetime(2026, 11, 30, tzinfo=UTC)


async def test_a_model_against_its_parent(stack):
    conn = await connect(stack.dsn)
    try:
        parent, child = uuid.uuid4(), uuid.uuid4()
        for mid, version, metrics, up in ((parent, "1", {"auc": 0.80, "mae": 10.0, "note": "x"}, None),
                                          (child, "2", {"auc": 0.84, "mae": 8.0, "f1": 0.5}, parent)):
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, performance_metrics,
                parent_model_id, created_at, updated_at, last_event_at)
                VALUES ($1, $2, 'viral', $3, 'prediction', $4, $5, $6, $6, $6)""", W, mid, version, metrics, up, T)
        runner = JobRunner(stack.dsn, JOBS)
        r = await runner.run("model_improvements")
        assert (r.status, r.rows) == ("succeeded", 2)  # auc and mae: the only numeric metrics both have
        assert (await runner.run("model_improvements")).rows == 0  # nothing changed
        rows = {x["metric"]: x for x in await conn.fetch("SELECT * FROM ai_improvement_tracking")}
        assert rows["auc"]["improvement_percentage"] == pytest.approx(5.0)  # 0.80 -> 0.84
        assert rows["mae"]["improvement_percentage"] == pytest.approx(20.0)  # 10 -> 8: lower is better
        assert rows["auc"]["before_metrics"] == {"auc": 0.8, "model": "viral 1"}
        assert rows["auc"]["after_metrics"] == {"auc": 0.84, "model": "viral 2"}
        assert rows["auc"]["model_id"] == child and rows["auc"]["improvement_type"] == "model_evaluation"
        # the model's metrics change (a later model_registered): the same row, new values
        await conn.execute("""UPDATE ml_models SET performance_metrics = '{"auc": 0.88, "mae": 8.0}', updated_at = $2
            WHERE id = $1""", child, datetime(2026, 12, 1, tzinfo=UTC))
        assert (await runner.run("model_improvements")).rows == 2
        rows = {x["metric"]: x for x in await conn.fetch("SELECT * FROM ai_improvement_tracking")}
        assert len(rows) == 2 and rows["auc"]["improvement_percentage"] == pytest.approx(10.0)
    finally:
        await conn.close()


async def test_the_job_and_an_event_give_the_same_sign_for_the_same_change(stack):
    # latency 200 -> 100 ms, lower is better: -1 x 100 x (100 - 200) / |200| = +50 (the event used
    # to give 100 x (100 - 200) / 200 = -50 in the same column the dashboard averages)
    import orjson

    conn = await connect(stack.dsn)
    pool = await create_writer_pool(stack.dsn, 1)
    try:
        parent, child = uuid.uuid4(), uuid.uuid4()
        for mid, version, ms, up in ((parent, "1", 200, None), (child, "2", 100, parent)):
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, performance_metrics,
                parent_model_id, created_at, updated_at, last_event_at)
                VALUES ($1, $2, 'ranker', $3, 'prediction', $4, $5, $6, $6, $6)""",
                               W, mid, version, {"latency_ms": ms}, up, T)
        assert (await JobRunner(stack.dsn, JOBS).run("model_improvements")).rows == 1

        def event(event_type: str, data: dict) -> dict:
            return {"event_id": str(uuid.uuid4()), "workspace_id": str(W), "event_type": event_type,
                    "timestamp": T.isoformat(), "event_data": data}

        change = {"metric": "latency_ms", "before_metrics": {"latency_ms": 200}, "after_metrics": {"latency_ms": 100}}
        decoded = decode_message(orjson.dumps([
            event("improvement_measured", {"improvement_type": "latency", **change}),
            event("system_optimization", change),
            event("improvement_measured", {"improvement_type": "quality", "metric": "ctr",
                                           "before_metrics": {"ctr": 0.04}, "after_metrics": {"ctr": 0.05}}),
        ]), "learning_event")
        assert decoded.rejected is None
        async with pool.acquire() as c:
            await write_rows(c, LEARNING_EVENTS, [LEARNING_EVENTS.row(e) for e in decoded.events], WritePolicy())
        got = {r["improvement_type"]: r["improvement_percentage"]
               for r in await conn.fetch("SELECT * FROM ai_improvement_tracking WHERE workspace_id = $1", W)}
        assert got == {"model_evaluation": 50.0, "latency": 50.0, "system_optimization": 50.0,
                       "quality": pytest.approx(100 * (0.05 - 0.04) / 0.04)}  # 25: higher is better, as it was
        dash = {r["improvement_type"]: r["daily_improvement"]
                for r in await conn.fetch("SELECT * FROM ai_performance_dashboard WHERE workspace_id = $1", W)}
        assert dash["latency"] == dash["model_evaluation"] == 50.0
    finally:
        await pool.close()
        await conn.close()
