"""Tenancy guard over the whole migrated schema: every table with a workspace_id column has
row-level security enabled and a policy, every view with one is security_invoker (so the
tables' policies apply to the caller, not to the view's owner), and every materialized view with one
(which cannot have row-level security) is granted to no one but its owner.

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
SELECT c.relname, c.relkind::text AS kind, c.relrowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
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
    assert {"ai_learning_patterns", "viral_score_predictions", "time_series_metrics"} <= view_names
    assert not any(name.endswith("_default") for name in table_names)  # partitions skipped

    no_rls = [r["relname"] for r in tables if not r["relrowsecurity"]]
    no_policy = [r["relname"] for r in tables if r["policies"] == 0]
    not_invoker = [
        r["relname"] for r in views
        if not _INVOKER & {opt.lower() for opt in r["reloptions"]}
    ]
    assert {"daily_learning_metrics", "model_performance_summary"} <= {r["relname"] for r in matviews}
    # an ACL entry is grantee=privileges/grantor; the owner's own entry has grantee = owner
    granted = [r["relname"] for r in matviews
               if any(not entry.startswith(f"{r['owner']}=") for entry in (r["acl"] or []))]
    problems = []
    if granted:
        problems.append(f"materialized views with workspace_id readable beyond their owner: {', '.join(granted)}")
    if no_rls:
        problems.append(f"tables with workspace_id but row-level security disabled: {', '.join(no_rls)}")
    if no_policy:
        problems.append(f"tables with workspace_id but no policy: {', '.join(no_policy)}")
    if not_invoker:
        problems.append(f"views with workspace_id that are not security_invoker: {', '.join(not_invoker)}")
    assert not problems, "; ".join(problems)
