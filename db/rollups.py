"""Rollup tables (migration 0004): the one place for their SQL. A closed window is written once:
the key is (window_start, workspace, series, window size, step), so writing a window again (a
worker restarted between closing it and recording that) is a no-op, and engagement_by_time is
accumulated only from the engagement rows actually inserted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from db.tables import TableSpec
from schemas.rollups import Rollup

_WINDOW = (
    ("workspace_id", "uuid"), ("series_key", "text"),
)
_SPAN = (
    ("window_s", "float8"), ("step_s", "float8"), ("window_start", "timestamptz"), ("window_end", "timestamptz"),
)


@dataclass(frozen=True)
class RollupTable:
    name: str
    #: (column, SQL type) in insert order; values come from the rollup's fields, series and stats
    columns: tuple[tuple[str, str], ...]

    @property
    def spec(self) -> TableSpec:
        """For the partition manager: daily partitions on window_start."""
        return TableSpec(self.name, "window_start", "day", tuple(c for c, _ in self.columns), row=tuple)

    def row(self, r: Rollup) -> tuple:
        values = {
            "workspace_id": r.workspace_id, "series_key": r.series_key, "window_s": r.window_s,
            "step_s": r.step_s, "window_start": r.window_start, "window_end": r.window_end,
            **r.series, **r.stats,
        }
        return tuple(values.get(c) for c, _ in self.columns)

    def insert_sql(self) -> str:
        cols = ", ".join(c for c, _ in self.columns)
        arrays = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(self.columns, 1))
        return f"INSERT INTO {self.name} ({cols}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"


ROLLUP_TABLES: dict[str, RollupTable] = {
    "performance_sample": RollupTable(
        "performance_rollups",
        _WINDOW + (("metric_name", "text"), ("tags", "jsonb")) + _SPAN + (
            ("count", "int8"), ("sum", "float8"), ("min", "float8"), ("max", "float8"), ("mean", "float8"),
            ("p50", "float8"), ("p95", "float8"), ("p99", "float8"),
        ),
    ),
    "learning_event": RollupTable(
        "learning_rollups",
        _WINDOW + (("event_type", "text"), ("source_system", "text")) + _SPAN + (
            ("count", "int8"), ("errors", "int8"), ("error_rate", "float8"), ("processing_ms_mean", "float8"),
            ("processing_ms_p50", "float8"), ("processing_ms_p95", "float8"), ("processing_ms_p99", "float8"),
            ("processing_ms_max", "float8"),
        ),
    ),
    "engagement_update": RollupTable(
        "engagement_rollups",
        _WINDOW + (("content_id", "uuid"), ("platform", "text"), ("connector_id", "text")) + _SPAN + (
            ("updates", "int8"), ("views_gained", "int8"), ("likes_gained", "int8"), ("shares_gained", "int8"),
            ("comments_gained", "int8"), ("saves_gained", "int8"), ("resets", "int8"),
            ("velocity_per_min", "float8"), ("engagement_rate", "float8"),
        ),
    ),
}

#: engagement_by_time += the tumbling windows among the engagement rows just inserted
_ENGAGEMENT_BY_TIME = """
INSERT INTO engagement_by_time AS e (workspace_id, platform, connector_id, day_of_week, hour_of_day,
                                     windows, updates, minutes, views_gained, interactions_gained)
SELECT workspace_id, platform, coalesce(connector_id, ''),
       extract(dow FROM window_start AT TIME ZONE 'UTC')::smallint,
       extract(hour FROM window_start AT TIME ZONE 'UTC')::smallint,
       count(*), sum(updates), sum(window_s) / 60.0, sum(views_gained),
       sum(likes_gained + comments_gained + shares_gained + saves_gained)
FROM ins WHERE window_s = step_s
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (workspace_id, platform, connector_id, day_of_week, hour_of_day) DO UPDATE SET
    windows = e.windows + excluded.windows, updates = e.updates + excluded.updates,
    minutes = e.minutes + excluded.minutes, views_gained = e.views_gained + excluded.views_gained,
    interactions_gained = e.interactions_gained + excluded.interactions_gained, updated_at = now()
RETURNING 1
"""


async def write_rollups(conn: asyncpg.Connection, rollups: Iterable[Rollup]) -> int:
    """Insert closed windows (any kinds) in one transaction; returns rows inserted (repeats skipped)."""
    by_table: dict[str, list[tuple]] = {}
    for r in rollups:
        by_table.setdefault(r.kind, []).append(ROLLUP_TABLES[r.kind].row(r))
    inserted = 0
    async with conn.transaction():
        for kind, rows in by_table.items():
            table = ROLLUP_TABLES[kind]
            columns = [list(col) for col in zip(*rows)]
            if kind == "engagement_update":
                sql = (f"WITH ins AS ({table.insert_sql()} RETURNING *), acc AS ({_ENGAGEMENT_BY_TIME}) "
                       "SELECT count(*) FROM ins")
            else:
                sql = f"WITH ins AS ({table.insert_sql()} RETURNING 1) SELECT count(*) FROM ins"
            inserted += int(await conn.fetchval(sql, *columns))
    return inserted
