"""The idempotent batch write.

Two ways to write a batch, both one transaction:

* **direct** (optimistic): binary COPY straight into the partitioned table. Duplicates inside the
  batch are removed in Python first; a row already stored (a redelivery after a crash, an event a
  producer sent twice) makes the primary key refuse the COPY, and the batch is written staged:
* **staged**: COPY into the connection's temporary staging table, then
  INSERT … SELECT … ON CONFLICT DO NOTHING, which skips the stored rows.

Direct is ~30% faster on this schema (`learnstream bench --write-path`), but a refused COPY is
wasted work, so after a conflict a table writes staged for the next STAGED_AFTER_CONFLICT batches
before it tries direct again: a duplicate-heavy stream settles on staged, a clean one on direct.
PostgreSQL refuses COPY FROM into a table whose row-level security applies to the writer
("COPY FROM not supported with row-level security"), which since migration 0013 (FORCE ROW LEVEL
SECURITY on every tenant table, the owner included) is every ingest table. Its partitions have no
row-level security of their own (nobody but the owner may touch them: nothing is granted on them),
so a direct batch whose rows all fall in one partition is COPYed into that partition; the partition
checks its range, and the transaction checks that it is still attached (retention may detach it)
before it commits. A batch spanning partitions, or one whose partition is unknown or gone, is
written staged through the parent, where the service's policy admits it. Should a COPY be refused
for row-level security all the same, the policy's direct writes are off for good.

Either way the result says how many rows were new and how many were duplicates. If PostgreSQL
rejects a row's data (a CHECK, a value out of range, db/errors.py) the batch is bisected so that every other
row still lands and the offending rows are returned to the caller (for the dead-letter topic)
instead of failing the whole batch. Connection-level failures propagate: the caller retries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from db.domain.routing import RouteReport
from db.errors import CONTENT, TRANSIENT, classify_db
from db.partitions import period_of
from db.tables import TableSpec, UpsertSpec


def _row_error(exc: BaseException, isolate: bool) -> bool:
    """Does `exc` come from some row's data (so bisect to find it)? With `isolate` (the caller
    retried it and it did not go away), anything that is not the connection's or the server's."""
    kind = classify_db(exc)
    if kind == CONTENT:
        return True
    if not isolate:
        return False
    return kind != TRANSIENT and not isinstance(exc, (OSError, TimeoutError))
#: batches written staged after a direct COPY met a stored row
STAGED_AFTER_CONFLICT = 20


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    #: (position in the rows given, error text) for rows PostgreSQL refused
    rejected: list[tuple[int, str]] = field(default_factory=list)
    #: seconds spent in COPY + INSERT round trips (whole transactions)
    write_seconds: float = 0.0
    transactions: int = 0
    #: batches written directly / staged / direct attempts refused for a stored row
    direct: int = 0
    staged: int = 0
    conflicts: int = 0
    #: positions of the rows that are in the table now, first occurrences only: stored by this
    #: call or stored before (a redelivery, a producer's repeat), not rejected
    accepted: list[int] = field(default_factory=list)
    #: what routing did with the rows new in the table (learning events), committed transactions only
    routing: RouteReport = field(default_factory=RouteReport)


class WritePolicy:
    """Per-table choice between direct and staged writes (see the module docstring)."""

    def __init__(self, staged_after_conflict: int = STAGED_AFTER_CONFLICT, optimistic: bool = True) -> None:
        self.staged_after_conflict = staged_after_conflict
        self.optimistic = optimistic
        self._staged_left: dict[str, int] = {}
        self._partitions: dict[str, set[str]] = {}
        self._loaded: dict[str, float] = {}

    def try_direct(self, table: str) -> bool:
        if not self.optimistic:
            return False
        left = self._staged_left.get(table, 0)
        if left:
            self._staged_left[table] = left - 1
            return False
        return True

    def conflicted(self, table: str) -> None:
        self._staged_left[table] = self.staged_after_conflict

    async def partition_for(self, conn: asyncpg.Connection, spec: TableSpec, rows: list[tuple]) -> str | None:
        """The attached partition every row of `rows` falls in, else None (the names are read from the
        catalog, again when a batch names one not seen, at most every PARTITIONS_REFRESH_S)."""
        ti = spec.time_index
        times = [r[ti] for r in rows]
        period = period_of(spec, min(times))
        if max(times) >= period.end:
            return None
        names = self._partitions.get(spec.name)
        if names is None or (period.name not in names
                             and time.monotonic() - self._loaded.get(spec.name, 0.0) > PARTITIONS_REFRESH_S):
            names = self._partitions[spec.name] = {r[0] for r in await conn.fetch(_PARTITIONS, spec.name)}
            self._loaded[spec.name] = time.monotonic()
        return period.name if period.name in names else None

    def forget_partitions(self, table: str) -> None:
        self._partitions.pop(table, None)
        self._loaded.pop(table, None)


#: how often at most the partition names of a table are read again for a batch naming an unknown one
PARTITIONS_REFRESH_S = 10.0
_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass AND NOT i.inhdetachpending AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
"""
_STILL_ATTACHED = """
SELECT EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace
                 AND i.inhparent = $2::regclass AND NOT i.inhdetachpending)
"""


class _PartitionGone(Exception):
    """The partition a direct batch was copied into is no longer attached (retention detached it)."""


def _unique(spec: TableSpec | UpsertSpec, rows: list[tuple]) -> tuple[list[tuple], list[int]]:
    """Rows without repeats of a (time, id, workspace) key, and the positions kept: the same id in
    two workspaces is two events (migration 0025), never one workspace's duplicate of the other's."""
    ti = spec.time_index
    wi = spec.workspace_index if isinstance(spec, TableSpec) else None  # an UpsertSpec's is in its record
    seen: set = set()
    kept: list[tuple] = []
    positions: list[int] = []
    for pos, row in enumerate(rows):
        rid = row[0]
        ws = row[wi] if wi is not None else row[2].get("workspace_id")
        # UUID.__hash__ is Python code; int's is C
        key = (row[ti], rid.int if type(rid) is UUID else rid, ws.int if type(ws) is UUID else ws)
        if key not in seen:
            seen.add(key)
            kept.append(row)
            positions.append(pos)
    return kept, positions


async def _write_staged(conn: asyncpg.Connection, spec: TableSpec | UpsertSpec, rows: list[tuple],
                        route: bool = True) -> tuple[int, RouteReport | None]:
    report = None
    async with conn.transaction():
        if isinstance(spec, UpsertSpec):
            return await spec.apply(conn, rows), None
        await conn.copy_records_to_table(spec.staging, records=rows, columns=spec.columns)
        if spec.route is None or not route:
            status = await conn.execute(spec.insert_sql())
            return int(status.rsplit(" ", 1)[1]), None
        # the rows new in the table (not a redelivery) are routed, in this transaction
        stored = await conn.fetch(spec.insert_sql() + f' RETURNING "{spec.time_column}", id, workspace_id')
        if stored:
            new = {(r[0], r[1], r[2]) for r in stored}
            ti, wi = spec.time_index, spec.workspace_index
            report = await spec.route(conn, [row for row in rows if (row[ti], row[0], row[wi]) in new])
    return len(stored), report


async def _write_direct(conn: asyncpg.Connection, spec: TableSpec, rows: list[tuple], partition: str,
                        route: bool = True) -> tuple[int, RouteReport | None]:
    report = None
    async with conn.transaction():
        await conn.copy_records_to_table(partition, records=rows, columns=spec.columns)
        # the COPY holds the partition: a detach (which needs it exclusively) has happened before or waits
        if not await conn.fetchval(_STILL_ATTACHED, partition, spec.name):
            raise _PartitionGone(partition)
        if spec.route is not None and route:
            report = await spec.route(conn, rows)
    return len(rows), report


async def write_rows(
    conn: asyncpg.Connection, spec: TableSpec | UpsertSpec, rows: list[tuple], policy: WritePolicy | None = None,
    *, isolate: bool = False, route: bool = True,
) -> WriteResult:
    """Write `rows` (tuples in spec.columns order) idempotently. See the module docstring. With
    `isolate`, any failure that is not the connection's or the server's is bisected to its rows.
    With `route` (and a spec that routes: learning events), the rows new in the table are routed
    into the domain tables in the same transaction. An UpsertSpec's rows are applied by its
    statements, bisected the same way."""
    result = WriteResult()
    if not rows:
        return result
    unique, positions = _unique(spec, rows)
    result.duplicates += len(rows) - len(unique)
    partition = None
    if policy is not None and not isinstance(spec, UpsertSpec) and policy.try_direct(spec.name):
        partition = await policy.partition_for(conn, spec, unique)
    if partition is not None:
        t0 = time.perf_counter()
        try:
            inserted, report = await _write_direct(conn, spec, unique, partition, route)
            result.inserted += inserted
            if report is not None:
                result.routing.add(report)
            result.accepted = positions
            result.direct += 1
            return result
        except asyncpg.exceptions.UniqueViolationError:
            result.conflicts += 1
            policy.conflicted(spec.name)
        except (_PartitionGone, asyncpg.exceptions.UndefinedTableError):
            policy.forget_partitions(spec.name)  # detached or dropped by retention: staged through the parent
        except asyncpg.exceptions.FeatureNotSupportedError:
            policy.optimistic = False  # row-level security applies to this writer: staged from now on
        except Exception as exc:
            if not _row_error(exc, isolate):
                raise
            # the staged path below finds the row(s) by bisection
        finally:
            result.write_seconds += time.perf_counter() - t0
            result.transactions += 1
    await _write_bisecting(conn, spec, unique, positions, result, isolate, route)
    refused = {pos for pos, _ in result.rejected}
    result.accepted = [pos for pos in positions if pos not in refused]
    return result


async def _write_bisecting(
    conn: asyncpg.Connection, spec: TableSpec | UpsertSpec, rows: list[tuple], positions: list[int],
    result: WriteResult, isolate: bool = False, route: bool = True,
) -> None:
    pending: list[tuple[int, int]] = [(0, len(rows))]  # [start, end) slices of rows
    while pending:
        start, end = pending.pop()
        chunk = rows[start:end]
        t0 = time.perf_counter()
        try:
            inserted, report = await _write_staged(conn, spec, chunk, route)
        except Exception as exc:
            if not _row_error(exc, isolate):
                raise
            result.write_seconds += time.perf_counter() - t0
            result.transactions += 1
            if len(chunk) == 1:
                result.rejected.append((positions[start], f"{exc.__class__.__name__}: {exc}"))
            else:
                mid = start + len(chunk) // 2
                pending.append((mid, end))
                pending.append((start, mid))
            continue
        result.write_seconds += time.perf_counter() - t0
        result.transactions += 1
        result.staged += 1
        result.inserted += inserted
        if report is not None:
            result.routing.add(report)
        result.duplicates += len(chunk) - inserted
    result.rejected.sort()
