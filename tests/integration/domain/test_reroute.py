"""`learnstream domain reroute` on real PostgreSQL: events a contract left out are routed once the
contract is fixed, a second reroute changes nothing, an interrupted run resumes where it stopped,
and the CLI lists what was not routed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.pool import connect, create_writer_pool
from db.tables import LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas import learning
from schemas.decode import decode_message
from streams.domain.reroute import reroute
from tests.support import ROOT

pytestmark = pytest.mark.services

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WS = uuid.UUID("00000000-0000-4000-8000-00000000bbbb")


def event(event_type: str, data: dict, minutes: float) -> dict:
    return {"event_id": str(uuid.uuid4()), "workspace_id": str(WS), "event_type": event_type,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "event_data": data}


def detection(i: int) -> dict:
    return event("pattern_detection", {"pattern_type": "hook", "pattern_name": "question", "signature": {"q": i % 3},
                                       "source_id": f"post-{i}", "success": i % 2 == 0, "engagement": float(i)}, i)


class StricterPatternDetection(learning.PatternDetection):
    """A contract version the producer did not meet (a field it does not send, required)."""

    detector_version: str


async def write(dsn: str, events: list[dict]):
    pool = await create_writer_pool(dsn, 1)
    try:
        decoded = decode_message(orjson.dumps(events), "learning_event")
        assert decoded.rejected is None
        async with pool.acquire() as c:
            return await write_rows(c, LEARNING_EVENTS, [LEARNING_EVENTS.row(e) for e in decoded.events],
                                    WritePolicy(optimistic=True))
    finally:
        await pool.close()


PATTERNS = """SELECT pattern_type, pattern_signature, occurrence_frequency, judged_count, success_count, engagement_sum,
    first_detected, last_detected FROM identified_patterns ORDER BY signature_hash"""


async def test_reroute_routes_what_a_contract_left_out_once_fixed_and_again_changes_nothing(stack, monkeypatch):
    monkeypatch.setitem(learning.DATA_CONTRACTS, "pattern_detection", StricterPatternDetection)
    events = [detection(i) for i in range(12)]
    model = event("model_registered", {"model_id": str(uuid.uuid4()), "name": "m", "version": "1",
                                       "model_type": "prediction"}, 30)
    result = await write(stack.dsn, [*events, model, event("heartbeat", {"ok": True}, 31)])
    assert result.inserted == 14 and result.routing.routed == 1 and len(result.routing.unrouted) == 12
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM unrouted_events WHERE reason = 'contract'") == 12
        errors = await conn.fetchval("SELECT errors FROM unrouted_events LIMIT 1")
        assert errors == ["detector_version: Field required"]
        assert await conn.fetchval("SELECT count(*) FROM identified_patterns") == 0

        monkeypatch.undo()  # the fix: the contract the producer meets
        p = await reroute(stack.dsn, T0 - timedelta(hours=1), batch_size=5)
        assert (p.events, p.routed, p.unrouted, p.unknown_type, p.finished) == (14, 13, 0, 1, True)
        assert await conn.fetchval("SELECT count(*) FROM unrouted_events") == 0
        patterns = [tuple(r) for r in await conn.fetch(PATTERNS)]
        # signature q=0: posts 0, 3, 6, 9 (all judged, success for even i: 0, 6), engagement 0+3+6+9
        by_q = {r[1]["q"]: r for r in patterns}
        assert [by_q[q][2:6] for q in (0, 1, 2)] == [(4, 4, 2, 18.0), (4, 4, 2, 22.0), (4, 4, 2, 26.0)]
        assert by_q[0][6:] == (T0, T0 + timedelta(minutes=9))
        assert await conn.fetchval("SELECT count(*) FROM pattern_occurrences") == 12
        assert await conn.fetchval("SELECT count(*) FROM ml_models") == 1

        # a second reroute (a new run) changes nothing
        again = await reroute(stack.dsn, T0 - timedelta(hours=1), batch_size=7, fresh=True)
        assert (again.events, again.routed, again.run_id) == (14, 13, p.run_id + 1)
        assert [tuple(r) for r in await conn.fetch(PATTERNS)] == patterns
        assert await conn.fetchval("SELECT count(*) FROM pattern_occurrences") == 12
    finally:
        await conn.close()


async def test_an_interrupted_reroute_resumes_after_its_last_batch(stack):
    events = [detection(i) for i in range(10)]
    await write(stack.dsn, events)
    since, until = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)
    first = await reroute(stack.dsn, since, until, batch_size=3, max_batches=2)
    assert (first.events, first.finished, first.position) == (6, False, T0 + timedelta(minutes=5))
    rest = await reroute(stack.dsn, since, until, batch_size=3)
    assert rest.resumed and rest.run_id == first.run_id
    assert (rest.events, rest.events_now, rest.routed, rest.finished) == (10, 4, 10, True)
    # a finished run is not resumed: the same arguments start a new one
    third = await reroute(stack.dsn, since, until, batch_size=50)
    assert (third.resumed, third.run_id, third.events) == (False, first.run_id + 1, 10)
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT occurrence_frequency FROM identified_patterns WHERE pattern_signature = "
                                   "'{\"q\": 0}'") == 4
    finally:
        await conn.close()


async def test_a_reroute_takes_both_workspaces_events_of_one_id_and_timestamp(stack):
    """Since migration 0025 two workspaces may each hold an event of the same (timestamp, id): a run
    whose batches end between the two (batch_size 1) reroutes both, also when resumed there."""
    other = uuid.UUID("00000000-0000-4000-8000-00000000cccc")
    mine = [detection(i) for i in range(4)]
    theirs = [{**e, "workspace_id": str(other)} for e in mine]
    await write(stack.dsn, mine + theirs)
    since, until = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)
    first = await reroute(stack.dsn, since, until, batch_size=1, max_batches=3)
    assert (first.events, first.finished) == (3, False)
    rest = await reroute(stack.dsn, since, until, batch_size=1)
    assert (rest.resumed, rest.events, rest.routed, rest.finished) == (True, 8, 8, True)
    conn = await connect(stack.dsn)
    try:
        assert sorted(tuple(r) for r in await conn.fetch(
            "SELECT workspace_id, sum(occurrence_frequency) FROM identified_patterns GROUP BY 1")) == [(WS, 4), (other, 4)]
    finally:
        await conn.close()


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=60, text=True)


async def test_the_cli_lists_what_was_not_routed_and_reroutes_it(stack):
    broken = event("user_feedback", {"rating": 9}, 1)
    await write(stack.dsn, [broken, event("spine.event", {"score": 0.71}, 2), detection(3)])
    env = stack.env()
    out = run("domain", "unrouted", "--since", "2026-11-01", "--events", "5", env=env)
    assert out.returncode == 0, out.stderr
    assert f"{WS}  user_feedback" in out.stdout and "contract" in out.stdout and "1 events" in out.stdout
    assert "rating: Input should be less than or equal to 5" in out.stdout
    assert broken["event_id"] in out.stdout
    assert "event types without a contract" in out.stdout and "spine.event" in out.stdout
    out = run("domain", "reroute", "--since", "2026-11-30T11:00:00Z", "--until", "2026-11-30T13:00:00Z", env=env)
    assert out.returncode == 0, out.stderr
    assert "3 events (routed 1, unrouted 1, unknown type 1)" in out.stdout and "finished" in out.stdout
    # a run started by `--since <N>d` and interrupted is resumed by the same command, within its bounds
    days = (datetime.now(UTC) - T0).days + 2
    first = await reroute(stack.dsn, datetime.now(UTC) - timedelta(days=days), request=f"--since {days}d", batch_size=1,
                          max_batches=1)
    out = run("domain", "reroute", "--since", f"{days}d", env=env)
    assert out.returncode == 0, out.stderr
    assert f"resuming run {first.run_id}: events in" in out.stdout and f"run {first.run_id} finished" in out.stdout
    out = run("domain", "runs", env=env)
    assert f"run {first.run_id}: --since {days}d" in out.stdout and "finished" in out.stdout
    bad = run("domain", "reroute", "--since", "2999-01-01", env=env)
    assert bad.returncode == 2 and "in the future" in bad.stderr
    bad = run("domain", "reroute", "--since", "tomorrow-ish", env=env)
    assert bad.returncode == 2 and "neither an ISO time" in bad.stderr
    bad = run("domain", "unrouted", "--workspace", "nope", env=env)
    assert bad.returncode == 2 and "not a workspace id" in bad.stderr
