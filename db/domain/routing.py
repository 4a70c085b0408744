"""Routing learning events into their domain tables, inside the transaction that stores them in
learning_events (db/writer.py calls `route_learning_events` with the rows that are new there), and
again from the raw log by `learnstream domain reroute` (the routes are idempotent: routing an event
twice, or events in another order, gives the same rows).

The raw log takes every event with a valid envelope; routing is where the contract of a known
type's event_data applies (schemas.learning.check_event_data). An event whose event_data misses it,
or whose record a domain table refuses, is recorded in unrouted_events (db/domain/unrouted.py);
an event of a type without a contract is only counted.

Each event type has a Route: the statements that apply its records, in order, and for a type that
refers to another entity (an outcome to its prediction, an assignment to its experiment) a `park`
statement that first moves the records whose referent is missing into parked_events; the apply
statements skip parked records. Types run in dependency order (registrations before what refers
to them), so an event and its referent in one batch need no parking. `resume_parked` re-routes
parked records (their referent may have come); `expire_parked` hands back the ones that waited too
long, for the dead-letter topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from db.domain import ai_context, evolution, experiments, insights, models, patterns, predictions
from db.domain.parking import RESOLVABLE
from db.domain.unrouted import Unrouted, forget_unrouted, record_unrouted
from db.errors import CONTENT, UNKNOWN, classify_db
from schemas.learning import MAX_ERROR_CHARS, check_event_data


@dataclass(frozen=True)
class Route:
    event_type: str
    statements: tuple[str, ...]
    #: inserts into parked_events the records whose referent is missing (None: refers to nothing
    #: that must exist first)
    park: str | None = None


#: in dependency order: a type's referents are routed before it
ROUTES: tuple[Route, ...] = (
    Route("model_registered", models.MODEL_REGISTERED),
    Route("dataset_registered", models.DATASET_REGISTERED),
    Route("ab_experiment", experiments.AB_EXPERIMENT),
    Route("evolution_experiment", evolution.EVOLUTION_EXPERIMENT),
    Route("model_prediction", predictions.MODEL_PREDICTION, predictions.PARK_MODEL_PREDICTION),
    Route("training_progress", models.TRAINING_PROGRESS, models.PARK_TRAINING_PROGRESS),
    Route("ab_assignment", experiments.AB_ASSIGNMENT, experiments.PARK_AB_ASSIGNMENT),
    Route("evolution_generation", evolution.EVOLUTION_GENERATION, evolution.PARK_EVOLUTION_GENERATION),
    Route("evolution_individual", evolution.EVOLUTION_INDIVIDUAL, evolution.PARK_EVOLUTION_INDIVIDUAL),
    Route("prediction_outcome", predictions.PREDICTION_OUTCOME, predictions.PARK_PREDICTION_OUTCOME),
    Route("ab_outcome", experiments.AB_OUTCOME, experiments.PARK_AB_OUTCOME),
    Route("ai_interaction", ai_context.AI_INTERACTION),
    Route("user_feedback", predictions.USER_FEEDBACK, predictions.PARK_USER_FEEDBACK),
    Route("pattern_detection", patterns.PATTERN_DETECTION),
    Route("style_analysis", insights.STYLE_ANALYSIS),
    Route("trend_detected", insights.TREND_DETECTED),
    Route("improvement_measured", insights.IMPROVEMENT),
    Route("system_optimization", insights.IMPROVEMENT),
    Route("embedding_computed", ai_context.EMBEDDING),
)
ROUTED: frozenset[str] = frozenset(r.event_type for r in ROUTES)

#: learning_events' columns, in the order of the rows the writer stores and routes (db.tables)
LEARNING_COLUMNS = (
    "id", "workspace_id", "event_type", "event_subtype", "timestamp", "source_system", "entity_type", "entity_id",
    "event_data", "user_id", "session_id", "processing_time_ms", "metadata",
)
_ID, _WS, _TYPE, _SUBTYPE, _TS, _SOURCE, _ETYPE, _EID, _DATA, _USER, _SESSION = range(11)


def record_of(row: tuple, data: dict[str, Any]) -> dict[str, Any]:
    """A learning_events row and its event_data as its contract reads it (schemas.learning:
    check_event_data) -> the record its route reads: the envelope's fields (event_id, workspace_id,
    event_type, ts, source_system, entity_type, entity_id, user_id, session_id) and event_data's
    (no contract has the first four; unknown fields of event_data are not in `data`)."""
    rec = {
        "event_id": row[_ID], "workspace_id": row[_WS], "event_type": row[_TYPE], "ts": row[_TS],
        "source_system": row[_SOURCE], "entity_type": row[_ETYPE], "entity_id": row[_EID],
        "user_id": row[_USER], "session_id": row[_SESSION],
    }
    rec.update(data)  # event_data's own fields (a training session's session_id) come first
    return rec


@dataclass
class RouteReport:
    """What routing did with a set of stored learning events."""

    routed: int = 0
    #: records parked by type (their referent has not come yet; routed when it does)
    parked: dict[str, int] = field(default_factory=dict)
    #: known types not routed: event_data misses its contract, or a domain table refused the record
    unrouted: list[Unrouted] = field(default_factory=list)
    #: events of types without a contract, by type (stored, not routed, not recorded per event)
    unknown: Counter[str] = field(default_factory=Counter)

    def add(self, other: RouteReport) -> None:
        self.routed += other.routed
        for t, n in other.parked.items():
            self.parked[t] = self.parked.get(t, 0) + n
        self.unrouted += other.unrouted
        self.unknown.update(other.unknown)


async def apply_records(conn: asyncpg.Connection, by_type: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Run each type's route over its records (in the caller's transaction). -> records parked by type."""
    parked: dict[str, int] = {}
    for route in ROUTES:
        records = by_type.get(route.event_type)
        if not records:
            continue
        payload = orjson.dumps(records, default=str)  # default: asyncpg's own UUIDs (rows read back by reroute)
        if route.park is not None:
            status = await conn.execute(route.park, payload)
            n = int(status.rsplit(" ", 1)[1])
            if n:
                parked[route.event_type] = n
        for sql in route.statements:
            await conn.execute(sql, payload)
    return parked


async def apply_isolating(conn: asyncpg.Connection, by_type: dict[str, list[dict[str, Any]]]
                          ) -> tuple[dict[str, int], list[tuple[str, dict[str, Any], str]]]:
    """apply_records in a savepoint; should PostgreSQL refuse a record for its content (a unique key
    another event holds, a CHECK), the records are applied one at a time, in route order, each in
    its own savepoint, and those refused alone are handed back instead of failing the others.
    Failures of the server or the connection are raised. -> (parked by type, [(type, record, why)])."""
    try:
        async with conn.transaction():
            return await apply_records(conn, by_type), []
    except Exception as exc:  # decided by classify_db below
        if classify_db(exc) not in (CONTENT, UNKNOWN):
            raise
    parked: dict[str, int] = {}
    refused: list[tuple[str, dict[str, Any], str]] = []
    for route in ROUTES:
        for record in by_type.get(route.event_type, ()):
            try:
                async with conn.transaction():
                    for t, n in (await apply_records(conn, {route.event_type: [record]})).items():
                        parked[t] = parked.get(t, 0) + n
            except Exception as one:  # as above
                if classify_db(one) not in (CONTENT, UNKNOWN):
                    raise
                refused.append((route.event_type, record, f"{one.__class__.__name__}: {one}"[:MAX_ERROR_CHARS]))
    return parked, refused


async def route_learning_events(conn: asyncpg.Connection, rows: Sequence[Sequence[Any]], *,
                                rerouting: bool = False) -> RouteReport:
    """Route stored learning_events rows into the domain tables, in the caller's transaction: each
    known type's event_data judged by its contract; what meets it applied (a record a domain table
    refuses is kept out alone); what does not, or was refused, recorded in unrouted_events; unknown
    types counted. `rerouting`: the rows may have been routed or recorded unrouted before (`learnstream
    domain reroute`): the routes are idempotent, and the events routed now leave unrouted_events."""
    report = RouteReport()
    if not rows:
        return report
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        event_type = row[_TYPE]
        verdict = check_event_data(event_type, row[_DATA])
        if verdict is None:
            report.unknown[event_type] += 1
        elif verdict.record is None:
            report.unrouted.append(Unrouted(row[_WS], row[_ID], row[_TS], event_type, "contract", verdict.errors))
        else:
            by_type.setdefault(event_type, []).append(record_of(row, verdict.record))
    if by_type:
        report.parked, refused = await apply_isolating(conn, by_type)
        routed = {(r["workspace_id"], r["event_id"], r["ts"]) for records in by_type.values() for r in records}
        for event_type, r, why in refused:
            routed.discard((r["workspace_id"], r["event_id"], r["ts"]))
            report.unrouted.append(Unrouted(r["workspace_id"], r["event_id"], r["ts"], event_type, "refused", (why,)))
        report.routed = len(routed) - sum(report.parked.values())  # parked: routed when the referent comes
        if rerouting:
            await forget_unrouted(conn, list(routed))
    await record_unrouted(conn, report.unrouted)
    return report


# a resume round takes the parked rows whose referent now exists, least tried first (a row parked
# again gets a fresh waiting_for: a record waiting for two referents moves on to the second), so a
# backlog of rows that cannot resolve never holds back those that can
_TAKE_PARKED = f"""
DELETE FROM parked_events
WHERE (workspace_id, event_id) IN (
    SELECT p.workspace_id, p.event_id FROM parked_events p
    WHERE {RESOLVABLE}
    ORDER BY p.attempts, p.parked_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING workspace_id, event_id, event_type, waiting_for, record, event_time, parked_at, attempts
"""

_KEEP_AGE = """
UPDATE parked_events p SET parked_at = k.parked_at, attempts = k.attempts + 1
FROM jsonb_to_recordset($1::jsonb) AS k(workspace_id uuid, event_id uuid, parked_at timestamptz, attempts integer)
WHERE p.workspace_id = k.workspace_id AND p.event_id = k.event_id
"""


#: (the parked row, why it failed) -> awaited inside the resume transaction, before it commits
FailedHandler = Callable[[list[tuple[Any, str]]], Awaitable[None]]


async def resume_parked(conn: asyncpg.Connection, limit: int = 5000,
                        on_failed: FailedHandler | None = None, rounds: int = 8) -> tuple[int, int, int]:
    """Route again the parked records whose referent has arrived (least tried first), a round per
    transaction, and again while a round applied some (what waited for those comes next), at most
    `rounds` rounds. Records whose referent has not come are not taken (a row that still misses a
    second referent is parked again with its first parked_at). A record PostgreSQL now refuses (its
    content: a unique key another event took meanwhile) must not block the others: the records are
    then applied one at a time, and those that fail alone are handed to `on_failed` (awaited in the
    round's transaction: the worker records them unrouted) and not parked again.
    -> (taken, still parked, failed) over the rounds."""
    totals = [0, 0, 0]
    for _ in range(rounds):
        taken, still, failed = await _resume_round(conn, limit, on_failed)
        totals = [totals[0] + taken, totals[1] + still, totals[2] + failed]
        if taken - still - failed <= 0:
            break
    return totals[0], totals[1], totals[2]


async def _resume_round(conn: asyncpg.Connection, limit: int, on_failed: FailedHandler | None) -> tuple[int, int, int]:
    async with conn.transaction():
        taken = await conn.fetch(_TAKE_PARKED, limit)
        if not taken:
            return 0, 0, 0
        parked, refused = await apply_isolating(conn, _records(taken))
        failed: list[tuple[Any, str]] = []
        if refused:
            by_key = {(str(r["workspace_id"]), str(r["event_id"])): r for r in taken}
            failed = [(by_key[(str(rec["workspace_id"]), str(rec["event_id"]))], why) for _, rec, why in refused]
            if on_failed is not None:
                await on_failed(failed)
        if parked:
            await conn.execute(_KEEP_AGE, orjson.dumps([
                {"workspace_id": str(r["workspace_id"]), "event_id": str(r["event_id"]), "parked_at": r["parked_at"],
                 "attempts": r["attempts"]} for r in taken
            ]))
        return len(taken), sum(parked.values()), len(failed)


def _records(rows: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_type.setdefault(r["event_type"], []).append(r["record"])
    return by_type


# expired rows are read without locks, dead-lettered, then dropped if no one touched them meanwhile
# (attempts unchanged): no network I/O inside a transaction holding row locks
_EXPIRED = """
SELECT workspace_id, event_id, event_type, waiting_for, record, parked_at, attempts
FROM parked_events WHERE parked_at < $1 ORDER BY parked_at LIMIT $2
"""
_DROP = """
DELETE FROM parked_events p
USING jsonb_to_recordset($1::jsonb) AS e(workspace_id uuid, event_id uuid, attempts integer)
WHERE p.workspace_id = e.workspace_id AND p.event_id = e.event_id AND p.attempts = e.attempts
"""


@dataclass(frozen=True)
class Expired:
    workspace_id: Any
    event_id: Any
    event_type: str
    waiting_for: str
    record: dict[str, Any]
    parked_at: datetime
    attempts: int


async def take_expired(conn: asyncpg.Connection, before: datetime, limit: int = 1000) -> list[Expired]:
    """Parked records older than `before` (read, not locked); `drop_expired` deletes them after the
    caller has dead-lettered them (one worker at a time: the caller holds EXPIRY_LOCK)."""
    return [Expired(**dict(r)) for r in await conn.fetch(_EXPIRED, before, limit)]


async def drop_expired(conn: asyncpg.Connection, expired: list[Expired]) -> int:
    """Delete the expired records not resumed meanwhile. -> rows deleted."""
    status = await conn.execute(_DROP, orjson.dumps(
        [{"workspace_id": e.workspace_id, "event_id": e.event_id, "attempts": e.attempts} for e in expired],
        default=str))
    return int(status.rsplit(" ", 1)[1])


#: pg_try_advisory_lock key: one worker expires parked events at a time (no letter sent twice)
EXPIRY_LOCK = 0x6C73_7078  # "lspx"
