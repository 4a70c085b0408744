"""unrouted_events (migration 0018): stored learning events that were not routed, and the raw-log
reads of `learnstream domain unrouted|reroute`. The routing that fills it is db/domain/routing.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson


@dataclass(frozen=True, slots=True)
class Unrouted:
    """A stored learning event that was not routed, and why (schemas.events.UnroutedReason)."""

    workspace_id: UUID
    event_id: UUID
    timestamp: datetime
    event_type: str
    reason: str
    errors: tuple[str, ...]


_RECORD = """
INSERT INTO unrouted_events AS u (workspace_id, event_id, event_timestamp, event_type, reason, errors)
SELECT r.workspace_id, r.event_id, r.ts, r.event_type, r.reason, ARRAY(SELECT jsonb_array_elements_text(r.errors))
FROM jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz, event_type text,
    reason text, errors jsonb)
ON CONFLICT (workspace_id, event_id, event_timestamp) DO UPDATE SET
    event_type = excluded.event_type, reason = excluded.reason, errors = excluded.errors, detected_at = now()
"""

_FORGET = """
DELETE FROM unrouted_events u
USING jsonb_to_recordset($1::jsonb) AS r(workspace_id uuid, event_id uuid, ts timestamptz)
WHERE u.workspace_id = r.workspace_id AND u.event_id = r.event_id AND u.event_timestamp = r.ts
"""


async def record_unrouted(conn: asyncpg.Connection, unrouted: Sequence[Unrouted]) -> None:
    """Record (or update) why these stored events were not routed, in the caller's transaction."""
    if unrouted:
        await conn.execute(_RECORD, orjson.dumps([
            {"workspace_id": u.workspace_id, "event_id": u.event_id, "ts": u.timestamp, "event_type": u.event_type,
             "reason": u.reason, "errors": list(u.errors) or ["(no detail)"]} for u in unrouted
        ], default=str))  # default: asyncpg's own UUIDs


async def forget_unrouted(conn: asyncpg.Connection, keys: Sequence[tuple[Any, Any, datetime]]) -> None:
    """These events (workspace_id, event_id, timestamp) are routed now: no longer unrouted."""
    if keys:
        await conn.execute(_FORGET, orjson.dumps([{"workspace_id": w, "event_id": e, "ts": t} for w, e, t in keys], default=str))


# per group, the latest errors by a lateral lookup (not an aggregate of every row's errors)
_SUMMARY = """
SELECT g.*, l.errors AS latest_errors
FROM (SELECT workspace_id, event_type, reason, count(*) AS events, min(event_timestamp) AS first_event,
          max(event_timestamp) AS last_event
      FROM unrouted_events
      WHERE ($1::uuid IS NULL OR workspace_id = $1) AND ($2::text IS NULL OR event_type = $2)
        AND ($3::timestamptz IS NULL OR event_timestamp >= $3)
      GROUP BY workspace_id, event_type, reason) AS g
CROSS JOIN LATERAL (
    SELECT u.errors FROM unrouted_events u
    WHERE u.workspace_id = g.workspace_id AND u.event_type = g.event_type AND u.reason = g.reason
      AND ($3::timestamptz IS NULL OR u.event_timestamp >= $3)
    ORDER BY u.detected_at DESC LIMIT 1) AS l
ORDER BY g.workspace_id, g.events DESC, g.event_type
"""

_EVENTS = """
SELECT workspace_id, event_id, event_timestamp, event_type, reason, errors, detected_at
FROM unrouted_events
WHERE ($1::uuid IS NULL OR workspace_id = $1) AND ($2::text IS NULL OR event_type = $2)
  AND ($3::timestamptz IS NULL OR event_timestamp >= $3)
ORDER BY event_timestamp DESC, event_id
LIMIT $4
"""

# event types without a contract, from the raw log (they have no unrouted_events row)
_UNKNOWN_TYPES = """
SELECT workspace_id, event_type, count(*) AS events, min("timestamp") AS first_event, max("timestamp") AS last_event
FROM learning_events
WHERE "timestamp" >= $3 AND event_type <> ALL($4::text[])
  AND ($1::uuid IS NULL OR workspace_id = $1) AND ($2::text IS NULL OR event_type = $2)
GROUP BY workspace_id, event_type
ORDER BY workspace_id, events DESC, event_type
"""


async def unrouted_summary(conn: asyncpg.Connection, workspace_id: UUID | None, event_type: str | None,
                           since: datetime | None) -> list[asyncpg.Record]:
    """Per workspace, type and reason: how many stored events were not routed, when, the latest errors."""
    return await conn.fetch(_SUMMARY, workspace_id, event_type, since)


async def unrouted_events(conn: asyncpg.Connection, workspace_id: UUID | None, event_type: str | None,
                          since: datetime | None, limit: int) -> list[asyncpg.Record]:
    """The latest unrouted events themselves, newest first."""
    return await conn.fetch(_EVENTS, workspace_id, event_type, since, limit)


async def unknown_types(conn: asyncpg.Connection, workspace_id: UUID | None, event_type: str | None,
                        since: datetime, known: Sequence[str]) -> list[asyncpg.Record]:
    """Stored events since `since` whose type has no contract, per workspace and type."""
    return await conn.fetch(_UNKNOWN_TYPES, workspace_id, event_type, since, list(known))
