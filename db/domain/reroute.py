"""reroute_runs (migration 0018) and the raw-log batches `learnstream domain reroute` reads:
learning_events in (timestamp, id) order after a run's position, by its primary key."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from db.domain.routing import LEARNING_COLUMNS

_COLUMNS = ", ".join(f'"{c}"' for c in LEARNING_COLUMNS)

# the next batch after (position_ts, position_id); the run's bounds and filters
_BATCH = f"""
SELECT {_COLUMNS} FROM learning_events
WHERE "timestamp" >= $1 AND "timestamp" < $2
  AND ($3::timestamptz IS NULL OR ("timestamp", id) > ($3, $4::uuid))
  AND ($5::uuid IS NULL OR workspace_id = $5) AND ($6::text IS NULL OR event_type = $6)
ORDER BY "timestamp", id
LIMIT $7
"""

_RUN_COLUMNS = ("id, workspace_id, event_type, since, until, position_ts, position_id, events, routed, unrouted, "
                "unknown_type, started_at, updated_at, finished_at")

_OPEN_RUN = f"""
SELECT {_RUN_COLUMNS} FROM reroute_runs
WHERE finished_at IS NULL AND since = $1 AND until = $2 AND workspace_id IS NOT DISTINCT FROM $3
  AND event_type IS NOT DISTINCT FROM $4
ORDER BY id DESC LIMIT 1
"""

_OPEN_RUNS_LIKE = f"""
SELECT {_RUN_COLUMNS} FROM reroute_runs
WHERE finished_at IS NULL AND since = $1 AND workspace_id IS NOT DISTINCT FROM $2 AND event_type IS NOT DISTINCT FROM $3
ORDER BY id DESC LIMIT 1
"""

_START = f"""
INSERT INTO reroute_runs (workspace_id, event_type, since, until) VALUES ($3, $4, $1, $2)
RETURNING {_RUN_COLUMNS}
"""

_ADVANCE = f"""
UPDATE reroute_runs SET position_ts = $2, position_id = $3, events = events + $4, routed = routed + $5,
    unrouted = unrouted + $6, unknown_type = unknown_type + $7, updated_at = now()
WHERE id = $1
RETURNING {_RUN_COLUMNS}
"""

_FINISH = f"UPDATE reroute_runs SET finished_at = now(), updated_at = now() WHERE id = $1 RETURNING {_RUN_COLUMNS}"

_RUNS = f"SELECT {_RUN_COLUMNS} FROM reroute_runs ORDER BY id DESC LIMIT $1"


async def open_run(conn: asyncpg.Connection, since: datetime, until: datetime | None, workspace_id: UUID | None,
                   event_type: str | None) -> asyncpg.Record | None:
    """The latest unfinished run with these arguments (any `until` when None), to resume."""
    if until is None:
        return await conn.fetchrow(_OPEN_RUNS_LIKE, since, workspace_id, event_type)
    return await conn.fetchrow(_OPEN_RUN, since, until, workspace_id, event_type)


async def start_run(conn: asyncpg.Connection, since: datetime, until: datetime, workspace_id: UUID | None,
                    event_type: str | None) -> asyncpg.Record:
    return await conn.fetchrow(_START, since, until, workspace_id, event_type)


async def next_batch(conn: asyncpg.Connection, run: asyncpg.Record, limit: int) -> list[asyncpg.Record]:
    """The run's next `limit` stored learning events (rows in LEARNING_EVENTS.columns order)."""
    return await conn.fetch(_BATCH, run["since"], run["until"], run["position_ts"], run["position_id"],
                            run["workspace_id"], run["event_type"], limit)


async def advance_run(conn: asyncpg.Connection, run_id: int, last_ts: datetime, last_id: UUID, events: int,
                      routed: int, unrouted: int, unknown: int) -> asyncpg.Record:
    """Record a batch done, in the batch's transaction."""
    return await conn.fetchrow(_ADVANCE, run_id, last_ts, last_id, events, routed, unrouted, unknown)


async def finish_run(conn: asyncpg.Connection, run_id: int) -> asyncpg.Record:
    return await conn.fetchrow(_FINISH, run_id)


async def recent_runs(conn: asyncpg.Connection, limit: int = 10) -> list[asyncpg.Record]:
    return await conn.fetch(_RUNS, limit)
