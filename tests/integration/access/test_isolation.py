"""Tenant isolation against a hostile client (migration 0013), on real logins.

One database holds the demo's data (several workspaces, every job run once, alert rules and
notifications, reports). Roles made by `learnstream access grant`'s code log in with their own
passwords over scram and try to read, write and escalate across workspaces. A test enumerates every
table (partitions too), view and materialized view with a workspace_id, in every schema, and fails on
one that a member of another workspace can read rows of.
"""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import pytest

from db.databases import clone_migrated_database, drop_database
from db.pool import connect
from db.workspaces import grant_access, register_workspaces
from streams.devkit.bench.jobs import load_demo_data
from streams.jobs.catalog import JOBS, ONCE_ORDER, once_period
from streams.jobs.runner import JobRunner
from tests.support import admin_dsn, login_dsn

pytestmark = pytest.mark.services

# every relation with a workspace_id, in every schema but the system's
RELATIONS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.relispartition AS partition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND n.nspname NOT LIKE 'pg_temp%'
  AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id'
              AND a.attnum > 0 AND NOT a.attisdropped)
ORDER BY 1, 2
"""



class Tenants:
    def __init__(self, dsn: str, workspaces: list[uuid.UUID], suffix: str) -> None:
        self.dsn, self.workspaces = dsn, workspaces
        self.w1, self.w2 = workspaces[0], workspaces[1]
        self.suffix = suffix
        self.passwords: dict[str, str] = {}

    def role(self, name: str) -> str:
        return f"{name}_{self.suffix}"

    async def login(self, name: str) -> asyncpg.Connection:
        role = self.role(name)
        return await asyncpg.connect(login_dsn(self.dsn, role, self.passwords[role]))


@pytest.fixture(scope="module")
async def tenants(services):
    base = admin_dsn(services)
    name = f"t_tenancy_{uuid.uuid4().hex[:8]}"
    suffix = uuid.uuid4().hex[:8]
    dsn = await clone_migrated_database(base, name)
    try:
        await load_demo_data(dsn, 1, seed=11)
        runner = JobRunner(dsn, JOBS)
        from datetime import UTC, datetime
        for job in ONCE_ORDER:
            result = await runner.run(job, period=once_period(job, datetime.now(UTC)))
            assert result.status == "succeeded", (job, result)
        conn = await connect(dsn)
        try:
            # the workspaces with domain data first (the mix's), then the rest
            workspaces = [r[0] for r in await conn.fetch(
                "SELECT workspace_id FROM predictions GROUP BY 1 ORDER BY count(*) DESC")]
            workspaces += [r[0] for r in await conn.fetch(
                "SELECT workspace_id FROM learning_events UNION SELECT workspace_id FROM content_performance_metrics "
                "UNION SELECT workspace_id FROM system_performance_metrics ORDER BY 1") if r[0] not in workspaces]
            await register_workspaces(conn, workspaces)  # written by the writer directly, not through a sink
            assert len(workspaces) >= 3
            t = Tenants(dsn, workspaces, suffix)
            for ws in workspaces:
                rule = await conn.fetchval(
                    "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
                    "VALUES ($1, 'slow', 'processing_time_ms.p95', '>', 500) RETURNING id", ws)
                await conn.execute(
                    "INSERT INTO alert_notifications (alert_id, workspace_id, fingerprint, status, severity, "
                    "threshold_value, alert_message, triggered_at, sent_at) "
                    "VALUES ($1, $2::uuid, left(md5($2::uuid::text), 32), 'active', 'warning', 500, 'slow', now(), now())",
                    rule, ws)
            for name_, ws, role in (("alice", t.w1, "viewer"), ("edith", t.w1, "editor"), ("adam", t.w1, "admin"),
                                    ("olga", t.w1, "owner"), ("bob", t.w2, "viewer")):
                role_name = t.role(name_)
                t.passwords[role_name] = secrets.token_urlsafe(12)
                await grant_access(conn, role_name, ws, role, t.passwords[role_name])
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        yield t
    finally:
        admin = await connect(base)
        try:
            for role in await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE '%\\_' || $1", suffix):
                await admin.execute(f'DROP ROLE IF EXISTS "{role[0]}"')
        finally:
            await admin.close()
        await drop_database(base, name)


async def test_no_relation_with_a_workspace_id_shows_another_workspace(tenants):
    t = tenants
    owner = await connect(t.dsn)
    alice = await t.login("alice")
    try:
        relations = await owner.fetch(RELATIONS)
        names = {f"{r['schema']}.{r['name']}" for r in relations}
        # the enumeration finds what it should (a broken query must not pass vacuously)
        assert {"public.learning_events", "public.learning_events_default", "public.predictions",
                "public.ai_learning_patterns", "public.daily_learning_metrics",
                "public.daily_learning_metrics_mine", "public.workspace_members"} <= names
        proved, denied, readable = [], [], []
        for r in relations:
            rel = f'"{r["schema"]}"."{r["name"]}"'
            if r["kind"] == "v" and r["name"].endswith("_mine"):  # the owner has no membership: count the MV
                source = f'"{r["schema"]}"."{r["name"][:-5]}"'
            else:
                source = rel
            mine_expected = await owner.fetchval(f"SELECT count(*) FROM {source} WHERE workspace_id = $1", t.w1)
            others = await owner.fetchval(f"SELECT count(*) FROM {source} WHERE workspace_id <> $1", t.w1)
            # any column: a table whose secret column is withheld (alert_channels) is still readable
            if not await alice.fetchval("SELECT has_any_column_privilege($1::oid, 'SELECT')", r["oid"]):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await alice.fetchval(f"SELECT count(*) FROM {rel}")
                denied.append(rel)
                continue
            got = await alice.fetchrow(
                f"SELECT count(*) FILTER (WHERE workspace_id = $1) AS mine, "
                f"count(*) FILTER (WHERE workspace_id IS DISTINCT FROM $1) AS others FROM {rel}", t.w1)
            assert got["others"] == 0, f"{rel}: a member of another workspace reads {got['others']} foreign rows"
            assert got["mine"] == mine_expected, f"{rel}: {got['mine']} of the member's {mine_expected} rows"
            readable.append(rel)
            if others:
                proved.append(rel)
        print(f"\n{len(relations)} relations with a workspace_id: {len(readable)} readable by a member (each "
              f"showing only its workspace; {len(proved)} of them hold other workspaces' rows), "
              f"{len(denied)} not readable at all")
        # most readable relations are proved with data, not only by an empty table
        assert len(proved) >= 45, sorted(set(readable) - set(proved))
        assert len(relations) == len(readable) + len(denied)
    finally:
        await alice.close()
        await owner.close()


async def test_workspaces_and_members_show_only_ones_own(tenants):
    t = tenants
    bob = await t.login("bob")
    try:
        assert [r[0] for r in await bob.fetch("SELECT id FROM workspaces")] == [t.w2]
        members = await bob.fetch("SELECT workspace_id, role_name, role::text FROM workspace_members")
        assert [tuple(r) for r in members] == [(t.w2, t.role("bob"), "viewer")]
        assert await bob.fetchval("SELECT count(*) FROM organizations") == 0
    finally:
        await bob.close()


async def test_a_hostile_member_cannot_escalate(tenants):
    t = tenants
    alice = await t.login("alice")
    try:
        foreign = "SELECT count(*) FROM learning_events WHERE workspace_id <> $1"
        # the old setting and any other setting: no effect
        await alice.execute(f"SET learnstream.workspace_id = '{t.w2}'")
        assert await alice.fetchval(foreign, t.w1) == 0
        await alice.execute("SET row_security = off")  # off errors rather than return filtered rows
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await alice.fetchval(foreign, t.w1)
        await alice.execute("RESET row_security")
        # other roles: not hers to become
        for role in ("learnstream_owner", "learnstream_worker", "learnstream_service", "learnstream_maintenance",
                     "postgres", t.role("bob")):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await alice.execute(f'SET ROLE "{role}"')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await alice.execute("SET SESSION AUTHORIZATION learnstream_owner")
        # her group role has no memberships: nothing
        await alice.execute("SET ROLE learnstream_member")
        assert await alice.fetchval("SELECT count(*) FROM learning_events") == 0
        await alice.execute("RESET ROLE")
        # the membership lookup answers only for her own role
        assert await alice.fetch("SELECT public.member_workspaces($1, 'viewer')", t.role("bob")) == []
        assert [r[0] for r in await alice.fetch("SELECT public.member_workspaces(current_user, 'viewer')")] == [t.w1]
        # the tables' security is the owner's to change
        for ddl in ("ALTER TABLE learning_events NO FORCE ROW LEVEL SECURITY",
                    "ALTER TABLE learning_events DISABLE ROW LEVEL SECURITY",
                    "DROP POLICY member_read ON learning_events",
                    "REFRESH MATERIALIZED VIEW daily_learning_metrics",
                    "CREATE VIEW public.everything AS SELECT * FROM learning_events",
                    "CREATE FUNCTION public.peek() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM learning_events'"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await alice.execute(ddl)
        # what she may create runs as her: a temporary view, a SECURITY DEFINER function of her own
        await alice.execute("CREATE TEMP VIEW mine AS SELECT * FROM learning_events")
        assert await alice.fetchval("SELECT count(*) FROM mine WHERE workspace_id <> $1", t.w1) == 0
        await alice.execute("CREATE FUNCTION pg_temp.peek(w uuid) RETURNS bigint LANGUAGE sql SECURITY DEFINER AS "
                            "'SELECT count(*) FROM public.learning_events WHERE workspace_id <> w'")
        assert await alice.fetchval("SELECT pg_temp.peek($1)", t.w1) == 0
        # the materialized views and partitions directly: not granted; through their views: hers only
        for rel in ("daily_learning_metrics", "learning_events_default", "model_performance_summary"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await alice.fetchval(f"SELECT count(*) FROM {rel}")
        assert await alice.fetchval("SELECT count(*) FROM daily_learning_metrics_mine WHERE workspace_id <> $1", t.w1) == 0
        # the planner's statistics of a table she may read only in part: hidden
        assert await alice.fetchval("SELECT count(*) FROM pg_stats WHERE tablename = 'learning_events'") == 0
        # writing the log tables: not granted
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await alice.execute("DELETE FROM learning_events")
        # COPY out: filtered like a SELECT
        out: list[bytes] = []
        await alice.copy_from_query("SELECT workspace_id FROM learning_events", output=lambda b: _append(out, b))
        assert set(b"".join(out).decode().split()) <= {str(t.w1)}
    finally:
        await alice.close()


async def _append(out: list[bytes], chunk: bytes) -> None:
    out.append(chunk)


async def test_what_a_workspace_role_may_edit_follows_its_role(tenants):
    t = tenants
    alice, edith, adam, olga = [await t.login(n) for n in ("alice", "edith", "adam", "olga")]
    rule = ("INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
            "VALUES ($1, $2, 'processing_time_ms.p95', '>', 100)")
    try:
        # viewer: reads, edits nothing
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await alice.execute(rule, t.w1, "by-viewer")
        assert await alice.execute("UPDATE performance_alerts SET threshold_value = 1") == "UPDATE 0"
        # editor: alert rules and reports of its workspace, not another's, and no moving rows out
        await edith.execute(rule, t.w1, "by-editor")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await edith.execute(rule, t.w2, "into-w2")
        assert await edith.execute("UPDATE performance_alerts SET threshold_value = 250 WHERE alert_name = 'by-editor'") \
            == "UPDATE 1"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await edith.execute("UPDATE performance_alerts SET workspace_id = $1 WHERE alert_name = 'by-editor'", t.w2)
        assert await edith.execute("DELETE FROM performance_alerts WHERE workspace_id <> $1", t.w1) == "DELETE 0"
        await edith.execute("INSERT INTO custom_reports (workspace_id, name, report_type, query_config) "
                            "VALUES ($1, 'mine', 'engagement', '{}')", t.w1)
        # ... but not members
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await edith.execute("INSERT INTO workspace_members (workspace_id, role_name, role) VALUES ($1, $2, 'admin')",
                                t.w1, t.role("edith"))
        # admin: manages members of its workspace, not of another, and names no owner
        await adam.execute("INSERT INTO workspace_members (workspace_id, role_name, role) VALUES ($1, $2, 'viewer')",
                           t.w1, t.role("bob"))
        assert await adam.fetchval("SELECT granted_by FROM workspace_members WHERE role_name = $1", t.role("bob")) \
            == t.role("adam")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await adam.execute("INSERT INTO workspace_members (workspace_id, role_name, role) VALUES ($1, $2, 'admin')",
                               t.w2, t.role("adam"))
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await adam.execute("UPDATE workspace_members SET role = 'owner' WHERE role_name = $1", t.role("adam"))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the column is not his to write
            await adam.execute("UPDATE workspace_members SET granted_by = 'someone' WHERE role_name = $1", t.role("bob"))
        assert await adam.execute("UPDATE workspaces SET name = 'renamed'") == "UPDATE 0"
        # owner: renames its workspace
        assert await olga.execute("UPDATE workspaces SET name = 'Acme'") == "UPDATE 1"
        bob = await t.login("bob")
        try:  # bob, now also a viewer of w1, sees both
            assert sorted(r[0] for r in await bob.fetch("SELECT DISTINCT workspace_id FROM performance_alerts")) \
                == sorted([t.w1, t.w2])
        finally:
            await adam.execute("DELETE FROM workspace_members WHERE workspace_id = $1 AND role_name = $2",
                               t.w1, t.role("bob"))
            await bob.close()
    finally:
        for c in (alice, edith, adam, olga):
            await c.close()


async def test_only_the_maintenance_role_bypasses_row_level_security(tenants):
    t = tenants
    owner = await connect(t.dsn)
    try:
        bypass = [r[0] for r in await owner.fetch(
            "SELECT rolname FROM pg_roles WHERE (rolbypassrls OR rolsuper) AND rolname <> 'postgres' ORDER BY 1")]
        assert bypass == ["learnstream_maintenance"]
        # every table with a workspace_id forces its policies on its owner too
        unforced = await owner.fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition AND NOT c.relforcerowsecurity AND EXISTS (SELECT FROM pg_attribute a "
            "WHERE a.attrelid = c.oid AND a.attname IN ('workspace_id') AND NOT a.attisdropped)")
        assert unforced == []
        # the owner writes every workspace through the service's policy, not around it
        assert await owner.fetchval("SELECT row_security_active('learning_events')") is True
        assert await owner.fetchval("SELECT count(DISTINCT workspace_id) FROM learning_events") >= 3
        # a login made a member of the maintenance role reads every workspace once it takes that role (role
        # attributes such as BYPASSRLS are not inherited: a deliberate SET ROLE)
        role, password = t.role("maint"), secrets.token_urlsafe(12)
        await owner.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE learnstream_maintenance")
        t.passwords[role] = password
        maint = await t.login("maint")
        try:
            await maint.execute("SET ROLE learnstream_maintenance")
            assert await maint.fetchval("SELECT row_security_active('learning_events')") is False
            assert await maint.fetchval("SELECT count(*) FROM learning_events") == \
                await owner.fetchval("SELECT count(*) FROM learning_events")
        finally:
            await maint.close()
    finally:
        await owner.close()


async def test_security_definer_functions_are_pinned_and_not_public(tenants):
    owner = await connect(tenants.dsn)
    try:
        rows = await owner.fetch(
            "SELECT p.oid::regprocedure::text AS fn, coalesce(p.proconfig, '{}') AS config, "
            "has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec "
            "FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef ORDER BY 1")
        assert "member_workspaces(name,workspace_role)" in [r["fn"] for r in rows]
        for r in rows:
            assert any(c.startswith("search_path=") for c in r["config"]), r["fn"]
            assert not r["public_exec"], r["fn"]
    finally:
        await owner.close()


async def test_a_password_is_needed_even_for_the_service_role(services):
    for user in ("learnstream_owner", "learnstream_worker", "postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(login_dsn(services["LEARNSTREAM_DATABASE_URL"], user, "wrong"))
