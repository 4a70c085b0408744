"""experiment_significance (issue #25 item 8), by hand. ab_experiment / ab_assignment / ab_outcome
events through the learning-events topic; a subject's proportion counts the outcomes that say
converted true/false. z(97.5 %) = 1.959964 (z² = 3.841459), z(98.75 %) = 2.241403 (z² = 5.023886).

Each experiment runs every 15 minutes; a winner is named only at a decision point (completed, past
its end_date, or every arm at its minimum_sample_size; review finding 13), so each one the winner
assertions judge is at one: `headline` running with 100 planned per arm (reached), `small`
completed, `three arms` running past its end_date (T + 1 h). `interim` is not at one.

`headline` (control, B; the producer declares `control` the winner): control 10/100, B 25/100.
  Traps: 5 more B subjects whose outcome carries a value only (not in the sample); 3 B subjects
  assigned again later to control (the earliest assignment stands); control subject c050's
  outcomes: converted false at +2 h, converted true at +1.5 h sent after it (the latest stands).
  pooled p = 35/200 = 0.175, SE = sqrt(0.175 x 0.825 x (2/100)) = sqrt(0.0028875) = 0.0537355,
  z = 0.15 / 0.0537355 = 2.791453, p = 2 x Φ(-2.791453) = 0.0052472 < 0.05, 100 >= 30 per arm -> B wins.
  Wilson 10/100: centre (0.1 + 3.841459/200) / (1 + 3.841459/100) = 0.1192073 / 1.0384146 = 0.1147974,
    half 1.959964 / 1.0384146 x sqrt(0.0009 + 3.841459/40000) = 1.887458 x 0.0315600 = 0.0595683
    -> (0.0552291, 0.1743657)
  Wilson 25/100: centre 0.2692073 / 1.0384146 = 0.2592484, half 1.887458 x sqrt(0.001875 + 0.0000960)
    = 1.887458 x 0.0443964 = 0.0837963 -> (0.1754521, 0.3430447)
  Newcombe: low 0.15 - sqrt(0.0745479² + 0.0743657²) = 0.15 - 0.1052979 = 0.0447021,
            high 0.15 + sqrt(0.0930447² + 0.0447709²) = 0.15 + 0.1032557 = 0.2532557.
`small` (the producer declares B the winner): control 1/10, B 6/10: pooled 7/20 = 0.35,
  SE = sqrt(0.35 x 0.65 x 0.2) = sqrt(0.0455) = 0.2133073, z = 0.5 / 0.2133073 = 2.344036,
  p = 0.0190763: significant, but 10 < 30 subjects per arm -> no winner (the declared B kept apart).
`three arms` (control named `baseline` by control_variant.name): baseline 20/100, B 33/100, C 20/100.
  B: pooled 53/200 = 0.265, SE = sqrt(0.265 x 0.735 x 0.02) = sqrt(0.0038955) = 0.0624139,
  z = 0.13 / 0.0624139 = 2.082869, p = 0.0372633 (< 0.05 alone), Bonferroni over 2 treatments:
  2 x 0.0372633 = 0.0745265 >= 0.05 -> no winner. C: equal rates, p = 1.
  B's interval at 1 - 0.05/2 = 97.5 %: Wilson 20/100 centre (0.2 + 5.023886/200) / 1.0502389 = 0.2143507,
    half 2.241403 / 1.0502389 x sqrt(0.0016 + 5.023886/40000) = 2.134183 x 0.0415403 = 0.0886547
    -> (0.1256960, 0.3030054); Wilson 33/100 centre 0.3551194 / 1.0502389 = 0.3381321,
    half 2.134183 x sqrt(0.002211 + 0.0001256) = 2.134183 x 0.0483384 = 0.1031629 -> (0.2349691, 0.4412950)
  low 0.13 - sqrt(0.0950309² + 0.1030054²) = 0.13 - 0.1401463 = -0.0101463,
  high 0.13 + sqrt(0.1112950² + 0.0743040²) = 0.13 + 0.1338195 = 0.2638195.
`no outcomes`: 4 subjects assigned, no outcome -> every figure NULL.
`interim` (running, 400 planned per arm): control 12/120, B 30/150: pooled 42/270 = 0.1555556,
  SE = sqrt(0.1555556 x 0.8444444 x (1/120 + 1/150)) = 0.0443889, z = 0.1 / 0.0443889 = 2.252818,
  p = 0.0242706 < 0.05 with 120 >= 30 per arm (a winner under the old rule), but 120 of 400
  planned: decision "interim: 120 of 400 planned per arm", no winner.
`no control` (running, 400 planned per arm; review 2 R9): arms A 1/2 and B 2/2, no arm called
  control: nothing compared, decision "no control arm: no variant named 'control'" (before:
  "interim: 0 of 400 planned per arm").

The routing's results (review 2 R1) carry the same denominator: `headline` B has 105 outcomes (the
5 carrying a value only) of which 100 judged, conversion_rate 25 / 100 = 0.25 (before: 25 / 105 =
0.238095, beside a difference of +0.15 computed from 0.25), control 10 / 100 = 0.1; `analytics
experiments` shows 0.25 - 0.1 = 0.15 = the difference on B's row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics import read
from tests.e2e.jobs.oracles import Feed, event, iso

T = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
NAMES = ("headline", "small", "three arms", "no outcomes", "interim", "no control")
ASSIGNED = 205 + 20 + 300 + 4 + 270 + 4
OUTCOMES = 205 + 20 + 300 + 270 + 4  # subjects with an outcome at the end


def _id(ws: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-experiments-{ws}-{name}"))


def _arm(ws: str, exp: str, variant: str, subjects: int, converted: int, prefix: str, at: datetime,
         *, value_only: int = 0) -> tuple[list[dict], list[dict]]:
    """`subjects` assigned, the first `converted` converting, the rest not; then `value_only` more
    assigned whose outcome carries only a value."""
    assign, outcome = [], []
    for i in range(1, subjects + value_only + 1):
        subject = f"{prefix}{i:03d}"
        assign.append(event(ws, "ab_assignment", at + timedelta(seconds=i),
                            {"experiment_id": exp, "subject_id": subject, "variant": variant}))
        data = {"experiment_id": exp, "subject_id": subject, "value": 1.0}
        if i <= subjects:
            data["converted"] = i <= converted
        outcome.append(event(ws, "ab_outcome", at + timedelta(hours=1, seconds=i), data))
    return assign, outcome


def feed(ws: str) -> Feed:
    f = Feed()
    exps, assign, outcome = [], [], []

    def experiment(name: str, **data):
        exps.append(event(ws, "ab_experiment", T, {"experiment_id": _id(ws, name), "name": name, "status": "running",
                                                   **data}))

    experiment("headline", winner_variant="control", minimum_sample_size=100)
    experiment("small", winner_variant="B", status="completed")
    experiment("three arms", control_variant={"name": "baseline"}, end_date=iso(T + timedelta(hours=1)))
    experiment("no outcomes")
    experiment("interim", minimum_sample_size=400)
    experiment("no control", minimum_sample_size=400)
    for name, arms in (("headline", (("control", 100, 10, "c", 0), ("B", 100, 25, "b", 5))),
                       ("small", (("control", 10, 1, "c", 0), ("B", 10, 6, "b", 0))),
                       ("three arms", (("baseline", 100, 20, "a", 0), ("B", 100, 33, "b", 0), ("C", 100, 20, "c", 0))),
                       ("interim", (("control", 120, 12, "c", 0), ("B", 150, 30, "b", 0))),
                       ("no control", (("A", 2, 1, "a", 0), ("B", 2, 2, "b", 0)))):
        for variant, n, x, prefix, value_only in arms:
            a, o = _arm(ws, _id(ws, name), variant, n, x, prefix, T + timedelta(minutes=1), value_only=value_only)
            assign += a
            outcome += o
    head = _id(ws, "headline")
    # the earliest assignment stands: b001..b003 assigned again to control later, ignored
    assign += [event(ws, "ab_assignment", T + timedelta(minutes=30), {"experiment_id": head, "subject_id": f"b{i:03d}",
                                                                       "variant": "control"}) for i in (1, 2, 3)]
    # the latest outcome stands: c050 converted false at +2 h; a converted true at +1.5 h arrives after it
    outcome += [event(ws, "ab_outcome", T + timedelta(hours=2), {"experiment_id": head, "subject_id": "c050",
                                                                  "converted": False}),
                event(ws, "ab_outcome", T + timedelta(hours=1, minutes=30), {"experiment_id": head,
                                                                             "subject_id": "c050", "converted": True})]
    assign += [event(ws, "ab_assignment", T + timedelta(minutes=1, seconds=i),
                     {"experiment_id": _id(ws, "no outcomes"), "subject_id": f"n{i}", "variant": v})
               for i, v in enumerate(("control", "B", "control", "B"))]
    f.learning = exps + assign + outcome
    f.wait = {"learning_events": len(f.learning), "ab_testing_assignments": ASSIGNED}
    return f


async def check(conn, ws: str, run) -> None:
    w = uuid.UUID(ws)
    deadline = time.monotonic() + 60  # outcomes parked behind an in-flight batch are applied by the timer
    while (await conn.fetchval("SELECT count(*) FROM parked_events WHERE workspace_id = $1", w)
           or await conn.fetchval("SELECT count(*) FROM ab_testing_assignments WHERE workspace_id = $1 "
                                  "AND outcome_at IS NOT NULL", w) < OUTCOMES):
        assert time.monotonic() < deadline, "outcomes still parked"
        await asyncio.sleep(0.3)
    r = await run("experiment_significance")
    assert r.status == "succeeded", r.error
    rows = {x["experiment_name"]: x for x in await conn.fetch(
        "SELECT * FROM ab_testing_experiments WHERE workspace_id = $1", w)}
    assert set(rows) == set(NAMES)

    e = rows["headline"]
    assert e["significance"]["arms"] == {"B": {"n": 100, "conversions": 25, "rate": 0.25},
                                         "control": {"n": 100, "conversions": 10, "rate": 0.1}}
    assert (e["winner_variant"], e["compared_variant"], e["declared_winner_variant"]) == ("B", "B", "control")
    assert e["p_value"] == pytest.approx(0.0052472, abs=1e-7)
    assert e["difference_ci_low"] == pytest.approx(0.0447021, abs=2e-7)
    assert e["difference_ci_high"] == pytest.approx(0.2532557, abs=2e-7)
    assert e["significance_computed_at"] is not None
    assert (e["significance"]["decision"], e["significance"]["decided_by"]) == ("final", "planned_sample")
    # the routing's results: B's 5 value-only outcomes are outcomes, not judged; b001..b003 stay in B
    assert e["results"] == {
        "B": {"assigned": 105, "outcomes": 105, "judged": 100, "converted": 25, "conversion_rate": 0.25,
              "mean_value": 1.0},
        "control": {"assigned": 100, "outcomes": 100, "judged": 100, "converted": 10, "conversion_rate": 0.1,
                    "mean_value": 1.0}}
    shown = await read.experiments(conn, w, experiment="headline")
    by_variant = {row[shown.columns.index("variant")]: dict(zip(shown.columns, row)) for row in shown.rows}
    assert (by_variant["B"]["conversion_rate"], by_variant["control"]["conversion_rate"],
            by_variant["B"]["difference"]) == (0.25, 0.1, 0.15)  # 0.25 - 0.1

    e = rows["small"]
    assert (e["winner_variant"], e["compared_variant"], e["declared_winner_variant"]) == (None, "B", "B")
    assert e["p_value"] == pytest.approx(0.0190763, abs=1e-7)
    assert e["significance"]["vs_control"]["B"]["significant"] is True
    assert e["significance"]["vs_control"]["B"]["enough_sample"] is False
    assert (e["significance"]["decision"], e["significance"]["decided_by"]) == ("final", "completed")

    e = rows["three arms"]
    assert (e["significance"]["control"], e["significance"]["comparisons"]) == ("baseline", 2)
    assert (e["winner_variant"], e["compared_variant"]) == (None, "B")
    assert e["p_value"] == pytest.approx(0.0745265, abs=1e-7)  # Bonferroni: 2 x 0.0372633
    assert e["significance"]["vs_control"]["B"]["p_value"] == pytest.approx(0.0372633, abs=1e-7)
    assert e["significance"]["vs_control"]["C"]["p_value"] == 1.0
    assert e["difference_ci_low"] == pytest.approx(-0.0101463, abs=2e-7)
    assert e["difference_ci_high"] == pytest.approx(0.2638195, abs=2e-7)
    assert (e["significance"]["decision"], e["significance"]["decided_by"]) == ("final", "end_date")

    e = rows["no outcomes"]
    assert (e["winner_variant"], e["compared_variant"], e["p_value"], e["difference_ci_low"],
            e["difference_ci_high"]) == (None, None, None, None, None)
    assert e["significance"]["arms"] == {"B": {"n": 0, "conversions": 0, "rate": None},
                                         "control": {"n": 0, "conversions": 0, "rate": None}}

    e = rows["interim"]
    assert e["significance"]["arms"] == {"B": {"n": 150, "conversions": 30, "rate": 0.2},
                                         "control": {"n": 120, "conversions": 12, "rate": 0.1}}
    assert (e["winner_variant"], e["compared_variant"]) == (None, "B")
    assert e["p_value"] == pytest.approx(0.0242706, abs=1e-7)
    assert e["significance"]["vs_control"]["B"]["significant"] is True
    assert e["significance"]["decision"] == "interim: 120 of 400 planned per arm"

    e = rows["no control"]
    assert (e["winner_variant"], e["compared_variant"], e["p_value"]) == (None, None, None)
    assert e["significance"]["arms"] == {"A": {"n": 2, "conversions": 1, "rate": 0.5},
                                         "B": {"n": 2, "conversions": 2, "rate": 1.0}}
    assert e["significance"]["decision"] == "no control arm: no variant named 'control'"
