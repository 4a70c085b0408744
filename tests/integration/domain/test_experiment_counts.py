"""An A/B experiment's sample size and results, recounted per batch under a lock per experiment
(issue 26): the same figures whatever the batches, and no count lost when two batches of one
experiment are written at once, even when the experiment is stored while one of them is under way;
an evolution experiment's best score, read from its fitness index, still the best of its
individuals as they are evaluated again (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message

pytestmark = pytest.mark.services

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WS = uuid.UUID("00000000-0000-4000-8000-00000000bbbb")


def event(event_type: str, data: dict, minutes: float) -> dict:
    return {"event_id": str(uuid.uuid4()), "workspace_id": str(WS), "event_type": event_type,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "event_data": data}


def rows(events: list[dict]) -> list[tuple]:
    decoded = decode_message(orjson.dumps(events), "learning_event")
    assert decoded.rejected is None, decoded.rejected
    return [LEARNING_EVENTS.row(e) for e in decoded.events]


def experiment(exp: uuid.UUID, name: str) -> dict:
    return event("ab_experiment", {"experiment_id": str(exp), "name": name, "status": "running"}, 0)


def assign(exp: uuid.UUID, subject: str, variant: str, minutes: float) -> dict:
    return event("ab_assignment", {"experiment_id": str(exp), "subject_id": subject, "variant": variant}, minutes)


def outcome(exp: uuid.UUID, subject: str, minutes: float, converted: bool, value: float | None = None) -> dict:
    data = {"experiment_id": str(exp), "subject_id": subject, "converted": converted}
    return event("ab_outcome", data if value is None else {**data, "value": value}, minutes)


def batches(exp: uuid.UUID) -> tuple[list[dict], list[dict]]:
    first = [assign(exp, "u1", "control", 1), assign(exp, "u2", "emoji", 2), assign(exp, "u3", "emoji", 3),
             outcome(exp, "u1", 10, True, 1.5), outcome(exp, "u2", 11, False, 2.25)]
    second = [
        assign(exp, "u3", "control", 0.5),  # earlier than u3's assignment: u3 moves to control
        assign(exp, "u4", "emoji", 4),
        assign(exp, "u1", "emoji", 5),  # later than u1's: ignored
        outcome(exp, "u2", 12, True, 3.0),  # later than u2's outcome: replaces it
        outcome(exp, "u3", 13, False),  # no value
        outcome(exp, "u1", 9, False, 99.0),  # earlier than u1's outcome: ignored
    ]
    return first, second


# u1 control (converted, 1.5), u2 emoji (converted, 3.0), u3 control (not converted, no value), u4 emoji
EXPECTED = {
    "control": {"assigned": 2, "outcomes": 2, "judged": 2, "converted": 1, "conversion_rate": 0.5, "mean_value": 1.5},
    "emoji": {"assigned": 2, "outcomes": 1, "judged": 1, "converted": 1, "conversion_rate": 1.0, "mean_value": 3.0},
}


async def test_results_after_two_batches_equal_those_of_all_events_at_once(stack):
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    split, whole = uuid.uuid4(), uuid.uuid4()
    try:
        async with pool.acquire() as c:
            policy = WritePolicy()
            await write_rows(c, LEARNING_EVENTS, rows([experiment(split, "split"), experiment(whole, "whole")]), policy)
            first, second = batches(split)
            await write_rows(c, LEARNING_EVENTS, rows(first), policy)
            await write_rows(c, LEARNING_EVENTS, rows(second), policy)
            first, second = batches(whole)
            await write_rows(c, LEARNING_EVENTS, rows(first + second), policy)
        for exp in (split, whole):
            e = await conn.fetchrow("SELECT current_sample_size, results FROM ab_testing_experiments WHERE id = $1", exp)
            assert e["current_sample_size"] == 4
            assert e["results"] == EXPECTED
        # routing the same events again (a replay) changes nothing
        async with pool.acquire() as c:
            from db.domain.routing import route_learning_events

            async with c.transaction():
                first, second = batches(split)
                await route_learning_events(c, rows(first + second), rerouting=True)
        e = await conn.fetchrow("SELECT current_sample_size, results FROM ab_testing_experiments WHERE id = $1", split)
        assert (e["current_sample_size"], e["results"]) == (4, EXPECTED)
    finally:
        await conn.close()
        await pool.close()


async def test_two_batches_of_one_experiment_written_at_once_lose_no_count(stack):
    """Batch A's transaction is open (its routing done, not committed) when batch B routes: B waits
    for A and counts on top of A's assignments. (A recount in B's snapshot, taken before A
    committed, stored B's count alone: A's subjects were lost from the results.)"""
    pool = await create_writer_pool(stack.dsn, 2)
    conn = await connect(stack.dsn)
    exp = uuid.uuid4()
    try:
        async with pool.acquire() as a, pool.acquire() as b:
            await write_rows(a, LEARNING_EVENTS, rows([experiment(exp, "concurrent")]), WritePolicy())
            tx = a.transaction()
            await tx.start()
            try:
                await write_rows(a, LEARNING_EVENTS, rows([assign(exp, "a1", "control", 1),
                                                           assign(exp, "a2", "emoji", 2),
                                                           outcome(exp, "a1", 5, True, 2.0)]), WritePolicy())
                other = asyncio.create_task(write_rows(b, LEARNING_EVENTS, rows([assign(exp, "b1", "control", 3)]),
                                                       WritePolicy()))
                await asyncio.sleep(0.5)
                assert not other.done()  # waits for A's experiment
            finally:
                await tx.commit()
            await asyncio.wait_for(other, 10)
        e = await conn.fetchrow("SELECT current_sample_size, results FROM ab_testing_experiments WHERE id = $1", exp)
        assert e["current_sample_size"] == 3
        assert e["results"] == {
            "control": {"assigned": 2, "outcomes": 1, "judged": 1, "converted": 1, "conversion_rate": 1.0, "mean_value": 2.0},
            "emoji": {"assigned": 1, "outcomes": 0, "judged": 0, "converted": 0, "conversion_rate": None, "mean_value": None}}
    finally:
        await conn.close()
        await pool.close()


async def test_an_experiment_stored_while_a_batch_is_under_way_loses_no_count(stack):
    """Batch A parks its assignment (its experiment is not stored yet) and takes the experiment's
    lock; the experiment is then stored by another batch, and batch B assigns another subject. B
    waits for A, whatever A's experiment row did not exist to be locked, and its recount counts
    both. (With the experiment's row locked FOR UPDATE instead, A locked nothing, B went ahead, and
    A's stale figures overwrote B's: sample size 1 for 2 assignments; found in review.)"""
    from db.domain import experiments

    pool = await create_writer_pool(stack.dsn, 3)
    conn = await connect(stack.dsn)
    exp = uuid.uuid4()
    lock, apply, recount = experiments.AB_ASSIGNMENT
    record = {"workspace_id": str(WS), "event_id": str(uuid.uuid4()), "ts": (T0 + timedelta(minutes=1)).isoformat(),
              "experiment_id": str(exp), "subject_id": "a1", "variant": "control"}
    payload = orjson.dumps([record])
    try:
        async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
            ta = a.transaction()
            await ta.start()
            await a.execute(experiments.PARK_AB_ASSIGNMENT, payload)  # the experiment is missing: parked
            await a.execute(lock, payload)
            await write_rows(c, LEARNING_EVENTS, rows([experiment(exp, "late")]), WritePolicy())
            other = asyncio.create_task(write_rows(b, LEARNING_EVENTS, rows([assign(exp, "b1", "emoji", 2)]),
                                                   WritePolicy()))
            await asyncio.sleep(0.5)
            assert not other.done()  # B waits for A's lock on the experiment it names
            await a.execute(apply, payload)
            await a.execute(recount, payload)
            await ta.commit()
            await asyncio.wait_for(other, 10)
        e = await conn.fetchrow("SELECT current_sample_size, results FROM ab_testing_experiments WHERE id = $1", exp)
        # a1 in control, b1 in emoji, no outcomes yet
        assert e["current_sample_size"] == 2
        assert e["results"] == {
            "control": {"assigned": 1, "outcomes": 0, "judged": 0, "converted": 0, "conversion_rate": None, "mean_value": None},
            "emoji": {"assigned": 1, "outcomes": 0, "judged": 0, "converted": 0, "conversion_rate": None, "mean_value": None}}
    finally:
        await conn.close()
        await pool.close()


async def test_the_best_score_of_an_evolution_experiment_falls_when_its_best_is_evaluated_again_lower(stack):
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    evo = uuid.uuid4()

    def individual(ind: uuid.UUID, index: int, fitness: float | None, minutes: float) -> dict:
        data = {"experiment_id": str(evo), "generation_number": 0, "individual_id": str(ind),
                "individual_index": index, "genotype": {"hook": str(index)}}
        return event("evolution_individual", data if fitness is None else {**data, "fitness_score": fitness}, minutes)

    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with pool.acquire() as w:
            policy = WritePolicy()
            await write_rows(w, LEARNING_EVENTS, rows([
                event("evolution_experiment", {"experiment_id": str(evo), "name": "hooks", "problem_definition": {},
                                               "objective_function": {}}, 0),
                event("evolution_generation", {"experiment_id": str(evo), "generation_id": str(uuid.uuid4()),
                                               "generation_number": 0}, 1),
                individual(a, 0, 0.4, 2), individual(b, 1, 0.9, 2), individual(c, 2, None, 2)]), policy)
            assert await conn.fetchval("SELECT best_score FROM evolution_experiments WHERE id = $1", evo) == 0.9
            await write_rows(w, LEARNING_EVENTS, rows([individual(b, 1, 0.25, 3)]), policy)  # b evaluated again
            assert await conn.fetchval("SELECT best_score FROM evolution_experiments WHERE id = $1", evo) == 0.4
            await write_rows(w, LEARNING_EVENTS, rows([individual(c, 2, 0.7, 3)]), policy)
            assert await conn.fetchval("SELECT best_score FROM evolution_experiments WHERE id = $1", evo) == 0.7
    finally:
        await conn.close()
        await pool.close()


async def test_the_conversion_rate_divides_by_the_judged_subjects_not_every_outcome(stack):
    """Issue 25 review 2 R1: an outcome carrying only a value is an outcome, not a judged subject
    (the experiment_significance job's sample); conversion_rate = converted / judged."""
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    exp = uuid.uuid4()
    try:
        async with pool.acquire() as c:
            value_only = event("ab_outcome", {"experiment_id": str(exp), "subject_id": "u2", "value": 5.0}, 11)
            await write_rows(c, LEARNING_EVENTS, rows([
                experiment(exp, "judged"), assign(exp, "u1", "control", 1), assign(exp, "u2", "control", 2),
                assign(exp, "u3", "control", 3), outcome(exp, "u1", 10, True, 1.0), value_only,
                outcome(exp, "u3", 12, False)]), WritePolicy())
        e = await conn.fetchrow("SELECT results FROM ab_testing_experiments WHERE id = $1", exp)
        # 3 outcomes, 2 of them say converted (u1 true, u3 false): 1 / 2 = 0.5 (before: 1 / 3 = 0.333333);
        # the mean value over the 2 outcomes carrying one: (1.0 + 5.0) / 2 = 3.0
        assert e["results"] == {"control": {"assigned": 3, "outcomes": 3, "judged": 2, "converted": 1,
                                            "conversion_rate": 0.5, "mean_value": 3.0}}
    finally:
        await conn.close()
        await pool.close()


async def test_0045_recounts_the_results_stored_before_it(stack):
    """0045's recount, run again on an experiment whose results the old recount stored (no judged,
    converted / outcomes): control 20 of 100 judged; B 20 of 50 judged plus 50 outcomes carrying a
    value only, stored as 20 / 100 = 0.2 -> judged 50, 20 / 50 = 0.4."""
    from db.migrate import MIGRATIONS_DIR

    sql = (MIGRATIONS_DIR / "0045_judged_rates.sql").read_text()
    recount = sql[sql.index("LOCK TABLE"):sql.index("COMMENT ON COLUMN")]
    conn = await connect(stack.dsn)
    exp = uuid.uuid4()
    try:
        old = {"B": {"assigned": 100, "outcomes": 100, "converted": 20, "conversion_rate": 0.2, "mean_value": 1.0},
               "control": {"assigned": 100, "outcomes": 100, "converted": 20, "conversion_rate": 0.2, "mean_value": 1.0}}
        await conn.execute("""INSERT INTO ab_testing_experiments (workspace_id, id, experiment_name, status, results,
            current_sample_size, created_at, updated_at, last_event_at) VALUES ($1, $2, 'old', 'running', $3, 200, $4, $4, $4)""",
                           WS, exp, old, T0)
        for variant, n, converted, prefix in (("control", 100, 20, "c"), ("B", 50, 20, "b"), ("B", 50, None, "v")):
            await conn.execute("""INSERT INTO ab_testing_assignments (workspace_id, id, experiment_id, user_id, variant,
                assignment_timestamp, converted, outcome_value, outcome_at)
                SELECT $1, gen_random_uuid(), $2, $3 || i, $4, $5, CASE WHEN $6::int IS NOT NULL THEN i <= $6::int END, 1.0, $5
                FROM generate_series(1, $7) AS i""", WS, exp, prefix, variant, T0, converted, n)
        async with conn.transaction():
            await conn.execute(recount)
        e = await conn.fetchrow("SELECT current_sample_size, results FROM ab_testing_experiments WHERE id = $1", exp)
        assert (e["current_sample_size"], e["results"]) == (200, {
            "B": {"assigned": 100, "outcomes": 100, "judged": 50, "converted": 20, "conversion_rate": 0.4,
                  "mean_value": 1.0},
            "control": {"assigned": 100, "outcomes": 100, "judged": 100, "converted": 20, "conversion_rate": 0.2,
                        "mean_value": 1.0}})
    finally:
        await conn.close()
