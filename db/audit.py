"""The audit trail (migration 0015): reading audit_log. Its rows are written by triggers only."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_TAIL = """
SELECT id, at, actor, acting_role, table_name, operation, row_key, workspace_id, old_values, new_values, action
FROM audit_log
WHERE ($1::uuid IS NULL OR workspace_id = $1) AND ($2::text IS NULL OR table_name = $2) AND id > $3
ORDER BY id DESC
LIMIT $4
"""


async def tail(conn: asyncpg.Connection, limit: int, workspace_id: UUID | None = None, table: str | None = None,
               after_id: int = 0) -> list[asyncpg.Record]:
    """The latest `limit` audit rows (after `after_id`), oldest first."""
    rows = await conn.fetch(_TAIL, workspace_id, table, after_id, limit)
    return rows[::-1]


def changed(old: dict | None, new: dict | None) -> dict[str, tuple]:
    """column -> (old, new) for the columns an UPDATE changed (every column of an INSERT or DELETE)."""
    old, new = old or {}, new or {}
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}
