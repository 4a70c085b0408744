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


async def test_which_metrics_are_better_when_lower_by_the_words_of_their_names(stack):
    """Migration 0041 (review of issue #25 item 6): 0032's substring rule took response_time_ms,
    p95_duration_s, cost_usd, perplexity and bounce_rate for better-when-higher (200 -> 100 was a
    loss of 50 %) and error_detection_recall for better-when-lower. Now: 200 -> 100 of a
    lower-is-better metric is -1 x 100 x (100 - 200) / 200 = +50; of a higher-is-better one -50."""
    conn = await connect(stack.dsn)
    try:
        lower = ["response_time_ms", "p95_duration_s", "cost_usd", "perplexity", "bounce_rate", "val_loss", "valloss",
                 "latency", "error_rate", "MAE", "time_to_first_token"]
        higher = ["error_detection_recall", "accuracy", "conversion_rate", "f1_score", "auc", "throughput_qps",
                  "engagement_rate", "uptime", "note"]
        got = {m: await conn.fetchval("SELECT metric_improvement_percentage($1, 200, 100)", m) for m in lower + higher}
        assert got == {**dict.fromkeys(lower, 50.0), **dict.fromkeys(higher, -50.0)}
    finally:
        await conn.close()


async def test_0041_turns_the_sign_of_the_rows_the_old_rule_computed(stack):
    """0041's UPDATE, run again on rows as 0032's rule left them: a model_evaluation row of
    response_time_ms 200 -> 100 (stored -50: turned to +50); an event's row whose value is what the
    old rule computed (-50: turned); an event's row whose producer sent its own value (-7: kept); a
    row whose direction did not change (latency, +50: kept)."""
    from db.migrate import MIGRATIONS_DIR

    sql = (MIGRATIONS_DIR / "0041_metric_direction.sql").read_text()
    update = sql[sql.index("UPDATE ai_improvement_tracking"):]
    conn = await connect(stack.dsn)
    try:
        rows = [("model_evaluation", "response_time_ms", -50.0), ("improvement_measured", "cost_usd", -50.0),
                ("improvement_measured", "p95_duration_s", -7.0), ("improvement_measured", "latency", 50.0)]
        ids = {}
        for source, metric, value in rows:
            ids[metric] = uuid.uuid4()
            await conn.execute(
                """INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type, metric, before_metrics,
                       after_metrics, improvement_percentage, source_event_type, recorded_at)
                   VALUES ($1, $2, 'x', $3::text, jsonb_build_object($3::text, 200), jsonb_build_object($3::text, 100), $4, $5,
                           $6)""", W, ids[metric], metric, value, source, T)
        await conn.execute(update)
        got = {m: await conn.fetchval("SELECT improvement_percentage FROM ai_improvement_tracking WHERE id = $1", i)
               for m, i in ids.items()}
        assert got == {"response_time_ms": 50.0, "cost_usd": 50.0, "p95_duration_s": -7.0, "latency": 50.0}
    finally:
        await conn.close()


async def test_the_head_word_of_the_name_decides_the_direction(stack):
    """Migration 0048 (issue 25 review 2 R10): 0041's "a higher-is-better word wins" signed 200 -> 100
    of error_score, retention_cost, brier_score, false_positive_rate and hallucination_rate as -50
    (worse). The head word decides now: the last word with a direction before any per/to/at/of/...
    (score and rate have none). Review 3 F1: units (seconds, tokens, ...) are no head; mtbf and a
    time between failures are higher, false anything lower, a count per unit of time (tokens_per_second)
    higher, a bare unit (inference_seconds, total_tokens) lower.
    Lower is better: -1 x 100 x (100 - 200) / 200 = +50; higher: -50."""
    conn = await connect(stack.dsn)
    try:
        lower = ["error_score", "retention_cost", "brier_score", "false_positive_rate", "hallucination_rate",
                 "cost_per_conversion", "time_to_first_token", "log_loss", "risk_score", "false_detection_rate",
                 "rate_of_false_positives", "errors_per_second", "cost_per_hour", "latency_ms", "inference_seconds",
                 "total_tokens", "seconds_per_token", "usd_per_hour"]
        higher = ["error_detection_recall", "recall_at_10", "error_reduction", "true_positive_rate", "f1_score",
                  "quality_score", "score", "speech_to_text_accuracy", "tokens_per_second", "throughput_tokens_per_sec",
                  "uptime_seconds", "mean_time_between_failures", "mtbf", "error_detection_rate",
                  "error_free_sessions", "requests_per_sec"]
        got = {m: await conn.fetchval("SELECT metric_improvement_percentage($1, 200, 100)", m) for m in lower + higher}
        assert got == {**dict.fromkeys(lower, 50.0), **dict.fromkeys(higher, -50.0)}
    finally:
        await conn.close()


async def test_0048_turns_the_sign_of_the_rows_0041s_rule_computed(stack):
    """0048's UPDATE over rows as 0041's rule left them (0041's function put back for it, in a
    transaction rolled back): a model_evaluation row of error_score 200 -> 100 (stored -50: +50); an
    event's row of brier_score with 0041's value (-50: +50); an event's row of retention_cost whose
    producer sent -7 (kept); a row whose direction did not change (latency, +50: kept)."""
    from db.migrate import MIGRATIONS_DIR

    old = (MIGRATIONS_DIR / "0041_metric_direction.sql").read_text()
    old = old[old.index("CREATE OR REPLACE FUNCTION"):old.index("COMMENT ON FUNCTION")]
    new = (MIGRATIONS_DIR / "0048_trend_episodes_metric_heads.sql").read_text()
    new = new[new.index("CREATE TEMPORARY TABLE metric_direction_0041"):]
    conn = await connect(stack.dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(old)
        rows = [("model_evaluation", "error_score", -50.0), ("improvement_measured", "brier_score", -50.0),
                ("improvement_measured", "retention_cost", -7.0), ("improvement_measured", "latency", 50.0)]
        ids = {}
        for source, metric, value in rows:
            ids[metric] = uuid.uuid4()
            await conn.execute(
                """INSERT INTO ai_improvement_tracking (workspace_id, id, improvement_type, metric, before_metrics,
                       after_metrics, improvement_percentage, source_event_type, recorded_at)
                   VALUES ($1, $2, 'x', $3::text, jsonb_build_object($3::text, 200), jsonb_build_object($3::text, 100), $4, $5,
                           $6)""", W, ids[metric], metric, value, source, T)
        assert await conn.fetchval("SELECT metric_improvement_percentage('brier_score', 200, 100)") == -50.0  # 0041's
        await conn.execute(new)
        got = {m: await conn.fetchval("SELECT improvement_percentage FROM ai_improvement_tracking WHERE id = $1", i)
               for m, i in ids.items()}
        assert got == {"error_score": 50.0, "brier_score": 50.0, "retention_cost": -7.0, "latency": 50.0}
        await tx.rollback()
    finally:
        await conn.close()
