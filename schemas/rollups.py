"""Window contracts (issue #4). No I/O.

* Rollup: one closed window of one series, as published to the rollups topic (and stored in the
  <kind>_rollups tables). Identity: (kind, workspace_id, series_key, window_s, step_s,
  window_start); a consumer that sees the same identity twice (a worker restarted between
  closing a window and recording that) keeps one.
* LateEvent: an event that arrived after the grace period of one or more of its windows; it is
  stored in its ingest table like any event and is not folded into those closed windows live:
  the windows are recomputed from the stored rows instead, and published again as a Rollup with
  a higher `revision`. A
  late-events message value is a JSON array of LateEvent (the late events of one batch of one
  workspace).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Kind = Literal["learning_event", "performance_sample", "engagement_update"]


def series_key(series: dict[str, Any]) -> str:
    """The canonical JSON of a series' identity (sorted keys, compact): what windows are keyed by."""
    return orjson.dumps(series, option=orjson.OPT_SORT_KEYS).decode()


class Rollup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    workspace_id: UUID
    series_key: str = Field(description="canonical JSON of the series' identity")
    series: dict[str, Any] = Field(
        description="the series' identity: metric_name+tags | event_type+source_system | "
        "content_id+platform+connector_id"
    )
    window_s: float
    step_s: float = Field(description="equal to window_s for a tumbling window")
    window_start: AwareDatetime
    window_end: AwareDatetime
    closed_at: AwareDatetime = Field(description="wall-clock time the worker closed (or recomputed) the window")
    revision: int = Field(
        0, ge=0, description="0: as closed live, from the events folded in; 1, 2, ...: a correction, recomputed "
        "from the stored rows after late events reached the closed window (replaces earlier revisions)"
    )
    stats: dict[str, float | int | None] = Field(
        description="performance: count sum min max mean p50 p95 p99; learning: count errors error_rate "
        "processing_ms_{mean,p50,p95,p99,max}; engagement: updates resets {views,likes,shares,comments,"
        "saves}_gained velocity_per_min engagement_rate"
    )


class MissedWindow(BaseModel):
    window_s: float
    step_s: float
    window_start: AwareDatetime


class LateEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    workspace_id: UUID
    event_id: UUID
    event_time: AwareDatetime
    source_topic: str
    partition: int
    offset: int
    watermark: AwareDatetime = Field(description="the partition's event-time watermark when it arrived")
    missed: list[MissedWindow] = Field(description="the closed windows it was too late for")
    received_at: AwareDatetime
