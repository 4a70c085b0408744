"""asyncpg connections: codecs, the per-connection staging tables of the writer, and the one
writer pool a worker shares among its stages."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson

from db.tables import TABLES


def _jsonb_encode(value) -> bytes:
    # jsonb binary wire format: a version byte (1) then the JSON text. bytes are taken as JSON
    # already serialised; anything else (dicts from the contracts) is serialised here, in the
    # codec, so building a row needs no per-field Python work.
    if type(value) is bytes:
        return b"\x01" + value
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes):
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in binary format both ways (binary COPY needs a binary encoder)
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_encode, decoder=_jsonb_decode, format="binary"
    )


async def _init_writer_connection(conn: asyncpg.Connection) -> None:
    await _init_connection(conn)
    for spec in TABLES.values():
        await conn.execute(spec.create_staging_sql())


async def connect(dsn: str, **kwargs) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn)
    return conn


async def create_pool(dsn: str, size: int = 2, **kwargs) -> asyncpg.Pool:
    """A plain pool (the codecs, no staging tables)."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, init=_init_connection, command_timeout=60,
                                     **kwargs)


async def create_writer_pool(dsn: str, size: int = 4, **kwargs) -> asyncpg.Pool:
    """A pool whose connections each carry the staging tables (temporary, per session)."""
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        init=_init_writer_connection,
        command_timeout=60,
        **kwargs,
    )


class SharedPool:
    """One writer pool per worker, created on first use (PostgreSQL may be down at start), for
    every topic's sink: connections = db_pool_size, not a pool per topic."""

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn, self._size = dsn, size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_writer_pool(self._dsn, self._size)
            return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def set_lock_timeout(conn: asyncpg.Connection, seconds: float | None) -> None:
    """Inside a transaction: wait at most `seconds` for each lock (SET LOCAL lock_timeout; none: as
    the session has it)."""
    if seconds is not None:
        await conn.execute(f"SET LOCAL lock_timeout = '{max(1, int(seconds * 1000))}ms'")
