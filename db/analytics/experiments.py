"""A/B significance (seed 004 ab_testing_experiments; issue #25 item 8): each treatment arm of an
experiment against its control arm, and a winner only when the difference is significant.

* **Measure**: the conversion proportion of an arm = its subjects whose outcome says
  `converted: true` / its subjects whose outcome says `converted` at all (true or false). A subject
  without an outcome, or whose outcome carries only a value, is not in the sample.
* **Control**: the arm named by `control_variant.name` when the experiment's control configuration
  has a string `name`, else the arm called `control`. Without such an arm nothing is compared.
* **Test**: two-proportion z-test with the pooled standard error,
  p̂ = (x_c + x_t) / (n_c + n_t), SE = sqrt(p̂ (1 − p̂) (1/n_c + 1/n_t)), z = (p_t − p_c) / SE,
  two-sided p = 2 Φ(−|z|) (Φ from Python's statistics.NormalDist: PostgreSQL 15 has no erf).
  Undefined (NULL) when an arm has no subjects, or when p̂ is 0 or 1 (no subject converted, or
  all did: SE = 0, z = 0/0).
* **Interval**: Newcombe's hybrid score interval (his method 10, Wilson intervals without
  continuity correction) of the difference p_t − p_c, at the comparison's level; defined for any
  counts with both arms non-empty (a zero-success arm too, where the Wald interval collapses).
* **Several treatments**: each is compared with the control only (the treatments are not tested
  against each other), Bonferroni-corrected over the k treatment arms assigned: a comparison is
  significant when k·p < α (its adjusted p = min(1, k·p)), its interval is at level 1 − α/k.
  α = the experiment's significance_level (default 0.05: 95 %).
* **Decision point** (no peeking, issue #25 review finding 13): the job looks every 15 minutes, and
  naming a winner the first time p < α makes repeated looks a multiple test (1,000 seeded A/A
  tests, 10 % vs 10 %, checked every 50 subjects up to 2,000 per arm: 326 "winners", 32.6 %; one
  test at the end: 50, 5.0 %; tests/unit/test_experiment_peeking.py). A winner is named only at a
  decision point: the experiment is `completed`, or past its `end_date` (≤ the run's time), or
  every compared arm (the control and each treatment) has reached the planned sample
  (`minimum_sample_size` per arm, at least `MIN_ARM_SAMPLE`). Before that the figures are stored as interim ones, the winner NULL;
  `significance.decision` says which: "final" (`decided_by` completed / end_date / planned_sample),
  "interim: n of N planned per arm" (n the smallest compared arm), "interim: no planned sample"
  (until completed or end_date), "cancelled" (never decided), or, when variants are assigned but
  nothing can be compared whatever the status, "no control arm: no variant named 'control'" (the
  expected control's name) or "no treatment arm: only the control is assigned".
* **Winner** (at a decision point): among the treatments significantly better than the control
  with at least `MIN_ARM_SAMPLE` subjects (or the experiment's minimum_sample_size, if larger) in
  both arms, the one with the highest rate (then the smaller p, then the name); the control when
  every treatment is significantly worse, with enough subjects; otherwise NULL ("no winner").

The experiment's columns: winner_variant, compared_variant (the winner when a treatment wins, else
the treatment with the highest rate; its p_value (adjusted) and difference_ci_low/high), the whole
computation in `significance` (jsonb) and significance_computed_at, the run that last changed
them (a run finding the same figures leaves the row alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import sqrt
from statistics import NormalDist

import asyncpg

#: subjects with an outcome needed in each arm of a comparison before it can decide a winner
MIN_ARM_SAMPLE = 30
#: the arm taken as the control when the control configuration names none
CONTROL_NAME = "control"

_STANDARD_NORMAL = NormalDist()

_ARMS = """
SELECT e.workspace_id, e.id, e.significance_level, e.minimum_sample_size, e.status, e.end_date,
    CASE WHEN jsonb_typeof(e.control_variant -> 'name') = 'string' THEN e.control_variant ->> 'name'
         ELSE $1 END AS control,
    a.variant, a.n, a.x
FROM ab_testing_experiments e
LEFT JOIN (SELECT workspace_id, experiment_id, variant,
                  count(*) FILTER (WHERE converted IS NOT NULL) AS n, count(*) FILTER (WHERE converted) AS x
           FROM ab_testing_assignments GROUP BY workspace_id, experiment_id, variant) AS a
    ON a.workspace_id = e.workspace_id AND a.experiment_id = e.id
ORDER BY e.workspace_id, e.id, a.variant
"""

# one experiment per statement (each its own transaction): the job holds one row lock at a time,
# so it cannot deadlock with the routing's recount of the same rows
_STORE = """
UPDATE ab_testing_experiments SET winner_variant = $3, compared_variant = $4, p_value = $5,
    difference_ci_low = $6, difference_ci_high = $7, significance = $8::jsonb, significance_computed_at = $9
WHERE workspace_id = $1 AND id = $2
  AND (winner_variant, compared_variant, p_value, difference_ci_low, difference_ci_high, significance)
      IS DISTINCT FROM ($3, $4, $5, $6, $7, $8::jsonb)
"""


@dataclass(frozen=True)
class Arm:
    """An arm's sample: n subjects whose outcome says converted or not, x of them converted."""

    n: int
    x: int

    @property
    def rate(self) -> float | None:
        return self.x / self.n if self.n else None


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control: difference p_t − p_c, the z-test, Newcombe's interval."""

    difference: float | None
    z: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


def z_test(control: Arm, treatment: Arm) -> tuple[float | None, float | None]:
    """Pooled two-proportion z-test: (z, two-sided p), (None, None) when undefined."""
    if not control.n or not treatment.n:
        return None, None
    pooled = (control.x + treatment.x) / (control.n + treatment.n)
    if pooled in (0.0, 1.0):
        return None, None
    se = sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
    z = (treatment.x / treatment.n - control.x / control.n) / se
    return z, min(1.0, 2 * _STANDARD_NORMAL.cdf(-abs(z)))


def wilson(arm: Arm, z: float) -> tuple[float, float]:
    """Wilson score interval of an arm's proportion (n > 0) for the normal quantile z."""
    p, n = arm.x / arm.n, arm.n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exact at the ends: 0 successes have a lower bound of 0, n successes an upper bound of 1
    return (0.0 if arm.x == 0 else max(0.0, centre - half)), (1.0 if arm.x == n else min(1.0, centre + half))


def newcombe(control: Arm, treatment: Arm, level: float) -> tuple[float | None, float | None]:
    """Newcombe's hybrid score interval (method 10) of p_t − p_c at `level`; None when an arm is
    empty or the level is not in (0, 1)."""
    if not control.n or not treatment.n or not 0 < level < 1:
        return None, None
    z = _STANDARD_NORMAL.inv_cdf(1 - (1 - level) / 2)
    pc, pt = control.x / control.n, treatment.x / treatment.n
    lc, uc = wilson(control, z)
    lt, ut = wilson(treatment, z)
    d = pt - pc
    low = d - sqrt((pt - lt) ** 2 + (uc - pc) ** 2)
    high = d + sqrt((ut - pt) ** 2 + (pc - lc) ** 2)
    return max(-1.0, low), min(1.0, high)


def compare(control: Arm, treatment: Arm, level: float) -> Comparison:
    z, p = z_test(control, treatment)
    low, high = newcombe(control, treatment, level)
    diff = treatment.x / treatment.n - control.x / control.n if control.n and treatment.n else None
    return Comparison(diff, z, p, low, high)


@dataclass(frozen=True)
class Verdict:
    winner: str | None
    compared: str | None
    p_value: float | None  # adjusted
    ci_low: float | None
    ci_high: float | None
    significance: dict


def decision(arms: dict[str, Arm], control: str, minimum_sample_size: int | None, status: str,
             end_date: datetime | None, at: datetime | None) -> dict:
    """Whether the experiment is at a decision point at `at`: {"decision": "final", "decided_by": ...}
    or {"decision": "interim: ..."} / {"decision": "cancelled"} / {"decision": "no control arm: ..."} /
    {"decision": "no treatment arm: ..."} (no winner)."""
    if status == "cancelled":
        return {"decision": "cancelled"}
    # nothing can be compared, whatever the status or the sample: say what is missing
    if arms and control not in arms:
        return {"decision": f"no control arm: no variant named '{control}'"}
    if list(arms) == [control]:
        return {"decision": "no treatment arm: only the control is assigned"}
    if status == "completed":
        return {"decision": "final", "decided_by": "completed"}
    if end_date is not None and at is not None and end_date <= at:
        return {"decision": "final", "decided_by": "end_date"}
    if not minimum_sample_size:
        return {"decision": "interim: no planned sample"}
    planned = max(MIN_ARM_SAMPLE, minimum_sample_size)
    # the compared arms: the control and every treatment (none before any assignment)
    compared = [a.n for a in arms.values()]
    smallest = min(compared, default=0)
    if compared and smallest >= planned:
        return {"decision": "final", "decided_by": "planned_sample"}
    return {"decision": f"interim: {smallest} of {planned} planned per arm"}


def evaluate(arms: dict[str, Arm], control: str, alpha: float, minimum_sample_size: int | None = None, *,
             status: str = "running", end_date: datetime | None = None, at: datetime | None = None) -> Verdict:
    """An experiment's verdict from its arms (every variant assigned, with its sample); a winner
    only at a decision point (see `decision`)."""
    min_arm = max(MIN_ARM_SAMPLE, minimum_sample_size or 0)
    decided = decision(arms, control, minimum_sample_size, status, end_date, at)
    treatments = sorted(v for v in arms if v != control)
    k = len(treatments)
    significance: dict = {
        "control": control if control in arms else None, "significance_level": alpha,
        "confidence_level": 1 - alpha, "comparisons": k if control in arms else 0, "min_arm_sample": min_arm,
        "test": "two-proportion z-test, pooled SE, two-sided; Bonferroni over the treatments",
        "interval": "Newcombe hybrid score (Wilson) interval of treatment - control",
        "arms": {v: {"n": a.n, "conversions": a.x, "rate": a.rate} for v, a in sorted(arms.items())},
        "vs_control": {}, **decided,
    }
    if control not in arms or not k:
        return Verdict(None, None, None, None, None, significance)
    level = 1 - alpha / k
    c = arms[control]
    results: dict[str, tuple[Comparison, float | None, bool, bool]] = {}
    for t in treatments:
        cmp = compare(c, arms[t], level)
        adjusted = min(1.0, k * cmp.p_value) if cmp.p_value is not None else None
        significant = adjusted is not None and adjusted < alpha
        enough = c.n >= min_arm and arms[t].n >= min_arm
        results[t] = (cmp, adjusted, significant, enough)
        significance["vs_control"][t] = {
            "difference": cmp.difference, "z": cmp.z, "p_value": cmp.p_value, "adjusted_p_value": adjusted,
            "ci_level": level, "ci_low": cmp.ci_low, "ci_high": cmp.ci_high, "significant": significant,
            "enough_sample": enough}
    better = [t for t, (cmp, _, sig, enough) in results.items() if sig and enough and cmp.difference > 0]
    worse = [t for t, (cmp, _, sig, enough) in results.items() if sig and enough and cmp.difference < 0]

    def rank(t: str):
        rate, adjusted = arms[t].rate, results[t][1]
        return (-(rate if rate is not None else -1.0), adjusted if adjusted is not None else 2.0, t)

    if better:
        winner = compared = min(better, key=rank)
    else:
        winner = control if len(worse) == k else None
        compared = min(treatments, key=rank)
    if decided["decision"] != "final":  # interim: the figures, no winner
        winner = None
    cmp, adjusted, _, _ = results[compared]
    if cmp.difference is None:  # no treatment with subjects to compare (no outcomes yet)
        return Verdict(None, None, None, None, None, significance)
    return Verdict(winner, compared, adjusted, cmp.ci_low, cmp.ci_high, significance)


async def experiment_significance(conn: asyncpg.Connection, at: datetime) -> int:
    """Every experiment's verdict -> its row; -> the rows changed (significance_computed_at = at)."""
    experiments: dict[tuple, tuple] = {}
    for r in await conn.fetch(_ARMS, CONTROL_NAME):
        key = (r["workspace_id"], r["id"])
        _, _, arms = experiments.setdefault(key, (r["control"], (r["significance_level"], r["minimum_sample_size"],
                                                                 r["status"], r["end_date"]), {}))
        if r["variant"] is not None:
            arms[r["variant"]] = Arm(r["n"], r["x"])
    changed = 0
    for (ws, eid), (control, (alpha, minimum, status, end_date), arms) in experiments.items():
        v = evaluate(arms, control, alpha, minimum, status=status, end_date=end_date, at=at)
        done = await conn.execute(_STORE, ws, eid, v.winner, v.compared, v.p_value, v.ci_low, v.ci_high,
                                  v.significance, at)
        changed += int(done.rsplit(" ", 1)[1])
    return changed
