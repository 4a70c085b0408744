"""The workspace registry's cache is bounded (issue #23, item 12), on real PostgreSQL: a worker that
sees ever new workspaces remembers the most recently seen only, and still knows every one (a
forgotten one costs a query, not a wrong answer)."""

from __future__ import annotations

import uuid

import pytest

from db.pool import connect
from streams.ingest.registration import WorkspaceRegistry

pytestmark = pytest.mark.services


async def test_the_registry_remembers_a_bounded_number_of_workspaces(stack):
    conn = await connect(stack.dsn)
    try:
        auto = WorkspaceRegistry("auto", max_cached=100)
        ids = [uuid.uuid4() for _ in range(1000)]
        for i in range(0, 1000, 10):
            assert await auto.unknown(conn, set(ids[i:i + 10])) == set()
        assert len(auto) == 100
        assert auto.all_known(set(ids[-100:])) and not auto.all_known({ids[0]})
        assert await conn.fetchval("SELECT count(*) FROM workspaces WHERE id = ANY($1::uuid[])", ids) == 1000
        # mode registered: a forgotten workspace is looked up again and still known
        strict = WorkspaceRegistry("registered", max_cached=5)
        assert await strict.unknown(conn, set(ids[:8])) == set()
        stranger = uuid.uuid4()
        assert await strict.unknown(conn, {ids[0], stranger}) == {stranger}
        assert len(strict) == 5
    finally:
        await conn.close()
