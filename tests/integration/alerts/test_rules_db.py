"""Rule names unique per workspace (migration 0016) and rule-set changes held off while a rules file
is applied (db/alerts.py lock_workspace_rules), on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import uuid

import asyncpg
import pytest

from db.alerts import load_rules, lock_workspace_rules
from db.databases import create_database, drop_database
from db.migrate import MIGRATIONS_DIR, migrate
from db.pool import connect
from tests.support import admin_dsn

pytestmark = pytest.mark.services
WS, OTHER = uuid.UUID(int=7), uuid.UUID(int=8)
_INSERT = ("INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value, created_at) "
           "VALUES ($1, $2, 'disk.max', '>', 1, '2026-12-01'::timestamptz + $3 * interval '1 s')")


async def test_0016_renames_rules_that_share_a_name_then_refuses_another(services, tmp_path, unique):
    base = admin_dsn(services)
    name = f"t_{unique}"
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) < 16:
            shutil.copy(path, tmp_path / path.name)
    dsn = await create_database(base, name)
    conn = await connect(dsn)
    try:
        await migrate(conn, tmp_path)
        long = "x" * 100
        for i, (ws, rule) in enumerate([(WS, long), (WS, "disk"), (WS, long), (WS, "disk"), (WS, "disk"),
                                        (OTHER, "disk")]):
            await conn.execute(_INSERT, ws, rule, i)
        assert [m.version for m in await migrate(conn) if m.version == 16] == [16]
        assert [(r.workspace_id, r.alert_name) for r in await load_rules(conn)] == [
            (WS, long), (WS, "disk"), (WS, "x" * 96 + " (2)"), (WS, "disk (2)"), (WS, "disk (3)"), (OTHER, "disk")]
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE table_name = 'performance_alerts' "
                                   "AND operation = 'UPDATE'") == 3
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(_INSERT, OTHER, "disk", 9)
    finally:
        await conn.close()
        await drop_database(base, name)


async def test_a_rules_file_applied_holds_off_another_apply_of_its_workspace(stack):
    first, second, third = [await connect(stack.dsn) for _ in range(3)]
    try:
        tx = first.transaction()
        await tx.start()
        await lock_workspace_rules(first, [WS])
        # another workspace is not held off
        async with third.transaction():
            await asyncio.wait_for(lock_workspace_rules(third, [OTHER]), 5)
        waiting = asyncio.ensure_future(_locked(second))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await tx.commit()
        await asyncio.wait_for(waiting, 5)
    finally:
        for c in (first, second, third):
            await c.close()


async def _locked(conn) -> None:
    async with conn.transaction():
        await lock_workspace_rules(conn, [OTHER, WS])
