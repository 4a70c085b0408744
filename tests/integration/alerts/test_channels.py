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


MASK_CASES = [
    "http://am:9093",
    "https://user:pass@hooks.example/x?token=abc",
    "https://u@p@hooks.example:8443/a@b?t=1&bare&y=2=3#frag",
    "http://h/x?",
    "http://h/x?&a=1",
    "https://hooks.example/T000/B000/XXXXXXXX",
]


async def test_mask_url_is_the_same_in_the_database_and_in_python(stack):
    from schemas.channels import redact_url

    conn = await connect(stack.dsn)
    try:
        for url in MASK_CASES:
            assert await conn.fetchval("SELECT mask_url($1)", url) == redact_url(url), url
        assert redact_url(MASK_CASES[1]) == "https://***@hooks.example/x?token=***"
        assert redact_url(MASK_CASES[2]) == "https://***@hooks.example:8443/a@b?t=***&***&y=***#***"
    finally:
        await conn.close()


async def test_a_viewer_login_never_sees_credentials_in_channel_urls(stack):
    """Issue #24: viewers read webhook URLs with credentials in them (`?token=`, userinfo) while the
    secret column was hidden. A viewer's own login now reads url_masked only; an admin member still
    sets the URL (and reads it masked too); neither finds it in the audit trail."""
    import secrets as pysecrets

    from db.workspaces import grant_access, register_workspaces
    from tests.support import login_dsn

    ws = uuid.uuid4()
    suffix = uuid.uuid4().hex[:8]
    viewer, admin = f"viewer_{suffix}", f"admin_{suffix}"
    password = pysecrets.token_urlsafe(12)
    url = "https://ops:hunter2@hooks.example/in?token=abc123&team=ops"
    conn = await connect(stack.dsn)
    try:
        await register_workspaces(conn, [ws])
        await put_channel(conn, AlertChannel(workspace_id=ws, name="hook", kind="webhook", url=url, secret=SECRET))
        await grant_access(conn, viewer, ws, "viewer", password)
        await grant_access(conn, admin, ws, "admin", password)
        member = await asyncpg.connect(login_dsn(stack.dsn, viewer, password))
        boss = await asyncpg.connect(login_dsn(stack.dsn, admin, password))
        try:
            for who in (member, boss):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await who.fetch("SELECT url FROM alert_channels")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await who.fetch("SELECT * FROM alert_channels")
                assert [tuple(r) for r in await who.fetch("SELECT name, url_masked FROM alert_channels")] == [
                    ("hook", "https://***@hooks.example/in?token=***&team=***")]
            # the admin sets a new URL (writing needs no read), and reads it masked
            new = "https://hooks.example/v2?key=zzz999"
            assert await boss.execute("UPDATE alert_channels SET url = $1 WHERE workspace_id = $2 AND name = 'hook'",
                                      new, ws) == "UPDATE 1"
            assert await member.fetchval("SELECT url_masked FROM alert_channels") == "https://hooks.example/v2?key=***"
            assert (await list_channels(conn, ws))[0].url == new  # the workers read it whole
            trail = await member.fetch("SELECT old_values, new_values FROM audit_log WHERE table_name = 'alert_channels'")
            assert len(trail) == 2  # the insert and the admin's update
            seen = str([tuple(r) for r in trail])
            for credential in ("hunter2", "abc123", "zzz999", SECRET):
                assert credential not in seen
            assert "https://hooks.example/v2?key=***" in seen
        finally:
            await member.close()
            await boss.close()
    finally:
        for role in (viewer, admin):
            await conn.execute("DELETE FROM workspace_members WHERE role_name = $1", role)
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()
