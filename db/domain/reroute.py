"""reroute_runs (migration 0018) and the raw-log batches `learnstream domain reroute` reads:
learning_events in (timestamp, id, workspace_id) order after a run's position, by its primary key
(migration 0025: an event id may repeat in another workspace, at the same timestamp)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from db.domain.routing import LEARNING_COLUMNS

_COLUMNS = ", ".join(f'"{c}"' for c in LEARNING_COLUMNS)

# a run's first batch, and the batches after its position: two statements, so that each plan (a
# generic one too, once asyncpg's prepared statement has one) reads the primary key's range
_FILTERS = """
  AND ($3::uuid IS NULL OR workspace_id = $3) AND ($4::text IS NULL OR event_type = $4)
ORDER BY "timestamp", id, workspace_id
LIMIT $5
"""
_FIRST = f'SELECT {_COLUMNS} FROM learning_events WHERE "timestamp" >= $1 AND "timestamp" < $2' + _FILTERS
# a run advanced before 0025 has no position_workspace (NULL): it goes on after its (timestamp, id)
_AFTER = (f'SELECT {_COLUMNS} FROM learning_events '
          f'WHERE ("timestamp", id, workspace_id) > ($1, $6::uuid, $7::uuid) AND "timestamp" < $2' + _FILTERS)

_RUN_COLUMNS = ("id, request, workspace_id, event_type, since, until, position_ts, position_id, events, routed, "
                "unrouted, unknown_type, started_at, updated_at, finished_at, position_workspace")

_OPEN_RUN = f"""
SELECT {_RUN_COLUMNS} FROM reroute_runs WHERE finished_at IS NULL AND request = $1 ORDER BY id DESC LIMIT 1
"""

_START = f"""
INSERT INTO reroute_runs (request, workspace_id, event_type, since, until) VALUES ($1, $2, $3, $4, $5)
RETURNING {_RUN_COLUMNS}
"""

_ADVANCE = f"""
UPDATE reroute_runs SET position_ts = $2, position_id = $3, events = events + $4, routed = routed + $5,
    unrouted = unrouted + $6, unknown_type = unknown_type + $7, position_workspace = $8, updated_at = now()
WHERE id = $1
RETURNING {_RUN_COLUMNS}
"""

_FINISH = f"UPDATE reroute_runs SET finished_at = now(), updated_at = now() WHERE id = $1 RETURNING {_RUN_COLUMNS}"

_RUNS = f"SELECT {_RUN_COLUMNS} FROM reroute_runs ORDER BY id DESC LIMIT $1"


async def open_run(conn: asyncpg.Connection, request: str) -> asyncpg.Record | None:
    """The latest unfinished run started with these arguments (as given), to resume."""
    return await conn.fetchrow(_OPEN_RUN, request)


async def start_run(conn: asyncpg.Connection, request: str, since: datetime, until: datetime,
                    workspace_id: UUID | None, event_type: str | None) -> asyncpg.Record:
    return await conn.fetchrow(_START, request, workspace_id, event_type, since, until)


async def next_batch(conn: asyncpg.Connection, run: asyncpg.Record, limit: int) -> list[asyncpg.Record]:
    """The run's next `limit` stored learning events (rows in LEARNING_COLUMNS order)."""
    if run["position_ts"] is None:
        return await conn.fetch(_FIRST, run["since"], run["until"], run["workspace_id"], run["event_type"], limit)
    return await conn.fetch(_AFTER, run["position_ts"], run["until"], run["workspace_id"], run["event_type"], limit,
                            run["position_id"], run["position_workspace"])


async def advance_run(conn: asyncpg.Connection, run_id: int, last_ts: datetime, last_id: UUID, events: int,
                      routed: int, unrouted: int, unknown: int, last_workspace: UUID | None = None) -> asyncpg.Record:
    """Record a batch done, in the batch's transaction; the position is its last event's
    (timestamp, id, workspace_id)."""
    return await conn.fetchrow(_ADVANCE, run_id, last_ts, last_id, events, routed, unrouted, unknown,
                               last_workspace)


async def finish_run(conn: asyncpg.Connection, run_id: int) -> asyncpg.Record:
    return await conn.fetchrow(_FINISH, run_id)


async def recent_runs(conn: asyncpg.Connection, limit: int = 10) -> list[asyncpg.Record]:
    return await conn.fetch(_RUNS, limit)
