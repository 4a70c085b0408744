"""prediction_accuracy, model_accuracy_daily (issue #25 item 5) and model_improvements with the
improvement_measured routing (item 6), by hand.

Model `ranker 2` (parent `ranker 1`) predicts views 24 h ahead at T0 (10:00 UTC, 30 days ago), so
each prediction is due at T0 + 24 h and its tolerance is min(24, max(1, 0.25 x 24)) = 6 h: a
snapshot recorded up to T0 + 30 h judges it.

* p_late, post A, 1,000 predicted; A's first snapshot after the due time is at T0 + 25 h (1 h late,
  within 6 h): 800 views. Relative-error accuracy 100 x (1 - 200 / 800) = 75; ratio 100 x 800 /
  1,000 = 80.
* p_stale, post B, 1,000 predicted; B's only snapshot is at T0 + 20 days: 50,000 views. It used to
  be judged on it: 100 x max(0, 1 - 49,000 / 50,000) = 2 %. Now it is past the deadline
  (T0 + 30 h): status 'expired', reason stale_outcome, no accuracy row.
* post C: a snapshot at T0 + 23 h (250 views, before the due time), its first after it at T0 + 24 h
  (300 views), another at T0 + 26 h (400, not the first). Against 300:
    p_3x_high 900: relative-error 100 x max(0, 1 - 600 / 300) = 0, ratio 100 x 300 / 900 = 33.3
    p_3x_low  100: relative-error 100 x (1 - 200 / 300) = 33.3, ratio 100 x 100 / 300 = 33.3
    p_2x_low  150: relative-error 100 x (1 - 150 / 300) = 50, ratio 100 x 150 / 300 = 50
* model_accuracy_daily for the day T0 + 1 (every measurement's snapshot is on it): 4 predictions,
  mean relative-error accuracy (75 + 0 + 33.3 + 50) / 4 = 39.583, mean ratio accuracy
  (80 + 33.3 + 33.3 + 50) / 4 = 49.167 over 4, mean absolute error (200 + 600 + 200 + 150) / 4 =
  287.5, mean % error (25 + 200 + 66.7 + 50) / 4 = 85.417.

Improvements, positive = better: `ranker 2` against `ranker 1`, latency_ms 200 -> 100 (lower is
better): -1 x 100 x (100 - 200) / 200 = +50; auc 0.80 -> 0.84: 100 x 0.04 / 0.80 = +5. An
improvement_measured event for the same latency change: +50 too (it was -50), so
ai_performance_dashboard's `latency` day averages +50.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from streams.jobs.runner import parse_period
from tests.e2e.jobs.oracles import Feed, event, iso, post, scrape

T0 = (datetime.now(UTC) - timedelta(days=30)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY = (T0 + timedelta(days=1)).date()
_ID = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"oracle-accuracy-{name}")) for name in (
    "A", "B", "C", "parent", "model", "p_late", "p_stale", "p_3x_high", "p_3x_low", "p_2x_low")}
PREDICTIONS = {"p_late": ("A", 1000.0), "p_stale": ("B", 1000.0), "p_3x_high": ("C", 900.0),
               "p_3x_low": ("C", 100.0), "p_2x_low": ("C", 150.0)}
#: prediction -> (relative-error accuracy, ratio accuracy), %
WANT = {"p_late": (100 * (1 - 200 / 800), 100 * 800 / 1000),
        "p_3x_high": (0.0, 100 * 300 / 900),
        "p_3x_low": (100 * (1 - 200 / 300), 100 * 100 / 300),
        "p_2x_low": (100 * (1 - 150 / 300), 100 * 150 / 300)}


def feed(ws: str) -> Feed:
    f = Feed()
    for name, metrics, parent in (("parent", {"latency_ms": 200, "auc": 0.80}, None),
                                  ("model", {"latency_ms": 100, "auc": 0.84}, "parent")):
        data = {"model_id": _ID[name], "name": "ranker", "version": "1" if parent is None else "2",
                "model_type": "prediction", "status": "active", "performance_metrics": metrics}
        if parent:
            data["parent_model_id"] = _ID[parent]
        f.learning.append(event(ws, "model_registered", T0 - timedelta(days=1), data))
    for name, (target, score) in PREDICTIONS.items():
        f.learning.append(event(ws, "model_prediction", T0, {
            "prediction_id": _ID[name], "model_id": _ID["model"], "prediction_type": "views",
            "target_entity_type": "content", "target_entity_id": _ID[target], "predicted_score": score,
            "horizon_hours": 24}))
    for p in "ABC":
        f.content.append(post(ws, _ID[p], T0 - timedelta(hours=1)))
    f.engagement += [
        scrape(ws, _ID["A"], T0 + timedelta(hours=25), views=800),
        scrape(ws, _ID["B"], T0 + timedelta(days=20), views=50_000),
        scrape(ws, _ID["C"], T0 + timedelta(hours=23), views=250),
        scrape(ws, _ID["C"], T0 + timedelta(hours=24), views=300),
        scrape(ws, _ID["C"], T0 + timedelta(hours=26), views=400),
    ]
    f.learning.append(event(ws, "improvement_measured", T0, {
        "improvement_type": "latency", "metric": "latency_ms",
        "before_metrics": {"latency_ms": 200}, "after_metrics": {"latency_ms": 100}}))
    f.wait = {"content": 3, "content_performance_metrics": 5, "ml_models": 2, "predictions": 5,
              "ai_improvement_tracking": 1}
    return f


async def check(conn, ws: str, run) -> None:
    w = uuid.UUID(ws)
    r = await run("prediction_accuracy")
    assert r.status == "succeeded", r.error
    acc = {str(a["prediction_id"]): a for a in await conn.fetch(
        "SELECT * FROM prediction_accuracy WHERE workspace_id = $1", w)}
    names = {v: k for k, v in _ID.items()}
    got = {names[pid]: (a["accuracy_percentage"], a["ratio_accuracy"]) for pid, a in acc.items()}
    assert got.keys() == WANT.keys(), got  # p_stale is not judged (it was, at 2 %)
    for name, (rel, ratio) in WANT.items():
        assert got[name] == (pytest.approx(rel), pytest.approx(ratio)), name
    assert acc[_ID["p_late"]]["measured_at"] == T0 + timedelta(hours=25)
    assert {acc[_ID[n]]["actual_score"] for n in ("p_3x_high", "p_3x_low", "p_2x_low")} == {300.0}
    stale = await conn.fetchrow("SELECT * FROM predictions WHERE workspace_id = $1 AND id = $2", w,
                                uuid.UUID(_ID["p_stale"]))
    assert (stale["status"], stale["actual_score"], stale["accuracy_score"]) == ("expired", None, None)
    assert stale["actual_outcome"] == {"reason": "stale_outcome", "metric": "views",
                                       "due_at": iso(T0 + timedelta(hours=24)),
                                       "deadline": iso(T0 + timedelta(hours=30)),
                                       "first_snapshot_at": iso(T0 + timedelta(days=20))}

    d = await run("model_accuracy_daily", period=parse_period(DAY.isoformat()))
    assert d.status == "succeeded", d.error
    daily = await conn.fetch("SELECT * FROM model_accuracy_daily WHERE workspace_id = $1", w)
    assert len(daily) == 1 and daily[0]["day"] == DAY and daily[0]["prediction_type"] == "views"
    row = daily[0]
    assert (row["predictions"], row["ratio_predictions"]) == (4, 4)
    assert row["mean_accuracy"] == pytest.approx((75 + 0 + 100 / 3 + 50) / 4)  # 39.583
    assert row["mean_ratio_accuracy"] == pytest.approx((80 + 100 / 3 + 100 / 3 + 50) / 4)  # 49.167
    assert row["mean_absolute_error"] == pytest.approx((200 + 600 + 200 + 150) / 4)  # 287.5
    assert row["mean_percentage_error"] == pytest.approx((25 + 200 + 200 / 3 + 50) / 4)  # 85.417

    m = await run("model_improvements")
    assert m.status == "succeeded", m.error
    imp = {(i["improvement_type"], i["metric"]): i["improvement_percentage"] for i in await conn.fetch(
        "SELECT * FROM ai_improvement_tracking WHERE workspace_id = $1", w)}
    assert imp == {("model_evaluation", "latency_ms"): pytest.approx(-100 * (100 - 200) / 200),  # +50
                   ("model_evaluation", "auc"): pytest.approx(100 * (0.84 - 0.80) / 0.80),     # +5
                   ("latency", "latency_ms"): pytest.approx(50.0)}                             # was -50
    dash = {x["improvement_type"]: x["daily_improvement"] for x in await conn.fetch(
        "SELECT * FROM ai_performance_dashboard WHERE workspace_id = $1", w)}
    assert dash["latency"] == pytest.approx(50.0)
