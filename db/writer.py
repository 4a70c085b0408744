"""The idempotent batch write: COPY into the connection's temporary staging table, then
INSERT … SELECT … ON CONFLICT DO NOTHING into the partitioned table, in one transaction.

A redelivered event (same id and time) is skipped by the primary key; the result says how many
rows were new and how many were duplicates. If PostgreSQL rejects a row's data (a CHECK, a
value out of range) the batch is bisected so that every other row still lands and the offending
rows are returned to the caller (for the dead-letter topic) instead of failing the whole batch.
Connection-level failures propagate: the caller retries the whole batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from db.tables import TableSpec

#: errors that belong to the data of some row, not to the connection or the server's state
ROW_DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg_base.DataError,
)


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    #: (position in the rows given, error text) for rows PostgreSQL refused
    rejected: list[tuple[int, str]] = field(default_factory=list)
    #: seconds spent in COPY + INSERT round trips (whole transactions)
    write_seconds: float = 0.0
    transactions: int = 0


async def _write_once(conn: asyncpg.Connection, spec: TableSpec, rows: list[tuple]) -> int:
    async with conn.transaction():
        await conn.copy_records_to_table(spec.staging, records=rows, columns=spec.columns)
        status = await conn.execute(spec.insert_sql())
    return int(status.rsplit(" ", 1)[1])


async def write_rows(conn: asyncpg.Connection, spec: TableSpec, rows: list[tuple]) -> WriteResult:
    """Write `rows` (tuples in spec.columns order) idempotently. See the module docstring."""
    result = WriteResult()
    pending: list[tuple[int, list[tuple]]] = [(0, rows)] if rows else []
    while pending:
        offset, chunk = pending.pop()
        t0 = time.perf_counter()
        try:
            inserted = await _write_once(conn, spec, chunk)
        except ROW_DATA_ERRORS as exc:
            result.write_seconds += time.perf_counter() - t0
            result.transactions += 1
            if len(chunk) == 1:
                result.rejected.append((offset, f"{exc.__class__.__name__}: {exc}"))
            else:
                half = len(chunk) // 2
                pending.append((offset + half, chunk[half:]))
                pending.append((offset, chunk[:half]))
            continue
        result.write_seconds += time.perf_counter() - t0
        result.transactions += 1
        result.inserted += inserted
        result.duplicates += len(chunk) - inserted
    result.rejected.sort()
    return result
