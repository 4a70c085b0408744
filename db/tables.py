"""The ingest tables: one place per table for its columns, time column, partition period and the
mapping from a validated event to a row. SQL text is built here only from these constants,
never from event data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from schemas.events import EngagementUpdate, LearningEvent, PerformanceSample


def _json(value: Any) -> bytes | None:
    return None if value is None else orjson.dumps(value)


@dataclass(frozen=True)
class TableSpec:
    name: str
    time_column: str
    period: Literal["day", "month"]
    columns: tuple[str, ...]
    row: Callable[[Any], tuple]
    event_time: Callable[[Any], datetime]

    @property
    def staging(self) -> str:
        return f"_stage_{self.name}"

    def quoted_columns(self) -> str:
        return ", ".join(f'"{c}"' for c in self.columns)

    def create_staging_sql(self) -> str:
        # ON COMMIT DELETE ROWS: the staging rows vanish with each commit, so a connection's
        # staging table is always empty when a batch starts.
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.staging} "
            f"(LIKE {self.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )

    def insert_sql(self) -> str:
        cols = self.quoted_columns()
        return (
            f"INSERT INTO {self.name} ({cols}) SELECT {cols} FROM {self.staging} "
            "ON CONFLICT DO NOTHING"
        )


def _learning_row(e: LearningEvent) -> tuple:
    return (
        e.event_id,
        e.workspace_id,
        e.event_type.value,
        e.event_subtype,
        e.timestamp,
        e.source_system,
        e.entity_type,
        e.entity_id,
        orjson.dumps(e.event_data),
        e.user_id,
        e.session_id,
        e.processing_time_ms,
        _json(e.metadata),
    )


def _performance_row(s: PerformanceSample) -> tuple:
    return (
        s.sample_id,
        s.workspace_id,
        s.metric_name,
        s.metric_category,
        s.timestamp,
        s.value,
        s.unit,
        orjson.dumps(s.tags),
        s.source_component,
        s.aggregation_level.value,
    )


def _engagement_row(u: EngagementUpdate) -> tuple:
    return (
        u.update_id,
        u.workspace_id,
        u.content_id,
        u.platform,
        u.connector_id,
        u.views,
        u.likes,
        u.shares,
        u.comments,
        u.saves,
        u.peak_engagement_time,
        u.average_watch_time,
        _json(u.audience_demographics),
        _json(u.platform_metrics),
        u.recorded_at,
    )


LEARNING_EVENTS = TableSpec(
    name="learning_events",
    time_column="timestamp",
    period="month",
    columns=(
        "id", "workspace_id", "event_type", "event_subtype", "timestamp", "source_system",
        "entity_type", "entity_id", "event_data", "user_id", "session_id", "processing_time_ms",
        "metadata",
    ),
    row=_learning_row,
    event_time=lambda e: e.timestamp,
)

SYSTEM_PERFORMANCE_METRICS = TableSpec(
    name="system_performance_metrics",
    time_column="timestamp",
    period="day",
    columns=(
        "id", "workspace_id", "metric_name", "metric_category", "timestamp", "value", "unit",
        "tags", "source_component", "aggregation_level",
    ),
    row=_performance_row,
    event_time=lambda s: s.timestamp,
)

CONTENT_PERFORMANCE_METRICS = TableSpec(
    name="content_performance_metrics",
    time_column="recorded_at",
    period="month",
    columns=(
        "id", "workspace_id", "content_id", "platform", "connector_id", "views", "likes",
        "shares", "comments", "saves", "peak_engagement_time", "average_watch_time",
        "audience_demographics", "platform_metrics", "recorded_at",
    ),
    row=_engagement_row,
    event_time=lambda u: u.recorded_at,
)

#: topic kind (schemas.events.CONTRACTS key) -> table
TABLES: dict[str, TableSpec] = {
    "learning_event": LEARNING_EVENTS,
    "performance_sample": SYSTEM_PERFORMANCE_METRICS,
    "engagement_update": CONTENT_PERFORMANCE_METRICS,
}
