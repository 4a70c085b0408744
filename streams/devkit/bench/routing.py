"""`learnstream bench --routing N`: what routing costs per table family, on the database, without Kafka.

N learning events of the routed mix (streams/devkit/mix.py: 8 workspaces, all 19 types, with the
content items and account snapshots they refer to) are cut into batches in stream order, as the
worker cuts a partition's stream (`--routing-batch`, the worker's batch_max_events). Two fresh
migrated databases get the same content items and account snapshots; then, family by family in
dependency order (registrations before what refers to them), each batch's events of that family are
written by `write_rows` (the product's write path: COPY into learning_events, then routing in the
same transaction) into one database with routing off (`raw`) and into the other with routing on
(`routed`), alternating batch by batch so the machine's noise falls on both alike. A family's
routing cost is (routed s - raw s) / its events. Its referents are in place when it is written
(families in dependency order), so nothing parks; every route statement is prepared on the routed connection
before the clock starts, as on a worker's long-lived connections; a family's batches hold only its own events, so
each route runs once per batch with as many records as in the worker's mixed batches.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

import asyncpg
import orjson

from db.databases import create_migrated_database, drop_database
from db.domain.routing import ROUTED, ROUTES
from db.pool import create_writer_pool
from db.tables import LEARNING_EVENTS, SINKS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.devkit.mix import MixGenerator

#: (family, its event types, the domain tables it writes), in dependency order
FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("registrations", ("model_registered", "dataset_registered", "ab_experiment", "evolution_experiment"),
     ("ml_models", "training_datasets", "ab_testing_experiments", "evolution_experiments")),
    ("predictions", ("model_prediction",), ("predictions",)),
    ("sessions", ("training_progress",), ("model_training_sessions",)),
    ("experiments", ("ab_assignment", "ab_outcome"), ("ab_testing_assignments",)),
    ("evolution", ("evolution_generation", "evolution_individual"),
     ("evolution_generations", "evolution_individuals")),
    ("ai logs", ("ai_interaction",), ("ai_context_logs", "ai_prompts", "ai_suggestions")),
    ("outcomes", ("prediction_outcome", "user_feedback"), ("prediction_accuracy",)),
    ("patterns", ("pattern_detection",), ("identified_patterns", "pattern_occurrences")),
    ("styles", ("style_analysis",), ("content_style_analysis",)),
    ("trends", ("trend_detected",), ("trend_analysis",)),
    ("improvements", ("improvement_measured", "system_optimization"), ("ai_improvement_tracking",)),
    ("embeddings", ("embedding_computed",), ("embeddings",)),
)
assert {t for _, types, _ in FAMILIES for t in types} == ROUTED, "every routed type belongs to one family"

_TYPE = LEARNING_EVENTS.columns.index("event_type")
#: statements routing runs for a type present in a batch (its park statement and its own)
_STATEMENTS = {r.event_type: len(r.statements) + (r.park is not None) for r in ROUTES}


@dataclass
class FamilyResult:
    family: str
    events: int
    batches: int
    routed_s: float
    raw_s: float
    #: rows in the family's domain tables after it was routed
    domain_rows: int
    #: routing statements per batch (what apply_records runs: park + apply per type present), mean
    statements_per_batch: float
    parked: int = 0
    unrouted: int = 0

    @property
    def us_per_event(self) -> float:
        return (self.routed_s - self.raw_s) / self.events * 1e6 if self.events else 0.0


def mix_rows(events: int, seed: int) -> tuple[dict[str, list[tuple]], list[tuple]]:
    """The mix's content items and account snapshots (rows by kind) and its learning events' rows,
    in stream order."""
    mix = MixGenerator(seed=seed, workspaces=8).generate(events, array_size=1000, learning_span_min=1.0,
                                                         engagement=False)
    rows = {kind: [SINKS[kind].row(e) for _, v in mix.messages[kind] for e in decode_message(v, kind).events]
            for kind in ("account_snapshot", "content_item", "learning_event")}
    return {k: rows[k] for k in ("account_snapshot", "content_item")}, rows["learning_event"]


async def warm_up(conn: asyncpg.Connection) -> None:
    """Prepare every route statement on `conn` (asyncpg keeps them per connection, as the worker's
    connections do), with no records, in a transaction rolled back: the first batch of a family
    is then not charged for parsing and planning its statements."""
    tx = conn.transaction()
    await tx.start()
    try:
        for route in ROUTES:
            for sql in ((route.park,) if route.park else ()) + route.statements:
                await conn.execute(sql, orjson.dumps([]))
    finally:
        await tx.rollback()


async def _count(conn: asyncpg.Connection, tables: tuple[str, ...]) -> int:
    return sum([await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables])


async def run_routing_bench(admin_dsn: str, events: int, seed: int = 42, batch: int = 5000) -> list[FamilyResult]:
    refs, learning = mix_rows(events, seed)
    batches = [learning[i:i + batch] for i in range(0, len(learning), batch)]
    names = {mode: f"bench_routing_{mode}_{uuid.uuid4().hex[:6]}" for mode in ("raw", "routed")}
    dsns = {mode: await create_migrated_database(admin_dsn, name) for mode, name in names.items()}
    pools = {mode: await create_writer_pool(dsn, 1) for mode, dsn in dsns.items()}
    results = []
    try:
        async with pools["raw"].acquire() as raw, pools["routed"].acquire() as routed:
            policies = {"raw": WritePolicy(), "routed": WritePolicy()}
            for conn, policy in ((raw, policies["raw"]), (routed, policies["routed"])):
                for kind, rows in refs.items():
                    await write_rows(conn, SINKS[kind], rows, policy)
            await warm_up(routed)
            for family, types, tables in FAMILIES:
                wanted = set(types)
                parts = [[r for r in b if r[_TYPE] in wanted] for b in batches]
                parts = [p for p in parts if p]
                seconds = {"raw": 0.0, "routed": 0.0}
                parked = unrouted = 0
                for part in parts:
                    for mode, conn, route in (("raw", raw, False), ("routed", routed, True)):
                        t0 = time.perf_counter()
                        result = await write_rows(conn, LEARNING_EVENTS, part, policies[mode], route=route)
                        seconds[mode] += time.perf_counter() - t0
                        if route:
                            parked += sum(result.routing.parked.values())
                            unrouted += len(result.routing.unrouted)
                statements = [sum(_STATEMENTS[t] for t in {r[_TYPE] for r in p}) for p in parts]
                results.append(FamilyResult(
                    family, sum(map(len, parts)), len(parts), seconds["routed"], seconds["raw"],
                    await _count(routed, tables), sum(statements) / len(statements) if statements else 0.0,
                    parked, unrouted))
    finally:
        for pool in pools.values():
            await pool.close()
        for name in names.values():
            await drop_database(admin_dsn, name)
    return results


def table(results: list[FamilyResult]) -> str:
    head = (f"{'family':<15}{'events':>8}{'batches':>8}{'routed s':>10}{'raw s':>8}{'µs/event':>10}"
            f"{'domain rows':>13}{'stmts/batch':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.family:<15}{r.events:>8,}{r.batches:>8}{r.routed_s:>10.3f}{r.raw_s:>8.3f}"
                     f"{r.us_per_event:>10.1f}{r.domain_rows:>13,}{r.statements_per_batch:>12.1f}"
                     + (f"  parked {r.parked}" if r.parked else "") + (f"  unrouted {r.unrouted}" if r.unrouted else ""))
    total = [sum(getattr(r, f) for r in results) for f in ("events", "routed_s", "raw_s", "domain_rows")]
    us = (total[1] - total[2]) / total[0] * 1e6 if total[0] else 0.0
    lines.append(f"{'all':<15}{total[0]:>8,}{'':>8}{total[1]:>10.3f}{total[2]:>8.3f}{us:>10.1f}{total[3]:>13,}")
    return "\n".join(lines)


def as_json(results: list[FamilyResult], events: int, seed: int, batch: int) -> dict:
    return {"plan": {"routing": events, "seed": seed, "batch": batch},
            "results": [{**asdict(r), "us_per_event": r.us_per_event} for r in results]}
