"""Numbered SQL migrations (db/migrations/NNNN_name.sql), each applied in its own transaction and
recorded in schema_migrations (version, name, checksum, applied_at).

Re-running is a no-op. A file whose checksum differs from the one recorded when it was applied is
refused: applied migrations are history; change the schema with a new file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: pg_advisory_xact_lock key: one migrator at a time per database
_LOCK_KEY = 0x6C73_6D69  # "lsmi"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """A migration cannot be applied; the message says which and why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations in order; return the ones applied now."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    await conn.execute(_CREATE_LEDGER)
    for mig in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            row = await conn.fetchrow(
                "SELECT name, checksum FROM schema_migrations WHERE version = $1", mig.version
            )
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name}.sql was edited after it was applied "
                        f"(checksum {row['checksum'][:12]}… recorded, {mig.checksum[:12]}… on disk); "
                        "applied migrations are history: revert the edit and add a new migration"
                    )
                continue
            try:
                await conn.execute(mig.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {mig.version:04d}_{mig.name}.sql failed: {exc.__class__.__name__}: {exc}"
                ) from exc
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                mig.version,
                mig.name,
                mig.checksum,
            )
            applied_now.append(mig)
    return applied_now


async def pending(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations on disk not yet applied (empty when the schema is current)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[int] = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m for m in discover(directory) if m.version not in done]
