"""Members cannot take table locks that stop the service (migration 0026), on real logins.

Proven before: PostgreSQL lets a role LOCK a table in any mode when it holds table-level UPDATE,
DELETE or TRUNCATE, and row-level security does not apply to LOCK. Every member login (a viewer
too) could `LOCK TABLE performance_alerts IN ACCESS EXCLUSIVE MODE` and keep its transaction open:
the workers' rule reloads, the channel directory, reports and every member's row-level security
check (it reads workspace_members) waited, for every workspace. Members now hold INSERT and
column-level UPDATE only, and delete through SECURITY DEFINER functions.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.integration.access.logins import member_logins

pytestmark = pytest.mark.services

# the modes that conflict with a reader's or a writer's lock (ROW SHARE and ROW EXCLUSIVE, which
# INSERT permits, conflict with neither)
MODES = ("SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")

# every table and view of schemas public and archive the member has any privilege on
REACHABLE = """
SELECT format('%I.%I', n.nspname, c.relname) AS rel
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'archive') AND c.relkind IN ('r', 'p', 'v', 'f')
  AND (has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
ORDER BY 1
"""

RULE = ("INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
        "VALUES ($1, $2, 'processing_time_ms.p95', '>', 500) RETURNING id")


@pytest.fixture
async def people(stack):
    """Workspaces w1, w2; in w1 val views, edith edits, adam administers, olga owns; in w2 eve edits."""
    async with member_logins(stack, [("val", 1, "viewer"), ("edith", 1, "editor"), ("adam", 1, "admin"), ("olga", 1, "owner"),
                                  ("eve", 2, "editor")]) as made:
        yield made


@pytest.mark.parametrize("who", ["val", "adam"])
async def test_a_member_cannot_lock_any_table_against_the_service(people, who):
    """Proven: a viewer's (and an admin's) LOCK TABLE performance_alerts IN ACCESS EXCLUSIVE MODE in an
    open transaction hung the workers' rule reloads and every member's row-level security check."""
    _owner, _w1, _w2, roles = people
    member = await asyncpg.connect(roles[who][1])
    try:
        relations = [r["rel"] for r in await member.fetch(REACHABLE)]
        # the enumeration finds what it should (a broken query must not pass vacuously)
        assert {"public.performance_alerts", "public.alert_channels", "public.workspace_members",
                "public.custom_reports", "public.report_schedules", "public.workspaces",
                "public.learning_events", "public.audit_log"} <= set(relations), relations
        allowed = []
        for rel in relations:
            for mode in MODES:
                try:
                    async with member.transaction():
                        await member.execute(f"LOCK TABLE {rel} IN {mode} MODE NOWAIT")
                    allowed.append(f"{rel} {mode}")
                except asyncpg.InsufficientPrivilegeError:
                    pass
        print(f"\n{who}: {len(relations)} relations reachable, {len(relations) * len(MODES)} LOCKs refused")
        assert allowed == [], f"{len(allowed)} locks a member may take: {allowed[:20]}"
        # what a reader or an inserter needs still works (and conflicts with no reader or writer)
        async with member.transaction():
            await member.execute("LOCK TABLE public.performance_alerts IN ACCESS SHARE MODE NOWAIT")
        if who == "adam":
            async with member.transaction():
                await member.execute("LOCK TABLE public.alert_channels IN ROW EXCLUSIVE MODE NOWAIT")
    finally:
        await member.close()


ADVISORY = [
    "pg_advisory_lock(1)", "pg_advisory_lock(1, 2)", "pg_try_advisory_lock(1)", "pg_try_advisory_lock(1, 2)",
    "pg_advisory_lock_shared(1)", "pg_try_advisory_lock_shared(1, 2)", "pg_advisory_xact_lock(1)",
    "pg_advisory_xact_lock(1, 2)", "pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock_shared(1)",
    "pg_advisory_xact_lock_shared(1, 2)",
]


async def test_a_member_cannot_take_the_advisory_locks_the_workers_coordinate_with(people, stack):
    """Proven: a viewer's pg_advisory_lock(0x6C737061) held the partition manager's key (every
    worker's ensure_partitions waited), and one in the job runner's key space made the jobs skip,
    for every workspace. `services up` (a superuser) grants the advisory lock functions to the
    service and the owner only, in template1 too: every database made afterwards inherits it."""
    _owner, _w1, _w2, roles = people
    member = await asyncpg.connect(roles["val"][1])
    worker = await asyncpg.connect(stack.worker_dsn)
    try:
        allowed = []
        for call in ADVISORY:
            try:
                async with member.transaction():
                    await member.execute(f"SELECT {call}")
                allowed.append(call)
            except asyncpg.InsufficientPrivilegeError:
                pass
            finally:
                await member.execute("SELECT pg_advisory_unlock_all()")
        assert allowed == []
        # the workers still coordinate with them
        async with worker.transaction():
            assert await worker.fetchval("SELECT pg_try_advisory_xact_lock(1, 2)") is True
        assert await worker.fetchval("SELECT pg_try_advisory_lock(1)") is True
        assert await worker.fetchval("SELECT pg_advisory_unlock(1)") is True
    finally:
        await member.close()
        await worker.close()


async def test_members_hold_no_table_level_update_delete_or_truncate(people):
    owner, *_ = people
    rows = await owner.fetch(
        "SELECT format('%I.%I', n.nspname, c.relname) AS rel, a.privilege_type AS priv "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
        "WHERE a.grantee IN (0, 'learnstream_member'::regrole) AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == []
    # column-level UPDATE where members edit (the statements they ran before still run)
    cols = await owner.fetch(
        "SELECT table_name, count(*) AS n FROM information_schema.column_privileges "
        "WHERE grantee = 'learnstream_member' AND privilege_type = 'UPDATE' GROUP BY 1 ORDER BY 1")
    assert {r["table_name"]: r["n"] for r in cols} == {
        "alert_channels": 11, "custom_reports": 13, "performance_alerts": 18, "report_schedules": 11,
        "workspace_members": 1, "workspaces": 3}


async def test_editors_edit_and_delete_their_rules_through_the_functions(people):
    owner, w1, w2, roles = people
    val, edith, eve = [await asyncpg.connect(roles[n][1]) for n in ("val", "edith", "eve")]
    try:
        rule = await edith.fetchval(RULE, w1, "slow")
        assert await edith.execute("UPDATE performance_alerts SET threshold_value = 750, is_active = false "
                                   "WHERE id = $1", rule) == "UPDATE 1"
        # the statement is gone for members, the function is there
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await edith.execute("DELETE FROM performance_alerts WHERE id = $1", rule)
        # a viewer of the workspace and another workspace's editor delete nothing, and learn nothing
        assert await val.fetchval("SELECT delete_alert_rule($1)", rule) == 0
        assert await eve.fetchval("SELECT delete_alert_rule($1)", rule) == 0
        assert await eve.fetchval("SELECT delete_alert_rule($1)", uuid.uuid4()) == 0
        # ... nor by naming someone else as the one who asks (only a role of its own login counts)
        assert await eve.fetchval("SELECT delete_alert_rule($1, $2)", rule, roles["edith"][0]) == 0
        # a login that took a role without memberships (SET ROLE) acts as that role, as its policies do
        await edith.execute("SET ROLE learnstream_member")
        assert await edith.fetchval("SELECT delete_alert_rule($1)", rule) == 0
        await edith.execute("RESET ROLE")
        assert await owner.fetchval("SELECT threshold_value FROM performance_alerts WHERE id = $1", rule) == 750
        assert await edith.fetchval("SELECT delete_alert_rule($1)", rule) == 1
        assert await edith.fetchval("SELECT delete_alert_rule($1)", rule) == 0
        assert await owner.fetchval("SELECT count(*) FROM performance_alerts WHERE id = $1", rule) == 0

        # reports and schedules: the same rules (a report takes its schedules with it)
        report = await edith.fetchval("INSERT INTO custom_reports (workspace_id, name, report_type, query_config) "
                                      "VALUES ($1, 'weekly', 'engagement', '{}') RETURNING id", w1)
        schedules = [await edith.fetchval("INSERT INTO report_schedules (workspace_id, report_id, cron_expr) "
                                          "VALUES ($1, $2, '0 6 * * 1') RETURNING id", w1, report) for _ in range(2)]
        assert await edith.execute("UPDATE custom_reports SET name = 'monday' WHERE id = $1", report) == "UPDATE 1"
        assert await edith.execute("UPDATE report_schedules SET cron_expr = '0 7 * * 1' WHERE id = $1",
                                   schedules[0]) == "UPDATE 1"
        for fn, key in (("delete_report_schedule", schedules[0]), ("delete_report", report)):
            assert await val.fetchval(f"SELECT {fn}($1)", key) == 0
            assert await eve.fetchval(f"SELECT {fn}($1)", key) == 0
        assert await edith.fetchval("SELECT delete_report_schedule($1)", schedules[0]) == 1
        assert await edith.fetchval("SELECT delete_report($1)", report) == 1
        assert await owner.fetchval("SELECT count(*) FROM report_schedules WHERE report_id = $1", report) == 0
        # the editor's other workspace's rows stay out of reach (another editor's report in w2)
        other = await eve.fetchval("INSERT INTO custom_reports (workspace_id, name, report_type, query_config) "
                                   "VALUES ($1, 'theirs', 'engagement', '{}') RETURNING id", w2)
        assert await edith.fetchval("SELECT delete_report($1)", other) == 0
        assert await owner.fetchval("SELECT count(*) FROM custom_reports WHERE id = $1", other) == 1
    finally:
        for c in (val, edith, eve):
            await c.close()


async def test_admins_delete_channels_and_members_but_not_an_owner(people):
    owner, w1, w2, roles = people
    edith, adam, olga = [await asyncpg.connect(roles[n][1]) for n in ("edith", "adam", "olga")]
    try:
        await adam.execute("INSERT INTO alert_channels (workspace_id, name, kind, url, secret) "
                           "VALUES ($1, 'ops', 'webhook', 'https://hooks.example/x', 'a-webhook-secret-of-32-characters')", w1)
        assert await adam.execute("UPDATE alert_channels SET secret = 'another-webhook-secret-of-32-chars', timeout_s = 5 "
                                  "WHERE workspace_id = $1 AND name = 'ops'", w1) == "UPDATE 1"
        assert await edith.fetchval("SELECT delete_alert_channel($1, 'ops')", w1) == 0  # an editor is no admin
        assert await adam.fetchval("SELECT delete_alert_channel($1, 'ops')", w2) == 0
        assert await adam.fetchval("SELECT delete_alert_channel($1, 'ops')", w1) == 1
        assert await owner.fetchval("SELECT count(*) FROM alert_channels") == 0

        # members: an admin removes an editor, not an owner; the owner may
        assert await edith.fetchval("SELECT remove_member($1, $2)", w1, roles["adam"][0]) == 0
        assert await adam.fetchval("SELECT remove_member($1, $2)", w1, roles["olga"][0]) == 0
        assert await adam.fetchval("SELECT remove_member($1, $2)", w2, roles["eve"][0]) == 0
        assert await adam.execute("UPDATE workspace_members SET role = 'viewer' WHERE role_name = $1",
                                  roles["edith"][0]) == "UPDATE 1"
        assert await adam.fetchval("SELECT remove_member($1, $2)", w1, roles["edith"][0]) == 1
        assert await olga.fetchval("SELECT remove_member($1, $2)", w1, roles["adam"][0]) == 1
        members = await owner.fetch("SELECT role_name FROM workspace_members WHERE workspace_id = $1", w1)
        assert sorted(r[0] for r in members) == sorted([roles["val"][0], roles["olga"][0]])
    finally:
        for c in (edith, adam, olga):
            await c.close()


async def test_a_deletion_through_a_function_is_audited_with_the_members_login(people):
    owner, w1, _w2, roles = people
    edith_role, edith_dsn = roles["edith"]
    edith = await asyncpg.connect(edith_dsn)
    try:
        rule = await edith.fetchval(RULE, w1, "audited")
        start = await owner.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
        assert await edith.fetchval("SELECT delete_alert_rule($1)", rule) == 1
        rows = await owner.fetch(
            "SELECT actor, acting_role, table_name, operation, workspace_id, row_key, old_values ->> 'alert_name' AS name "
            "FROM audit_log WHERE id > $1 ORDER BY id", start)
        assert [tuple(r.values()) for r in rows] == [
            (edith_role, None, "performance_alerts", "DELETE", w1, {"id": str(rule)}, "audited")]
        # the member reads it in its workspace's trail
        assert await edith.fetchval("SELECT actor FROM audit_log WHERE id > $1 AND operation = 'DELETE'", start) \
            == edith_role
    finally:
        await edith.close()
