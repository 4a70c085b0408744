"""A producer written against the spine's README (issue #22), end to end on real Kafka and
PostgreSQL: seed 004's type names with free event_data, types never seen, and known types with
fields the service does not know. Every event is stored; what cannot be routed is recorded,
counted and announced, never dead-lettered; a reroute of the raw log changes nothing it got right."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.pool import connect
from streams.domain.reroute import reroute
from streams.publish import publish_messages
from tests.support import metric, read_topic, wait_for_rows

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0)
#: seed 004's comment on learning_events.event_type, and two types the service has never seen
SEED_TYPES = ("model_prediction", "pattern_detection", "user_feedback", "system_optimization")
NEW_TYPES = ("engagement_spike", "scraper.heartbeat")


def spine_events(n: int, workspace: str, rng: random.Random) -> list[dict]:
    """What a spine-era scraper sends: any type name, event_data like {"score": 0.71}."""
    out = []
    for i in range(n):
        event_type = (SEED_TYPES + NEW_TYPES)[i % 6]
        data = {"score": round(rng.random(), 2)}
        if i % 4 == 0:
            data |= {"model": f"v{rng.randrange(3)}", "labels": ["hook", "caption"]}
        if event_type == "system_optimization" and i % 12 == 3:
            data |= {"improvement_type": "latency", "improvement_percentage": 12.5}
        out.append({"event_id": str(uuid.uuid4()), "workspace_id": workspace, "event_type": event_type,
                    "timestamp": (NOW - timedelta(seconds=n - i)).isoformat(), "event_data": data,
                    "source_system": "scraper"})
    return out


async def test_a_spine_era_producer_keeps_every_event_stored(stack, start_worker):
    worker = start_worker()
    ws = str(uuid.uuid4())
    events = spine_events(2000, ws, random.Random(22))
    by_type = {t: [e for e in events if e["event_type"] == t] for t in SEED_TYPES + NEW_TYPES}
    messages = [(ws.encode(), orjson.dumps(events[i:i + 100])) for i in range(0, len(events), 100)]
    await publish_messages(stack.bootstrap, stack.topics["learning_event"], messages)

    assert await wait_for_rows(stack.dsn, {"learning_events": 2000}) == {"learning_events": 2000}
    unrouted_types = ("model_prediction", "pattern_detection", "user_feedback")
    expected_unrouted = sum(len(by_type[t]) for t in unrouted_types)
    notices = await read_topic(stack.bootstrap, stack.unrouted, expected_unrouted, timeout=60)
    assert len(notices) == expected_unrouted == 1001  # 334 + 334 + 333
    assert {n["event_id"] for n in notices} == {e["event_id"] for t in unrouted_types for e in by_type[t]}
    assert all(n["stored"] and n["reason"] == "contract" for n in notices)
    first = next(n for n in notices if n["event_type"] == "pattern_detection")
    assert "pattern_type: Field required" in first["errors"]
    assert await read_topic(stack.bootstrap, stack.dlq, 0, timeout=2) == []  # nothing dead-lettered

    conn = await connect(stack.dsn)
    try:
        stored = {str(r["id"]): r["event_data"] for r in await conn.fetch("SELECT id, event_data FROM learning_events")}
        assert all(stored[e["event_id"]] == e["event_data"] for e in events)  # as sent, unknown fields too
        routed = await conn.fetchval("SELECT count(*) FROM ai_improvement_tracking")
        assert routed == len(by_type["system_optimization"]) == 333
        measured = await conn.fetch("SELECT improvement_type, improvement_percentage FROM ai_improvement_tracking "
                                    "WHERE improvement_percentage IS NOT NULL")
        assert {(r[0], r[1]) for r in measured} == {("latency", 12.5)} and len(measured) == 167
        per_type = dict(await conn.fetch("SELECT event_type, count(*) FROM unrouted_events GROUP BY 1"))
        assert per_type == {t: len(by_type[t]) for t in unrouted_types}
        m = worker.metrics()
        for t in unrouted_types:
            assert metric(m, "learnstream_unrouted_total", event_type=t, reason="contract") == len(by_type[t])
        for t in NEW_TYPES:
            assert metric(m, "learnstream_unrouted_total", event_type=t, reason="unknown_type") == len(by_type[t])
        assert metric(m, "learnstream_invalid_events_total", topic=stack.topics["learning_event"], reason="schema") == 0
        print(f"\nspine-era producer: sent {len(events)}, stored {len(stored)}, routed {routed}, "
              f"unrouted {expected_unrouted} (contract), unknown types {sum(len(by_type[t]) for t in NEW_TYPES)}")

        # rerouting the raw log with the same contracts changes nothing
        before = sorted(tuple(r) for r in await conn.fetch(
            "SELECT id, improvement_type, improvement_percentage FROM ai_improvement_tracking"))
        p = await reroute(stack.dsn, NOW - timedelta(hours=1))
        assert (p.events, p.routed, p.unrouted, p.unknown_type) == (2000, 333, 1001, 666)
        assert sorted(tuple(r) for r in await conn.fetch(
            "SELECT id, improvement_type, improvement_percentage FROM ai_improvement_tracking")) == before
        assert await conn.fetchval("SELECT count(*) FROM unrouted_events") == 1001
    finally:
        await conn.close()
