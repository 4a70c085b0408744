"""The accuracy jobs on hand-made fixtures (real PostgreSQL): a content prediction measured on the
post's first snapshot at or after its horizon, exactly, unless that snapshot is stale; both accuracy
measures; idempotent; accuracy per model and day."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner, parse_period

pytestmark = pytest.mark.services

W, M, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


async def _fixture(conn) -> dict[str, uuid.UUID]:
    await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, status, created_at,
        updated_at, last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', 'active', $3, $3, $3)""", W, M, T0)
    ids = {k: uuid.uuid4() for k in ("views", "rate", "later", "viral", "explicit", "other_ws")}

    async def predict(key, ptype, score, horizon, ws=W, outcome_at=None):
        if ws != W:
            await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, created_at,
                updated_at, last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', $3, $3, $3)""", ws, M, T0)
        await conn.execute(
            """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
                   target_entity_id, predicted_value, predicted_score, prediction_horizon, prediction_timestamp,
                   outcome_at, actual_score)
               VALUES ($1, $2, $3, $4, 'content', $5, '{}', $6, $7, $8, $9, $10)""",
            ws, ids[key], M, ptype, str(C), score, horizon, T0, outcome_at, 1.0 if outcome_at else None)

    await predict("views", "views", 1000.0, 24)
    await predict("rate", "engagement_rate", 0.1, 24)
    await predict("later", "views", 5.0, 48)          # due 3 Nov: no snapshot after it yet
    await predict("viral", "viral_score", 50.0, 24)   # not an engagement figure
    await predict("explicit", "views", 10.0, 24, outcome_at=T0)  # an outcome event stands
    await predict("other_ws", "views", 1.0, 24, ws=uuid.uuid4())  # its post (same id) has no snapshots there
    for hours, views, likes in ((23, 700, 30), (24.5, 800, 40), (26, 900, 50)):
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, likes,
                   shares, comments, saves, recorded_at) VALUES ($1, $2, $3, 'tiktok', $4, $5, 10, 20, 10, $6)""",
            uuid.uuid4(), W, C, views, likes, T0 + timedelta(hours=hours))
    return ids


async def test_due_content_predictions_are_measured_once_on_the_first_snapshot_after_their_horizon(stack):
    conn = await connect(stack.dsn)
    try:
        ids = await _fixture(conn)
        runner = JobRunner(stack.dsn, JOBS)
        r = await runner.run("prediction_accuracy", period=parse_period("2026-11-30"))
        assert (r.status, r.rows) == ("succeeded", 2)
        again = await runner.run("prediction_accuracy", period=parse_period("2026-11-30"))
        assert (again.status, again.rows) == ("succeeded", 0)  # measured already: nothing changes
        acc = {row["prediction_id"]: row for row in await conn.fetch("SELECT * FROM prediction_accuracy")}
        assert set(acc) == {ids["views"], ids["rate"]}
        v = acc[ids["views"]]  # the 24.5 h snapshot: 800 views against 1,000 predicted
        assert (v["actual_score"], v["absolute_error"], v["percentage_error"], v["accuracy_percentage"]) == (
            800.0, 200.0, 25.0, 75.0)
        assert v["ratio_accuracy"] == 100 * 800 / 1000  # 80.0
        assert v["source"] == "engagement" and v["measured_at"] == T0 + timedelta(hours=24.5)
        assert v["content_id"] == C and v["actual_metrics"]["views"] == 800
        e = acc[ids["rate"]]  # (40 + 10 + 20 + 10) / 800 = 0.1, as predicted
        assert (e["actual_score"], e["accuracy_percentage"], e["absolute_error"]) == (0.1, 100.0, 0.0)
        p = await conn.fetchrow("SELECT * FROM predictions WHERE id = $1", ids["views"])
        assert p["status"] == "validated" and p["accuracy_score"] == 0.75
        assert p["actual_outcome"]["metric"] == "views" and p["actual_outcome"]["value"] == 800
        untouched = await conn.fetch("SELECT id, status FROM predictions WHERE id = ANY($1::uuid[])",
                                     [ids["later"], ids["viral"], ids["other_ws"]])
        assert {row["status"] for row in untouched} == {"active"}

        d = await runner.run("model_accuracy_daily", period=parse_period("2026-11-02"))
        assert (d.status, d.rows) == ("succeeded", 2)
        await runner.run("model_accuracy_daily", period=parse_period("2026-11-02"))  # the same rows again
        daily = {row["prediction_type"]: row for row in await conn.fetch("SELECT * FROM model_accuracy_daily")}
        assert len(daily) == 2
        assert (daily["views"]["predictions"], daily["views"]["mean_accuracy"], daily["views"]["mean_absolute_error"],
                daily["views"]["mean_percentage_error"]) == (1, 75.0, 200.0, 25.0)
        assert daily["engagement_rate"]["mean_accuracy"] == 100.0
        assert (daily["views"]["mean_ratio_accuracy"], daily["views"]["ratio_predictions"]) == (80.0, 1)
        assert daily["engagement_rate"]["mean_ratio_accuracy"] == 100.0
        assert {row["day"] for row in daily.values()} == {T0.date() + timedelta(days=1)}
    finally:
        await conn.close()


async def test_pages_of_predictions_not_measurable_yet_do_not_hide_the_ones_after_them(stack):
    from db.analytics.accuracy import measure_due_predictions

    conn = await connect(stack.dsn)
    try:
        await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, created_at, updated_at,
            last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', $3, $3, $3)""", W, M, T0)
        waiting = [uuid.uuid4() for _ in range(3)]  # earlier, on a post without snapshots yet
        for i, pid in enumerate(waiting):
            await conn.execute(
                """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
                       target_entity_id, predicted_value, predicted_score, prediction_horizon, prediction_timestamp)
                   VALUES ($1, $2, $3, 'views', 'content', $4, '{}', 10, 1, $5)""",
                W, pid, M, str(uuid.uuid4()), T0 - timedelta(hours=10 - i))
        measurable = uuid.uuid4()
        await conn.execute(
            """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
                   target_entity_id, predicted_value, predicted_score, prediction_horizon, prediction_timestamp)
               VALUES ($1, $2, $3, 'views', 'content', $4, '{}', 10, 1, $5)""", W, measurable, M, str(C), T0)
        await conn.execute(
            """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, recorded_at)
               VALUES ($1, $2, $3, 'tiktok', 8, $4)""", uuid.uuid4(), W, C, T0 + timedelta(hours=2))
        # pages of one: three pages measure nothing, the fourth measures the last prediction
        assert await measure_due_predictions(conn, T0 + timedelta(days=1), batch=1) == 1
        assert await conn.fetchval("SELECT actual_score FROM predictions WHERE id = $1", measurable) == 8.0
        assert await conn.fetchval("SELECT count(*) FROM predictions WHERE status = 'active'") == 3
    finally:
        await conn.close()


async def _model(conn) -> None:
    await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, created_at, updated_at,
        last_event_at) VALUES ($1, $2, 'v', '1', 'prediction', $3, $3, $3)""", W, M, T0)


async def _views_prediction(conn, score: float, post: uuid.UUID, horizon: int = 24) -> uuid.UUID:
    pid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO predictions (workspace_id, id, model_id, prediction_type, target_entity_type,
               target_entity_id, predicted_value, predicted_score, prediction_horizon, prediction_timestamp)
           VALUES ($1, $2, $3, 'views', 'content', $4, '{}', $5, $6, $7)""", W, pid, M, str(post), score, horizon, T0)
    return pid


async def _snapshot(conn, post: uuid.UUID, at: datetime, views: int) -> None:
    await conn.execute(
        """INSERT INTO content_performance_metrics (id, workspace_id, content_id, platform, views, recorded_at)
           VALUES ($1, $2, $3, 'tiktok', $4, $5)""", uuid.uuid4(), W, post, views, at)


async def test_an_outcome_snapshot_past_the_tolerance_does_not_judge_the_prediction(stack):
    # a 24-h prediction's tolerance: min(24, max(1, 0.25 x 24)) = 6 h, so snapshots up to 30 h count
    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        late_ok, stale = uuid.uuid4(), uuid.uuid4()
        judged = await _views_prediction(conn, 1000.0, late_ok)
        expired = await _views_prediction(conn, 1000.0, stale)
        await _snapshot(conn, late_ok, T0 + timedelta(hours=25), 800)     # 1 h after due: within 6 h
        await _snapshot(conn, stale, T0 + timedelta(days=20), 50_000)     # 19 days after due
        runner = JobRunner(stack.dsn, JOBS)
        r = await runner.run("prediction_accuracy", period=parse_period("2026-11-30"))
        assert (r.status, r.rows) == ("succeeded", 2)  # one measured, one expired
        assert (await runner.run("prediction_accuracy", period=parse_period("2026-11-30"))).rows == 0
        acc = {row["prediction_id"]: row for row in await conn.fetch("SELECT * FROM prediction_accuracy")}
        # before: both judged, the stale one 100 x max(0, 1 - 49,000 / 50,000) = 2 %
        assert set(acc) == {judged}
        assert acc[judged]["accuracy_percentage"] == 100 * (1 - 200 / 800)  # 75.0
        p = {row["id"]: row for row in await conn.fetch("SELECT * FROM predictions")}
        assert (p[judged]["status"], p[judged]["actual_score"]) == ("validated", 800.0)
        e = p[expired]
        assert (e["status"], e["actual_score"], e["accuracy_score"], e["outcome_at"]) == ("expired", None, None, None)
        assert e["actual_outcome"] == {
            "reason": "stale_outcome", "metric": "views", "due_at": "2026-11-02T10:00:00+00:00",
            "deadline": "2026-11-02T16:00:00+00:00", "first_snapshot_at": "2026-11-21T10:00:00+00:00"}
    finally:
        await conn.close()


async def test_the_tolerance_is_a_quarter_of_the_horizon_between_1_and_24_hours(stack):
    from db.analytics.accuracy import settle_due_predictions

    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        cases = {  # horizon, hours after due the only snapshot lies -> measured?
            (2, 1.0): True, (2, 1.5): False,        # 0.25 x 2 = 0.5 h -> 1 h
            (48, 12.0): True, (48, 12.5): False,    # 0.25 x 48 = 12 h
            (200, 24.0): True, (200, 25.0): False,  # 0.25 x 200 = 50 h -> 24 h
        }
        ids = {}
        for (horizon, late), _ in cases.items():
            post = uuid.uuid4()
            ids[(horizon, late)] = await _views_prediction(conn, 10.0, post, horizon=horizon)
            await _snapshot(conn, post, T0 + timedelta(hours=horizon + late), 10)
        done = await settle_due_predictions(conn, T0 + timedelta(days=30))
        assert (done.measured, done.expired) == (3, 3)
        status = {row["id"]: row["status"] for row in await conn.fetch("SELECT id, status FROM predictions")}
        assert {k: status[v] == "validated" for k, v in ids.items()} == cases
    finally:
        await conn.close()


async def test_both_accuracy_measures_of_predictions_too_high_and_too_low(stack):
    # actual 300 views; relative-error accuracy 100 x max(0, 1 - |p - a| / a), ratio accuracy
    # 100 x min(p, a) / max(p, a), NULL when p or a is 0 (and the other not)
    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        post = uuid.uuid4()
        ids = {name: await _views_prediction(conn, score, post)
               for name, score in (("3x_high", 900.0), ("3x_low", 100.0), ("2x_low", 150.0), ("zero", 0.0))}
        await _snapshot(conn, post, T0 + timedelta(hours=24), 300)
        runner = JobRunner(stack.dsn, JOBS)
        assert (await runner.run("prediction_accuracy", period=parse_period("2026-11-30"))).rows == 4
        acc = {row["prediction_id"]: row for row in await conn.fetch("SELECT * FROM prediction_accuracy")}
        got = {name: (acc[pid]["accuracy_percentage"], acc[pid]["ratio_accuracy"]) for name, pid in ids.items()}
        want = {
            "3x_high": (0.0, 100 * 300 / 900),                    # max(0, 1 - 600 / 300) = 0; 33.3
            "3x_low": (100 * (1 - 200 / 300), 100 * 100 / 300),   # 33.3; 33.3: symmetric
            "2x_low": (100 * (1 - 150 / 300), 100 * 150 / 300),   # 50; 50
            "zero": (0.0, None),                                  # 1 - 300 / 300 = 0; no ratio
        }
        assert got.keys() == want.keys()
        for name in want:
            assert got[name][0] == pytest.approx(want[name][0]), name
            assert got[name][1] == (None if want[name][1] is None else pytest.approx(want[name][1])), name
        # the day: mean relative-error accuracy over 4, ratio accuracy over the 3 defined
        assert (await runner.run("model_accuracy_daily", period=parse_period("2026-11-02"))).rows == 1
        d = await conn.fetchrow("SELECT * FROM model_accuracy_daily")
        assert (d["predictions"], d["ratio_predictions"]) == (4, 3)
        assert d["mean_accuracy"] == pytest.approx((0 + 100 / 3 + 50 + 0) / 4)  # 20.83
        assert d["mean_ratio_accuracy"] == pytest.approx((100 / 3 + 100 / 3 + 50) / 3)  # 38.89
    finally:
        await conn.close()


async def test_model_accuracy_daily_recomputes_the_days_whose_accuracy_rows_changed_and_only_those(stack):
    # review 2 R2: the daily rows follow later writes to prediction_accuracy (a backfilled outcome, a
    # prediction whose model and score an earlier event replaced, a row deleted), whatever day they are on
    from db.domain.predictions import MODEL_PREDICTION, PREDICTION_OUTCOME

    m2 = uuid.uuid4()
    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        await conn.execute("""INSERT INTO ml_models (workspace_id, id, name, version, model_type, created_at,
            updated_at, last_event_at) VALUES ($1, $2, 'v', '2', 'prediction', $3, $3, $3)""", W, m2, T0)
        pids = {k: uuid.uuid4() for k in ("a", "a_late", "b", "c", "d")}

        async def predict(key, model, score, at) -> None:
            for sql in MODEL_PREDICTION:
                await conn.execute(sql, [{"workspace_id": str(W), "event_id": str(uuid.uuid4()), "ts": at.isoformat(),
                                          "prediction_id": str(pids[key]), "model_id": str(model),
                                          "prediction_type": "signups", "target_entity_type": "campaign",
                                          "target_entity_id": "x", "predicted_score": score}])

        async def outcome(key, actual, day) -> None:
            await conn.execute(PREDICTION_OUTCOME[0], [{"workspace_id": str(W), "prediction_id": str(pids[key]),
                                                        "ts": f"{day}T12:00:00+00:00", "actual_score": actual}])

        for key in pids:
            await predict(key, M, 100.0, T0)
        await outcome("a", 100.0, "2026-11-02")   # 100 x max(0, 1 - |p - a| / a): 100 %
        await outcome("d", 125.0, "2026-11-03")   # 1 - 25 / 125: 80 %
        await outcome("b", 80.0, "2026-11-05")    # 1 - 20 / 80: 75 %
        await outcome("c", 50.0, "2026-11-08")    # 1 - 50 / 50: 0 %
        runner = JobRunner(stack.dsn, JOBS)
        # the run for Nov 8 also computes the days changed before it: Nov 2, 3, 5 and 8
        assert (await runner.run("model_accuracy_daily", period=parse_period("2026-11-08"))).rows == 4

        async def daily() -> dict:
            return {(r["model_id"], r["day"].isoformat()): (r["predictions"], r["mean_accuracy"], r["computed_at"])
                    for r in await conn.fetch("SELECT * FROM model_accuracy_daily")}
        before = await daily()
        assert {k: v[:2] for k, v in before.items()} == {
            (M, "2026-11-02"): (1, 100.0), (M, "2026-11-03"): (1, 80.0), (M, "2026-11-05"): (1, 75.0),
            (M, "2026-11-08"): (1, 0.0)}

        await outcome("a_late", 50.0, "2026-11-02")       # a backfill for Nov 2: 100 vs 50, 0 %
        await predict("b", m2, 80.0, T0 - timedelta(hours=1))   # b was m2's, predicting 80: 80 vs 80, 100 %
        await predict("c", M, None, T0 - timedelta(hours=1))    # c had no score: no accuracy row left on Nov 8
        assert await conn.fetchval("SELECT count(*) FROM prediction_accuracy") == 4  # a, a_late, b, d
        # the next day's run: Nov 2 recomputed (upserted), Nov 5 of M deleted and of m2 written, Nov 8
        # deleted, Nov 10 has nothing; Nov 3 did not change and is not touched
        assert (await runner.run("model_accuracy_daily", period=parse_period("2026-11-10"))).rows == 4
        after = await daily()
        assert {k: v[:2] for k, v in after.items()} == {
            # (100 + 100 x max(0, 1 - |100 - 50| / 50)) / 2 = (100 + 0) / 2
            (M, "2026-11-02"): (2, 50.0), (M, "2026-11-03"): (1, 80.0), (m2, "2026-11-05"): (1, 100.0)}
        assert after[(M, "2026-11-03")][2] == before[(M, "2026-11-03")][2]  # computed_at: left alone
        assert await conn.fetchval("SELECT count(*) FROM prediction_accuracy_changes") == 0
        # nothing changed since: a run for a day without rows writes nothing
        assert (await runner.run("model_accuracy_daily", period=parse_period("2026-11-11"))).rows == 0
    finally:
        await conn.close()


async def test_an_explicit_outcome_replaces_the_measurement_on_a_snapshot_and_feedback_does_not(stack):
    # review 2 R12: predictions and prediction_accuracy keep the same actual value
    from db.domain.predictions import PREDICTION_OUTCOME, USER_FEEDBACK

    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        post = uuid.uuid4()
        pid = await _views_prediction(conn, 1000.0, post)
        await _snapshot(conn, post, T0 + timedelta(hours=25), 800)
        runner = JobRunner(stack.dsn, JOBS)
        assert (await runner.run("prediction_accuracy", period=parse_period("2026-11-05"))).rows == 1

        async def both():
            p = await conn.fetchrow("SELECT actual_score, accuracy_score, outcome_at FROM predictions WHERE id = $1", pid)
            a = await conn.fetchrow("SELECT actual_score, accuracy_percentage, source, measured_at FROM prediction_accuracy "
                                    "WHERE prediction_id = $1", pid)
            return (p["actual_score"], p["accuracy_score"], p["outcome_at"]), tuple(a)

        # feedback carrying an actual value does not replace the measurement (800 vs 1000: 75 %)
        for sql in USER_FEEDBACK:
            await conn.execute(sql, [{"workspace_id": str(W), "ts": (T0 + timedelta(days=3)).isoformat(),
                                      "prediction_id": str(pid), "actual_score": 1000.0}])
        assert await both() == ((800.0, 0.75, T0 + timedelta(hours=25)),
                                (800.0, 75.0, "engagement", T0 + timedelta(hours=25)))
        # an explicit outcome does, even one dated before the snapshot: 900 vs 1000 -> 1 - 100 / 900
        at = T0 + timedelta(hours=24)
        await conn.execute(PREDICTION_OUTCOME[0], [{"workspace_id": str(W), "ts": at.isoformat(),
                                                    "prediction_id": str(pid), "actual_score": 900.0}])
        p, a = await both()
        assert p == (900.0, pytest.approx(1 - 100 / 900), at)
        assert a == (900.0, pytest.approx(100 * (1 - 100 / 900)), "outcome", at)
        # and a later job run does not measure it again
        assert (await runner.run("prediction_accuracy", period=parse_period("2026-11-06"))).rows == 0
        assert (await both())[1][:3] == (900.0, pytest.approx(100 * (1 - 100 / 900)), "outcome")
    finally:
        await conn.close()


async def _outcome_of_a_new_prediction(conn, actual: float, day: str) -> None:
    """A signups prediction of model M (predicting 100) and its outcome on `day`: one accuracy row."""
    from db.domain.predictions import MODEL_PREDICTION, PREDICTION_OUTCOME

    pid = str(uuid.uuid4())
    for sql in MODEL_PREDICTION:
        await conn.execute(sql, [{"workspace_id": str(W), "event_id": str(uuid.uuid4()), "ts": T0.isoformat(),
                                  "prediction_id": pid, "model_id": str(M), "prediction_type": "signups",
                                  "target_entity_type": "campaign", "target_entity_id": "x", "predicted_score": 100.0}])
    await conn.execute(PREDICTION_OUTCOME[0], [{"workspace_id": str(W), "prediction_id": pid,
                                                "ts": f"{day}T12:00:00+00:00", "actual_score": actual}])


async def test_the_changes_hold_one_row_per_key_however_often_it_changes(stack):
    # review 3 F8: one row per key and statement grew without bound between daily runs
    # (before: 1 + 1000 = 1001 rows for one key; after: 1)
    conn = await connect(stack.dsn)
    try:
        await _model(conn)
        await _outcome_of_a_new_prediction(conn, 100.0, "2026-11-02")
        first = await conn.fetchval("SELECT changed_at FROM prediction_accuracy_changes")
        await conn.execute("""DO $$ BEGIN FOR i IN 1..1000 LOOP
            UPDATE prediction_accuracy SET actual_score = actual_score; END LOOP; END $$""")
        rows = await conn.fetch("SELECT model_id, prediction_type, day, changed_at FROM prediction_accuracy_changes")
        assert [tuple(r)[:3] for r in rows] == [(M, "signups", datetime(2026, 11, 2).date())]
        assert rows[0]["changed_at"] > first  # moved on by each change
    finally:
        await conn.close()


async def test_a_change_committed_while_the_daily_job_runs_is_not_lost(stack):
    # review 3 F8: with one row per key, the job must not delete a key whose change it did not see.
    # A writer adds an accuracy row to a key already recorded and commits while the job runs: the job
    # (snapshot before the commit) computes the day without it and must leave the key for the next run.
    from db.analytics.accuracy import accuracy_per_day

    conn, writer, job = await connect(stack.dsn), await connect(stack.dsn), await connect(stack.dsn)
    try:
        await _model(conn)
        await _outcome_of_a_new_prediction(conn, 100.0, "2026-11-02")   # 100 vs 100: 100 %, committed
        tx = writer.transaction()
        await tx.start()
        await _outcome_of_a_new_prediction(writer, 50.0, "2026-11-02")  # 100 vs 50: 0 %, not committed yet
        start = datetime(2026, 11, 10, tzinfo=UTC)
        run = asyncio.create_task(accuracy_per_day(job, start, start + timedelta(days=1)))
        pid = job.get_server_pid()
        # the job's delete waits for the writer's lock on the key's change row (a DO NOTHING design would not:
        # the job would finish first, deleting the key, and the assertions below show the change lost)
        for _ in range(500):
            if run.done() or await conn.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
                break
            await asyncio.sleep(0.01)
        await tx.commit()
        assert await run == 1  # Nov 2 written from what it saw: the committed row only
        daily = "SELECT predictions, mean_accuracy FROM model_accuracy_daily WHERE day = '2026-11-02'"
        assert tuple(await conn.fetchrow(daily)) == (1, 100.0)
        # the writer's change stays recorded (its changed_at moved on after the job read it) ...
        assert await conn.fetchval("SELECT count(*) FROM prediction_accuracy_changes") == 1
        # ... so the next run takes it: (100 + 0) / 2 = 50 %, and then nothing is left
        assert await accuracy_per_day(job, start + timedelta(days=1), start + timedelta(days=2)) == 1
        assert tuple(await conn.fetchrow(daily)) == (2, 50.0)
        assert await conn.fetchval("SELECT count(*) FROM prediction_accuracy_changes") == 0
    finally:
        for c in (conn, writer, job):
            await c.close()
