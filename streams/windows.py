"""Event-time windows and their aggregates (issue #4). Pure: no Faust, no I/O; the worker keeps
the open windows' aggregates in a changelog-backed table (to_bytes/from_bytes) and feeds closed
windows to the rollup tables and the alert engine.

Semantics (per Windower, i.e. per stream partition):
* a window is [start, start + size); tumbling windows step by their size, hopping ones by `step`;
  starts are aligned to the epoch.
* the watermark is the largest event time seen. A window is *closed* once
  start + size + grace <= horizon, where the horizon is the watermark, moved on by wall-clock time
  while the partition is idle for longer than `idle_s` (so a quiet key still gets its final
  result, and a replay of old data is still windowed by event time).
* an event is added to each of its windows that is not closed; the windows it missed are
  returned, so the caller can send it to the late-events topic and count it. A late event is never
  folded into a closed window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import orjson
from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchPb
from ddsketch.pb.proto import DDSketchProto

#: relative accuracy of the quantile sketches (a returned quantile is within 1% of the true one)
SKETCH_ACCURACY = 0.01


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


A = TypeVar("A", bound=Aggregate)


@dataclass
class Closed(Generic[A]):
    key: Hashable
    start: float
    end: float
    aggregate: A


class Windower(Generic[A]):
    def __init__(self, spec: WindowSpec, new_aggregate: Callable[[], A], idle_s: float = 10.0) -> None:
        self.spec = spec
        self._new = new_aggregate
        self.idle_s = idle_s
        self.open: dict[tuple[Hashable, float], A] = {}
        self.watermark = -math.inf
        self._advanced_at_wall: float | None = None  # wall time of the last watermark advance
        self._horizon = -math.inf

    def horizon(self, wall_now: float | None = None) -> float:
        h = max(self._horizon, self.watermark)
        if wall_now is not None and self._advanced_at_wall is not None:
            idle = wall_now - self._advanced_at_wall - self.idle_s
            if idle > 0:
                h = max(h, self.watermark + idle)
        return h

    def add(self, key: Hashable, t: float, value, wall_now: float | None = None) -> list[float]:
        """Add an event; return the starts of the windows it was too late for."""
        if t > self.watermark:
            self.watermark = t
            self._advanced_at_wall = wall_now
        horizon = self.horizon(wall_now)
        missed = []
        for s in self.spec.starts(t):
            if self.spec.closes_at(s) <= horizon:
                missed.append(s)
                continue
            agg = self.open.get((key, s))
            if agg is None:
                agg = self.open[(key, s)] = self._new()
            agg.add(value)
        return missed

    def flush(self) -> list[Closed[A]]:
        """Close every open window now (a drain; the oracle tests use it)."""
        self._horizon = math.inf
        return self.close_due()

    def close_due(self, wall_now: float | None = None) -> list[Closed[A]]:
        """Remove and return the windows that are closed now, in (end, key) order."""
        self._horizon = horizon = self.horizon(wall_now)
        size = self.spec.size_s
        due = [(k, s) for (k, s) in self.open if self.spec.closes_at(s) <= horizon]
        due.sort(key=lambda ks: (ks[1], str(ks[0])))
        return [Closed(k, s, s + size, self.open.pop((k, s))) for k, s in due]


# -- aggregates ------------------------------------------------------------------------------


@dataclass
class MetricAggregate:
    """count, sum, min, max (exact) and quantiles from a DDSketch; mergeable and serialisable."""

    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    sketch: DDSketch = field(default_factory=lambda: DDSketch(relative_accuracy=SKETCH_ACCURACY))

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.sketch.add(value)

    def merge(self, other: MetricAggregate) -> None:
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.sketch.merge(other.sketch)

    def quantile(self, q: float) -> float | None:
        return self.sketch.get_quantile_value(q) if self.count else None

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
                   sketch=DDSketchProto.from_proto(pb))


@dataclass
class LearningAggregate:
    """Learning events per window: count, errors (event_subtype 'error' or an `error` in
    event_data), and processing_time_ms quantiles."""

    count: int = 0
    errors: int = 0
    processing_ms: MetricAggregate = field(default_factory=MetricAggregate)

    def add(self, event) -> None:
        self.count += 1
        data = event.event_data if hasattr(event, "event_data") else event.get("event_data", {})
        subtype = event.event_subtype if hasattr(event, "event_subtype") else event.get("event_subtype")
        if subtype == "error" or (isinstance(data, dict) and data.get("error")):
            self.errors += 1
        ms = event.processing_time_ms if hasattr(event, "processing_time_ms") else event.get("processing_time_ms")
        if ms is not None:
            self.processing_ms.add(float(ms))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None


COUNTERS = ("views", "likes", "shares", "comments", "saves")


@dataclass(frozen=True)
class EngagementDelta:
    deltas: dict[str, int]
    #: counters that went down (a reset or a bad scrape): flagged, contributing 0, never subtracted
    resets: tuple[str, ...]
    minutes: float | None
    velocity_per_min: float | None  # views gained per minute since the previous update
    engagement_rate: float | None  # (likes + comments + shares + saves) / views, cumulative


def engagement_delta(prev: dict | None, cur: dict, minutes: float | None) -> EngagementDelta:
    """Deltas between two cumulative snapshots of a post's counters."""
    deltas, resets = {}, []
    for c in COUNTERS:
        before = (prev or {}).get(c)
        now = cur.get(c, 0)
        if before is None:
            deltas[c] = 0
        elif now < before:
            deltas[c] = 0
            resets.append(c)
        else:
            deltas[c] = now - before
    views = cur.get("views", 0)
    rate = (sum(cur.get(c, 0) for c in ("likes", "comments", "shares", "saves")) / views) if views else None
    velocity = deltas["views"] / minutes if prev is not None and minutes and minutes > 0 else None
    return EngagementDelta(deltas, tuple(resets), minutes, velocity, rate)
