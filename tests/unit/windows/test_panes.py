"""Window math and aggregates against brute-force oracles (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows.panes import (
    SKETCH_ACCURACY,
    EngagementAggregate,
    LearningAggregate,
    MetricAggregate,
    Windower,
    WindowSpec,
    engagement_delta,
    is_learning_error,
)


def test_window_starts():
    assert WindowSpec(60).starts(125) == [120]
    assert WindowSpec(60).starts(120) == [120]
    assert WindowSpec(300, 60).starts(125) == [-120, -60, 0, 60, 120]
    assert WindowSpec(300, 60).starts(300) == [60, 120, 180, 240, 300]
    with pytest.raises(ValueError):
        WindowSpec(60, 120)


def _exact_quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[math.floor(q * (len(s) - 1))]


events_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 1200), st.floats(0.5, 5000, allow_nan=False)),
    min_size=1, max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(
    events=events_strategy,
    size=st.sampled_from([60, 120]),
    hop=st.sampled_from([None, 30, 60]),
    grace=st.sampled_from([0, 15, 90]),
    close_every=st.integers(1, 20),
    with_tumbling=st.booleans(),
)
def test_windows_match_a_brute_force_oracle(events, size, hop, grace, close_every, with_tumbling):
    """One or two specs at once (hopping + tumbling share panes), closed at random moments."""
    if hop is not None and hop > size:
        hop = size
    specs = [WindowSpec(size, hop, grace)]
    if with_tumbling:
        specs.append(WindowSpec(30, None, grace))
    w = Windower(specs, MetricAggregate)
    closed = []
    late_for: dict[int, list] = {}
    for i, (key, t, v) in enumerate(events):
        late_for[i] = w.add(key, t, v)
        if i % close_every == 0:
            closed += w.close_due()
    closed += w.flush()
    assert w.open == {}

    # oracle: an event lands in window s iff s+size+grace > the largest event time up to it
    expected: dict[tuple, list[float]] = {}
    watermark = -math.inf
    for i, (key, t, v) in enumerate(events):
        watermark = max(watermark, t)
        missed = []
        for spec in specs:
            for s in spec.starts(t):
                if s + spec.size_s + spec.grace_s <= watermark:
                    missed.append((spec, s))
                else:
                    expected.setdefault((key, spec, s), []).append(v)
        assert late_for[i] == missed
    got = {(c.key, c.spec, c.start): c.aggregate for c in closed}
    assert set(got) == set(expected)
    for ks, values in expected.items():
        agg = got[ks]
        assert agg.count == len(values)
        assert agg.sum == pytest.approx(sum(values))
        assert (agg.min, agg.max) == (min(values), max(values))
        for q in (0.5, 0.95, 0.99):
            exact = _exact_quantile(values, q)
            assert abs(agg.quantile(q) - exact) <= SKETCH_ACCURACY * exact * 1.0001
    # closing order is by window end, each window once
    ends = [(c.key, c.spec, c.start) for c in closed]
    assert len(ends) == len(set(ends))  # each window closed once
    assert [c.closed_at for c in closed] == sorted(c.closed_at for c in closed)


def test_out_of_order_within_grace_lands_and_beyond_grace_is_late():
    w = Windower(WindowSpec(60, grace_s=30), MetricAggregate)
    assert w.add("k", 10, 1.0) == []
    assert w.add("k", 80, 2.0) == []  # watermark 80; window [0,60) closes at 90
    assert w.add("k", 50, 3.0) == []  # out of order, within grace
    assert w.add("k", 95, 4.0) == []  # watermark 95: [0,60) is now closed
    assert w.add("k", 55, 5.0) == [(w.specs[0], 0)]  # late: not folded in
    [first] = w.close_due()
    assert (first.start, first.aggregate.count, first.aggregate.sum) == (0, 2, 4.0)


def test_a_quiet_partition_closes_on_wall_clock():
    w = Windower(WindowSpec(60, grace_s=10), MetricAggregate, idle_s=5)
    w.add("k", 1000.0, 1.0, wall_now=5000.0)
    assert w.close_due(wall_now=5030.0) == []  # idle 30 s: horizon 1000 + 25 < 1030
    [closed] = w.close_due(wall_now=5100.0)  # horizon 1000 + 95 >= 960 + 70
    assert closed.start == 960
    # a replay of old data is windowed by event time, not closed by the wall clock
    r = Windower(WindowSpec(60), MetricAggregate, idle_s=5)
    for t in range(0, 600, 10):
        assert r.add("k", float(t), 1.0, wall_now=5000.0 + t / 100) == []


def test_metric_aggregate_serialises_and_merges():
    a, b = MetricAggregate(), MetricAggregate()
    for v in range(1, 101):
        (a if v % 2 else b).add(float(v))
    restored = MetricAggregate.from_bytes(a.to_bytes())
    assert (restored.count, restored.sum, restored.min, restored.max) == (a.count, a.sum, a.min, a.max)
    assert restored.quantile(0.5) == pytest.approx(a.quantile(0.5))
    restored.merge(b)
    s = restored.summary()
    assert (s["count"], s["sum"], s["min"], s["max"], s["mean"]) == (100, 5050.0, 1.0, 100.0, 50.5)
    assert abs(s["p95"] - 95) <= 95 * SKETCH_ACCURACY * 1.0001
    empty = MetricAggregate.from_bytes(MetricAggregate().to_bytes())
    assert empty.summary()["p50"] is None and empty.count == 0


def test_learning_aggregate_counts_errors_and_processing_time():
    agg = LearningAggregate()
    for i in range(10):
        error = is_learning_error("error" if i == 3 else "hook", {"error": "x"} if i == 7 else {})
        agg.add((error, i * 10))
    agg.add((False, None))
    assert (agg.count, agg.errors) == (11, 2)
    assert agg.processing_ms.max == 90 and agg.processing_ms.count == 10
    restored = LearningAggregate.from_bytes(agg.to_bytes())
    restored.merge(agg)
    s = restored.summary()
    assert (s["count"], s["errors"], s["error_rate"], s["processing_ms_max"]) == (22, 4, 4 / 22, 90)


def test_engagement_aggregate_sums_deltas_and_keeps_the_latest_snapshot():
    a, b = EngagementAggregate(), EngagementAggregate()
    a.add((10.0, {"views": 100, "likes": 10}, {"views": 40, "likes": 2}, 0))
    a.add((5.0, {"views": 60, "likes": 8}, {"views": 20}, 1))  # older: counted, not the latest
    b.add((20.0, {"views": 160, "likes": 14}, {"views": 60, "likes": 4}, 0))
    a = EngagementAggregate.from_bytes(a.to_bytes())
    a.merge(b)
    s = a.summary(120.0)
    assert (s["updates"], s["resets"], s["views_gained"], s["likes_gained"]) == (3, 1, 120, 6)
    assert s["velocity_per_min"] == 60.0 and s["engagement_rate"] == pytest.approx(14 / 160)


def test_engagement_deltas_are_never_negative():
    first = engagement_delta({}, {"views": 100, "likes": 10})
    assert first.deltas["views"] == 0 and first.resets == ()
    d = engagement_delta({"views": 100, "likes": 10, "saves": 5}, {"views": 160, "likes": 8, "saves": 5})
    assert d.deltas == {"views": 60, "likes": 0, "shares": 0, "comments": 0, "saves": 0}
    assert d.resets == ("likes",)


def test_a_batch_is_judged_against_the_horizon_before_it():
    """The window stage folds a message as one step of event time: an event late only because of
    a newer event in the same batch still lands."""
    w = Windower(WindowSpec(60, grace_s=0), MetricAggregate)
    w.advance(100.0)  # [60, 120) open, [0, 60) closed
    assert w.add_many("k", 60.0, [1.0, 2.0]) == []
    assert w.add_many("k", 0.0, [9.0]) == [(w.specs[0], 0.0)]  # beyond grace: not folded
    w.advance(130.0)  # now [60, 120) closes
    [closed] = w.close_due()
    assert (closed.start, closed.aggregate.count, closed.aggregate.sum) == (60.0, 2, 3.0)
