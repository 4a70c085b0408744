"""Routing learning events into their domain tables, inside the transaction that stores them in
learning_events (db/writer.py calls `route_learning_events` with the rows that are new there, so
a redelivered event is routed never twice).

Each event type has a Route: the statements that apply its records, in order, and for a type that
refers to another entity (an outcome to its prediction, an assignment to its experiment) a `park`
statement that first moves the records whose referent is missing into parked_events; the apply
statements skip parked records. Types run in dependency order (registrations before what refers
to them), so an event and its referent in one batch need no parking. `resume_parked` re-routes
parked records (their referent may have come); `expire_parked` hands back the ones that waited too
long, for the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from db.domain import ai_context, evolution, experiments, insights, models, patterns, predictions
from db.errors import CONTENT, UNKNOWN, classify_db


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

# learning_events row positions (db.tables.LEARNING_EVENTS.columns)
_ID, _WS, _TYPE, _SUBTYPE, _TS, _SOURCE, _ETYPE, _EID, _DATA, _USER, _SESSION = range(11)


def record_of(row: tuple) -> dict[str, Any]:
    """A learning_events row -> the record its route reads: the envelope's fields (event_id,
    workspace_id, event_type, ts, source_system, entity_type, entity_id, user_id, session_id) and
    event_data's (no contract has the first four)."""
    rec = {
        "event_id": row[_ID], "workspace_id": row[_WS], "event_type": row[_TYPE], "ts": row[_TS],
        "source_system": row[_SOURCE], "entity_type": row[_ETYPE], "entity_id": row[_EID],
        "user_id": row[_USER], "session_id": row[_SESSION],
    }
    rec.update(row[_DATA])  # event_data's own fields (a training session's session_id) come first
    return rec


def _by_type(rows: Iterable[tuple]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row[_TYPE], []).append(record_of(row))
    return out


async def apply_records(conn: asyncpg.Connection, by_type: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Run each type's route over its records (in the caller's transaction). -> records parked by type."""
    parked: dict[str, int] = {}
    for route in ROUTES:
        records = by_type.get(route.event_type)
        if not records:
            continue
        payload = orjson.dumps(records)
        if route.park is not None:
            status = await conn.execute(route.park, payload)
            n = int(status.rsplit(" ", 1)[1])
            if n:
                parked[route.event_type] = n
        for sql in route.statements:
            await conn.execute(sql, payload)
    return parked


async def route_learning_events(conn: asyncpg.Connection, rows: list[tuple]) -> dict[str, int]:
    """Route learning_events rows (new in this transaction) into the domain tables."""
    if not rows:
        return {}
    return await apply_records(conn, _by_type(rows))


_TAKE_PARKED = """
DELETE FROM parked_events
WHERE (workspace_id, event_id) IN (
    SELECT workspace_id, event_id FROM parked_events ORDER BY parked_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING workspace_id, event_id, event_type, waiting_for, record, parked_at, attempts
"""

_KEEP_AGE = """
UPDATE parked_events p SET parked_at = k.parked_at, attempts = k.attempts + 1
FROM jsonb_to_recordset($1::jsonb) AS k(workspace_id uuid, event_id uuid, parked_at timestamptz, attempts integer)
WHERE p.workspace_id = k.workspace_id AND p.event_id = k.event_id
"""


#: (the parked row, why it failed) -> awaited inside the resume transaction, before it commits
FailedHandler = Callable[[list[tuple[Any, str]]], Awaitable[None]]


async def resume_parked(conn: asyncpg.Connection, limit: int = 5000,
                        on_failed: FailedHandler | None = None) -> tuple[int, int, int]:
    """Route the oldest parked records again, in one transaction: those whose referent has arrived
    are applied, the others are parked again with their first parked_at. A record PostgreSQL now
    refuses (its content: a unique key another event took meanwhile) must not block the others:
    the records are then applied one at a time, and those that fail alone are handed to
    `on_failed` (the worker dead-letters them) and not parked again. -> (taken, still parked, failed)."""
    async with conn.transaction():
        taken = await conn.fetch(_TAKE_PARKED, limit)
        if not taken:
            return 0, 0, 0
        failed: list[tuple[Any, str]] = []
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes only this attempt
                parked = await apply_records(conn, _records(taken))
        except Exception as exc:  # decided by classify_db below
            if classify_db(exc) not in (CONTENT, UNKNOWN):
                raise
            parked = {}
            for r in taken:
                try:
                    async with conn.transaction():
                        for t, n in (await apply_records(conn, _records([r]))).items():
                            parked[t] = parked.get(t, 0) + n
                except Exception as one:  # as above
                    if classify_db(one) not in (CONTENT, UNKNOWN):
                        raise
                    failed.append((r, f"{one.__class__.__name__}: {one}"[:2000]))
            if failed and on_failed is not None:
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


_EXPIRED = """
SELECT workspace_id, event_id, event_type, waiting_for, record, parked_at
FROM parked_events WHERE parked_at < $1 ORDER BY parked_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_DROP = "DELETE FROM parked_events WHERE workspace_id = $1 AND event_id = $2"


@dataclass(frozen=True)
class Expired:
    workspace_id: Any
    event_id: Any
    event_type: str
    waiting_for: str
    record: dict[str, Any]
    parked_at: datetime


async def take_expired(conn: asyncpg.Connection, before: datetime, limit: int = 1000) -> list[Expired]:
    """Parked records older than `before`, locked in the caller's transaction; `drop_expired` then
    deletes them (after the caller has dead-lettered them, in the same transaction)."""
    return [Expired(**dict(r)) for r in await conn.fetch(_EXPIRED, before, limit)]


async def drop_expired(conn: asyncpg.Connection, expired: list[Expired]) -> None:
    await conn.executemany(_DROP, [(e.workspace_id, e.event_id) for e in expired])
