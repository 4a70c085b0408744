"""The seeds' domain fed by the streams (issue #9), end to end on real Kafka and PostgreSQL: the
content-items and account-snapshots topics, learning events routed by type, duplicates ignored,
bad members dead-lettered, a parked event applied when its referent comes and one dead-lettered
when it never does."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.pool import connect
from streams.publish import publish_messages
from tests.support import metric, read_topic

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0)


def at(minutes: float) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


async def _wait(dsn: str, sql: str, want, timeout: float = 90):
    conn = await connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            got = await conn.fetchval(sql)
            if got == want or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def test_every_routing_path_end_to_end(stack, start_worker):
    worker = start_worker(LEARNSTREAM_DOMAIN_RESUME_INTERVAL_S="0.5", LEARNSTREAM_DOMAIN_PARK_MAX_AGE_S="8")
    ws = str(uuid.uuid4())
    post, model, pred, orphan = (str(uuid.uuid4()) for _ in range(4))

    def ev(event_type: str, data: dict, minutes: float, **extra) -> dict:
        return {"event_id": str(uuid.uuid4()), "workspace_id": ws, "event_type": event_type,
                "timestamp": at(minutes), "event_data": data, **extra}

    # content-items: two observations of a post (one redelivered) and a bad member
    items = [{"event_id": str(uuid.uuid4()), "workspace_id": ws, "content_id": post, "platform": "tiktok",
              "connector_id": "me", "caption": cap, "hashtags": ["#fyp", "#ai"], "published_at": at(120),
              "observed_at": at(m), "media": [{"url": "https://cdn/v1.mp4", "media_type": "video", "duration_s": 21.5}]}
             for cap, m in (("first", 60), ("edited", 30))]
    bad_item = {**items[0], "event_id": str(uuid.uuid4()), "observed_at": "yesterday"}
    await publish_messages(stack.bootstrap, stack.domain_topics["content_item"], [
        (ws.encode(), orjson.dumps([items[1], bad_item])), (ws.encode(), orjson.dumps(items[0])),
        (ws.encode(), orjson.dumps(items[1]))])

    # account-snapshots: our account twice, a competitor twice on one day, one with an unknown zone
    def snap(acct: str, rel: str, minutes: float, followers: int, **extra) -> dict:
        return {"snapshot_id": str(uuid.uuid4()), "workspace_id": ws, "connector_id": acct, "platform": "tiktok",
                "relationship": rel, "handle": f"@{acct}", "recorded_at": at(minutes), "followers": followers, **extra}

    snaps = [snap("me", "own", 50, 1000, timezone="Europe/Berlin",
                  demographics={"age_ranges": {"18-24": 55.0, "25-34": 45.0}},
                  interests=[{"category": "tech", "affinity_score": 0.9, "audience_percentage": 60.0}]),
             snap("me", "own", 10, 1250),
             snap("rival", "competitor", 3, 9000, engagement_rate=4.0),
             snap("rival", "competitor", 2, 9100, engagement_rate=4.2)]
    bad_snap = snap("me", "own", 5, 1300, timezone="Mars/Olympus")
    await publish_messages(stack.bootstrap, stack.domain_topics["account_snapshot"],
                           [(ws.encode(), orjson.dumps(snaps + [bad_snap]))])

    # learning events: the outcome first (parked until its prediction), the model after its prediction
    outcome = ev("prediction_outcome", {"prediction_id": pred, "actual_score": 100.0}, 1)
    prediction = ev("model_prediction", {"prediction_id": pred, "model_id": model, "prediction_type": "viral_score",
                                         "target_entity_type": "content", "target_entity_id": post,
                                         "predicted_score": 125.0, "confidence": 0.6}, 40)
    registered = ev("model_registered", {"model_id": model, "name": "viral", "version": "7", "model_type": "prediction",
                                         "status": "active"}, 45)
    patterns = [ev("pattern_detection", {"pattern_type": "hook", "pattern_name": "question", "signature": {"q": True},
                                         "source_id": f"p{i}", "success": i % 3 != 0, "engagement": 10.0 * i}, 20 - i)
                for i in range(6)]
    bad_prediction = ev("model_prediction", {"prediction_id": str(uuid.uuid4()), "model_id": model,
                                             "prediction_type": "viral_score"}, 5)  # no predicted value
    never = ev("prediction_outcome", {"prediction_id": orphan, "actual_score": 1.0}, 1)
    learning = stack.topics["learning_event"]
    await publish_messages(stack.bootstrap, learning, [(ws.encode(), orjson.dumps([outcome, never]))])
    assert await _wait(stack.dsn, "SELECT count(*) FROM parked_events", 2) == 2
    await publish_messages(stack.bootstrap, learning, [(ws.encode(), orjson.dumps([prediction, *patterns[:3]]))])
    assert await _wait(stack.dsn, "SELECT count(*) FROM parked_events", 3) == 3  # the prediction waits for its model
    await publish_messages(stack.bootstrap, learning, [
        (ws.encode(), orjson.dumps([registered, bad_prediction, *patterns[3:]])),
        (ws.encode(), orjson.dumps(patterns)),  # a producer's retry: nothing changes
    ])

    # the outcome is applied once the prediction is (the timer resumes parked events)
    got = await _wait(stack.dsn, "SELECT accuracy_percentage FROM prediction_accuracy", 75.0)
    assert got == 75.0  # 1 - |125 - 100| / 100
    # the orphan outcome is dead-lettered after domain_park_max_age_s
    dead = await read_topic(stack.bootstrap, stack.dlq, 3, timeout=60)
    by_stage = {}
    for d in dead:
        by_stage.setdefault((d["source_topic"], d["stage"]), []).append(d)
    (content_dl,) = by_stage[(stack.domain_topics["content_item"], "ingest")]
    assert content_dl["members"] == [1] and content_dl["errors"][0]["path"] == "observed_at"
    (snap_dl,) = by_stage[(stack.domain_topics["account_snapshot"], "ingest")]
    assert snap_dl["members"] == [4] and snap_dl["errors"][0]["path"] == "timezone"
    assert (learning, "ingest") not in by_stage  # the prediction without a value is stored, not routed:
    (notice,) = await read_topic(stack.bootstrap, stack.unrouted, 1, timeout=30)
    assert (notice["event_id"], notice["event_type"], notice["reason"], notice["stored"]) == (
        bad_prediction["event_id"], "model_prediction", "contract", True)
    assert any("predicted_score or predicted_value" in e for e in notice["errors"])
    assert notice["source_topic"] == learning and notice["offset"] >= 0
    (orphan_dl,) = by_stage[(learning, "domain")]
    assert orphan_dl["errors"][0]["reason"] == "unresolved_reference"
    assert f"prediction {orphan}" in orphan_dl["errors"][0]["message"]
    assert orjson.loads(orphan_dl["value"])["prediction_id"] == orphan
    assert (orphan_dl["partition"], orphan_dl["offset"]) == (-1, -1)

    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM parked_events") == 0
        c = await conn.fetchrow("SELECT * FROM content WHERE id = $1", uuid.UUID(post))
        assert c["caption"] == "edited" and c["hashtags"] == ["#fyp", "#ai"]
        assert c["first_seen_at"] == NOW - timedelta(minutes=60) and c["last_seen_at"] == NOW - timedelta(minutes=30)
        assert await conn.fetchval("SELECT count(*) FROM post_media_links") == 1
        g = await conn.fetch("SELECT follower_count, follower_change FROM audience_growth ORDER BY recorded_at")
        assert [(r[0], r[1]) for r in g] == [(1000, None), (1250, 250)]
        assert await conn.fetchval("SELECT timezone FROM connectors WHERE id = 'me'") == "Europe/Berlin"
        assert await conn.fetchval("SELECT age_ranges FROM audience_demographics") == {"18-24": 55.0, "25-34": 45.0}
        assert await conn.fetchval("SELECT affinity_score FROM audience_interests") == 0.9
        cm = await conn.fetch("SELECT followers, engagement_rate FROM competitor_metrics")
        day_of = {(NOW - timedelta(minutes=3)).date(), (NOW - timedelta(minutes=2)).date()}
        assert len(cm) == len(day_of) and cm[-1]["followers"] == 9100
        p = await conn.fetchrow("SELECT * FROM identified_patterns")
        assert (p["occurrence_frequency"], p["judged_count"], p["success_count"]) == (6, 6, 4)
        assert p["average_engagement"] == 25.0
        assert await conn.fetchval("SELECT count(*) FROM pattern_occurrences") == 6
        pr = await conn.fetchrow("SELECT * FROM predictions")
        assert pr["status"] == "validated" and pr["actual_score"] == 100.0
        assert await conn.fetchval("SELECT count(*) FROM learning_events") == 11  # duplicates: 0
        u = await conn.fetchrow("SELECT event_id, reason FROM unrouted_events")
        assert (str(u["event_id"]), u["reason"]) == (bad_prediction["event_id"], "contract")
        v = await conn.fetchrow("SELECT content_id, model_version FROM viral_score_predictions")
        assert (str(v["content_id"]), v["model_version"]) == (post, "7")
    finally:
        await conn.close()

    m = worker.metrics()
    assert metric(m, "learnstream_duplicates_skipped_total", table="learning_events") == 6
    assert metric(m, "learnstream_invalid_events_total", topic=learning, reason="schema") == 0
    assert metric(m, "learnstream_unrouted_total", event_type="model_prediction", reason="contract") == 1
    assert metric(m, "learnstream_parked_events_expired_total") == 1
    assert metric(m, "learnstream_parked_events_applied_total") == 2  # the prediction, then its outcome
    # the older observation and the redelivery change nothing
    assert metric(m, "learnstream_rows_inserted_total", table="content") == 1
    assert metric(m, "learnstream_duplicates_skipped_total", table="content") == 2
