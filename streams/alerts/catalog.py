"""The metric names an alert rule may watch, derived from what the window stage produces: the stat
columns of each rollup table (db/rollups.py ROLLUP_TABLES) named the way the alert runtime names
a closed window's values (streams/alerts/runtime.py `observations`). Nothing here repeats a stat's
or a prefix's name: a stat added to a rollup table, or a prefix changed in the runtime, shows here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from db.rollups import ROLLUP_TABLES
from schemas.rollups import Rollup
from streams.alerts.runtime import observations

#: what stands for a performance sample's metric_name in the names listed
ANY_METRIC_NAME = "<metric_name>"


def stats(kind: str) -> tuple[str, ...]:
    """The statistics a closed window of `kind` carries: its rollup table's columns after the span."""
    columns = [c for c, _ in ROLLUP_TABLES[kind].columns]
    return tuple(columns[columns.index("window_end") + 1:])


def _series(kind: str, metric_name: str) -> dict:
    """A series of `kind` with a value in every identity column (the labels' names are its keys)."""
    columns = [c for c, _ in ROLLUP_TABLES[kind].columns]
    keys = columns[columns.index("series_key") + 1:columns.index("window_s")]
    if kind == "performance_sample":
        return {"metric_name": metric_name, "tags": {}}
    return {k: k for k in keys}


@dataclass(frozen=True)
class WatchedMetric:
    metric: str
    kind: str
    labels: tuple[str, ...]  # empty for performance samples: their labels are the samples' tags


def watchable(kind: str, metric_name: str = ANY_METRIC_NAME) -> list[WatchedMetric]:
    """The metrics a closed window of `kind` yields to the alert engine (for a performance sample,
    those of `metric_name`)."""
    t = datetime(2000, 1, 1, tzinfo=UTC)
    window = Rollup(kind=kind, workspace_id=uuid.UUID(int=0), series_key="", series=_series(kind, metric_name),
                    window_s=60, step_s=60, window_start=t, window_end=t, closed_at=t,
                    stats={s: 1.0 for s in stats(kind)})
    return [WatchedMetric(metric, kind, tuple(labels)) for metric, labels, _ in observations(window)]


def fixed_metrics() -> list[WatchedMetric]:
    """Every metric of the kinds whose names do not depend on the data (learning, engagement)."""
    return [m for kind in ROLLUP_TABLES if kind != "performance_sample" for m in watchable(kind)]


def check_metric(metric: str) -> str | None:
    """None when a closed window can yield `metric`; else why not. The learning and engagement
    prefixes are theirs: `learning.p95` is refused (a learning window has no p95), not taken for a
    performance sample named `learning`."""
    fixed = fixed_metrics()
    if metric in {m.metric for m in fixed}:
        return None
    prefixes = sorted({m.metric.split(".", 1)[0] for m in fixed})
    name, dot, stat = metric.rpartition(".")
    perf = stats("performance_sample")
    if dot and name and stat in perf and name not in prefixes:
        return None
    return (f"{metric!r} is not a metric the windows produce: use "
            + ", ".join(f"{p}.<stat>" for p in prefixes)
            + f" or <metric_name>.<stat> with a stat of {', '.join(perf)} (`learnstream alerts metrics` lists them)")
