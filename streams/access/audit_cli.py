"""`learnstream audit tail`: who changed which configuration row, when, from what to what."""

from __future__ import annotations

import asyncio
from uuid import UUID

import click
import orjson

from streams.cli_support import expected_failures
from streams.config import load_settings


@click.group("audit")
def audit() -> None:
    """The audit trail of configuration changes (alert rules, reports and schedules, workspaces,
    memberships, retention policies), written by triggers in the database."""


def _value(v) -> str:
    text = v if isinstance(v, str) else orjson.dumps(v).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _line(r) -> str:
    from db.audit import changed

    who = r["actor"] + (f" as {r['acting_role']}" if r["acting_role"] else "")
    key = ",".join(f"{k}={_value(v)}" for k, v in r["row_key"].items())
    head = f"{r['at']:%Y-%m-%d %H:%M:%S}Z #{r['id']} {who} {r['operation']} {r['table_name']} ({key})"
    if r["action"]:  # e.g. secret_rotated: the change of a secret, whose values are never recorded
        head += f" {r['action']}"
    diff = changed(r["old_values"], r["new_values"])
    if r["operation"] == "UPDATE":
        body = "; ".join(f"{k}: {_value(a)} -> {_value(b)}" for k, (a, b) in diff.items())
    else:
        body = "; ".join(f"{k}={_value(b if r['operation'] == 'INSERT' else a)}" for k, (a, b) in diff.items()
                         if k not in r["row_key"])
    return f"{head}\n    {body}" if body else head


@audit.command("tail")
@click.option("-n", "--lines", "limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="how many of the latest changes")
@click.option("--workspace", "workspace_id", type=click.UUID, help="only this workspace's changes")
@click.option("--table", help="only this table's changes (e.g. performance_alerts)")
@click.option("-f", "--follow", is_flag=True, help="keep printing new changes (Ctrl-C stops)")
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True,
              help="with --follow: seconds between looks")
@expected_failures
def tail_cmd(limit: int, workspace_id: UUID | None, table: str | None, follow: bool, interval: float) -> None:
    """The latest configuration changes, oldest first: time, who (the login role, and the role it
    acted as), operation, table, the row's key, what kind of change when it says (secret_rotated:
    a channel's secret changed; secrets themselves are never recorded), and the values (an UPDATE
    shows old -> new)."""
    from db.audit import tail
    from db.pool import connect

    async def go() -> None:
        conn = await connect(load_settings().database_url)
        try:
            last = 0
            rows = await tail(conn, limit, workspace_id, table)
            while True:
                for r in rows:
                    click.echo(_line(r))
                    last = r["id"]
                if not follow:
                    return
                await asyncio.sleep(interval)
                rows = await tail(conn, 10_000, workspace_id, table, after_id=last)
        finally:
            await conn.close()

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass
