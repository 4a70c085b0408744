"""Why experiment_significance names a winner only at a decision point (issue #25, review finding
13): a seeded simulation of A/A tests (both arms convert at 10 %, so every winner is a false one)
judged by db/analytics/experiments.evaluate as the job would judge them every 15 minutes.

1,000 experiments, 2,000 subjects per arm, a look after every 50 subjects per arm (40 looks),
α = 0.05, random.Random(25). Figures (exact for this seed; the expected values are in comments):

* old rule (a winner the first time p < α with ≥ 30 per arm, i.e. every look decides):
  326 of 1,000 runs get a winner at some look (32.6 %; the review measured 32.4 % on its own runs),
  while 50 (5.0 %) have one at the last look.
* new rule, no planned sample, the experiment marked completed after the last look: 50 (5.0 %,
  the nominal α: one test).
* new rule, minimum_sample_size = 2,000, the experiment still running: 50 (5.0 %), the same runs.
* what stays: with minimum_sample_size = 1,000 and the experiment left running to 2,000, each look
  from 1,000 on decides again: 156 (15.6 %); stopping at the planned sample (or ending the
  experiment) is the producer's part.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from db.analytics.experiments import Arm, evaluate

RUNS, PER_ARM, STEP, RATE, ALPHA, SEED = 1000, 2000, 50, 0.10, 0.05, 25
T = datetime(2026, 12, 1, tzinfo=UTC)


def _looks(r: random.Random):
    """One A/A run: (n, control conversions, B conversions) after every STEP subjects per arm."""
    xc = xb = 0
    for n in range(STEP, PER_ARM + 1, STEP):
        xc += sum(r.random() < RATE for _ in range(STEP))
        xb += sum(r.random() < RATE for _ in range(STEP))
        yield n, xc, xb


def _won(n: int, xc: int, xb: int, **how) -> bool:
    return evaluate({"control": Arm(n, xc), "B": Arm(n, xb)}, "control", ALPHA, **how).winner is not None


def test_a_winner_only_at_a_decision_point_keeps_the_aa_false_winner_rate_near_alpha():
    r = random.Random(SEED)
    old = old_at_end = no_plan = planned = overrun = 0
    for _ in range(RUNS):
        old_any = plan_any = over_any = False
        for n, xc, xb in _looks(r):
            last = n == PER_ARM
            # the old rule: every look is a decision (what `completed` means now)
            old_any = old_any or _won(n, xc, xb, status="completed")
            if last:
                old_at_end += _won(n, xc, xb, status="completed")
                # no planned sample: interim while running, decided once completed after the last look
                assert not _won(n, xc, xb, status="running")
                no_plan += _won(n, xc, xb, status="completed")
            # planned 2,000 per arm, still running: only the last look is a decision point
            plan_any = plan_any or _won(n, xc, xb, minimum_sample_size=PER_ARM, status="running")
            # planned 1,000 per arm but left running to 2,000: every look from 1,000 on decides
            over_any = over_any or _won(n, xc, xb, minimum_sample_size=PER_ARM // 2, status="running")
        old += old_any
        planned += plan_any
        overrun += over_any
    assert (old, old_at_end, no_plan, planned, overrun) == (326, 50, 50, 50, 156)


def test_the_decision_states():
    # control 12/120, B 30/150: pooled 42/270 = 0.1555556, SE = sqrt(0.1555556 x 0.8444444 x (1/120 + 1/150))
    # = sqrt(0.1313580 x 0.015) = 0.0443889, z = (0.2 - 0.1) / 0.0443889 = 2.252818, p = 2 x Φ(-2.252818) = 0.0242706
    arms = {"control": Arm(120, 12), "B": Arm(150, 30)}
    v = evaluate(arms, "control", ALPHA, 400)
    assert v.p_value == pytest.approx(0.0242706, abs=1e-7)
    assert (v.winner, v.compared, v.significance["decision"]) == (None, "B", "interim: 120 of 400 planned per arm")
    assert v.significance["vs_control"]["B"]["significant"] is True
    assert evaluate(arms, "control", ALPHA).significance["decision"] == "interim: no planned sample"
    # a planned sample under MIN_ARM_SAMPLE (30) counts as 30
    assert evaluate({"control": Arm(20, 2), "B": Arm(20, 2)}, "control", ALPHA, 5).significance["decision"] == \
        "interim: 20 of 30 planned per arm"
    for how, by in (({"status": "completed"}, "completed"), ({"minimum_sample_size": 120}, "planned_sample"),
                    ({"end_date": T, "at": T}, "end_date")):
        v = evaluate(arms, "control", ALPHA, **how)
        assert (v.winner, v.significance["decision"], v.significance["decided_by"]) == ("B", "final", by), how
    # before its end_date, or cancelled: no winner
    assert evaluate(arms, "control", ALPHA, end_date=T, at=T - timedelta(seconds=1)).winner is None
    v = evaluate(arms, "control", ALPHA, 100, status="cancelled")
    assert (v.winner, v.significance["decision"]) == (None, "cancelled")
