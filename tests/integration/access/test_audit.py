"""The audit trail (migration 0015) on real logins: who changed which configuration row, from what
to what, readable per workspace under the same isolation; `learnstream audit tail`."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest

from tests.integration.access.logins import member_logins
from tests.support import ROOT

pytestmark = pytest.mark.services



@pytest.fixture
async def people(stack):
    """Workspaces w1, w2; edith edits w1, val views w1, vera views w2 (own logins)."""
    async with member_logins(stack, [("edith", 1, "editor"), ("vera", 2, "viewer"), ("val", 1, "viewer")]) as made:
        yield made


async def test_changes_are_recorded_with_who_what_and_values(people, stack):
    owner, w1, w2, roles = people
    edith_role, edith_dsn = roles["edith"]
    start = await owner.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    edith = await asyncpg.connect(edith_dsn)
    try:
        rule = await edith.fetchval(
            "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value) "
            "VALUES ($1, 'slow', 'processing_time_ms.p95', '>', 500) RETURNING id", w1)
        await edith.execute("UPDATE performance_alerts SET threshold_value = 750, updated_at = now() WHERE id = $1", rule)
        await edith.execute("UPDATE performance_alerts SET updated_at = now() WHERE id = $1", rule)  # no change of note
        assert await edith.fetchval("SELECT delete_alert_rule($1)", rule) == 1  # members delete through it (0026)
        # she may not write the trail herself, nor change it, nor call its function
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await edith.execute("INSERT INTO audit_log (actor, table_name, operation, row_key) "
                                "VALUES ('x', 'y', 'INSERT', '{}')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await edith.execute("DELETE FROM audit_log")
        with pytest.raises(asyncpg.PostgresError):
            await edith.execute("SELECT audit_row()")
    finally:
        await edith.close()
    rows = await owner.fetch("SELECT * FROM audit_log WHERE id > $1 AND table_name = 'performance_alerts' ORDER BY id",
                             start)
    assert [(r["actor"], r["operation"], r["workspace_id"], r["row_key"]) for r in rows] == [
        (edith_role, "INSERT", w1, {"id": str(rule)}),
        (edith_role, "UPDATE", w1, {"id": str(rule)}),
        (edith_role, "DELETE", w1, {"id": str(rule)}),
    ]
    insert, update, delete = rows
    assert insert["old_values"] is None and insert["new_values"]["threshold_value"] == 500
    assert (update["old_values"]["threshold_value"], update["new_values"]["threshold_value"]) == (500, 750)
    assert "updated_at" not in update["new_values"]
    assert delete["old_values"]["threshold_value"] == 750 and delete["new_values"] is None

    # the service's own bookkeeping is no configuration change; a retention policy's is (no workspace)
    report = await owner.fetchval("INSERT INTO custom_reports (workspace_id, name, report_type, query_config) "
                                  "VALUES ($1, 'r', 'engagement', '{}') RETURNING id", w1)
    schedule = await owner.fetchval("INSERT INTO report_schedules (workspace_id, report_id, cron_expr) "
                                    "VALUES ($1, $2, '0 9 * * 1') RETURNING id", w1, report)
    await owner.execute("UPDATE report_schedules SET next_run_at = now(), last_run_at = now() WHERE id = $1", schedule)
    await owner.execute("UPDATE data_retention_policies SET retention_period = interval '400 days' "
                        "WHERE table_name = 'learning_events'")
    tail = await owner.fetch("SELECT actor, table_name, operation, workspace_id FROM audit_log WHERE id > $1 "
                             "AND table_name <> 'performance_alerts' ORDER BY id", start)
    assert [tuple(r) for r in tail] == [
        ("learnstream_owner", "custom_reports", "INSERT", w1),
        ("learnstream_owner", "report_schedules", "INSERT", w1),
        ("learnstream_owner", "data_retention_policies", "UPDATE", None),
    ]

    # read per workspace: a viewer of w1 sees w1's trail, one of w2 sees none of it, nobody sees the policy's
    for name, sees in (("val", True), ("vera", False)):
        conn = await asyncpg.connect(roles[name][1])
        try:
            got = await conn.fetch("SELECT DISTINCT workspace_id FROM audit_log WHERE id > $1", start)
            assert [r[0] for r in got] == ([w1] if sees else []), name
        finally:
            await conn.close()

    # the CLI, as the operator
    out = subprocess.run([sys.executable, "-m", "streams.cli", "audit", "tail", "-n", "6", "--table", "performance_alerts"],
                         cwd=ROOT, env=stack.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if not line.startswith("    ")]
    assert [line.split(" ", 3)[3] for line in lines] == [
        f"{edith_role} INSERT performance_alerts (id={rule})",
        f"{edith_role} UPDATE performance_alerts (id={rule})",
        f"{edith_role} DELETE performance_alerts (id={rule})",
    ]
    assert "    threshold_value: 500 -> 750" in out.stdout.splitlines()


async def test_memberships_and_workspaces_are_audited(people):
    owner, w1, _w2, roles = people
    rows = await owner.fetch("SELECT table_name, operation, workspace_id, row_key, new_values->>'role' AS role "
                             "FROM audit_log WHERE table_name IN ('workspaces', 'workspace_members') ORDER BY id")
    assert [(r["table_name"], r["operation"]) for r in rows][:2] == [("workspaces", "INSERT"), ("workspaces", "INSERT")]
    members = [(r["workspace_id"], r["row_key"]["role_name"], r["role"]) for r in rows if r["table_name"] == "workspace_members"]
    assert (w1, roles["edith"][0], "editor") in members
    assert len(members) == 3
