"""Retention and archival (issue #11): the one place for its SQL.

RETAINED is the registry of the tables retention may touch; a table name in SQL comes from it, from
the catalog (partition names) or from the archive schema, never from a policy row: a policy naming
any other table is an error in the run's log and runs no SQL.

A run, per policy (data_retention_policies, migration 0014), with cutoff = as_of - retention_period
(computed in UTC by PostgreSQL, so '6 months' means calendar months):

* a time-partitioned table: each partition whose upper bound is at or before the cutoff (wholly
  past it; a partition straddling the cutoff stays) is detached, then dropped ('drop') or moved into
  schema archive and attached to archive.<table> ('archive'). The DEFAULT partition is never
  detached; its rows before the cutoff are deleted or moved in batches like a plain table's.
* a plain table: rows before the cutoff are deleted or moved into archive.<table> in batches of the
  policy's batch_size, one short transaction each (FOR UPDATE SKIP LOCKED: a row someone is writing
  waits for the next run), then ANALYZE when at least analyze_min_rows changed.

How a partition is detached without stalling ingest. DETACH PARTITION ... CONCURRENTLY takes only
a SHARE UPDATE EXCLUSIVE lock on the parent, but PostgreSQL refuses it when the table has a DEFAULT
partition ("cannot detach partitions concurrently when a default partition exists") and inside a
transaction block, and every partitioned table here has a DEFAULT. So CONCURRENTLY is used where
PostgreSQL allows it (a table without DEFAULT); otherwise a plain DETACH, which needs an ACCESS
EXCLUSIVE lock on the parent, the partition and the DEFAULT partition, runs in a transaction with
`SET LOCAL lock_timeout` (maintenance_lock_timeout_ms, 100 ms). While that request waits for the
ingest transactions holding ROW EXCLUSIVE, new ingest transactions queue behind it; lock_timeout
caps that queueing, then the attempt gives up, the queue drains, and it is tried again after a
jittered backoff, up to maintenance_lock_retries times. Once granted, the transaction does catalog
work only (detach; drop, or move to schema archive) and commits. An ingest batch therefore waits at
most about lock_timeout + that catalog work. A partition whose retries run out is logged as skipped
(not a failure) and the next run tries again. A partition left half-detached by an interrupted
CONCURRENTLY (pg_inherits.inhdetachpending) is completed with DETACH PARTITION ... FINALIZE.

Who may. The workers own nothing (issue #24): every DDL statement here (DETACH, DROP, SET SCHEMA,
ATTACH and ADD COLUMN on the archive, ANALYZE) is a call of one of the owner's narrow SECURITY
DEFINER functions of migration 0022, which check their arguments against the time-partitioned
tables and partition names. DETACH ... CONCURRENTLY cannot run in a function: it is used only when
the session's role owns the table (an operator's run as the owner); a worker detaches with
lock_timeout instead.

Attaching to archive.<table> scans the partition (to validate its range): that happens after the
live table's locks are released, holding only locks on archive objects. If a run stops between the
two, its 'archive_partition' action stays 'pending' and the next run attaches it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import asyncpg

from db.backoff import Backoff
from db.partitions import HORIZON, PARTITIONED, ensure_partition, periods_around

ARCHIVE = "archive"
STRATEGIES = ("drop", "archive")
#: a CONCURRENTLY detach (a table without DEFAULT) waits for older snapshots; it does not block
#: ingest, but a run gives up on it after this long (the partition stays pending: FINALIZE next run)
CONCURRENT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Retained:
    """A table retention supports: its time column and, when time-partitioned, its period."""

    name: str
    time_column: str
    period: str | None = None  # 'day' | 'month' for a partitioned table
    is_date: bool = False  # the time column is a date (engagement_by_time.day)

    @property
    def partitioned(self) -> bool:
        return self.period is not None

    @property
    def default(self) -> str:
        return f"{self.name}_default"

    @property
    def archive(self) -> str:
        return f"{ARCHIVE}.{self.name}"

    @property
    def col(self) -> str:
        return f'"{self.time_column}"'


RETAINED: dict[str, Retained] = {
    **{s.name: Retained(s.name, s.time_column, s.period) for s in PARTITIONED},
    "alert_notifications": Retained("alert_notifications", "sent_at"),
    "report_executions": Retained("report_executions", "started_at"),
    "engagement_by_time": Retained("engagement_by_time", "day", is_date=True),
}


@dataclass(frozen=True)
class Options:
    lock_timeout_ms: int = 100
    lock_retries: int = 10
    retry_initial_s: float = 0.1
    retry_max_s: float = 2.0
    analyze_min_rows: int = 10_000


@dataclass(frozen=True)
class Policy:
    table: str
    retention: str  # as PostgreSQL prints the interval
    strategy: str
    batch_size: int
    cutoff: datetime
    last_cleanup: datetime | None = None


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: MINVALUE
    upper: datetime | None  # None: MAXVALUE
    is_default: bool = False
    pending_detach: bool = False
    row_estimate: int | None = None  # reltuples; None = never analyzed


@dataclass
class Action:
    table: str
    action: str
    status: str = "done"
    object: str | None = None
    range_start: datetime | None = None
    range_end: datetime | None = None
    rows: int | None = None
    batches: int | None = None
    attempts: int | None = None
    detail: str | None = None
    seconds: float | None = None


@dataclass
class RunReport:
    run_id: int
    as_of: datetime
    dry_run: bool
    actions: list[Action] = field(default_factory=list)
    #: the policies the run went through, by table
    policies: dict[str, Policy] = field(default_factory=dict)
    status: str = "running"
    seconds: float = 0.0

    def count(self, action: str, status: str | None = None) -> int:
        return sum(1 for a in self.actions if a.action == action and (status is None or a.status == status))

    def rows(self, action: str, statuses: tuple[str, ...] = ("done", "planned")) -> int:
        return sum(a.rows or 0 for a in self.actions if a.action == action and a.status in statuses)

    def failed_tables(self) -> list[str]:
        return sorted({a.table for a in self.actions if a.status == "failed"})


class RetentionError(Exception):
    """What a policy or a table's state does not allow (logged for that table, the others go on)."""


# -- pure parts ----------------------------------------------------------------------------------

_BOUND = re.compile(r"^FOR VALUES FROM \((?P<lo>[^)]*)\) TO \((?P<hi>[^)]*)\)$")


def _bound_value(text: str) -> datetime | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    value = datetime.fromisoformat(text.strip("'"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_bound(expr: str) -> tuple[datetime | None, datetime | None] | None:
    """A range partition's bounds from pg_get_expr(relpartbound): (lower, upper), None for MIN/MAXVALUE;
    None for the DEFAULT partition."""
    if expr == "DEFAULT":
        return None
    m = _BOUND.match(expr)
    if not m:
        raise ValueError(f"not a single-column range bound: {expr!r}")
    return _bound_value(m["lo"]), _bound_value(m["hi"])


def expired(partitions: list[Partition], cutoff: datetime) -> list[Partition]:
    """The partitions wholly before the cutoff (upper bound <= cutoff), oldest first; never DEFAULT."""
    out = [p for p in partitions if not p.is_default and p.upper is not None and p.upper <= cutoff]
    return sorted(out, key=lambda p: p.upper)


# -- catalog ----------------------------------------------------------------------------------------

async def policies(conn: asyncpg.Connection, as_of: datetime) -> list[Policy]:
    rows = await conn.fetch(
        """SELECT table_name, retention_period::text AS retention, archive_strategy, batch_size, last_cleanup,
                  (($1::timestamptz AT TIME ZONE 'UTC') - retention_period) AT TIME ZONE 'UTC' AS cutoff
           FROM data_retention_policies ORDER BY table_name""", as_of)
    return [Policy(r["table_name"], r["retention"], r["archive_strategy"], r["batch_size"], r["cutoff"],
                   r["last_cleanup"]) for r in rows]


async def partitions(conn: asyncpg.Connection, table: Retained | str) -> list[Partition]:
    """The partitions of `table` (or of a relation named by the code: an archive parent) in bound
    order, DEFAULT last, with pending detaches and row estimates."""
    rows = await conn.fetch(
        """SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound, i.inhdetachpending,
                  CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimate
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = $1::regclass""", table if isinstance(table, str) else table.name)
    out = []
    for r in rows:
        bound = parse_bound(r["bound"])
        lo, hi = bound if bound else (None, None)
        out.append(Partition(r["relname"], lo, hi, bound is None, r["inhdetachpending"], r["estimate"]))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda p: (p.is_default, p.lower or datetime.min.replace(tzinfo=UTC), p.upper or far))


async def has_default(conn: asyncpg.Connection, table: Retained) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = $1::regclass AND partdefid <> 0)",
        table.name)


async def owns(conn: asyncpg.Connection, relation: str) -> bool:
    """The session's role owns `relation` (or is a member of its owner)."""
    return bool(await conn.fetchval(
        "SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = $1::regclass", relation))


async def _columns(conn: asyncpg.Connection, relation: str) -> str:
    """The stored columns of a relation (from the catalog), quoted, in order."""
    names = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum", relation)
    return ", ".join('"' + n["attname"].replace('"', '""') + '"' for n in names)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- the run log ------------------------------------------------------------------------------------

async def start_run(conn: asyncpg.Connection, as_of: datetime, dry_run: bool, only: str | None,
                    trigger: str, worker: str | None) -> int:
    return await conn.fetchval(
        "INSERT INTO maintenance_runs (as_of, dry_run, only_table, trigger, worker) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING id", as_of, dry_run, only, trigger, worker)


class _Log:
    """Appends a run's actions to maintenance_actions as they happen."""

    def __init__(self, conn: asyncpg.Connection, report: RunReport) -> None:
        self.conn, self.report = conn, report

    async def add(self, action: Action, conn: asyncpg.Connection | None = None) -> int:
        self.report.actions.append(action)
        seq = len(self.report.actions)
        a = action
        await (conn or self.conn).execute(
            """INSERT INTO maintenance_actions (run_id, seq, table_name, action, object, range_start, range_end, rows,
                   batches, attempts, status, detail, seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            self.report.run_id, seq, a.table, a.action, a.object, a.range_start, a.range_end, a.rows, a.batches,
            a.attempts, a.status, a.detail, a.seconds)
        return seq

    async def update(self, seq: int, **changes) -> None:
        action = self.report.actions[seq - 1]
        for k, v in changes.items():
            setattr(action, k, v)
        await self.conn.execute(
            "UPDATE maintenance_actions SET status = $3, rows = $4, detail = $5, seconds = $6 WHERE run_id = $1 AND seq = $2",
            self.report.run_id, seq, action.status, action.rows, action.detail, action.seconds)


async def finish_run(conn: asyncpg.Connection, report: RunReport, error: str | None = None) -> None:
    """The run's totals (a dry run's: what it would do)."""
    st = ("planned",) if report.dry_run else ("done",)
    await conn.execute(
        """UPDATE maintenance_runs SET finished_at = clock_timestamp(), status = $2, error = $3,
               partitions_created = $4, partitions_detached = $5, partitions_skipped = $6, rows_archived = $7,
               rows_deleted = $8 WHERE id = $1""",
        report.run_id, report.status, error, report.count("create_partition", st[0]),
        report.count("detach_partition", st[0]) + report.count("finalize_detach", st[0]),
        report.count("detach_partition", "skipped"),
        report.rows("archive_rows", st) + report.rows("archive_partition", st),
        report.rows("delete_rows", st) + report.rows("drop_partition", st))


async def recent_runs(conn: asyncpg.Connection, limit: int = 5) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT *, extract(epoch FROM finished_at - started_at) AS seconds FROM maintenance_runs
           ORDER BY id DESC LIMIT $1""", limit)


async def run_actions(conn: asyncpg.Connection, run_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM maintenance_actions WHERE run_id = $1 ORDER BY seq", run_id)


# -- the work ---------------------------------------------------------------------------------------

def _transient(exc: BaseException) -> bool:
    """A lock not granted in time, a deadlock, a serialization failure: try again."""
    return isinstance(exc, (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.DeadlockDetectedError,
                            asyncpg.exceptions.SerializationError))


async def _retrying(fn, options: Options, sleep=asyncio.sleep) -> tuple[bool, int, str | None]:
    """Run fn() until it succeeds or its lock attempts run out: (succeeded, attempts, last error)."""
    last = None
    backoff = Backoff(options.retry_initial_s, options.retry_max_s)
    for attempt in range(1, options.lock_retries + 1):
        try:
            await fn()
            return True, attempt, None
        except Exception as exc:  # only lock waits are retried, the rest is raised
            if not _transient(exc):
                raise
            last = f"{exc.__class__.__name__}: {exc}"
            if attempt < options.lock_retries:
                await sleep(backoff.next_delay())
    return False, options.lock_retries, last


async def ensure_current_partitions(conn: asyncpg.Connection, log: _Log, as_of: datetime, dry_run: bool,
                                    only: str | None) -> None:
    """The partition manager's horizon around as_of (db.partitions), each partition created logged."""
    for spec in PARTITIONED:
        if only and spec.name != only:
            continue
        back, ahead = HORIZON[spec.period]
        for period in periods_around(spec, as_of, back, ahead):
            if dry_run:
                if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", period.name):
                    await log.add(Action(spec.name, "create_partition", "planned", period.name, period.start,
                                         period.end))
                continue
            moved = await ensure_partition(conn, spec, period)
            if moved is not None:
                await log.add(Action(spec.name, "create_partition", "done", period.name, period.start, period.end,
                                     rows=moved, detail=f"{moved} rows moved in from DEFAULT" if moved else None))


async def finish_pending_archives(conn: asyncpg.Connection, log: _Log, only: str | None) -> None:
    """Attach the partitions an earlier run moved to schema archive but did not attach."""
    pending = await conn.fetch(
        "SELECT run_id, seq, table_name, object, range_start, range_end FROM maintenance_actions "
        "WHERE action = 'archive_partition' AND status = 'pending' ORDER BY run_id, seq")
    for p in pending:
        table = RETAINED.get(p["table_name"])
        if table is None or (only and table.name != only):
            continue
        t0 = time.monotonic()
        rows = await _attach_archived(conn, table, p["object"], p["range_start"], p["range_end"])
        await conn.execute("UPDATE maintenance_actions SET status = 'done', rows = $3 WHERE run_id = $1 AND seq = $2",
                           p["run_id"], p["seq"], rows)
        await log.add(Action(table.name, "archive_partition", "done", p["object"], p["range_start"], p["range_end"],
                             rows=rows, detail=f"finished for run {p['run_id']}", seconds=time.monotonic() - t0))


async def _attach_archived(conn: asyncpg.Connection, table: Retained, name: str, lo: datetime | None,
                           hi: datetime | None) -> int:
    """archive.<name> (a detached partition moved to schema archive) into archive.<table>: with the
    archived_at column (a constant default: no rewrite), the archive DEFAULT's rows of its range moved
    in, then ATTACH (scans it, holding locks on archive objects only). When the archive already has a
    partition of that range (archived before under the same name), the rows are copied in and the
    table dropped. -> rows in it."""
    rel = f"{ARCHIVE}.{_q(name)}"
    async with conn.transaction():
        rows = await conn.fetchval(f"SELECT count(*) FROM {rel}")
        if not await conn.fetchval(
                "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'archived_at' "
                "AND NOT attisdropped)", rel):
            await conn.execute("SELECT ls_archive_partition($1, $2, 'prepare')", table.name, name)
        low, high = lo or datetime.min.replace(tzinfo=UTC), hi or datetime.max.replace(tzinfo=UTC)
        overlapping = [p for p in await partitions(conn, table.archive) if not p.is_default
                       and (p.lower is None or p.lower < high) and (p.upper is None or low < p.upper)]
        cols = await _columns(conn, rel)
        if overlapping:
            await conn.execute(f"INSERT INTO {table.archive} ({cols}) SELECT {cols} FROM {rel} ON CONFLICT DO NOTHING")
            await conn.execute("SELECT ls_archive_partition($1, $2, 'drop')", table.name, name)
            return int(rows)
        default = f"{ARCHIVE}.{_q(table.name + '_default')}"
        lo_sql = "true" if lo is None else f"{table.col} >= '{lo.isoformat()}'"
        hi_sql = "true" if hi is None else f"{table.col} < '{hi.isoformat()}'"
        await conn.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {lo_sql} AND {hi_sql} RETURNING {cols}) "
            f"INSERT INTO {rel} ({cols}) SELECT {cols} FROM moved ON CONFLICT DO NOTHING")
        await conn.execute("SELECT ls_archive_partition($1, $2, 'attach', $3, $4)", table.name, name, lo, hi)
        return int(await conn.fetchval(f"SELECT count(*) FROM {rel}"))


async def _detach_one(conn: asyncpg.Connection, log: _Log, table: Retained, policy: Policy, part: Partition,
                      options: Options, concurrently: bool) -> None:
    """Detach an expired partition, then drop it or move it to the archive."""
    rows = int(await conn.fetchval(f"SELECT count(*) FROM {_q(part.name)}"))
    parent, rel = _q(table.name), _q(part.name)
    t0 = time.monotonic()
    archive_name = part.name
    if policy.strategy == "archive" and await conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f"{ARCHIVE}.{_q(part.name)}"):
        archive_name = f"{part.name}_r{log.report.run_id}"  # a partition of that name was archived before

    async def dispose(c: asyncpg.Connection) -> None:
        # catalog work only, under the locks the detach took: DROP, or RENAME + SET SCHEMA archive
        await c.execute("SELECT ls_dispose_partition($1, $2, $3)", part.name, policy.strategy, archive_name)

    seqs: list[int] = []

    async def record(c: asyncpg.Connection, attempts: int) -> None:
        seqs.clear()
        seqs.append(await log.add(Action(table.name, "detach_partition", "done", part.name, part.lower, part.upper,
                                         rows=rows, attempts=attempts,
                                         detail="CONCURRENTLY" if concurrently else f"lock_timeout {options.lock_timeout_ms} ms"),
                                  conn=c))
        if policy.strategy == "drop":
            seqs.append(await log.add(Action(table.name, "drop_partition", "done", part.name, part.lower, part.upper,
                                             rows=rows), conn=c))
        else:
            seqs.append(await log.add(Action(table.name, "archive_partition", "pending", archive_name, part.lower,
                                             part.upper, rows=rows), conn=c))

    if concurrently:
        # outside a transaction block, as PostgreSQL requires; it does not block ingest
        await conn.execute(f"SET statement_timeout = '{CONCURRENT_TIMEOUT_S}s'")
        try:
            await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {rel} CONCURRENTLY")
        finally:
            await conn.execute("RESET statement_timeout")
        async with conn.transaction():
            await dispose(conn)
            await record(conn, 1)
    else:
        attempt_no = 0

        async def attempt() -> None:
            nonlocal attempt_no
            attempt_no += 1
            n = len(log.report.actions)
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{int(options.lock_timeout_ms)}ms'")
                    await conn.execute("SELECT ls_detach_partition($1, $2)", table.name, part.name)
                    await dispose(conn)
                    await record(conn, attempt_no)
            except BaseException:
                del log.report.actions[n:]  # rolled back with the transaction
                raise

        ok, attempts, last = await _retrying(attempt, options)
        if not ok:
            await log.add(Action(table.name, "detach_partition", "skipped", part.name, part.lower, part.upper,
                                 rows=rows, attempts=attempts, seconds=time.monotonic() - t0,
                                 detail=f"lock not granted in {attempts} attempts of {options.lock_timeout_ms} ms "
                                        f"({last}); the next run tries again"))
            return
    await log.update(seqs[0], seconds=time.monotonic() - t0)
    if policy.strategy == "archive":
        t1 = time.monotonic()
        stored = await _attach_archived(conn, table, archive_name, part.lower, part.upper)
        await log.update(seqs[1], status="done", rows=stored, seconds=time.monotonic() - t1)


async def _finalize(conn: asyncpg.Connection, log: _Log, table: Retained, part: Partition) -> None:
    """Complete a detach an interrupted CONCURRENTLY left pending (takes SHARE UPDATE EXCLUSIVE only)."""
    t0 = time.monotonic()
    await conn.execute(f"SET statement_timeout = '{CONCURRENT_TIMEOUT_S}s'")
    try:
        await conn.execute("SELECT ls_detach_partition($1, $2, true)", table.name, part.name)
    finally:
        await conn.execute("RESET statement_timeout")
    await log.add(Action(table.name, "finalize_detach", "done", part.name, part.lower, part.upper,
                         seconds=time.monotonic() - t0))


async def _dispose_detached(conn: asyncpg.Connection, log: _Log, table: Retained, policy: Policy,
                            part: Partition) -> None:
    """A partition finalized out of the table: dropped, or moved to the archive (its bounds known)."""
    rows = int(await conn.fetchval(f"SELECT count(*) FROM {_q(part.name)}"))
    if policy.strategy == "drop":
        await conn.execute("SELECT ls_dispose_partition($1, 'drop')", part.name)
        await log.add(Action(table.name, "drop_partition", "done", part.name, part.lower, part.upper, rows=rows))
        return
    name = part.name
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{ARCHIVE}.{_q(part.name)}"):
        name = f"{part.name}_r{log.report.run_id}"
    async with conn.transaction():
        await conn.execute("SELECT ls_dispose_partition($1, 'archive', $2)", part.name, name)
        seq = await log.add(Action(table.name, "archive_partition", "pending", name, part.lower, part.upper, rows=rows))
    stored = await _attach_archived(conn, table, name, part.lower, part.upper)
    await log.update(seq, status="done", rows=stored)


async def _rows(conn: asyncpg.Connection, log: _Log, table: Retained, policy: Policy, source: str, options: Options,
                dry_run: bool) -> None:
    """Rows of `source` (a plain table or a DEFAULT partition) before the cutoff: deleted or moved into
    archive.<table>, `batch_size` per transaction; ANALYZE after a large change."""
    action = "archive_rows" if policy.strategy == "archive" else "delete_rows"
    cutoff = policy.cutoff.astimezone(UTC).date() if table.is_date else policy.cutoff
    where = f"{table.col} < $1"
    if dry_run:
        n = int(await conn.fetchval(f"SELECT count(*) FROM {_q(source)} WHERE {where}", cutoff))
        if n:
            await log.add(Action(table.name, action, "planned", source, rows=n,
                                 batches=-(-n // policy.batch_size)))
        return
    victims = (f"SELECT ctid FROM {_q(source)} WHERE {where} LIMIT $2 FOR UPDATE SKIP LOCKED")
    if policy.strategy == "archive":
        cols = await _columns(conn, source)
        sql = (f"WITH moved AS (DELETE FROM {_q(source)} WHERE ctid = ANY(ARRAY({victims})) RETURNING {cols}), "
               f"ins AS (INSERT INTO {table.archive} ({cols}) SELECT {cols} FROM moved ON CONFLICT DO NOTHING) "
               "SELECT count(*) FROM moved")
    else:
        sql = (f"WITH gone AS (DELETE FROM {_q(source)} WHERE ctid = ANY(ARRAY({victims})) RETURNING 1) "
               "SELECT count(*) FROM gone")
    t0 = time.monotonic()
    total = batches = 0
    while True:
        got = 0

        async def batch() -> None:
            nonlocal got
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{int(options.lock_timeout_ms)}ms'")
                got = int(await conn.fetchval(sql, cutoff, policy.batch_size))

        ok, _attempts, last = await _retrying(batch, options)
        if not ok:
            raise RetentionError(f"{source}: batch {batches + 1} not granted its locks: {last}")
        if got:
            total += got
            batches += 1
        if got < policy.batch_size:
            break
    if total:
        await log.add(Action(table.name, action, "done", source, rows=total, batches=batches,
                             seconds=time.monotonic() - t0))
    if total and total >= options.analyze_min_rows:
        t1 = time.monotonic()
        await conn.execute("SELECT ls_analyze($1)", source)
        await log.add(Action(table.name, "analyze", "done", source, seconds=time.monotonic() - t1,
                             detail=f"after {total} rows changed"))


async def retain(conn: asyncpg.Connection, log: _Log, table: Retained, policy: Policy, options: Options,
                 dry_run: bool) -> None:
    """One policy's work (see the module docstring)."""
    if table.partitioned:
        parts = await partitions(conn, table)
        for part in parts:
            if part.pending_detach:
                if dry_run:
                    await log.add(Action(table.name, "finalize_detach", "planned", part.name, part.lower, part.upper))
                    continue
                await _finalize(conn, log, table, part)
                await _dispose_detached(conn, log, table, policy, part)
        live = [p for p in parts if not p.pending_detach]
        # CONCURRENTLY cannot run in the owner's function: only a session of the owner uses it
        concurrently = not await has_default(conn, table) and await owns(conn, table.name)
        for part in expired(live, policy.cutoff):
            if dry_run:
                rows = int(await conn.fetchval(f"SELECT count(*) FROM {_q(part.name)}"))
                await log.add(Action(table.name, "detach_partition", "planned", part.name, part.lower, part.upper,
                                     rows=rows, detail="CONCURRENTLY" if concurrently else None))
                await log.add(Action(table.name, "drop_partition" if policy.strategy == "drop" else "archive_partition",
                                     "planned", part.name, part.lower, part.upper, rows=rows))
                continue
            await _detach_one(conn, log, table, policy, part, options, concurrently)
        if any(p.is_default for p in parts):
            await _rows(conn, log, table, policy, table.default, options, dry_run)
    else:
        await _rows(conn, log, table, policy, table.name, options, dry_run)


async def run(conn: asyncpg.Connection, as_of: datetime, *, dry_run: bool = False, only: str | None = None,
              options: Options = Options(), trigger: str = "cli", worker: str | None = None) -> RunReport:
    """One maintenance run, logged in maintenance_runs/maintenance_actions: partitions ahead, then each
    policy (or only `only`'s). A table's failure is logged and the others still run; only a lost
    connection ends the run. Must be called outside a transaction (CONCURRENTLY needs that)."""
    t0 = time.monotonic()
    report = RunReport(await start_run(conn, as_of, dry_run, only, trigger, worker), as_of, dry_run)
    log = _Log(conn, report)
    try:
        if not dry_run:
            await finish_pending_archives(conn, log, only)
        await ensure_current_partitions(conn, log, as_of, dry_run, only)
        chosen = [p for p in await policies(conn, as_of) if not only or p.table == only]
        if only and not chosen:
            await log.add(Action(only, "error", "failed", detail=f"no retention policy for table {only!r}"))
        for policy in chosen:
            report.policies[policy.table] = policy
            table = RETAINED.get(policy.table)
            if table is None:
                await log.add(Action(policy.table, "error", "failed",
                                     detail="unknown table: not in the retention registry (db/retention.py RETAINED); "
                                            "nothing done"))
                continue
            if policy.strategy not in STRATEGIES:
                await log.add(Action(policy.table, "error", "failed",
                                     detail=f"unknown archive_strategy {policy.strategy!r}; nothing done"))
                continue
            try:
                await retain(conn, log, table, policy, options, dry_run)
            except (asyncpg.InterfaceError, ConnectionError, OSError):
                raise
            except (asyncpg.PostgresError, RetentionError, ValueError) as exc:
                await log.add(Action(table.name, "error", "failed", detail=f"{exc.__class__.__name__}: {exc}"[:2000]))
                continue
            if not dry_run and not any(a.table == table.name and a.status == "failed" for a in report.actions):
                await conn.execute("UPDATE data_retention_policies SET last_cleanup = $2 WHERE table_name = $1",
                                   table.name, datetime.now(UTC))
        report.status = "failed" if report.failed_tables() else "succeeded"
        report.seconds = time.monotonic() - t0
        await finish_run(conn, report)
    except BaseException as exc:
        report.status, report.seconds = "failed", time.monotonic() - t0
        if not conn.is_closed():
            try:
                await finish_run(conn, report, f"{exc.__class__.__name__}: {exc}"[:2000])
            except Exception:  # noqa: BLE001 - the original error is what matters
                pass
        raise
    return report


def with_options(options: Options, **changes) -> Options:
    return replace(options, **changes)
