"""The ingest tables: one place per table for its columns, time column, partition period and the
mapping from a validated event to a row. SQL text is built here only from these constants,
never from event data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

import orjson

from db.domain import accounts, content
from db.domain.routing import LEARNING_COLUMNS, RouteReport, route_learning_events


@dataclass(frozen=True)
class TableSpec:
    name: str
    time_column: str
    period: Literal["day", "month"]
    columns: tuple[str, ...]
    row: Callable[[Any], tuple]
    #: run in the transaction that stores rows, with the rows new in the table (db.writer): the
    #: learning events' routing into the domain tables
    route: Callable[[Any, list[tuple]], Awaitable[RouteReport]] | None = None

    @property
    def time_index(self) -> int:
        """Position of the time column in a row."""
        return self.columns.index(self.time_column)

    @property
    def workspace_index(self) -> int:
        """Position of workspace_id in a row. A row's key is (time, id, workspace_id) (migration 0025):
        an event id repeated in another workspace is that workspace's event, not a duplicate."""
        return self.columns.index("workspace_id")

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
            # in key order: two batches holding some of the same keys (a producer's repeat, a
            # redelivery) take the unique index's locks in the same order, so one waits for the
            # other instead of both deadlocking
            f'ORDER BY "{self.time_column}", id, workspace_id ON CONFLICT DO NOTHING'
        )


@dataclass(frozen=True)
class UpsertSpec:
    """A topic whose events are applied to entity tables by statements (db/domain/), not copied
    into a log: rows are (id, time, record); each statement takes the JSON array of the records.
    The statements are idempotent (a redelivered record changes nothing) and order-independent
    (a newer observation wins whenever it arrives). `counted`: the statements whose row counts
    add up to the rows written."""

    name: str
    time_column: str
    statements: tuple[str, ...]
    row: Callable[[Any], tuple]
    counted: tuple[int, ...] = (0,)
    columns: tuple[str, ...] = ("id", "time", "record")
    time_index: int = 1

    async def apply(self, conn: Any, rows: list[tuple]) -> int:
        payload = orjson.dumps([r[2] for r in rows])
        written = 0
        for i, sql in enumerate(self.statements):
            status = await conn.execute(sql, payload)
            if i in self.counted:
                written += int(status.rsplit(" ", 1)[1])
        return written


def _row_of(*fields: str) -> Callable[[Any], tuple]:
    """event -> row tuple in column order, by a C-level attrgetter. Enum fields already hold
    their values (use_enum_values) and the jsonb codec (db.pool) serialises dict fields, so the
    row needs no per-field Python work."""
    return attrgetter(*fields)


LEARNING_EVENTS = TableSpec(
    name="learning_events",
    time_column="timestamp",
    period="month",
    columns=LEARNING_COLUMNS,
    row=_row_of(
        "event_id", "workspace_id", "event_type", "event_subtype", "timestamp", "source_system",
        "entity_type", "entity_id", "event_data", "user_id", "session_id", "processing_time_ms",
        "metadata",
    ),
    route=route_learning_events,
)

SYSTEM_PERFORMANCE_METRICS = TableSpec(
    name="system_performance_metrics",
    time_column="timestamp",
    period="day",
    columns=(
        "id", "workspace_id", "metric_name", "metric_category", "timestamp", "value", "unit",
        "tags", "source_component", "aggregation_level",
    ),
    row=_row_of(
        "sample_id", "workspace_id", "metric_name", "metric_category", "timestamp", "value", "unit",
        "tags", "source_component", "aggregation_level",
    ),
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
    row=_row_of(
        "update_id", "workspace_id", "content_id", "platform", "connector_id", "views", "likes",
        "shares", "comments", "saves", "peak_engagement_time", "average_watch_time",
        "audience_demographics", "platform_metrics", "recorded_at",
    ),
)

#: topic kind (schemas.events.CONTRACTS key) -> its time-partitioned log table
TABLES: dict[str, TableSpec] = {
    "learning_event": LEARNING_EVENTS,
    "performance_sample": SYSTEM_PERFORMANCE_METRICS,
    "engagement_update": CONTENT_PERFORMANCE_METRICS,
}


def _record(time_field: str, id_field: str) -> Callable[[Any], tuple]:
    get_id, get_time = attrgetter(id_field), attrgetter(time_field)
    return lambda e: (get_id(e), get_time(e), e.model_dump())


CONTENT_ITEMS = UpsertSpec(
    name="content", time_column="observed_at", statements=content.CONTENT_ITEM, counted=content.COUNTED,
    row=_record("observed_at", "event_id"),
)
ACCOUNT_SNAPSHOTS = UpsertSpec(
    name="account_snapshots", time_column="recorded_at", statements=accounts.ACCOUNT_SNAPSHOT,
    counted=accounts.COUNTED, row=_record("recorded_at", "snapshot_id"),
)

#: every topic kind -> how its events are stored
SINKS: dict[str, TableSpec | UpsertSpec] = {
    **TABLES,
    "content_item": CONTENT_ITEMS,
    "account_snapshot": ACCOUNT_SNAPSHOTS,
}
