"""Tenancy guard over the whole migrated schema (migration 0013): every table with a workspace_id
column has row-level security enabled and FORCEd, the service's and the members' policies and no
policy on a setting a client controls; every view with one is security_invoker (so the tables'
policies apply to the caller, not to the view's owner) or a security_barrier `<mv>_mine` view that
filters on the member's workspaces; every materialized view with one (which cannot have row-level
security) is granted to no one but its owner and the maintenance role.
tests/integration/access/test_isolation.py proves the same with real logins and data.

Enumerated from the catalog, so a table or view added by a later migration is checked too.
Partitions are skipped: a query through the parent applies the parent's policies (reading a
partition directly is the owner's business).
"""

from __future__ import annotations

import pytest

from db.pool import connect

pytestmark = pytest.mark.services

# every relation of schema public with a workspace_id column (partitions skipped: see above)
_RELATIONS = """
SELECT c.relname, c.relkind::text AS kind, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       ARRAY(SELECT p.polname::text FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1) AS policy_names,
       EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid
               AND coalesce(pg_get_expr(p.polqual, p.polrelid), '') || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
                   LIKE '%current_setting%') AS on_setting,
       CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END AS viewdef,
       coalesce(c.reloptions, '{}') AS reloptions, c.relacl::text[] AS acl, pg_get_userbyid(c.relowner) AS owner
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
  AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT c.relispartition
  AND EXISTS (SELECT FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND a.attnum > 0
                AND NOT a.attisdropped)
ORDER BY c.relname
"""

_INVOKER = {"security_invoker=true", "security_invoker=on", "security_invoker=1", "security_invoker=yes"}


async def test_every_workspace_table_has_row_level_security_and_every_view_keeps_it(stack):
    conn = await connect(stack.dsn)
    try:
        relations = await conn.fetch(_RELATIONS)
    finally:
        await conn.close()
    tables = [r for r in relations if r["kind"] in ("r", "p")]
    views = [r for r in relations if r["kind"] == "v"]
    # materialized views cannot have row-level security: none may be granted to anyone but its owner
    matviews = [r for r in relations if r["kind"] == "m"]
    table_names = {r["relname"] for r in tables}
    view_names = {r["relname"] for r in views}
    # the enumeration finds what it should (a broken query must not pass vacuously)
    assert {"learning_events", "content_performance_metrics", "engagement_by_time", "content",
            "predictions", "parked_events"} <= table_names
    assert {"ai_learning_patterns", "viral_score_predictions", "time_series_metrics",
            "daily_learning_metrics_mine"} <= view_names
    assert not any(name.endswith("_default") for name in table_names)  # partitions skipped

    no_rls = [r["relname"] for r in tables if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
    no_policy = [r["relname"] for r in tables if not {"service_all", "member_read"} <= set(r["policy_names"])]
    on_setting = [r["relname"] for r in tables if r["on_setting"]]
    matview_names = {r["relname"] for r in relations if r["kind"] == "m"}
    not_invoker = [
        r["relname"] for r in views
        if not _INVOKER & {opt.lower() for opt in r["reloptions"]}
        and not ("security_barrier=true" in {opt.lower() for opt in r["reloptions"]}
                 and r["relname"].removesuffix("_mine") in matview_names and "member_workspaces" in r["viewdef"])
    ]
    assert {"daily_learning_metrics", "model_performance_summary"} <= {r["relname"] for r in matviews}
    # an ACL entry is grantee=privileges/grantor; the owner's own entry has grantee = owner
    granted = [r["relname"] for r in matviews
               if any(not entry.startswith((f"{r['owner']}=", "learnstream_maintenance=")) for entry in (r["acl"] or []))]
    problems = []
    if granted:
        problems.append(f"materialized views with workspace_id readable beyond their owner: {', '.join(granted)}")
    if no_rls:
        problems.append(f"tables with workspace_id but row-level security not enabled and forced: {', '.join(no_rls)}")
    if no_policy:
        problems.append(f"tables with workspace_id without the service's and the members' policies: {', '.join(no_policy)}")
    if on_setting:
        problems.append(f"tables with a policy on a setting the client controls: {', '.join(on_setting)}")
    if not_invoker:
        problems.append(f"views with workspace_id that are neither security_invoker nor a member's barrier view of a "
                        f"materialized view: {', '.join(not_invoker)}")
    assert not problems, "; ".join(problems)
