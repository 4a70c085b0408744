"""Creating and dropping whole databases (tests and the bench use one per run)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def dsn_for(dsn: str, database: str) -> str:
    """`dsn` pointing at another database on the same server."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


def dsn_as(dsn: str, role: str, password: str | None = None) -> str:
    """`dsn` logging in as another role (with its password; without one it is left out)."""
    parts = urlsplit(dsn)
    port = f":{parts.port}" if parts.port else ""
    auth = f"{role}:{password}" if password is not None else role
    return urlunsplit(parts._replace(netloc=f"{auth}@{parts.hostname}{port}"))


async def create_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn_for(admin_dsn, name)


async def create_migrated_database(admin_dsn: str, name: str) -> str:
    """A new database with every migration applied and the current partitions made."""
    from db.migrate import migrate
    from db.partitions import ensure_partitions
    from db.pool import connect

    dsn = await create_database(admin_dsn, name)
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await ensure_partitions(conn)
    finally:
        await conn.close()
    return dsn


async def drop_database(admin_dsn: str, name: str, attempts: int = 20) -> None:
    """Drop `name` if it exists. A plain DROP ends autovacuum workers by itself (FORCE would need
    the right to signal them, which an ordinary owner lacks); FORCE is the last resort for
    sessions of our own role that linger."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(attempts):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == attempts - 1:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    return
                await asyncio.sleep(0.25)
    finally:
        await conn.close()
