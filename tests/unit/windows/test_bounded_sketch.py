"""A pane's quantile sketch has a bounded size whatever values arrive (issue #23, item 1), and every
changelog record of panes fits a message.

Four valid samples of one series in one window, 1e300, -1e300, 1e-300, -1e-300, used to make the
pane's DDSketch hold one bucket per 2% step between the extremes: a 2.2 MB changelog record, more
than a message may carry, and the worker crashed at its flush (and the next owner the same way).
"""

from __future__ import annotations

import math
import random
import struct

import orjson
import pytest
from ddsketch import DDSketch
from ddsketch.pb.proto import DDSketchProto

from schemas.rollups import series_key
from streams.sizing import MIN_BUDGET, OVERHEAD
from streams.windows.panes import (
    SKETCH_ACCURACY,
    SKETCH_MAX_MAGNITUDE,
    SKETCH_MIN_MAGNITUDE,
    MetricAggregate,
    WindowSpec,
)
from streams.windows.state import new_state, panes_key, panes_value, record_writes, restore

EXTREMES = [1e300, -1e300, 1e-300, -1e-300]
#: the largest a MetricAggregate encodes to (measured: 77,971 bytes with both stores full)
AGGREGATE_BOUND = 80_000
#: the budget of the smallest changelog message the worker runs with (sizing.MIN_BUDGET)
SMALLEST = MIN_BUDGET - OVERHEAD
SPECS = (WindowSpec(60.0), WindowSpec(300.0, 60.0))


def _aggregate(values: list[float]) -> MetricAggregate:
    a = MetricAggregate()
    a.add_many(values)
    return a


def _old_bytes(values: list[float]) -> bytes:
    """A MetricAggregate as the code before the bound wrote it (an unbounded DDSketch)."""
    sketch = DDSketch(relative_accuracy=SKETCH_ACCURACY)
    for v in values:
        sketch.add(v)
    return orjson.dumps({"count": len(values), "sum": sum(values), "min": min(values), "max": max(values),
                         "sketch": DDSketchProto.to_proto(sketch).SerializeToString().hex()})


def _check_quantiles(a: MetricAggregate, values: list[float]) -> None:
    """Each quantile as documented (docs/windows-and-alerts.md): within SKETCH_ACCURACY in range; 0
    (clamped to [min, max]) below it; about ±SKETCH_MAX_MAGNITUDE (clamped to [min, max]) above it."""
    ordered = sorted(values)
    for q in (0.0, 0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        got = a.quantile(q)
        if SKETCH_MIN_MAGNITUDE < abs(exact) <= SKETCH_MAX_MAGNITUDE:
            assert abs(got - exact) <= SKETCH_ACCURACY * abs(exact) * 1.0001, (q, exact, got)
            continue
        assert a.min <= got <= a.max
        if abs(exact) <= SKETCH_MIN_MAGNITUDE:
            assert abs(got) <= SKETCH_MIN_MAGNITUDE, (q, exact, got)
        else:
            assert math.copysign(1, got) == math.copysign(1, exact), (q, exact, got)
            assert abs(got) >= SKETCH_MAX_MAGNITUDE * (1 - SKETCH_ACCURACY), (q, exact, got)


def test_the_four_proven_samples_make_a_small_record_with_exact_count_min_max():
    normal = [float(v) for v in range(1, 101)]
    a = _aggregate(normal[:50] + EXTREMES + normal[50:])
    assert len(_old_bytes(EXTREMES)) > 2_000_000  # the bug: what the unbounded sketch wrote
    assert len(a.to_bytes()) <= AGGREGATE_BOUND  # 1 .. 1e12 (where 1e300 is counted): ~25 KB
    assert (a.count, a.min, a.max) == (104, -1e300, 1e300)
    _check_quantiles(a, normal + EXTREMES)
    assert abs(a.quantile(0.5) - 49.0) <= 0.01 * 49.0 * 1.0001  # the median of the normal values
    # only the extremes: beyond the sketch's range a quantile reads about ±SKETCH_MAX_MAGNITUDE, or 0
    b = _aggregate(EXTREMES)
    assert [b.quantile(q) for q in (0.0, 0.5, 1.0)] == pytest.approx([-1e12, 0.0, 1e12], rel=0.01)
    _check_quantiles(b, EXTREMES)
    # all beyond it on one side: clamped to the exact min and max
    c = _aggregate([1e300, 2e300])
    assert [c.quantile(q) for q in (0.0, 0.5, 1.0)] == [1e300, 1e300, 1e300]
    d = _aggregate([1e-300, 2e-300])
    assert [d.quantile(q) for q in (0.0, 0.5, 1.0)] == [1e-300, 1e-300, 1e-300]


def _extreme(rng: random.Random) -> float:
    kind = rng.randrange(8)
    if kind == 0:  # subnormal
        return struct.unpack("<d", struct.pack("<Q", rng.randrange(1, 1 << 52)))[0] * rng.choice((1, -1))
    if kind == 1:
        return rng.choice((0.0, -0.0, 5e-324, -5e-324, 1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308))
    if kind == 2:  # any finite double
        return rng.choice((1, -1)) * 10.0 ** rng.uniform(-323, 308)
    return rng.choice((1, -1)) * rng.lognormvariate(3, 2)  # normal values


@pytest.mark.parametrize("seed", range(40))
def test_fuzz_extreme_floats_stay_within_the_bound_and_quantiles_stay_as_documented(seed):
    rng = random.Random(seed)
    values = [_extreme(rng) for _ in range(rng.choice((4, 50, 2000)))]
    a = _aggregate(values)
    encoded = a.to_bytes()
    assert len(encoded) <= AGGREGATE_BOUND
    _check_quantiles(a, values)
    back = MetricAggregate.from_bytes(encoded)
    assert back.to_bytes() == encoded or len(back.to_bytes()) <= AGGREGATE_BOUND
    _check_quantiles(back, values)
    # merged from pieces (a window of several panes): the same bound
    m = MetricAggregate()
    for i in range(0, len(values), 7):
        m.merge(_aggregate(values[i:i + 7]))
    assert len(m.to_bytes()) <= AGGREGATE_BOUND
    assert (m.count, m.min, m.max) == (a.count, a.min, a.max)
    _check_quantiles(m, values)


def test_normal_values_with_extremes_keep_their_p50():
    rng = random.Random(5)
    normal = [rng.uniform(1, 500) for _ in range(1000)]
    values = normal + [_extreme(rng) for _ in range(40)] + [1e308, -1e308, 5e-324, -0.0]
    a = _aggregate(values)
    exact = sorted(values)[math.floor(0.5 * (len(values) - 1))]
    assert 1 <= exact <= 500
    assert abs(a.quantile(0.5) - exact) <= SKETCH_ACCURACY * exact * 1.0001


def test_both_stores_full_is_the_worst_case():
    # every bucket of both stores, and values beyond both ends
    values = []
    for e in range(-12 * 100, 13 * 100):
        v = 10.0 ** (e / 100)
        values += [v, -v]
    a = _aggregate(values + [1e308, -1e308, 5e-324, 0.0])
    size = len(a.to_bytes())
    assert 70_000 < size <= AGGREGATE_BOUND
    assert len(MetricAggregate.from_bytes(a.to_bytes()).to_bytes()) <= AGGREGATE_BOUND


def test_old_records_decode_into_a_bounded_sketch():
    # the crash's own record, as the code before the bound wrote it
    old = _old_bytes(EXTREMES)
    a = MetricAggregate.from_bytes(old)
    assert (a.count, a.min, a.max) == (4, -1e300, 1e300)
    assert len(a.to_bytes()) < 5_000
    assert a.to_bytes() == _aggregate(EXTREMES).to_bytes()
    a.add_many([1.0, 2.0, 3.0])  # and it goes on folding
    _check_quantiles(a, EXTREMES + [1.0, 2.0, 3.0])
    # a record of values in range reads back to the very bytes it was (the format is the same)
    normal = [0.5, 1.5, 2.0, 250.0, 1e-3, -7.0, 0.0]
    assert MetricAggregate.from_bytes(_old_bytes(normal)).to_bytes() == _old_bytes(normal)
    assert _aggregate(normal).to_bytes() == _old_bytes(normal)


def test_an_old_pane_record_restores_bounded():
    series = series_key({"metric_name": "lat", "tags": {"host": "a"}})
    old = {series: {"a": _old_bytes(EXTREMES).decode(), "u": {"src:0": 3}}}
    key = "0|g|performance_sample|ws|960.0"
    restored = restore([(key.encode(), orjson.dumps(old))], {0}, lambda: new_state(SPECS, 10.0), 2000.0, 0.0, 300.0)
    st = restored.states[0]
    value = panes_value(st, ("performance_sample", "ws", 960.0))
    assert len(orjson.dumps(value)) < 5_000
    agg = MetricAggregate.from_bytes(value[series]["a"].encode())
    assert (agg.count, agg.min, agg.max) == (4, -1e300, 1e300)


def _worst_series() -> str:
    """The longest series key a valid sample may have: 64 tags of 100 + 255 characters, each a
    control character (escaped to 6 bytes, 7 inside the record's JSON)."""
    tags = {("\x01" * 96 + f"{i:04d}"): "\x01" * 255 for i in range(64)}
    return series_key({"metric_name": "\x01" * 100, "tags": tags})


def test_a_worst_case_pane_fits_the_smallest_changelog_message():
    """By construction: the longest series key, both stores of its sketch full, and offsets of 64
    source partitions of a topic of the longest name Kafka allows, in one record of the smallest
    budget the worker runs with."""
    values = []
    for e in range(-12 * 100, 13 * 100):
        values += [10.0 ** (e / 100), -(10.0 ** (e / 100))]
    a = _aggregate(values)
    st = new_state(SPECS, 10.0)
    series = _worst_series()
    big = {series: {"a": a.to_bytes().decode(), "u": {f"{'t' * 249}:{p}": 2**62 for p in range(64)}}}
    key = panes_key(63, ("performance_sample", "00000000-0000-0000-0000-000000000001", 1.7e9))
    dropped: list[str] = []
    writes = record_writes(st, key, big, SMALLEST, dropped)
    assert [k for k, _ in writes] == [key] and not dropped
    assert len(writes[0][1]) + len(key) <= SMALLEST
    # many such series in one pane group: split over records, each within the budget
    many = {f"{series}{i}": v for i in range(5) for v in big.values()}
    writes = record_writes(st, key, many, SMALLEST, dropped)
    assert len(writes) == 5 and not dropped
    assert all(len(v) + len(k) <= SMALLEST for k, v in writes)


def test_an_entry_too_large_for_a_message_is_left_out_and_the_others_written():
    st = new_state(SPECS, 10.0)
    key = "0|g|performance_sample|ws|960.0"
    value = {"small": {"a": "x" * 100, "u": {}}, "huge": {"a": "x" * 5000, "u": {}}, "other": {"a": "y", "u": {}}}
    dropped: list[str] = []
    writes = record_writes(st, key, value, 1000, dropped)
    assert dropped == ["huge"]
    assert [k for k, _ in writes] == [key]
    assert set(orjson.loads(writes[0][1])) == {"small", "other"}
    # nothing that fits: nothing written (the record as last written stays; no tombstone)
    assert record_writes(st, key, {"huge": value["huge"]}, 1000, dropped) == []
    assert dropped == ["huge", "huge"]
