"""Routing is a function of the set of learning events (real PostgreSQL): routing the same events
again, in another order or in other batches, gives the same domain rows as routing them once.

The mix test feeds the dev kit's domain mix (every routed type, plus re-sent events of the same
entities earlier and later in event time) into database A once, in publish order, and into
database B shuffled, in batches of random sizes, then routes all of B's stored events again,
twice (shuffled, and in (timestamp, id) order as a reroute does), and compares every domain table.
The cases below it pin each replay / order rule on a few events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.databases import clone_migrated_database, drop_database
from db.domain.routing import ROUTED, resume_parked, route_learning_events
from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message
from streams.devkit.mix import MixGenerator
from tests.domain_tables import DOMAIN_TABLES, domain_snapshot, snapshot_diff
from tests.support import admin_dsn

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
async def dsn_b(services, stack):
    """A second fresh migrated database next to the stack's."""
    base = admin_dsn(services)
    name = f"t_{stack.tag}_b"
    dsn = await clone_migrated_database(base, name)
    try:
        yield dsn
    finally:
        await drop_database(base, name)


def rows_of(events: list[dict]) -> list[tuple]:
    """learning_events rows, decoded as the worker does (arrays of at most 1,000 events)."""
    rows = []
    for i in range(0, len(events), 1000):
        decoded = decode_message(orjson.dumps(events[i:i + 1000]), "learning_event")
        assert decoded.rejected is None, decoded.rejected
        rows.extend(LEARNING_EVENTS.row(e) for e in decoded.events)
    return rows


def _shift(e: dict, rng: random.Random, **data) -> dict:
    """`e` re-sent as another event: a new id, up to 7 minutes earlier or later (never after NOW
    nor at the same instant), event_data changed by `data`."""
    t = datetime.fromisoformat(e["timestamp"]) + timedelta(minutes=rng.choice([-1, 1]) * rng.uniform(0.5, 7))
    t = min(t, NOW - timedelta(seconds=rng.uniform(1, 60)))
    return {**e, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "timestamp": t.isoformat(),
            "event_data": {**e["event_data"], **data}}


def resent(events: list[dict], rng: random.Random, share: float = 0.25) -> list[dict]:
    """Events that change entities the mix already has: a share of the re-sendable ones again,
    earlier or later in event time with other values (a later model status, another predicted
    score, another variant, vector, fitness, prompt template text, actual value)."""
    out = []
    for e in events:
        if rng.random() >= share:
            continue
        t, d = e["event_type"], e["event_data"]
        if t == "model_registered":
            out.append(_shift(e, rng, status=rng.choice(["active", "deprecated"]), framework="onnx"))
        elif t == "model_prediction":
            out.append(_shift(e, rng, predicted_score=round(rng.uniform(10, 100), 2)))
        elif t == "prediction_outcome":
            out.append(_shift(e, rng, actual_score=round(rng.uniform(10, 100), 2)))
        elif t == "ab_assignment":
            out.append(_shift(e, rng, variant="emoji" if d["variant"] == "control" else "control"))
        elif t == "ab_outcome":
            out.append(_shift(e, rng, converted=not d["converted"]))
        elif t == "evolution_individual":
            out.append(_shift(e, rng, fitness_score=round(rng.uniform(0, 1), 4)))
        elif t == "embedding_computed":
            out.append(_shift(e, rng, vector=[round(rng.gauss(0, 1), 4) for _ in d["vector"]]))
        elif t == "ai_interaction":
            out.append(_shift(e, rng, prompt_template={**d["prompt_template"], "template": f"Suggest {rng.random()}"},
                              suggestions=[{**s, "suggestion_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
                                           for s in d["suggestions"]]))
        elif t == "trend_detected":
            out.append(_shift(e, rng, engagement_impact=round(rng.uniform(-5, 40), 2)))
    return out


def mix_events(seed: int = 11, n: int = 1600) -> list[dict]:
    """The domain mix's learning events in publish order, then the re-sent ones."""
    mix = MixGenerator(seed=seed, now=NOW, workspaces=2).generate(n, engagement=False)
    events = [e for _key, value in mix.messages["learning_event"] for e in orjson.loads(value)]
    assert set(mix.by_type) == ROUTED, ROUTED - set(mix.by_type)
    return events + resent(events, random.Random(f"resent {seed}"))  # not the mix's random stream: other ids


def batches(rows: list, rng: random.Random, most: int) -> list[list]:
    out, i = [], 0
    while i < len(rows):
        n = rng.randint(1, most)
        out.append(rows[i:i + n])
        i += n
    return out


async def write_batches(dsn: str, chunks: list[list[tuple]]) -> None:
    pool = await create_writer_pool(dsn, 1)
    try:
        async with pool.acquire() as c:
            for chunk in chunks:
                result = await write_rows(c, LEARNING_EVENTS, chunk, WritePolicy())
                assert not result.rejected, result.rejected
    finally:
        await pool.close()


async def drain_parked(conn) -> None:
    """Resume parked events until none is left (every referent is in the mix)."""
    while True:
        taken, still, failed = await resume_parked(conn)
        assert failed == 0
        if taken == 0:
            return
        assert still < taken, f"{still} parked events wait for referents that never come"


async def reroute(conn, chunks: list[list[tuple]]) -> None:
    """Route stored events again, a transaction per chunk (the return value is not relied on)."""
    for chunk in chunks:
        async with conn.transaction():
            await route_learning_events(conn, chunk)


async def test_routing_twice_in_other_orders_and_batches_gives_the_same_rows(stack, dsn_b):
    events = mix_events()
    rng = random.Random(5)
    # A: once, in publish order (the mix's, then the re-sent events), batches of 100 as a worker cuts
    rows = rows_of(events)
    await write_batches(stack.dsn, [rows[i:i + 100] for i in range(0, len(rows), 100)])
    # B: shuffled, batches of 1..250
    shuffled = rows_of(events)
    rng.shuffle(shuffled)
    await write_batches(dsn_b, batches(shuffled, rng, 250))
    a, b = await connect(stack.dsn), await connect(dsn_b)
    try:
        await drain_parked(a)
        # shuffled, many events came before their referents: B has them parked
        assert await b.fetchval("SELECT count(*) FROM parked_events") > 0
        # B again: every stored event routed a second time, shuffled in other batches (while the
        # parked ones still wait: those whose referent has come are applied now and once more by
        # the timer), then a third time in (timestamp, id) order, as `learnstream domain reroute`
        # reads them
        # (asyncpg's own UUID class is not one orjson serialises: as the writer's rows, uuid.UUID)
        stored = [(uuid.UUID(bytes=r[0].bytes), uuid.UUID(bytes=r[1].bytes), *tuple(r)[2:])
                  for r in await b.fetch(f"SELECT {LEARNING_EVENTS.quoted_columns()} FROM learning_events")]
        assert len(stored) == len(events)
        rng.shuffle(stored)
        await reroute(b, batches(stored, rng, 400))
        await drain_parked(b)
        stored.sort(key=lambda r: (r[4], r[0]))
        await reroute(b, [stored[i:i + 500] for i in range(0, len(stored), 500)])
        await drain_parked(b)

        snap_a, snap_b = await domain_snapshot(a), await domain_snapshot(b)
        empty = [t for t in DOMAIN_TABLES if t != "parked_events" and not snap_a[t]]
        assert not empty, f"the mix filled no rows in {empty}"
        assert snap_a["parked_events"] == []
        diff = snapshot_diff(snap_a, snap_b)
        assert not diff, "\n".join(diff)
        # the workspace filter reads a subset
        ws = snap_a["ml_models"][0][0]
        one = await domain_snapshot(a, [ws])
        assert 0 < len(one["predictions"]) < len(snap_a["predictions"])
    finally:
        await a.close()
        await b.close()


# -- each rule on a few events ------------------------------------------------------------------

T0 = NOW - timedelta(hours=2)
WS = uuid.UUID("00000000-0000-4000-8000-00000000bbbb")
MODEL = uuid.UUID("00000000-0000-4000-8000-000000000011")


def event(event_type: str, data: dict, minutes: float = 0, ws: uuid.UUID = WS, event_id: uuid.UUID | None = None,
          **extra) -> dict:
    return {"event_id": str(event_id or uuid.uuid4()), "workspace_id": str(ws), "event_type": event_type,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "event_data": data, **extra}


def model_registered(status: str = "active", minutes: float = -60, ws: uuid.UUID = WS) -> dict:
    return event("model_registered", {"model_id": str(MODEL), "name": "viral", "version": "1",
                                      "model_type": "prediction", "status": status}, minutes, ws)


@pytest.fixture
async def db(stack):
    """(conn, write(events): a batch through the writer, replay(events): routed again)."""
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    try:
        async def write(events: list[dict]) -> None:
            async with pool.acquire() as c:
                result = await write_rows(c, LEARNING_EVENTS, rows_of(events), WritePolicy())
            assert not result.rejected, result.rejected

        async def replay(events: list[dict]) -> None:
            async with conn.transaction():
                await route_learning_events(conn, rows_of(events))
        yield conn, write, replay
    finally:
        await conn.close()
        await pool.close()


async def test_the_earliest_prediction_stands_whatever_arrives_first(db):
    conn, write, replay = db
    pid = uuid.uuid4()

    def prediction(minutes: float, score: float) -> dict:
        return event("model_prediction", {"prediction_id": str(pid), "model_id": str(MODEL), "prediction_type": "viral",
                                          "predicted_score": score, "horizon_hours": 24}, minutes)

    late, early, later = prediction(10, 50.0), prediction(0, 100.0), prediction(20, 10.0)
    outcome = event("prediction_outcome", {"prediction_id": str(pid), "actual_score": 80.0}, 60)
    await write([model_registered(), late, outcome])
    p = await conn.fetchrow("SELECT * FROM predictions WHERE id = $1", pid)
    assert (p["predicted_score"], p["accuracy_score"]) == (50.0, 0.625)  # 1 - |50 - 80| / 80
    # the earlier prediction arrives after the later one and its outcome: it stands, measured again
    await write([early])
    await write([later])
    await replay([later, outcome, late, early])
    p = await conn.fetchrow("SELECT * FROM predictions WHERE id = $1", pid)
    assert p["prediction_timestamp"] == T0 and p["predicted_score"] == 100.0
    assert p["predicted_value"] == {"score": 100.0}
    assert (p["actual_score"], p["accuracy_score"], p["status"]) == (80.0, 0.75, "validated")  # 1 - 20 / 80
    a = await conn.fetchrow("SELECT * FROM prediction_accuracy WHERE prediction_id = $1", pid)
    assert (a["predicted_score"], a["actual_score"], a["absolute_error"], a["accuracy_percentage"]) == (100.0, 80.0, 20.0, 75.0)
    assert a["percentage_error"] == 25.0


async def test_prompt_uses_count_each_interaction_once_and_its_template_is_the_latest(db):
    conn, write, replay = db

    def interaction(minutes: float, template: str) -> dict:
        return event("ai_interaction", {"model": "llm", "prompt": "p", "suggestions": [
            {"suggestion_id": str(uuid.uuid4()), "suggestion_type": "caption", "content": template}],
            "prompt_template": {"name": "caption", "version": "2", "template": template, "variables": [template]}},
            minutes)

    first, second, older, newest = interaction(0, "A"), interaction(5, "B"), interaction(-5, "Z"), interaction(10, "C")
    await write([first, second])
    await replay([first, second])
    await replay([second])

    async def prompt():
        return await conn.fetchrow("SELECT * FROM ai_prompts WHERE name = 'caption' AND version = '2'")

    p = await prompt()
    assert (p["uses"], p["template"], p["variables"]) == (2, "B", ["B"])
    assert (p["first_used_at"], p["last_used_at"]) == (T0, T0 + timedelta(minutes=5))
    await write([older])  # older: counted, first_used_at earlier, the template stays the latest's
    p = await prompt()
    assert (p["uses"], p["template"], p["first_used_at"]) == (3, "B", T0 - timedelta(minutes=5))
    await write([newest])
    await replay([newest, older, first])
    p = await prompt()
    assert (p["uses"], p["template"], p["variables"], p["last_used_at"]) == (4, "C", ["C"], T0 + timedelta(minutes=10))
    assert await conn.fetchval("SELECT count(*) FROM ai_context_logs WHERE prompt_id = $1", p["id"]) == 4
    # the id is derived from (workspace, name, version): the same in every database
    assert p["id"] == await conn.fetchval("SELECT md5(jsonb_build_array($1::uuid, 'caption', '2')::text)::uuid", WS)


async def test_created_at_is_the_earliest_event_whatever_arrives_first(db):
    conn, write, replay = db
    session = uuid.uuid4()

    def progress(minutes: float, epoch: int, total: int, **more) -> dict:
        return event("training_progress", {"session_id": str(session), "model_id": str(MODEL), "epoch": epoch,
                                           "total_epochs": total, **more}, minutes)

    await write([model_registered("active", minutes=10), progress(30, 3, 10, error_log="oom at epoch 3")])
    await write([model_registered("training", minutes=0), progress(20, 2, 12, error_log="slow")])
    await replay([model_registered("training", minutes=0)])
    m = await conn.fetchrow("SELECT * FROM ml_models WHERE id = $1", MODEL)
    assert (m["status"], m["created_at"], m["updated_at"]) == ("active", T0, T0 + timedelta(minutes=10))
    s = await conn.fetchrow("SELECT * FROM model_training_sessions WHERE id = $1", session)
    assert (s["created_at"], s["training_start"], s["updated_at"]) == (
        T0 + timedelta(minutes=20), T0 + timedelta(minutes=20), T0 + timedelta(minutes=30))
    # the most epochs any event said (as within one batch), the latest event's error
    assert (s["total_epochs"], s["current_epoch"], s["error_log"]) == (12, 3, "oom at epoch 3")


async def test_ties_at_one_instant_are_broken_by_content_or_event_id_in_any_order(db):
    """An assignment: the lower event id stands; an embedding: the greater vector; the same in
    either order of arrival (two workspaces, one order each)."""
    conn, write, replay = db
    ws1, ws2 = uuid.uuid4(), uuid.uuid4()
    exp = uuid.uuid4()
    ids = {}  # workspace -> (lower, higher) event id (event ids are unique across workspaces)
    for k, (ws, order) in enumerate(((ws1, (0, 1)), (ws2, (1, 0)))):
        low, high = ids[ws] = uuid.UUID(int=k + 1, version=4), uuid.UUID(int=2 ** 120 + k, version=4)
        assignments = [event("ab_assignment", {"experiment_id": str(exp), "subject_id": "s", "variant": v},
                             5, ws, event_id=i) for v, i in (("control", low), ("treatment", high))]
        vectors = [event("embedding_computed", {"entity_type": "content", "entity_id": "x", "model": "m",
                                                "vector": v}, 5, ws) for v in ([1.0, 0.0], [1.0, 0.5])]
        await write([event("ab_experiment", {"experiment_id": str(exp), "name": "e", "status": "running"}, 0, ws)])
        for i in order:
            await write([assignments[i], vectors[i]])
        await replay([assignments[order[0]], vectors[order[0]]])
    rows = await conn.fetch("SELECT workspace_id, id, variant FROM ab_testing_assignments")
    assert {r["workspace_id"]: (r["id"], r["variant"]) for r in rows} == {
        ws: (low, "control") for ws, (low, _high) in ids.items()}
    assert [r["results"] for r in await conn.fetch("SELECT results FROM ab_testing_experiments")] == [
        {"control": {"assigned": 1, "outcomes": 0, "judged": 0, "converted": 0, "conversion_rate": None, "mean_value": None}}] * 2
    assert [r["vector"] for r in await conn.fetch("SELECT vector FROM embeddings")] == [[1.0, 0.5]] * 2
