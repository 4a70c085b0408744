"""Partition manager: makes the time partitions of the ingest tables ahead of time.

Each table has a DEFAULT partition so no event ever fails for a missing partition. When a period's
partition is created and DEFAULT already holds rows of that period (events that arrived before the
partition existed), those rows are moved into the new partition in the same transaction.
Partition names and bounds come from TableSpec constants and computed dates only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from db.rollups import ROLLUP_TABLES
from db.tables import TABLES, TableSpec

#: every time-partitioned table: the ingest tables and the window rollups
PARTITIONED: tuple[TableSpec, ...] = (*TABLES.values(), *(t.spec for t in ROLLUP_TABLES.values()))

log = logging.getLogger("learnstream.partitions")

#: serialises partition managers of several workers (pg_advisory_xact_lock key)
_LOCK_KEY = 0x6C73_7061  # "lspa"


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    end: datetime


def period_start(spec: TableSpec, t: datetime) -> datetime:
    t = t.astimezone(UTC)
    if spec.period == "day":
        return datetime(t.year, t.month, t.day, tzinfo=UTC)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _next(spec: TableSpec, start: datetime) -> datetime:
    if spec.period == "day":
        return start + timedelta(days=1)
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def _prev(spec: TableSpec, start: datetime) -> datetime:
    if spec.period == "day":
        return start - timedelta(days=1)
    return datetime(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1, tzinfo=UTC)


def period_of(spec: TableSpec, t: datetime) -> Period:
    start = period_start(spec, t)
    suffix = f"y{start.year}m{start.month:02d}" + (f"d{start.day:02d}" if spec.period == "day" else "")
    return Period(f"{spec.name}_{suffix}", start, _next(spec, start))


def periods_around(spec: TableSpec, now: datetime, back: int, ahead: int) -> list[Period]:
    """The period containing `now`, `back` periods before it and `ahead` after it."""
    start = period_start(spec, now)
    for _ in range(back):
        start = _prev(spec, start)
    out = []
    for _ in range(back + 1 + ahead):
        out.append(period_of(spec, start))
        start = _next(spec, start)
    return out


#: how far ahead (and back, for late events) each period length is kept ready
HORIZON = {"day": (2, 7), "month": (1, 2)}


#: how long partition DDL may wait for a lock before it gives up (the next round tries again):
#: what ingest can be made to wait behind it at most
LOCK_TIMEOUT_MS = 200


class PartitionBusy(Exception):
    """A partition's DDL gave up waiting for a lock (a long reader): tried again next round."""


async def ensure_partition(conn: asyncpg.Connection, spec: TableSpec, period: Period,
                           lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> int | None:
    """Create `period`'s partition if missing. Returns rows moved from DEFAULT, or None if it existed.

    The partition is made as a table of its own and attached: ATTACH takes SHARE UPDATE EXCLUSIVE on
    the parent, which writers (ROW EXCLUSIVE) do not wait for, where CREATE TABLE … PARTITION OF takes
    ACCESS EXCLUSIVE and, queued behind a long reader, would stop every write to the table. Every lock
    is waited for at most `lock_timeout_ms` (raises PartitionBusy then)."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", period.name):
                return None
            await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
            # CREATE TABLE (LIKE parent), DEFAULT's rows of the period moved in, ATTACH: done by the
            # owner's function (migration 0022), so a worker that owns nothing can make partitions
            return await conn.fetchval("SELECT ls_create_partition($1, $2, $3, $4)",
                                       spec.name, period.name, period.start, period.end)
    except asyncpg.exceptions.LockNotAvailableError as exc:
        raise PartitionBusy(f"{period.name}: a lock was not granted within {lock_timeout_ms} ms") from exc


async def ensure_partitions(conn: asyncpg.Connection, now: datetime | None = None,
                            lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> list[str]:
    """Make every partitioned table's partitions around `now`; return the names created. A partition
    whose locks are not granted in time is left for the next round (logged), the others are made."""
    now = now or datetime.now(UTC)
    created = []
    busy = []
    for spec in PARTITIONED:
        back, ahead = HORIZON[spec.period]
        for period in periods_around(spec, now, back, ahead):
            try:
                if await ensure_partition(conn, spec, period, lock_timeout_ms) is not None:
                    created.append(period.name)
            except PartitionBusy as exc:
                busy.append(str(exc))
    if busy:
        log.warning("partitions left for the next round (locks held by others): %s", "; ".join(busy))
    return created


async def partition_counts(conn: asyncpg.Connection, table: str) -> list[tuple[str, int]]:
    """(partition name, row count) for each partition of `table`, in bound order, DEFAULT last."""
    rows = await conn.fetch(
        """
        SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass
        ORDER BY (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'), c.relname
        """,
        table,
    )
    out = []
    for r in rows:
        # identifiers from the catalog, quoted
        count = await conn.fetchval(f'SELECT count(*) FROM "{r["name"]}"')
        out.append((r["name"], int(count)))
    return out
