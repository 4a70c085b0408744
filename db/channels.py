"""Alert notification channels in PostgreSQL (migration 0017): the one place for their SQL."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from db.config_rows import InvalidRow, reason
from db.pool import set_lock_timeout
from schemas.channels import AlertChannel

_COLUMNS = "workspace_id, name, kind, url, secret, timeout_s, is_active"


def _channel(r: asyncpg.Record) -> AlertChannel:
    return AlertChannel(workspace_id=r["workspace_id"], name=r["name"], kind=r["kind"], url=r["url"],
                        secret=r["secret"], timeout_s=r["timeout_s"], is_active=r["is_active"])


async def put_channel(conn: asyncpg.Connection, ch: AlertChannel, created_by: str | None = None) -> bool:
    """Add a channel, or replace the one of that workspace and name. Returns True if it was new."""
    secret = ch.secret.get_secret_value() if ch.secret is not None else None
    return await conn.fetchval(
        """
        INSERT INTO alert_channels AS c (workspace_id, name, kind, url, secret, secret_changed_at, timeout_s,
                                         is_active, created_by)
        VALUES ($1, $2, $3, $4, $5, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $6, $7, $8)
        ON CONFLICT (workspace_id, name) DO UPDATE SET
            kind = EXCLUDED.kind, url = EXCLUDED.url, secret = EXCLUDED.secret,
            secret_changed_at = CASE WHEN c.secret IS NOT DISTINCT FROM EXCLUDED.secret THEN c.secret_changed_at
                                     ELSE EXCLUDED.secret_changed_at END,
            timeout_s = EXCLUDED.timeout_s, is_active = EXCLUDED.is_active, updated_at = now()
        RETURNING (xmax = 0)
        """,
        ch.workspace_id, ch.name, ch.kind, ch.url, secret, ch.timeout_s, ch.is_active, created_by,
    )


async def list_channels_checked(conn: asyncpg.Connection, workspace_id: UUID | None = None,
                                ) -> tuple[list[AlertChannel], list[InvalidRow]]:
    """The channels of a workspace (of every workspace when None), by workspace and name, each row
    validated on its own: the channels, and the rows the contract refuses (a short secret, an
    ftp:// url, ...: the others still load)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM alert_channels WHERE $1::uuid IS NULL OR workspace_id = $1 "
        "ORDER BY workspace_id, name",
        workspace_id,
    )
    good, bad = [], []
    for r in rows:
        try:
            good.append(_channel(r))
        except ValueError as exc:  # pydantic's ValidationError; `reason` gives messages only, never the secret
            bad.append(InvalidRow("alert_channels", r["workspace_id"], r["name"], reason(exc)))
    return good, bad


async def list_channels(conn: asyncpg.Connection, workspace_id: UUID | None = None) -> list[AlertChannel]:
    """The valid channels of list_channels_checked."""
    return (await list_channels_checked(conn, workspace_id))[0]


async def remove_channel(conn: asyncpg.Connection, workspace_id: UUID, name: str) -> bool:
    """Delete a channel. Returns whether it existed."""
    return (await conn.execute("DELETE FROM alert_channels WHERE workspace_id = $1 AND name = $2",
                               workspace_id, name)) != "DELETE 0"


async def rules_naming(conn: asyncpg.Connection, workspace_id: UUID, name: str) -> list[str]:
    """The names of the rules of a workspace that name channel `name`."""
    rows = await conn.fetch(
        "SELECT alert_name FROM performance_alerts WHERE workspace_id = $1 AND $2 = ANY(notification_channels) "
        "ORDER BY alert_name",
        workspace_id, name,
    )
    return [r["alert_name"] for r in rows]


async def delivery_config(conn: asyncpg.Connection, lock_timeout_s: float | None = None,
                          ) -> tuple[list[AlertChannel], dict[UUID, list[str]], list[InvalidRow]]:
    """What the delivery needs, in one snapshot: every valid channel, each rule's channel names, and
    the channel rows the contract refuses. With `lock_timeout_s`, a table lock held by someone else
    longer than that raises asyncpg.LockNotAvailableError instead of waiting for it."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await set_lock_timeout(conn, lock_timeout_s)
        channels, invalid = await list_channels_checked(conn)
        rows = await conn.fetch("SELECT id, notification_channels FROM performance_alerts")
    return channels, {r["id"]: list(r["notification_channels"]) for r in rows}, invalid
