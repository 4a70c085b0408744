"""Fixtures of the access tests: a superuser connection where the cluster gives one."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.pool import connect


def _local_superuser() -> tuple[str, Path] | None:
    """(password, server log) of the superuser `postgres` of `learnstream services up`'s cluster."""
    from streams.config import state_dir
    from streams.devkit.services.postgres import layout, superuser_password

    lay = layout(state_dir())
    password = superuser_password(lay)
    return (password, lay.log_file) if password else None


@pytest.fixture
async def superuser(stack):
    """(DSN of a superuser on the test's database, the server's log file or None). Skips where the
    services give no superuser (a cluster that is not this checkout's)."""
    from db.databases import dsn_as

    conn = await connect(stack.dsn)
    try:
        if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            return stack.dsn, None
    finally:
        await conn.close()
    local = _local_superuser()
    if local is None:
        pytest.skip("no superuser password for these services")
    return dsn_as(stack.dsn, "postgres", local[0]), local[1]
