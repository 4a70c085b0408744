"""Event-time windows and their aggregates (issue #4). Pure: no Faust, no I/O; the worker keeps
the open windows' aggregates in a changelog-backed table (to_bytes/from_bytes) and feeds closed
windows to the rollup tables and the alert engine.

Semantics (per Windower, i.e. per stream partition):
* a window is [start, start + size); tumbling windows step by their size, hopping ones by `step`;
  starts are aligned to the epoch.
* the watermark is the largest event time seen. A window is *closed* once
  start + size + grace <= horizon, where the horizon is the watermark, moved on by wall-clock time
  while no event at all has arrived for longer than `idle_s` (so a quiet key still gets its final
  result, while a replay of old data, or a burst of events that do not move the watermark, is
  still windowed by event time).
* an event is added to each of its windows that is not closed; the windows it missed are
  returned, so the caller can send it to the late-events topic and count it. A late event is never
  folded into a closed window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import orjson
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchPb
from ddsketch.pb.ddsketch_pb2 import IndexMapping
from ddsketch.pb.proto import DDSketchProto
from ddsketch.store import DenseStore

#: relative accuracy of the quantile sketches (a returned quantile is within 1% of the true one,
#: for values of magnitude within [SKETCH_MIN_MAGNITUDE, SKETCH_MAX_MAGNITUDE])
SKETCH_ACCURACY = 0.01
#: values of smaller magnitude are counted as 0 by the sketches (DDSketch's own floor is ~2e-308)
SKETCH_MIN_MAGNITUDE = 1e-9
#: values of larger magnitude are counted in the sketches' outermost bucket, as if they were ±1e12:
#: with the floor above, each of a sketch's two stores (positive and negative values) holds at most
#: 2,419 buckets, so a pane's record is bounded whatever values arrive (issue #23: four samples,
#: ±1e300 and ±1e-300, made a 2.2 MB record, one bucket per 2% step between the extremes)
SKETCH_MAX_MAGNITUDE = 1e12


@dataclass(frozen=True)
class WindowSpec:
    size_s: float
    step_s: float | None = None  # None: tumbling
    grace_s: float = 0.0

    def __post_init__(self) -> None:
        if self.size_s <= 0 or (self.step_s is not None and not 0 < self.step_s <= self.size_s) or self.grace_s < 0:
            raise ValueError(f"bad window spec {self}")

    @property
    def step(self) -> float:
        return self.step_s or self.size_s

    def starts(self, t: float) -> list[float]:
        """Starts of the windows that contain time t, oldest first."""
        step = self.step
        s = math.floor(t / step) * step
        out = []
        while s > t - self.size_s:
            out.append(s)
            s -= step
        return out[::-1]

    def closes_at(self, start: float) -> float:
        return start + self.size_s + self.grace_s


class Aggregate(Protocol):
    def add(self, value) -> None: ...

    def merge(self, other) -> None: ...


A = TypeVar("A", bound=Aggregate)


@dataclass
class Closed(Generic[A]):
    key: Hashable
    spec: WindowSpec
    start: float
    end: float
    aggregate: A
    #: horizon at which the window closed (event-time seconds)
    closed_at: float = 0.0


def _ms(x: float) -> int:
    return round(x * 1000)


class Windower(Generic[A]):
    """Windows of one or more specs over keyed values, kept as *panes*: each value is added once,
    to the pane (of gcd(sizes, steps) seconds) that holds its time; a window's aggregate is the
    merge of its panes when it closes. A 5 min / 1 min hopping window thus costs one add per
    value, not five. A pane is dropped once every window containing it has closed.

    Windows are materialised the moment the horizon passes their close time (in `add` too), so
    an event that is late for one window but not for another (hopping) lands in the shared pane
    only after the closed window has been computed: late events never reach a closed window.
    """

    def __init__(
        self, specs: WindowSpec | Sequence[WindowSpec], new_aggregate: Callable[[], A], idle_s: float = 10.0
    ) -> None:
        self.specs: tuple[WindowSpec, ...] = (specs,) if isinstance(specs, WindowSpec) else tuple(specs)
        if not self.specs:
            raise ValueError("no window specs")
        self._new = new_aggregate
        self.idle_s = idle_s
        pane_ms = 0
        for s in self.specs:
            pane_ms = math.gcd(pane_ms, _ms(s.size_s), _ms(s.step))
        self.pane_s = pane_ms / 1000
        #: key -> pane start -> aggregate
        self.panes: dict[Hashable, dict[float, A]] = {}
        self.watermark = -math.inf
        #: windows closing at or before this have been materialised
        self.closed_horizon = -math.inf
        self._last_event_wall: float | None = None
        self._ready: list[Closed[A]] = []
        self._first_close: dict[float, float] = {}
        self._next_close = -math.inf  # unknown until the first materialisation
        #: (key, pane start) of the panes dropped since the caller last emptied this list
        self.dropped: list[tuple[Hashable, float]] = []

    # -- time --------------------------------------------------------------------------------
    def pane_of(self, t: float) -> float:
        return math.floor(t / self.pane_s) * self.pane_s

    def horizon(self, wall_now: float | None = None) -> float:
        h = max(self.closed_horizon, self.watermark)
        if wall_now is not None and self._last_event_wall is not None:
            idle = wall_now - self._last_event_wall - self.idle_s
            if idle > 0:
                h = max(h, self.watermark + idle)
        return h

    def restore(self, watermark: float, closed_horizon: float, wall_now: float | None) -> None:
        """Set the clock from persisted state (after a restart or rebalance)."""
        self.watermark, self.closed_horizon = watermark, closed_horizon
        self._last_event_wall = wall_now
        self._next_close = -math.inf

    def _last_close(self, pane: float) -> float:
        """When the last window containing `pane` closes."""
        return max(s.closes_at(s.starts(pane)[-1]) for s in self.specs)

    # -- input -------------------------------------------------------------------------------
    def add(self, key: Hashable, t: float, value, wall_now: float | None = None) -> list[tuple[WindowSpec, float]]:
        """Add one value (its time moves the watermark first); return the (spec, start) of the
        windows it was too late for."""
        self.advance(t, wall_now)
        return self.add_many(key, self.pane_of(t), [value])

    def add_many(self, key: Hashable, ps: float, values: list) -> list[tuple[WindowSpec, float]]:
        """Add values whose times fall in the pane starting at `ps`, judged against the horizon as
        it is (call `advance` after a batch): returns the (spec, start) of the pane's windows that
        are closed already; the values land in the others, if any."""
        horizon = self.horizon()
        first = self._first_close.get(ps)
        if first is None:
            if len(self._first_close) > 4096:
                self._first_close.clear()
            first = self._first_close[ps] = min(s.closes_at(s.starts(ps)[0]) for s in self.specs)
        if first > horizon:  # every window of this pane is open: the common case
            missed: list[tuple[WindowSpec, float]] = []
        else:
            missed = [(spec, st) for spec in self.specs for st in spec.starts(ps) if spec.closes_at(st) <= horizon]
            if len(missed) == sum(len(spec.starts(ps)) for spec in self.specs):
                return missed  # every window of the pane is closed: nothing lands
        panes = self.panes.get(key)
        if panes is None:
            panes = self.panes[key] = {}
        agg = panes.get(ps)
        if agg is None:
            agg = panes[ps] = self._new()
        agg.add_many(values)
        return missed

    def advance(self, t: float, wall_now: float | None = None) -> None:
        """A batch's largest event time: move the watermark and materialise what closed."""
        if t > self.watermark:
            self.watermark = t
        if wall_now is not None:
            self._last_event_wall = wall_now
        horizon = self.horizon()  # the wall clock moves it only in close_due (the caller decides when)
        if horizon > self.closed_horizon:
            self._materialise(horizon)

    def set_pane(self, key: Hashable, pane_start: float, agg: A) -> None:
        self.panes.setdefault(key, {})[pane_start] = agg

    # -- output ------------------------------------------------------------------------------
    def _next_close_after(self, h: float) -> float:
        """The earliest close time of any window (of any key) later than `h`."""
        if math.isinf(h):
            return math.inf
        out = math.inf
        for spec in self.specs:
            step = spec.step
            s = (math.floor((h - spec.size_s - spec.grace_s) / step) + 1) * step
            while spec.closes_at(s) <= h:  # float edges
                s += step
            out = min(out, spec.closes_at(s))
        return out

    def _materialise(self, horizon: float) -> None:
        if horizon < self._next_close:  # no window boundary passed: nothing to scan (the common case)
            self.closed_horizon = horizon
            return
        lo, self.closed_horizon = self.closed_horizon, horizon
        self._next_close = self._next_close_after(horizon)
        due: list[Closed[A]] = []
        for key, panes in self.panes.items():
            for spec in self.specs:
                starts = {s for ps in panes for s in spec.starts(ps)}
                for s in starts:
                    c = spec.closes_at(s)
                    if lo < c <= horizon:
                        end = s + spec.size_s
                        agg = self._new()
                        for ps, pane_agg in panes.items():
                            if s <= ps < end:
                                agg.merge(pane_agg)
                        due.append(Closed(key, spec, s, end, agg, c))
        for key in list(self.panes):
            panes = self.panes[key]
            for ps in [ps for ps in panes if self._last_close(ps) <= horizon]:
                del panes[ps]
                self.dropped.append((key, ps))
            if not panes:
                del self.panes[key]
        due.sort(key=lambda c: (c.closed_at, c.end, c.spec.size_s, str(c.key)))
        self._ready.extend(due)

    def close_due(self, wall_now: float | None = None) -> list[Closed[A]]:
        """The windows closed since the last call, in close order."""
        horizon = self.horizon(wall_now)
        if horizon > self.closed_horizon:
            self._materialise(horizon)
        out, self._ready = self._ready, []
        return out

    def flush(self) -> list[Closed[A]]:
        """Close every open window now (a drain; the oracle tests use it)."""
        self._materialise(math.inf)
        return self.close_due()

    @property
    def open(self) -> dict[Hashable, dict[float, A]]:
        """The panes still held (empty once everything closed)."""
        return self.panes


# -- aggregates ------------------------------------------------------------------------------


class _BoundedMapping(LogarithmicMapping):
    """DDSketch's logarithmic mapping with its range cut to [SKETCH_MIN_MAGNITUDE, SKETCH_MAX_MAGNITUDE]:
    a smaller magnitude goes to the zero count (BaseDDSketch.add compares with `min_possible`), a
    larger one to the bucket of SKETCH_MAX_MAGNITUDE. Same gamma and offset as before, so the
    buckets in range, and their serialised form, are those of a plain DDSketch."""

    def __init__(self, relative_accuracy: float, offset: float = 0.0) -> None:
        super().__init__(relative_accuracy, offset)
        self.min_possible = SKETCH_MIN_MAGNITUDE
        self.min_key = LogarithmicMapping.key(self, SKETCH_MIN_MAGNITUDE)
        self.max_key = LogarithmicMapping.key(self, SKETCH_MAX_MAGNITUDE)

    def key(self, value: float) -> int:
        # LogarithmicMapping.key with its _log_gamma inlined (the same floats: the same keys)
        k = int(math.ceil(math.log(value, 2) * self._multiplier) + self._offset)
        return k if k < self.max_key else self.max_key


_MAPPING = _BoundedMapping(SKETCH_ACCURACY)
#: what a quantile in the outermost bucket reads (about SKETCH_MAX_MAGNITUDE)
_TOP_VALUE = _MAPPING.value(_MAPPING.max_key)


def new_sketch() -> BaseDDSketch:
    """An empty bounded sketch (the mapping is immutable: shared)."""
    return BaseDDSketch(mapping=_MAPPING, store=DenseStore(), negative_store=DenseStore(), zero_count=0.0)


def _store_bins(pb_store) -> list[tuple[int, float]]:
    """(key, count) of a serialised store, contiguous or sparse."""
    index = pb_store.contiguousBinIndexOffset
    out = [(index + i, c) for i, c in enumerate(pb_store.contiguousBinCounts)]
    out += list(pb_store.binCounts.items())
    return out


def sketch_from_proto(pb: DDSketchPb) -> BaseDDSketch:
    """A bounded sketch from a serialised one: what this code writes, and what the code before the
    bound wrote (a store of any range; its buckets out of range are folded into the zero count or
    the outermost bucket, as `add` would have). A sketch of another mapping (never written by
    learnstream) is re-added bucket by bucket at each bucket's value."""
    m = pb.mapping
    ours = (m.interpolation == IndexMapping.NONE and m.gamma == _MAPPING.gamma and m.indexOffset == _MAPPING._offset)
    sketch = new_sketch()
    lo, hi = _MAPPING.min_key, _MAPPING.max_key
    zero = pb.zeroCount
    if ours:
        for pb_store, store in ((pb.positiveValues, sketch._store), (pb.negativeValues, sketch._negative_store)):
            bins = _store_bins(pb_store)
            if all(lo <= key <= hi for key, count in bins if count):  # what this code writes
                for key, count in bins:  # zero counts too, as DDSketchProto reads them: the same buckets
                    if lo <= key <= hi:
                        store.add(key, count)
                continue
            for key, count in bins:  # written before the bound: clamped as `add` does
                if count and key < lo:  # a magnitude the bounded mapping counts as 0
                    zero += count
                elif count:
                    store.add(min(key, hi), count)
    else:
        other = DDSketchProto.from_proto(pb)._mapping
        for sign, pb_store in ((1.0, pb.positiveValues), (-1.0, pb.negativeValues)):
            for key, count in _store_bins(pb_store):
                if count > 0:
                    sketch.add(sign * other.value(key), count)
    sketch._zero_count += zero
    sketch._min, sketch._max, sketch._sum = math.inf, -math.inf, 0.0  # not serialised (MetricAggregate keeps them)
    sketch._count = sketch._store.count + sketch._negative_store.count + sketch._zero_count
    return sketch


@dataclass
class MetricAggregate:
    """count, sum, min, max (exact) and quantiles from a DDSketch of bounded size (new_sketch: see
    SKETCH_MAX_MAGNITUDE; a quantile is clamped to [min, max]); mergeable and serialisable."""

    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    sketch: BaseDDSketch = field(default_factory=new_sketch)

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.sketch.add(value)

    def add_many(self, values: list[float]) -> None:
        self.count += len(values)
        self.sum += sum(values)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))
        add = self.sketch.add
        for v in values:
            add(v)

    def merge(self, other: MetricAggregate) -> None:
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sketch.merge(other.sketch)

    def quantile(self, q: float) -> float | None:
        """The sketch's q-quantile, within SKETCH_ACCURACY for a value of magnitude within the
        sketch's range. One that falls among values beyond it (the zero count, the outermost
        bucket) is 0 or about ±SKETCH_MAX_MAGNITUDE, clamped to [min, max] (exact)."""
        if not self.count:
            return None
        v = self.sketch.get_quantile_value(q)
        if v == 0 or abs(v) >= _TOP_VALUE:
            v = min(max(v, self.min), self.max)
        return v

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count, "sum": self.sum, "min": self.min if self.count else None,
            "max": self.max if self.count else None, "mean": self.sum / self.count if self.count else None,
            "p50": self.quantile(0.5), "p95": self.quantile(0.95), "p99": self.quantile(0.99),
        }

    def to_bytes(self) -> bytes:
        sketch = DDSketchProto.to_proto(self.sketch).SerializeToString()
        return orjson.dumps({"count": self.count, "sum": self.sum, "min": self.min if self.count else None,
                             "max": self.max if self.count else None, "sketch": sketch.hex()})

    @classmethod
    def from_bytes(cls, data: bytes) -> MetricAggregate:
        d = orjson.loads(data)
        pb = DDSketchPb()
        pb.ParseFromString(bytes.fromhex(d["sketch"]))
        return cls(count=d["count"], sum=d["sum"],
                   min=d["min"] if d["min"] is not None else math.inf,
                   max=d["max"] if d["max"] is not None else -math.inf,
                   sketch=sketch_from_proto(pb))


def is_learning_error(event_subtype: str | None, event_data: dict | None) -> bool:
    """A learning event counts as an error when its subtype is 'error' or its data has an `error`."""
    return event_subtype == "error" or bool(isinstance(event_data, dict) and event_data.get("error"))


@dataclass
class LearningAggregate:
    """Learning events per window: count, errors and processing_time_ms quantiles. A value is
    (is_error, processing_time_ms or None)."""

    count: int = 0
    errors: int = 0
    processing_ms: MetricAggregate = field(default_factory=MetricAggregate)

    def add(self, value: tuple[bool, float | None]) -> None:
        is_error, ms = value
        self.count += 1
        if is_error:
            self.errors += 1
        if ms is not None:
            self.processing_ms.add(float(ms))

    def add_many(self, values: list[tuple[bool, float | None]]) -> None:
        self.count += len(values)
        self.errors += sum(1 for e, _ in values if e)
        ms = [float(m) for _, m in values if m is not None]
        if ms:
            self.processing_ms.add_many(ms)

    def merge(self, other: LearningAggregate) -> None:
        self.count += other.count
        self.errors += other.errors
        self.processing_ms.merge(other.processing_ms)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    def summary(self) -> dict[str, float | int | None]:
        p = self.processing_ms.summary()
        return {
            "count": self.count, "errors": self.errors, "error_rate": self.error_rate,
            **{f"processing_ms_{k}": p[k] for k in ("mean", "p50", "p95", "p99", "max")},
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps({"count": self.count, "errors": self.errors, "ms": self.processing_ms.to_bytes().decode()})

    @classmethod
    def from_bytes(cls, data: bytes) -> LearningAggregate:
        d = orjson.loads(data)
        return cls(d["count"], d["errors"], MetricAggregate.from_bytes(d["ms"].encode()))


COUNTERS = ("views", "likes", "shares", "comments", "saves")


@dataclass(frozen=True)
class EngagementDelta:
    deltas: dict[str, int]
    #: counters that went down (a reset or a bad scrape): flagged, contributing 0, never subtracted
    resets: tuple[str, ...]


def engagement_delta(prev: dict, cur: dict) -> EngagementDelta:
    """Gains between two cumulative snapshots of a post's counters (velocity and engagement rate
    are per window: EngagementAggregate.summary)."""
    deltas, resets = {}, []
    for c in COUNTERS:
        before = prev.get(c)
        now = cur.get(c, 0)
        if before is None:
            deltas[c] = 0
        elif now < before:
            deltas[c] = 0
            resets.append(c)
        else:
            deltas[c] = now - before
    return EngagementDelta(deltas, tuple(resets))


@dataclass
class EngagementAggregate:
    """Engagement of one post per window. A value is (t, cumulative counters, deltas, resets):
    the deltas are summed; the latest cumulative snapshot gives the engagement rate."""

    updates: int = 0
    deltas: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    resets: int = 0
    last_t: float = -math.inf
    last: dict[str, int] = field(default_factory=dict)

    def add(self, value: tuple[float, dict[str, int], dict[str, int], int]) -> None:
        t, cumulative, deltas, resets = value
        self.updates += 1
        for c in COUNTERS:
            self.deltas[c] += deltas.get(c, 0)
        self.resets += resets
        if t >= self.last_t:
            self.last_t, self.last = t, dict(cumulative)

    def add_many(self, values: list) -> None:
        for v in values:
            self.add(v)

    def merge(self, other: EngagementAggregate) -> None:
        self.add((other.last_t, other.last, other.deltas, other.resets))
        self.updates += other.updates - 1

    def summary(self, window_s: float) -> dict[str, float | int | None]:
        views = self.last.get("views", 0)
        interactions = sum(self.last.get(c, 0) for c in COUNTERS if c != "views")
        return {
            "updates": self.updates, "resets": self.resets,
            **{f"{c}_gained": n for c, n in self.deltas.items()},
            "velocity_per_min": self.deltas["views"] / (window_s / 60.0),
            "engagement_rate": interactions / views if views else None,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps({"u": self.updates, "d": self.deltas, "r": self.resets,
                             "t": self.last_t if self.updates else None, "l": self.last})

    @classmethod
    def from_bytes(cls, data: bytes) -> EngagementAggregate:
        d = orjson.loads(data)
        return cls(d["u"], d["d"], d["r"], d["t"] if d["t"] is not None else -math.inf, d["l"])
