"""Alert channels in PostgreSQL (migration 0017, db/channels.py): round trip, the secret kept from
members and from the audit log, what the delivery reads."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from db.alerts import add_rule
from db.channels import delivery_config, list_channels, put_channel, remove_channel, rules_naming
from db.pool import connect
from schemas.alerts import AlertRule
from schemas.channels import AlertChannel
from tests.support import become_member

pytestmark = pytest.mark.services
WS = uuid.UUID(int=4242)
SECRET = "first-secret-0123456789"


async def test_channels_round_trip_secret_hidden_from_members_and_audit(stack):
    conn = await connect(stack.dsn)
    try:
        start = await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
        hook = AlertChannel(workspace_id=WS, name="ops-hook", kind="webhook", url="https://hooks.example/x",
                            secret=SECRET, timeout_s=3)
        am = AlertChannel(workspace_id=WS, name="am", kind="alertmanager", url="http://am:9093")
        assert await put_channel(conn, hook, "test") is True
        assert await put_channel(conn, am) is True
        assert await list_channels(conn, WS) == [am, hook]
        assert (await list_channels(conn, WS))[1].secret.get_secret_value() == SECRET
        rotated = hook.model_copy(update={"secret": hook.secret.__class__("second-secret-0123456789")})
        assert await put_channel(conn, rotated) is False  # replaced
        same = await put_channel(conn, rotated.model_copy(update={"timeout_s": 4.0}))
        assert same is False
        rule = AlertRule(id=uuid.uuid4(), workspace_id=WS, alert_name="spike", metric="x.max", condition_op=">",
                         threshold_value=1, notification_channels=["ops-hook", "topic"])
        await add_rule(conn, rule)
        assert await rules_naming(conn, WS, "ops-hook") == ["spike"]
        channels, rules, invalid = await delivery_config(conn)
        assert invalid == []
        assert [c.name for c in channels if c.workspace_id == WS] == ["am", "ops-hook"]
        assert rules[rule.id] == ["ops-hook", "topic"]

        audit = await conn.fetch("SELECT operation, old_values, new_values FROM audit_log "
                                 "WHERE id > $1 AND table_name = 'alert_channels' ORDER BY id", start)
        # add hook, add am, rotate the secret (recorded by secret_changed_at), change the timeout
        assert [r["operation"] for r in audit] == ["INSERT", "INSERT", "UPDATE", "UPDATE"]
        for r in audit:
            for values in (r["old_values"], r["new_values"]):
                assert values is None or "secret" not in values
        assert "secret" not in str([dict(r) for r in audit]).replace("secret_changed_at", "")

        tr = conn.transaction()
        await tr.start()
        try:
            await become_member(conn, WS, "viewer")
            assert await conn.fetchval("SELECT count(*) FROM alert_channels") == 2
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT secret FROM alert_channels")
        finally:
            await tr.rollback()  # the member role goes with it

        assert await remove_channel(conn, WS, "am") is True
        assert await remove_channel(conn, WS, "am") is False
        with pytest.raises(asyncpg.CheckViolationError):  # a webhook without its secret
            await conn.execute("INSERT INTO alert_channels (workspace_id, name, kind, url) "
                               "VALUES ($1, 'x', 'webhook', 'http://h')", WS)
    finally:
        await conn.close()
