"""Creating and dropping whole databases (tests and the bench use one per run)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
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


#: the migrated template databases' name prefix (see clone_migrated_database)
TEMPLATE_PREFIX = "ls_template_"
#: pg_advisory_lock key on the admin database: one builder of the template at a time, across processes
_TEMPLATE_LOCK_KEY = 0x6C73_746D  # "lstm"
#: templates this process has already seen built
_templates_ready: set[tuple[str, str]] = set()


def template_name(now: datetime | None = None) -> str:
    """The template for the migrations on disk and today's partitions: named by a hash of every
    migration file and by the UTC date (ensure_partitions makes the partitions around today), so a
    changed migration or a new day gets a new template."""
    from db.migrate import MIGRATIONS_DIR

    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d")
    return f"{TEMPLATE_PREFIX}{digest.hexdigest()[:12]}_{day}"


async def _ensure_template(admin_dsn: str, name: str) -> None:
    """Build template `name` (migrated, partitions made) unless it exists. Several processes may ask
    at once: an advisory lock lets one build it; it is built under another name and renamed when
    complete, so a half-built one is never cloned. Older templates are dropped on the way."""
    if (admin_dsn, name) in _templates_ready:
        return
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK_KEY)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                building = f"{name}_building"
                await conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
                await create_migrated_database(admin_dsn, building)
                await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                stale = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2",
                    TEMPLATE_PREFIX, name,
                )
                for row in stale:
                    try:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}"')
                    except asyncpg.PostgresError:
                        pass  # in use (a clone being made from it): left for the next build
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK_KEY)
    finally:
        await conn.close()
    _templates_ready.add((admin_dsn, name))


async def clone_migrated_database(admin_dsn: str, name: str, attempts: int = 40) -> str:
    """What create_migrated_database makes (every migration applied, today's partitions made), as
    a copy of a template database built once (CREATE DATABASE ... TEMPLATE): much faster when many
    databases are made, as the tests do."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(attempts):
            template = template_name()
            await _ensure_template(admin_dsn, template)
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                break
            except (asyncpg.ObjectInUseError, asyncpg.InvalidCatalogNameError):
                # in use: the template must have no session (another process's build just ended, or
                # autovacuum); gone: the day turned and another process built the next one
                _templates_ready.discard((admin_dsn, template))
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await conn.close()
    return dsn_for(admin_dsn, name)


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
