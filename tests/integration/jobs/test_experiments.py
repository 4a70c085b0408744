"""experiment_significance on crafted experiments (real PostgreSQL): the z-test, Newcombe's
interval and the winner stored on the experiment's row, NULLs without outcomes, a second run
changes nothing, new outcomes change the verdict (issue #25 item 8). The arithmetic of each case is
in tests/unit/test_experiment_significance.py; here: the counts the job reads from the rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from db.analytics import read
from db.pool import connect
from db.reports.query import fetch
from schemas.reports import ReportQuery
from streams.jobs.catalog import JOBS
from streams.jobs.runner import JobRunner

pytestmark = pytest.mark.services

W = uuid.uuid4()
T = datetime(2026, 11, 30, tzinfo=UTC)


async def _experiment(conn, name: str, status: str = "running", **extra) -> uuid.UUID:
    eid = uuid.uuid4()
    cols = ", ".join(extra)
    await conn.execute(f"""INSERT INTO ab_testing_experiments (workspace_id, id, experiment_name, status, created_at,
        updated_at, last_event_at{", " + cols if cols else ""}) VALUES ($1, $2, $3, $5, $4, $4, $4
        {"".join(f", ${i + 6}" for i in range(len(extra)))})""", W, eid, name, T, status, *extra.values())
    return eid


async def _arm(conn, eid: uuid.UUID, variant: str, subjects: int, converted: int | None, reported: int | None = None,
               prefix: str = "s"):
    """`subjects` assigned to `variant`; the first `reported` (all, by default) have an outcome, the
    first `converted` of them converted; converted None: outcomes carrying a value only."""
    reported = subjects if reported is None else reported
    await conn.execute("""INSERT INTO ab_testing_assignments (workspace_id, id, experiment_id, user_id, variant,
        assignment_timestamp, converted, outcome_value, outcome_at)
        SELECT $1, gen_random_uuid(), $2, $8 || $3 || '-' || i, $3, $4,
            CASE WHEN i > $6 THEN NULL WHEN $5::int IS NULL THEN NULL ELSE i <= $5::int END,
            CASE WHEN i <= $6 THEN 1.0 END, CASE WHEN i <= $6 THEN $4::timestamptz END
        FROM generate_series(1, $7) AS i""", W, eid, variant, T, converted, reported, subjects, prefix)


async def test_significance_winner_and_nulls(stack):
    conn = await connect(stack.dsn)
    try:
        # running, its planned sample (1,000 per arm) reached: a decision point
        issue = await _experiment(conn, "issue example", minimum_sample_size=1000)
        await _arm(conn, issue, "control", 1000, 100)
        await _arm(conn, issue, "B", 1005, 130, reported=1000)  # not in the sample: 5 assigned without an outcome
        await _arm(conn, issue, "control", 3, None, prefix="v")  # nor outcomes carrying a value only
        extra = await _experiment(conn, "no outcomes")
        await _arm(conn, extra, "control", 10, 0, reported=0)
        await _arm(conn, extra, "B", 10, 0, reported=0)
        valueonly = await _experiment(conn, "values only", "completed", control_variant={"name": "old"})
        # control 12/120, B 30/150: p = 0.0242706 < 0.05 (tests/unit/test_experiment_peeking.py), but running
        # with 400 planned per arm: interim, no winner; the same counts past the end_date: B wins
        interim = await _experiment(conn, "interim", minimum_sample_size=400)
        ended = await _experiment(conn, "ended", end_date=T)
        for eid in (interim, ended):
            await _arm(conn, eid, "control", 120, 12)
            await _arm(conn, eid, "B", 150, 30)
        await _arm(conn, valueonly, "old", 40, None)   # outcomes without `converted`: n = 0
        await _arm(conn, valueonly, "new", 40, 6)

        runner = JobRunner(stack.dsn, JOBS)
        r = await runner.run("experiment_significance", period=(T, T))
        assert (r.status, r.rows) == ("succeeded", 5), r.error
        rows = {x["experiment_name"]: x for x in await conn.fetch("SELECT * FROM ab_testing_experiments")}

        e = rows["issue example"]
        # control 100/1000, B 130/1000: p = 0.0354885, interval (0.0020023, 0.0580705) -> B wins
        assert (e["winner_variant"], e["compared_variant"]) == ("B", "B")
        assert e["p_value"] == pytest.approx(0.0354885, abs=1e-7)
        assert (e["difference_ci_low"], e["difference_ci_high"]) == (pytest.approx(0.0020023, abs=2e-7),
                                                                     pytest.approx(0.0580705, abs=2e-7))
        assert e["significance"]["arms"] == {"B": {"n": 1000, "conversions": 130, "rate": 0.13},
                                             "control": {"n": 1000, "conversions": 100, "rate": 0.1}}
        assert e["significance_computed_at"] == T
        assert (e["significance"]["decision"], e["significance"]["decided_by"]) == ("final", "planned_sample")
        # what `learnstream analytics experiments` shows of it: the job's figures on each treatment's
        # row (rounded to 6 places), none on the control's; the control's role named
        shown = await read.experiments(conn, W, experiment="issue example")
        got = [dict(zip(shown.columns, row)) for row in shown.rows]
        assert [(x["variant"], x["role"], x["tested"], x["tested_converted"], x["difference"], x["p_value"],
                 x["ci_low"], x["ci_high"], x["winner"]) for x in got] == [
            ("B", None, 1000, 130, 0.03, 0.035488, 0.002002, 0.05807, "B"),  # p 0.03548847.., high 0.05807048..
            ("control", "control", 1000, 100, None, None, None, None, "B")]
        assert {x["decision"] for x in got} == {"final"}
        # and a report of it (source experiments): B's p-value, the winner, one experiment won
        q = ReportQuery(source="experiments", metrics=["p_value", "winners"], dimensions=["variant", "winner"],
                        filters={"experiment": ["issue example"]}, period={"start": "2026-11-23", "end": "2026-12-01"})
        assert (await fetch(conn, W, q, *q.resolve(T)))[1] == [("B", "B", 0.035488, 1), ("control", "B", None, 1)]
        # by decision: final (issue example, values only, ended; winners: issue example and ended), interim
        q = ReportQuery(source="experiments", metrics=["experiments", "winners"], dimensions=["decision"],
                        period={"start": "2026-11-23", "end": "2026-12-01"})
        assert (await fetch(conn, W, q, *q.resolve(T)))[1] == [
            ("final", 3, 2), ("interim: 120 of 400 planned per arm", 1, 0), ("interim: no planned sample", 1, 0)]

        e = rows["no outcomes"]
        assert (e["winner_variant"], e["compared_variant"], e["p_value"], e["difference_ci_low"],
                e["difference_ci_high"]) == (None, None, None, None, None)
        assert e["significance"]["arms"] == {"B": {"n": 0, "conversions": 0, "rate": None},
                                             "control": {"n": 0, "conversions": 0, "rate": None}}
        assert e["significance_computed_at"] == T  # evaluated: nothing to compare yet

        e = rows["values only"]
        # the control is "old" (control_variant.name); its 40 outcomes carry no `converted`: n = 0, NULLs
        assert e["significance"]["control"] == "old"
        assert e["significance"]["arms"]["old"] == {"n": 0, "conversions": 0, "rate": None}
        assert (e["winner_variant"], e["p_value"]) == (None, None)

        # interim: the figures stored, the winner not (p < 0.05 at 120 and 150 of 400 planned per arm)
        e = rows["interim"]
        assert (e["winner_variant"], e["compared_variant"]) == (None, "B")
        assert e["p_value"] == pytest.approx(0.0242706, abs=1e-7)
        assert e["significance"]["vs_control"]["B"]["significant"] is True
        assert e["significance"]["decision"] == "interim: 120 of 400 planned per arm"
        shown = await read.experiments(conn, W, experiment="interim")
        assert [(row[shown.columns.index("variant")], row[shown.columns.index("winner")],
                 row[shown.columns.index("decision")]) for row in shown.rows] == [
            ("B", None, "interim: 120 of 400 planned per arm"), ("control", None, "interim: 120 of 400 planned per arm")]
        # end_date T, the run at T: a decision point
        e = rows["ended"]
        assert (e["winner_variant"], e["significance"]["decision"], e["significance"]["decided_by"]) == (
            "B", "final", "end_date")
        assert e["p_value"] == pytest.approx(0.0242706, abs=1e-7)

        # nothing changed: no row written, the time stays
        assert (await runner.run("experiment_significance", period=(T, datetime(2026, 12, 1, tzinfo=UTC)))).rows == 0
        # the control's outcomes now say converted, 0 of 40 (control 0/40, B 6/40): p = 0.0108698,
        # interval (0.0317629, 0.2907232) -> "new" wins
        await conn.execute("UPDATE ab_testing_assignments SET converted = false WHERE experiment_id = $1 AND "
                           "variant = 'old'", valueonly)
        later = datetime(2026, 12, 2, tzinfo=UTC)
        assert (await runner.run("experiment_significance", period=(T, later))).rows == 1
        e = await conn.fetchrow("SELECT * FROM ab_testing_experiments WHERE id = $1", valueonly)
        assert (e["winner_variant"], e["significance_computed_at"]) == ("new", later)
        assert e["p_value"] == pytest.approx(0.0108698, abs=1e-7)
        assert e["difference_ci_low"] == pytest.approx(0.0317629, abs=2e-7)
        assert e["difference_ci_high"] == pytest.approx(0.2907232, abs=2e-7)

        # the winner is one of the arms counted
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE ab_testing_experiments SET winner_variant = 'Z' WHERE id = $1", issue)
    finally:
        await conn.close()
