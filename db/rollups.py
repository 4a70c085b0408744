"""Rollup tables (migration 0004): the one place for their SQL. A closed window is written once:
the key is (window_start, workspace, series, window size, step), so writing a window again (a
worker restarted between closing it and recording that) is a no-op, and engagement_by_time is
accumulated only from the engagement rows actually inserted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from db.tables import TableSpec
from schemas.rollups import Rollup, series_key

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

#: engagement_by_time: cells accumulated (a GROUP BY of (workspace, platform, connector, UTC day, dow, hour))
def _saturated(expr: str) -> str:
    """`expr` (numeric) as a bigint, held at bigint's bounds: a cell never overflows, so a huge gain
    cannot dead-letter every later rollup of its cell (constant SQL, built at import)."""
    return f"least(greatest(({expr})::numeric, -9223372036854775808), 9223372036854775807)::bigint"


_ACCUMULATE = f"""
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (workspace_id, platform, connector_id, day, hour_of_day) DO UPDATE SET
    windows = {_saturated("e.windows::numeric + excluded.windows")},
    updates = {_saturated("e.updates::numeric + excluded.updates")},
    minutes = e.minutes + excluded.minutes,
    views_gained = {_saturated("e.views_gained::numeric + excluded.views_gained")},
    interactions_gained = {_saturated("e.interactions_gained::numeric + excluded.interactions_gained")},
    updated_at = now()
RETURNING 1
"""

#: engagement_by_time += the tumbling windows among the engagement rows just inserted
_ENGAGEMENT_BY_TIME = f"""
INSERT INTO engagement_by_time AS e (workspace_id, platform, connector_id, day, day_of_week, hour_of_day,
                                     windows, updates, minutes, views_gained, interactions_gained)
SELECT workspace_id, platform, coalesce(connector_id, ''),
       (window_start AT TIME ZONE 'UTC')::date,
       extract(dow FROM window_start AT TIME ZONE 'UTC')::smallint,
       extract(hour FROM window_start AT TIME ZONE 'UTC')::smallint,
       count(*), {_saturated("sum(updates)")}, sum(window_s) / 60.0, {_saturated("sum(views_gained)")},
       {_saturated("sum(likes_gained::numeric + comments_gained + shares_gained + saves_gained)")}
FROM ins WHERE window_s = step_s
""" + _ACCUMULATE


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


# -- corrections: closed windows recomputed from the stored rows (issue #8) ----------------------
#
# One query per kind computes every window (of the given specs) whose start lies in [$2, $3) and
# that is closed ($6: start + size + grace <= horizon), from the kind's ingest table; an event t
# lies in the windows starting at (floor(t / step) - k) * step, k = 0 .. ceil(size / step) - 1,
# that still contain it (start + size > t), as streams/windows/panes.py places them. count, sum, min,
# max and mean are exact; percentiles are exact too (percentile_cont: linear interpolation
# between the closest ranks), where the live windows give DDSketch's (within 1%).

_WINDOWS_OF = """
spec AS (SELECT * FROM unnest($4::float8[], $5::float8[]) AS s(size, step)),
win AS (
    SELECT s.size, s.step, w.start, e.*
    FROM ev e CROSS JOIN spec s
    CROSS JOIN LATERAL (
        SELECT to_timestamp((floor(extract(epoch FROM e.t)::float8 / s.step) - k) * s.step) AS start
        FROM generate_series(0, ceil(s.size / s.step)::int - 1) AS k
    ) w
    WHERE w.start >= $2::timestamptz AND w.start < $3::timestamptz AND w.start + make_interval(secs => s.size) > e.t
      AND w.start + make_interval(secs => s.size + $7::float8) <= $6::timestamptz
)"""

_RECOMPUTE = {
    "performance_sample": f"""
WITH ev AS (
    SELECT metric_name, tags, timestamp AS t, value FROM system_performance_metrics
    WHERE workspace_id = $1::uuid
      AND timestamp >= $2::timestamptz AND timestamp < $3::timestamptz + make_interval(secs => $8::float8)
), {_WINDOWS_OF}
SELECT metric_name, tags, size, step, start,
       count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max, avg(value) AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY value) AS p99
FROM win GROUP BY metric_name, tags, size, step, start""",
    # an error: subtype 'error', or an `error` in event_data that JSON would call true
    "learning_event": f"""
WITH ev AS (
    SELECT event_type, source_system, timestamp AS t, processing_time_ms AS ms,
           (event_subtype IS NOT DISTINCT FROM 'error' OR CASE jsonb_typeof(event_data -> 'error')
                WHEN 'boolean' THEN (event_data -> 'error')::boolean
                WHEN 'number' THEN (event_data -> 'error')::numeric <> 0
                WHEN 'string' THEN event_data ->> 'error' <> ''
                WHEN 'array' THEN jsonb_array_length(event_data -> 'error') > 0
                WHEN 'object' THEN event_data -> 'error' <> '{{}}'::jsonb
                ELSE false END) AS err
    FROM learning_events
    WHERE workspace_id = $1::uuid
      AND timestamp >= $2::timestamptz AND timestamp < $3::timestamptz + make_interval(secs => $8::float8)
), {_WINDOWS_OF}
SELECT event_type, source_system, size, step, start,
       count(*) AS count, count(*) FILTER (WHERE err) AS errors,
       (count(*) FILTER (WHERE err))::float8 / count(*) AS error_rate,
       avg(ms) AS processing_ms_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS processing_ms_p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS processing_ms_p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS processing_ms_p99,
       max(ms)::float8 AS processing_ms_max
FROM win GROUP BY event_type, source_system, size, step, start""",
    # gains against the post's high-water mark of each counter over the updates before it
    # (event-time order, looking back ENGAGEMENT_LOOKBACK like the live snapshots' TTL); a counter
    # below its mark is a reset: flagged, contributing 0
    "engagement_update": f"""
WITH hist AS (
    SELECT content_id, platform, connector_id, recorded_at AS t, id, views, likes, shares, comments, saves,
           max(views) OVER w AS hv, max(likes) OVER w AS hl, max(shares) OVER w AS hs,
           max(comments) OVER w AS hc, max(saves) OVER w AS hsv
    FROM content_performance_metrics
    WHERE workspace_id = $1::uuid AND recorded_at >= $2::timestamptz - make_interval(secs => $9::float8)
      AND recorded_at < $3::timestamptz + make_interval(secs => $8::float8)
    WINDOW w AS (PARTITION BY content_id, platform, connector_id ORDER BY recorded_at, id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), ev AS (
    SELECT content_id, platform, connector_id, t, id, views, likes + shares + comments + saves AS interactions,
           coalesce(greatest(views - hv, 0), 0) AS dv, coalesce(greatest(likes - hl, 0), 0) AS dl,
           coalesce(greatest(shares - hs, 0), 0) AS ds, coalesce(greatest(comments - hc, 0), 0) AS dc,
           coalesce(greatest(saves - hsv, 0), 0) AS dsv,
           (views < hv)::int + (likes < hl)::int + (shares < hs)::int + (comments < hc)::int
               + (saves < hsv)::int AS resets
    FROM hist WHERE t >= $2::timestamptz
), {_WINDOWS_OF}
SELECT content_id, platform, connector_id, size, step, start,
       count(*) AS updates, sum(dv) AS views_gained, sum(dl) AS likes_gained, sum(ds) AS shares_gained,
       sum(dc) AS comments_gained, sum(dsv) AS saves_gained, coalesce(sum(resets), 0) AS resets,
       sum(dv)::float8 / (size / 60.0) AS velocity_per_min,
       (array_agg(interactions ORDER BY t DESC, id DESC))[1]::float8
           / nullif((array_agg(views ORDER BY t DESC, id DESC))[1], 0) AS engagement_rate
FROM win GROUP BY content_id, platform, connector_id, size, step, start""",
}

#: engagement gains are taken against the updates of this far back (the live snapshots' TTL)
ENGAGEMENT_LOOKBACK_S = 7 * 86400.0

_SERIES = {
    "performance_sample": ("metric_name", "tags"),
    "learning_event": ("event_type", "source_system"),
    "engagement_update": ("content_id", "platform", "connector_id"),
}


async def recompute_windows(
    conn: asyncpg.Connection, kind: str, workspace_id, lo, hi, specs: Iterable[tuple[float, float]],
    grace_s: float, horizon, closed_at,
) -> list[Rollup]:
    """The closed windows of `kind` of one workspace starting in [lo, hi), recomputed from the
    stored rows (revision left at 0: `upsert_rollups` sets it)."""
    specs = list(specs)
    sizes, steps = [float(s) for s, _ in specs], [float(st) for _, st in specs]
    args = [workspace_id, lo, hi, sizes, steps, horizon, float(grace_s), max(sizes)]
    if kind == "engagement_update":
        args.append(ENGAGEMENT_LOOKBACK_S)
    rows = await conn.fetch(_RECOMPUTE[kind], *args)
    ws = workspace_id if isinstance(workspace_id, UUID) else UUID(str(workspace_id))
    table = ROLLUP_TABLES[kind]
    span = {"workspace_id", "series_key", "window_s", "step_s", "window_start", "window_end"}
    stat_cols = [c for c, _ in table.columns if c not in span and c not in _SERIES[kind]]
    out = []
    for r in rows:
        series = {c: (str(r[c]) if c == "content_id" else r[c]) for c in _SERIES[kind]}
        start = r["start"]
        # built from the database's own values: no validation needed (and it is the hot part)
        out.append(Rollup.model_construct(
            kind=kind, workspace_id=ws, series_key=series_key(series), series=series,
            window_s=r["size"], step_s=r["step"], window_start=start,
            window_end=start + timedelta(seconds=r["size"]), closed_at=closed_at,
            stats={c: (float(r[c]) if isinstance(r[c], Decimal) else r[c]) for c in stat_cols}, revision=0,
        ))
    return out


_KEY = ("window_start", "workspace_id", "series_key", "window_s", "step_s")


#: what decides that a recomputed window differs from the stored one: the exact statistics (the
#: sum within float rounding). Percentiles alone do not: the live ones are sketches, and every
#: recomputed window would differ in them, though no late event reached it.
_EXACT = {
    "performance_rollups": ("count", "min", "max"),
    "learning_rollups": ("count", "errors", "processing_ms_max"),
    "engagement_rollups": ("updates", "views_gained", "likes_gained", "shares_gained", "comments_gained",
                           "saves_gained", "resets"),
}


def _upsert_sql(table: RollupTable) -> str:
    cols = [c for c, _ in table.columns]
    stats = [c for c in cols if c not in _KEY and c != "window_end"]
    arrays = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(table.columns, 1))
    key = ", ".join(_KEY)
    exact = _EXACT[table.name]
    differs = [f"({', '.join(f'{table.name}.{c}' for c in exact)}) IS DISTINCT FROM "
               f"({', '.join(f'excluded.{c}' for c in exact)})"]
    if "sum" in cols:
        differs.append(f"abs({table.name}.sum - excluded.sum) > 1e-9 * greatest(abs(excluded.sum), 1)")
    sets = ", ".join(f"{c} = excluded.{c}" for c in stats)
    return f"""
new AS (SELECT * FROM unnest({arrays}) AS n({", ".join(cols)})),
old AS (SELECT o.* FROM {table.name} o JOIN new n USING ({key})),
up AS (
    INSERT INTO {table.name} ({", ".join(cols)}, revision, closed_at)
    SELECT *, 1, clock_timestamp() FROM new
    ON CONFLICT ({key}) DO UPDATE SET {sets}, revision = {table.name}.revision + 1, closed_at = clock_timestamp()
    WHERE {" OR ".join(differs)}
    RETURNING {key}, revision, closed_at
)"""


#: engagement_by_time += (recomputed - before) of the tumbling engagement windows just changed
_ENGAGEMENT_BY_TIME_DIFF = f"""
INSERT INTO engagement_by_time AS e (workspace_id, platform, connector_id, day, day_of_week, hour_of_day,
                                     windows, updates, minutes, views_gained, interactions_gained)
SELECT n.workspace_id, n.platform, coalesce(n.connector_id, ''),
       (n.window_start AT TIME ZONE 'UTC')::date,
       extract(dow FROM n.window_start AT TIME ZONE 'UTC')::smallint,
       extract(hour FROM n.window_start AT TIME ZONE 'UTC')::smallint,
       count(*) FILTER (WHERE o.workspace_id IS NULL),
       {_saturated("sum(n.updates::numeric - coalesce(o.updates, 0))")},
       coalesce(sum(n.window_s) FILTER (WHERE o.workspace_id IS NULL), 0) / 60.0,
       {_saturated("sum(n.views_gained::numeric - coalesce(o.views_gained, 0))")},
       {_saturated("sum(n.likes_gained::numeric + n.comments_gained + n.shares_gained + n.saves_gained "
                   "- coalesce(o.likes_gained::numeric + o.comments_gained + o.shares_gained + o.saves_gained, 0))")}
FROM up u JOIN new n USING (window_start, workspace_id, series_key, window_s, step_s)
LEFT JOIN old o USING (window_start, workspace_id, series_key, window_s, step_s)
WHERE n.window_s = n.step_s
""" + _ACCUMULATE


async def upsert_rollups(conn: asyncpg.Connection, rollups: list[Rollup]) -> list[Rollup]:
    """Write recomputed windows (one kind) in one transaction: new ones inserted, stored ones
    replaced where their exact statistics differ (_EXACT), with revision + 1. Returns the ones that changed, with their
    revision (unchanged windows are not written again, so a recompute repeated is a no-op)."""
    if not rollups:
        return []
    kind = rollups[0].kind
    table = ROLLUP_TABLES[kind]
    rows = [table.row(r) for r in rollups]
    columns = [list(col) for col in zip(*rows)]
    sql = "WITH " + _upsert_sql(table)
    if kind == "engagement_update":
        sql += f", acc AS ({_ENGAGEMENT_BY_TIME_DIFF})"
    sql += " SELECT * FROM up"
    by_key = {(r.window_start, r.workspace_id, r.series_key, r.window_s, r.step_s): r for r in rollups}
    async with conn.transaction():
        changed = await conn.fetch(sql, *columns)
    return [
        by_key[(c["window_start"], c["workspace_id"], c["series_key"], c["window_s"], c["step_s"])].model_copy(
            update={"revision": c["revision"], "closed_at": c["closed_at"]})
        for c in changed
    ]


#: the column of each rollup table that counts the events folded into a window
_EVENTS_COLUMN = {"performance_sample": "count", "learning_event": "count", "engagement_update": "updates"}


async def window_counts(conn: asyncpg.Connection) -> dict[str, dict[tuple[float, float], tuple[int, int]]]:
    """kind -> (window_s, step_s) -> (windows stored, events counted in them): what the bench
    compares with the stored rows (each event lies in window_s / step_s windows of a spec)."""
    out: dict[str, dict[tuple[float, float], tuple[int, int]]] = {}
    for kind, table in ROLLUP_TABLES.items():
        rows = await conn.fetch(f"SELECT window_s, step_s, count(*) AS n, coalesce(sum({_EVENTS_COLUMN[kind]}), 0) AS e "
                                f"FROM {table.name} GROUP BY 1, 2")
        out[kind] = {(r["window_s"], r["step_s"]): (r["n"], int(r["e"])) for r in rows}
    return out
