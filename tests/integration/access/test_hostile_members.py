"""Issue #24's proven exploits around access management and the rules' NOTIFY channel (migration
0023), each by a hostile client on the real PostgreSQL: `access revoke` dropping a superuser,
`access grant` sending a plaintext password, a member claiming someone else as created_by, a
secret rotated without an audit row, a member reading rule ids off the NOTIFY channel and making
every worker reload its rules with pg_notify."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import subprocess
import sys
import uuid

import asyncpg
import pytest

from db.workspaces import AccessError, add_workspace, grant_access, revoke_access
from tests.integration.access.logins import member_logins
from tests.support import ROOT, login_dsn

pytestmark = pytest.mark.services


@pytest.fixture
async def people(stack):
    """Workspaces w1, w2; edith edits w1, adam administers w1, bob views w2 (own logins)."""
    async with member_logins(stack, [("edith", 1, "editor"), ("adam", 1, "admin"), ("bob", 2, "viewer")]) as made:
        yield made


# ---------------------------------------------------------------------------------- revoke, grant


async def test_revoke_refuses_a_superuser_and_grant_a_service_login(stack, superuser):
    """Proven: `access revoke NAME` run by a superuser (compose's POSTGRES_USER) dropped superuser
    NAME; `access grant` would set the password of any login that is a member of learnstream_member
    besides other roles (a service login given that membership too)."""
    su_dsn, _log = superuser
    tag = uuid.uuid4().hex[:8]
    boss, etl = f"ops_{tag}", f"etl_{tag}"
    su = await asyncpg.connect(su_dsn)
    try:
        ws = (await add_workspace(su, "w"))["id"]
        await su.execute(f"CREATE ROLE {boss} LOGIN SUPERUSER PASSWORD NULL")
        await su.execute(f"CREATE ROLE {etl} LOGIN PASSWORD NULL IN ROLE learnstream_member, learnstream_service")
        with pytest.raises(AccessError, match=f"role {boss} exists and is not a workspace member role"):
            await revoke_access(su, boss, None)
        assert await su.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", boss) == 1
        with pytest.raises(AccessError, match=f"role {etl} exists and is not a workspace member role"):
            await grant_access(su, etl, ws, "viewer", "attacker-chosen")
        with pytest.raises(AccessError, match=f"role {etl} exists and is not a workspace member role"):
            await revoke_access(su, etl, None)
        assert await su.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", etl) == 1
        assert await su.fetchval("SELECT count(*) FROM workspace_members") == 0
        # the functions check by themselves (the client's checks are only a politeness)
        for call in ("SELECT access_revoke('postgres')", f"SELECT access_revoke('{boss}')",
                     "SELECT access_revoke('learnstream_service')", "SELECT access_revoke('x; DROP ROLE y')"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await su.execute(call)
    finally:
        for role in (boss, etl):
            await su.execute(f"DROP ROLE IF EXISTS {role}")
        await su.close()


async def test_access_management_needs_no_createrole_login(stack, people):
    """A login with learnstream_access_admin only (no CREATEROLE, not the service) grants and revokes;
    a member, even a workspace admin, cannot call the functions."""
    owner, w1, _w2, roles = people
    tag = uuid.uuid4().hex[:8]
    operator, newbie, password = f"op_{tag}", f"new_{tag}", secrets.token_urlsafe(12)
    await owner.execute(f"CREATE ROLE {operator} LOGIN PASSWORD '{password}' IN ROLE learnstream_access_admin")
    try:
        op = await asyncpg.connect(login_dsn(stack.dsn, operator, password))
        try:
            assert not await op.fetchval("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user")
            granted = await grant_access(op, newbie, w1, "viewer", "new-password-1")
            assert granted.created_role
            conn = await asyncpg.connect(login_dsn(stack.dsn, newbie, "new-password-1"))
            assert [r[0] for r in await conn.fetch("SELECT id FROM workspaces")] == [w1]
            await conn.close()
            row = await owner.fetchrow("SELECT granted_by, role::text FROM workspace_members WHERE role_name = $1", newbie)
            assert tuple(row) == (operator, "viewer")
            assert await revoke_access(op, newbie, w1) == (1, True)
        finally:
            await op.close()
        adam = await asyncpg.connect(roles["adam"][1])
        try:
            for call in (f"SELECT access_grant('x_{tag}', '{w1}', 'viewer', NULL)", f"SELECT access_revoke('{roles['bob'][0]}')",
                         "SELECT * FROM access_list()"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await adam.execute(call)
            with pytest.raises(AccessError, match="the login needs learnstream_access_admin"):
                await revoke_access(adam, roles["bob"][0], None)
        finally:
            await adam.close()
    finally:
        await owner.execute(f"DROP ROLE IF EXISTS {newbie}")
        await owner.execute(f"DROP ROLE IF EXISTS {operator}")


def test_scram_verifier_is_postgres_format():
    """RFC 7677's test vector is for the protocol, not the stored form: check the stored form's
    parts against a computation by the definition."""
    from db.workspaces import scram_sha256_verifier

    salt = bytes(range(16))
    v = scram_sha256_verifier("pencil", salt=salt)
    head, keys = v.split("$", 1)[1].split("$")
    iterations, salt_b64 = head.split(":")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    assert v.startswith("SCRAM-SHA-256$4096:") and iterations == "4096" and base64.b64decode(salt_b64) == salt
    assert stored == hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    assert server == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert scram_sha256_verifier("pencil") != scram_sha256_verifier("pencil")  # a new salt each time


async def test_grant_sends_a_scram_verifier_never_the_password(stack, superuser):
    """Proven: `access grant` sent `CREATE ROLE … PASSWORD '<plaintext>'`, which the server logs
    (log_statement, or any error in the statement). Now only the verifier travels; the login works
    with the password; access_grant refuses a plaintext and does not repeat it."""
    su_dsn, log_file = superuser
    tag = uuid.uuid4().hex[:8]
    role, password = f"scram_{tag}", f"plain-{tag}-{secrets.token_urlsafe(8)}"
    su = await asyncpg.connect(su_dsn)
    try:
        ws = (await add_workspace(su, "w"))["id"]
        await su.execute("SET log_statement = 'all'")
        await su.execute("SET log_min_error_statement = 'error'")
        await grant_access(su, role, ws, "viewer", password)
        stored = await su.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
        assert stored.startswith("SCRAM-SHA-256$4096:")
        conn = await asyncpg.connect(login_dsn(stack.dsn, role, password))
        assert await conn.fetchval("SELECT current_user") == role
        await conn.close()
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(login_dsn(stack.dsn, role, password + "x"))
        # a new password, and a plaintext sent by mistake
        await grant_access(su, role, ws, "editor", password + "2")
        conn = await asyncpg.connect(login_dsn(stack.dsn, role, password + "2"))
        await conn.close()
        if log_file is not None:  # every statement of this session was logged, with its parameters
            log = log_file.read_text(errors="replace")
            assert role in log and password not in log
        with pytest.raises(asyncpg.InvalidParameterValueError) as refused:
            await su.execute(f"SELECT access_grant('{role}', '{ws}', 'viewer', '{password}3')")
        assert password not in str(refused.value) and "not shown" in str(refused.value)
    finally:
        await su.execute(f"DROP ROLE IF EXISTS {role}")
        await su.close()


# ---------------------------------------------------------------------------------- created_by


async def test_created_by_is_the_login_whatever_a_member_claims(stack, people):
    """Proven: a member inserting created_by='someone_else' had it stored."""
    owner, w1, _w2, roles = people
    edith_role, edith_dsn = roles["edith"]
    adam_role, adam_dsn = roles["adam"]
    edith = await asyncpg.connect(edith_dsn)
    adam = await asyncpg.connect(adam_dsn)
    try:
        rule = await edith.fetchval(
            "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value, created_by) "
            "VALUES ($1, 'slow', 'processing_time_ms.p95', '>', 500, 'someone_else') RETURNING id", w1)
        report = await edith.fetchval(
            "INSERT INTO custom_reports (workspace_id, name, report_type, query_config, created_by) "
            "VALUES ($1, 'r', 'engagement', '{}', 'someone_else') RETURNING id", w1)
        await adam.execute("INSERT INTO alert_channels (workspace_id, name, kind, url, created_by) "
                           "VALUES ($1, 'am', 'alertmanager', 'https://am.example', 'someone_else')", w1)
        # nor can it be changed afterwards, by anyone
        await edith.execute("UPDATE performance_alerts SET created_by = 'someone_else' WHERE id = $1", rule)
        await owner.execute("UPDATE custom_reports SET created_by = 'someone_else' WHERE id = $1", report)
    finally:
        await edith.close()
        await adam.close()
    assert await owner.fetchval("SELECT created_by FROM performance_alerts WHERE id = $1", rule) == edith_role
    assert await owner.fetchval("SELECT created_by FROM custom_reports WHERE id = $1", report) == edith_role
    assert await owner.fetchval("SELECT created_by FROM alert_channels WHERE workspace_id = $1", w1) == adam_role
    # the service is trusted to name whom it acts for (`alerts rules add --created-by`), or no one
    named = await owner.fetchval(
        "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value, created_by) "
        "VALUES ($1, 'named', 'm.p95', '>', 1, 'alerts rules apply rules.yaml') RETURNING created_by", w1)
    unnamed = await owner.fetchval(
        "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
        "VALUES ($1, 'unnamed', 'm.p95', '>', 1) RETURNING created_by", w1)
    assert (named, unnamed) == ("alerts rules apply rules.yaml", None)


# ---------------------------------------------------------------------------------- secret rotation


async def test_a_rotated_secret_is_audited_without_its_value(stack, people):
    """Proven: a workspace admin's `UPDATE alert_channels SET secret = …` left no audit row (the
    secret is kept out of the values, so old and new rows looked equal)."""
    owner, w1, _w2, roles = people
    adam_role, adam_dsn = roles["adam"]
    old_secret, new_secret = "old-" + secrets.token_hex(16), "new-" + secrets.token_hex(16)
    adam = await asyncpg.connect(adam_dsn)
    try:
        await adam.execute("INSERT INTO alert_channels (workspace_id, name, kind, url, secret) "
                           "VALUES ($1, 'hook', 'webhook', 'https://hooks.example/x', $2)", w1, old_secret)
        start = await owner.fetchval("SELECT max(id) FROM audit_log")
        before = await owner.fetchval("SELECT secret_changed_at FROM alert_channels WHERE workspace_id = $1", w1)
        await asyncio.sleep(0.01)
        await adam.execute("UPDATE alert_channels SET secret = $2 WHERE workspace_id = $1 AND name = 'hook'",
                           w1, new_secret)
        rows = await owner.fetch("SELECT * FROM audit_log WHERE id > $1 ORDER BY id", start)
        assert [(r["actor"], r["table_name"], r["operation"], r.get("action"), r["row_key"], r["workspace_id"])
                for r in rows] == [(adam_role, "alert_channels", "UPDATE", "secret_rotated",
                                    {"workspace_id": str(w1), "name": "hook"}, w1)]
        # a forged rotation time is not kept (so that UPDATE changes nothing, and is not audited)
        await adam.execute("UPDATE alert_channels SET secret_changed_at = 'epoch' WHERE workspace_id = $1", w1)
        assert await owner.fetchval("SELECT count(*) FROM audit_log WHERE id > $1", start) == 1
    finally:
        await adam.close()
    after = await owner.fetchval("SELECT secret_changed_at FROM alert_channels WHERE workspace_id = $1", w1)
    assert after > before
    everything = await owner.fetchval("SELECT string_agg(a::text, ' ') FROM audit_log a")
    assert old_secret not in everything and new_secret not in everything
    # the CLI shows it
    out = subprocess.run([sys.executable, "-m", "streams.cli", "audit", "tail", "-n", "1"], cwd=ROOT,
                         env=stack.env(), capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[0].split(" ", 3)[3] == (
        f"{adam_role} UPDATE alert_channels (name=hook,workspace_id={w1}) secret_rotated"), out.stderr


# ---------------------------------------------------------------------------------- NOTIFY


async def test_the_rules_notify_channel_carries_no_rule_id(stack, people):
    """Proven: any member could LISTEN learnstream_alert_rules and read other workspaces' rule ids."""
    _owner, w1, _w2, roles = people
    bob = await asyncpg.connect(roles["bob"][1])  # a viewer of w2 only
    edith = await asyncpg.connect(roles["edith"][1])
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await bob.add_listener("learnstream_alert_rules", lambda _c, _p, _ch, payload: heard.put_nowait(payload))
        rule = await edith.fetchval(
            "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
            "VALUES ($1, 'slow', 'processing_time_ms.p95', '>', 500) RETURNING id", w1)
        payload = await asyncio.wait_for(heard.get(), 5)
        assert str(rule) not in payload and payload == ""
        # nor can bob read the marker the workers trust
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bob.fetch("SELECT * FROM alert_rules_version")
    finally:
        await bob.close()
        await edith.close()


async def test_a_members_notify_storm_does_not_make_workers_reload(stack, people, caplog):
    """Proven: any member's pg_notify('learnstream_alert_rules', …) made every worker reload every
    rule. Now the worker checks the change marker and reloads only when a rule changed."""
    from streams.alerts.runtime import AlertRuntime

    _owner, w1, _w2, roles = people
    caplog.set_level(logging.INFO, logger="learnstream.alerts")
    runtime = AlertRuntime(stack.dsn, pool=None, publish=None)
    task = asyncio.create_task(runtime.follow_rules())
    bob = await asyncpg.connect(roles["bob"][1])
    edith = await asyncpg.connect(roles["edith"][1])

    def reloads() -> int:
        return sum(1 for r in caplog.records if r.getMessage().startswith("alert rules changed"))

    try:
        await asyncio.wait_for(runtime.rules_loaded.wait(), 10)
        await asyncio.sleep(0.3)
        rule = await edith.fetchval(
            "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
            "VALUES ($1, 'slow', 'processing_time_ms.p95', '>', 500) RETURNING id", w1)
        for _ in range(50):
            if reloads() == 1:
                break
            await asyncio.sleep(0.1)
        assert reloads() == 1 and runtime.engine.watches(w1, "processing_time_ms.p95")
        await asyncio.sleep(1.1)  # past the reload rate limit
        # the storm: 40 bursts of 10 notifications (with and without a rule id) over 4 s
        for i in range(40):
            for j in range(10):
                await bob.execute("SELECT pg_notify('learnstream_alert_rules', $1)", str(rule) if j % 2 else str(i))
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # past one periodic check too
        assert reloads() == 1, f"{reloads() - 1} reloads caused by a member's NOTIFYs"
        assert runtime.rule_reloads == 2  # the first load and edith's change
        # a real change still reaches the worker at once
        await edith.execute("UPDATE performance_alerts SET threshold_value = 600 WHERE id = $1", rule)
        for _ in range(50):
            if reloads() == 2:
                break
            await asyncio.sleep(0.1)
        assert reloads() == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bob.close()
        await edith.close()
