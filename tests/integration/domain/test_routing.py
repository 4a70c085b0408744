"""Learning events routed into the domain tables by the writer (real PostgreSQL): exact values,
redeliveries that change nothing, any arrival order giving the same rows, parking and resuming."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from db.domain.routing import resume_parked
from db.pool import connect, create_writer_pool
from db.tables import ACCOUNT_SNAPSHOTS, CONTENT_ITEMS, LEARNING_EVENTS
from db.writer import WritePolicy, write_rows
from schemas.decode import decode_message

pytestmark = pytest.mark.services

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WS = uuid.UUID("00000000-0000-4000-8000-00000000aaaa")
MODEL = uuid.UUID("00000000-0000-4000-8000-000000000001")
DATASET = uuid.UUID("00000000-0000-4000-8000-000000000002")
SESSION = uuid.UUID("00000000-0000-4000-8000-000000000003")


def event(event_type: str, data: dict, minutes: float = 0, ws: uuid.UUID = WS, **extra) -> dict:
    return {"event_id": str(uuid.uuid4()), "workspace_id": str(ws), "event_type": event_type,
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "event_data": data, **extra}


def rows_of(kind: str, spec, events: list[dict]) -> list[tuple]:
    decoded = decode_message(orjson.dumps(events), kind)
    assert decoded.rejected is None, decoded.rejected
    return [spec.row(e) for e in decoded.events]


@pytest.fixture
async def db(stack):
    pool = await create_writer_pool(stack.dsn, 1)
    conn = await connect(stack.dsn)
    try:
        async def write(events: list[dict], kind: str = "learning_event", spec=LEARNING_EVENTS, direct: bool = True):
            async with pool.acquire() as c:
                return await write_rows(c, spec, rows_of(kind, spec, events), WritePolicy(optimistic=direct))
        yield conn, write
    finally:
        await conn.close()
        await pool.close()


def model_registered(status: str = "training", minutes: float = 0) -> dict:
    return event("model_registered", {"model_id": str(MODEL), "name": "viral-v", "version": "1.2",
                                      "model_type": "prediction", "framework": "pytorch", "status": status,
                                      "performance_metrics": {"auc": 0.8}}, minutes)


async def test_training_progress_in_any_order_gives_one_session_with_its_loss_curve(db):
    conn, write = db
    await write([model_registered(), event("dataset_registered", {
        "dataset_id": str(DATASET), "name": "posts", "version": "2026-11", "dataset_type": "engagement",
        "record_count": 120000, "quality_score": 0.93})])
    progress = [
        event("training_progress", {"session_id": str(SESSION), "model_id": str(MODEL), "dataset_id": str(DATASET),
                                    "epoch": e, "total_epochs": 3, "loss": loss, "progress_percentage": 100 * e / 3},
              minutes=e)
        for e, loss in ((1, 0.9), (2, 0.5), (3, 0.25))
    ]
    done = event("training_progress", {"session_id": str(SESSION), "model_id": str(MODEL), "status": "completed"},
                 minutes=4)
    # out of order, across two batches, the second also redelivering one
    await write([progress[2], done])
    await write([progress[0], progress[1], progress[2]], direct=False)
    s = await conn.fetchrow("SELECT * FROM model_training_sessions WHERE id = $1", SESSION)
    assert s["status"] == "completed"
    assert s["current_epoch"] == 3 and s["total_epochs"] == 3
    assert s["progress_percentage"] == 100
    assert s["dataset_id"] == DATASET
    assert s["loss_history"] == [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}, {"epoch": 3, "loss": 0.25}]
    assert s["training_start"] == T0 + timedelta(minutes=1)
    assert s["training_end"] == T0 + timedelta(minutes=4)
    # a later registration updates the model; an older one does not
    await write([model_registered("active", minutes=10), model_registered("deprecated", minutes=-5)])
    m = await conn.fetchrow("SELECT status, name, version, last_event_at FROM ml_models WHERE id = $1", MODEL)
    assert (m["status"], m["name"], m["version"]) == ("active", "viral-v", "1.2")
    assert await conn.fetchval("SELECT count(*) FROM learning_events") == 8


async def test_prediction_outcome_feedback_and_accuracy(db):
    conn, write = db
    content = uuid.uuid4()
    p1, p2, p3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def prediction(pid, score, target=None):
        data = {"prediction_id": str(pid), "model_id": str(MODEL), "prediction_type": "viral_score",
                "predicted_score": score, "confidence": 0.7, "horizon_hours": 24, "features": {"hashtags": 3}}
        if target:
            data |= {"target_entity_type": "content", "target_entity_id": str(target)}
        return event("model_prediction", data)

    # the outcome of p1 comes before its prediction, and the prediction before its model: both park
    await write([event("prediction_outcome", {"prediction_id": str(p1), "actual_score": 80.0,
                                              "actual_metrics": {"views": 8000}}, minutes=60)])
    await write([prediction(p1, 100.0, target=content)])
    assert await conn.fetchval("SELECT count(*) FROM parked_events") == 2
    assert sorted(await conn.fetchval("SELECT array_agg(waiting_for) FROM parked_events")) == sorted(
        [f"prediction {p1}", f"model {MODEL}"])
    first = await conn.fetchval("SELECT min(parked_at) FROM parked_events")
    assert await resume_parked(conn) == (0, 0, 0)  # nothing arrived: neither is taken, both wait on
    assert await conn.fetchval("SELECT min(parked_at) FROM parked_events") == first
    assert await conn.fetchval("SELECT max(attempts) FROM parked_events") == 0
    assert await conn.fetchval("SELECT count(*) FROM predictions") == 0
    # the model arrives with two more predictions and their outcome / feedback
    await write([model_registered(), prediction(p2, 50.0), prediction(p3, 10.0),
                 event("prediction_outcome", {"prediction_id": str(p2), "actual_score": 40.0}, minutes=30),
                 event("user_feedback", {"prediction_id": str(p3), "rating": 2, "correct": False,
                                         "actual_score": 0.0}, minutes=5, user_id="u-9")])
    # p1's prediction and outcome are still parked (the model came after them): one resume applies
    # both, the prediction first (routes run in dependency order)
    assert await resume_parked(conn) == (2, 0, 0)
    assert await conn.fetchval("SELECT count(*) FROM parked_events") == 0

    acc = {r["prediction_id"]: r for r in await conn.fetch("SELECT * FROM prediction_accuracy")}
    assert set(acc) == {p1, p2, p3}
    assert acc[p1]["absolute_error"] == 20.0 and acc[p1]["percentage_error"] == 25.0
    assert acc[p1]["accuracy_percentage"] == 75.0 and acc[p1]["content_id"] == content
    assert acc[p1]["actual_metrics"] == {"views": 8000} and acc[p1]["source"] == "outcome"
    assert acc[p2]["accuracy_percentage"] == 75.0 and acc[p2]["absolute_error"] == 10.0
    assert acc[p3]["source"] == "feedback" and acc[p3]["percentage_error"] is None
    assert acc[p3]["accuracy_percentage"] == 0.0
    # the ratio accuracy (0032): 80 / 100, 40 / 50; 10 against 0 has no ratio
    assert (acc[p1]["ratio_accuracy"], acc[p2]["ratio_accuracy"], acc[p3]["ratio_accuracy"]) == (80.0, 80.0, None)
    p = {r["id"]: r for r in await conn.fetch("SELECT * FROM predictions")}
    assert p[p1]["status"] == "validated" and p[p1]["accuracy_score"] == 0.75
    assert p[p1]["actual_outcome"] == {"score": 80.0} and p[p1]["predicted_value"] == {"score": 100.0}
    assert p[p3]["status"] == "invalidated"
    assert p[p3]["feedback_received"]["rating"] == 2 and p[p3]["feedback_received"]["user_id"] == "u-9"
    # the seed's view of the content prediction
    v = await conn.fetchrow("SELECT * FROM viral_score_predictions")
    assert v["content_id"] == content and v["predicted_score"] == 100.0 and v["model_version"] == "1.2"
    # a later explicit outcome replaces an earlier one; feedback never replaces an outcome
    await write([event("prediction_outcome", {"prediction_id": str(p2), "actual_score": 50.0}, minutes=90),
                 event("user_feedback", {"prediction_id": str(p2), "actual_score": 1.0}, minutes=100)])
    a2 = await conn.fetchrow("SELECT * FROM prediction_accuracy WHERE prediction_id = $1", p2)
    assert a2["accuracy_percentage"] == 100.0 and a2["source"] == "outcome" and a2["ratio_accuracy"] == 100.0


async def test_patterns_count_occurrences_once_and_keep_their_success_rate(db):
    conn, write = db
    sig = {"hook": "question", "length_s": [7, 15]}

    def detection(success, engagement, minutes, signature=sig):
        return event("pattern_detection", {
            "pattern_type": "hook", "pattern_name": "question opener", "signature": signature,
            "source_type": "content", "source_id": "post-1", "content_id": str(uuid.uuid4()),
            "success": success, "engagement": engagement, "confidence": 0.8}, minutes)

    batch = [detection(True, 100.0, 1), detection(False, 20.0, 2), detection(True, 60.0, 3),
             detection(None, None, 4), detection(True, 10.0, 5, signature={"hook": "countdown"})]
    await write(batch)
    await write(batch[:3], direct=False)  # redelivered: nothing changes
    rows = {r["pattern_name"] + str(r["pattern_signature"]): r for r in await conn.fetch(
        "SELECT * FROM identified_patterns ORDER BY occurrence_frequency DESC")}
    top = await conn.fetchrow("SELECT * FROM identified_patterns WHERE pattern_signature = $1", sig)
    assert top["occurrence_frequency"] == 4 and top["judged_count"] == 3 and top["success_count"] == 2
    assert top["success_rate"] == pytest.approx(200 / 3)
    assert top["average_engagement"] == 60.0
    assert top["first_detected"] == T0 + timedelta(minutes=1)
    assert top["last_detected"] == T0 + timedelta(minutes=4)
    assert len(rows) == 2
    assert await conn.fetchval("SELECT count(*) FROM pattern_occurrences") == 5
    # seed 001's key query 1, as written, over the view
    q1 = await conn.fetch("""SELECT pattern_type, AVG(success_rate) as avg_success, COUNT(*) as pattern_count
        FROM ai_learning_patterns GROUP BY pattern_type ORDER BY avg_success DESC LIMIT 10""")
    assert [(r["pattern_type"], r["pattern_count"]) for r in q1] == [("hook", 2)]
    assert float(q1[0]["avg_success"]) == pytest.approx((200 / 3 + 100) / 2)


async def test_ab_experiment_arms_and_evolution_progress(db):
    conn, write = db
    exp, evo = uuid.uuid4(), uuid.uuid4()
    assignments = [event("ab_assignment", {"experiment_id": str(exp), "subject_id": f"u{i}",
                                           "variant": "control" if i % 2 else "emoji"}, minutes=i) for i in range(6)]
    outcomes = [event("ab_outcome", {"experiment_id": str(exp), "subject_id": f"u{i}", "converted": i < 3,
                                     "value": float(i)}, minutes=10 + i) for i in range(4)]
    # the assignments and outcomes come before the experiment: parked
    await write(assignments + outcomes)
    assert await conn.fetchval("SELECT count(*) FROM parked_events") == 10
    await write([event("ab_experiment", {"experiment_id": str(exp), "name": "caption emoji", "status": "running",
                                         "target_metrics": ["ctr"]}),
                 # a second assignment of u0 to another arm is ignored: the first stands
                 event("ab_assignment", {"experiment_id": str(exp), "subject_id": "u0", "variant": "control"},
                       minutes=30)])
    assert await resume_parked(conn) == (10, 0, 0)  # assignments first, then their outcomes
    e = await conn.fetchrow("SELECT * FROM ab_testing_experiments WHERE id = $1", exp)
    assert e["current_sample_size"] == 6
    # control: u1,u3,u5; emoji: u0,u2,u4. outcomes u0..u3: converted u0,u1,u2
    assert e["results"]["emoji"] == {"assigned": 3, "outcomes": 2, "judged": 2, "converted": 2, "conversion_rate": 1.0,
                                     "mean_value": 1.0}
    assert e["results"]["control"] == {"assigned": 3, "outcomes": 2, "judged": 2, "converted": 1, "conversion_rate": 0.5,
                                       "mean_value": 2.0}
    assert await conn.fetchval("SELECT variant FROM ab_testing_assignments WHERE user_id = 'u0'") == "emoji"

    await write([event("evolution_experiment", {"experiment_id": str(evo), "name": "captions",
                                                "problem_definition": {"goal": "ctr"},
                                                "objective_function": {"maximize": "ctr"}})])
    gens = [event("evolution_generation", {"experiment_id": str(evo), "generation_id": str(uuid.uuid4()),
                                           "generation_number": g, "completed": True}, minutes=g) for g in range(3)]
    inds = [event("evolution_individual", {"experiment_id": str(evo), "generation_number": g,
                                           "individual_id": str(uuid.uuid4()), "individual_index": i,
                                           "genotype": {"c": f"{g}-{i}"}, "fitness_score": g + i / 10},
                  minutes=g + 0.5) for g in range(3) for i in range(3)]
    await write(inds[:3] + gens + inds[3:])
    x = await conn.fetchrow("SELECT * FROM evolution_experiments WHERE id = $1", evo)
    assert x["current_generation"] == 2 and x["best_score"] == pytest.approx(2.2) and x["status"] == "running"
    best = await conn.fetch("""SELECT g.generation_number, i.individual_index FROM evolution_generations g
        JOIN evolution_individuals i ON i.id = g.best_individual_id ORDER BY 1""")
    assert [(r[0], r[1]) for r in best] == [(0, 2), (1, 2), (2, 2)]


async def test_styles_trends_improvements_ai_context_and_embeddings(db):
    conn, write = db
    post, sug = uuid.uuid4(), uuid.uuid4()
    await write([
        event("style_analysis", {"content_id": str(post), "style_tags": ["fast-cut", "captions", "fast-cut"],
                                 "visual_style": {"palette": "warm"}}),
        event("trend_detected", {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#fyp",
                                 "engagement_impact": 12.5, "end_time": (T0 + timedelta(hours=2)).isoformat()},
              minutes=0),
        event("trend_detected", {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#fyp",
                                 "engagement_impact": 20.0}, minutes=30),
        event("improvement_measured", {"improvement_type": "accuracy", "metric": "mae",
                                       "before_metrics": {"mae": 8.0}, "after_metrics": {"mae": 6.0}}),
        event("system_optimization", {"before_metrics": {"p95_ms": 200}, "after_metrics": {"p95_ms": 150},
                                      "improvement_percentage": 25.0}),
        event("ai_interaction", {"conversation_id": "c1", "model": "gpt-x", "prompt": "Write a caption",
                                 "response": "Try this", "prompt_tokens": 12, "completion_tokens": 30,
                                 "latency_ms": 900,
                                 "prompt_template": {"name": "caption", "version": "3", "template": "Write {x}",
                                                     "variables": ["x"]},
                                 "suggestions": [{"suggestion_id": str(sug), "suggestion_type": "caption",
                                                  "content": "Try this"}]}, user_id="u1"),
        event("user_feedback", {"suggestion_id": str(sug), "accepted": True}, minutes=2),
        event("embedding_computed", {"entity_type": "content", "entity_id": "a", "model": "e5", "vector": [1, 0, 0]}),
        event("embedding_computed", {"entity_type": "content", "entity_id": "b", "model": "e5", "vector": [1, 1, 0]}),
        event("embedding_computed", {"entity_type": "content", "entity_id": "c", "model": "e5", "vector": [0, 0, 1]}),
    ])
    s = await conn.fetchrow("SELECT * FROM content_style_analysis")
    assert s["content_id"] == post and s["style_tags"] == ["captions", "fast-cut"]  # a set: sorted, once
    t = await conn.fetch("SELECT * FROM trend_analysis")
    assert len(t) == 1 and t[0]["engagement_impact"] == 20.0
    assert t[0]["start_time"] == T0 and t[0]["end_time"] == T0 + timedelta(hours=2)
    imp = {r["improvement_type"]: r for r in await conn.fetch("SELECT * FROM ai_improvement_tracking")}
    assert imp["accuracy"]["improvement_percentage"] == 25.0  # mae 8 -> 6: -(6 - 8) / 8, lower is better
    assert imp["system_optimization"]["improvement_percentage"] == 25.0
    assert imp["system_optimization"]["source_event_type"] == "system_optimization"
    log = await conn.fetchrow("SELECT * FROM ai_context_logs")
    assert log["total_tokens"] == 42 and log["user_id"] == "u1" and log["prompt_id"] is not None
    assert await conn.fetchval("SELECT uses FROM ai_prompts WHERE name = 'caption'") == 1
    assert await conn.fetchval("SELECT status FROM ai_suggestions WHERE id = $1", sug) == "accepted"
    near = await conn.fetch("""SELECT entity_id, cosine_similarity(vector, '{1,0,0}') AS s FROM embeddings
        WHERE workspace_id = $1 ORDER BY s DESC""", WS)
    assert [r["entity_id"] for r in near] == ["a", "b", "c"]
    assert near[1]["s"] == pytest.approx(2 ** -0.5)


async def test_content_items_upserted_by_observation_time(db):
    conn, write = db
    cid = uuid.uuid4()

    def item(minutes, caption, media):
        return {"event_id": str(uuid.uuid4()), "workspace_id": str(WS), "content_id": str(cid),
                "platform": "instagram", "connector_id": "acct-1", "caption": caption, "hashtags": ["#a"],
                "media": [{"url": u, "media_type": "video", "duration_s": 12.5} for u in media],
                "published_at": T0.isoformat(), "observed_at": (T0 + timedelta(minutes=minutes)).isoformat()}

    first, second, older = item(10, "v1", ["m1", "m2"]), item(20, "v2", ["m2", "m3"]), item(5, "v0", ["m9"])
    r = await write([first], "content_item", CONTENT_ITEMS)
    assert r.inserted == 1
    await write([second, first], "content_item", CONTENT_ITEMS)
    r = await write([second], "content_item", CONTENT_ITEMS)  # redelivered
    assert r.inserted == 0
    await write([older], "content_item", CONTENT_ITEMS)
    c = await conn.fetchrow("SELECT * FROM content WHERE id = $1", cid)
    assert c["caption"] == "v2" and c["first_seen_at"] == T0 + timedelta(minutes=5)
    assert c["last_seen_at"] == T0 + timedelta(minutes=20)
    links = await conn.fetch("""SELECT l.position, m.url FROM post_media_links l JOIN media_files m
        ON m.workspace_id = l.workspace_id AND m.id = l.media_id WHERE l.content_id = $1 ORDER BY 1""", cid)
    assert [(r[0], r[1]) for r in links] == [(0, "m2"), (1, "m3")]
    assert await conn.fetchval("SELECT count(*) FROM media_files") == 4
    assert (await conn.fetchrow("SELECT * FROM published_posts"))["id"] == cid


async def test_account_snapshots_fill_audience_and_competitor_tables(db):
    conn, write = db

    def snap(acct, rel, hours, followers, **extra):
        return {"snapshot_id": str(uuid.uuid4()), "workspace_id": str(WS), "connector_id": acct,
                "platform": "tiktok", "relationship": rel, "handle": f"@{acct}",
                "recorded_at": (T0 + timedelta(hours=hours)).isoformat(), "followers": followers, **extra}

    own = [snap("me", "own", h, f, demographics={"age_ranges": {"18-24": 40.0}},
                interests=[{"category": "fitness", "affinity_score": 0.7}]) for h, f in ((0, 1000), (24, 1100), (48, 1210))]
    own[1] |= {"engagement_rate": 4.5, "posts_per_week": 3.0}  # own accounts' rates are kept too (migration 0031)
    rival = [snap("rival", "competitor", h, f, engagement_rate=3.5) for h, f in ((1, 5000), (2, 5100), (26, 5300))]
    await write([own[2], rival[0], rival[1]], "account_snapshot", ACCOUNT_SNAPSHOTS)
    await write([own[0], own[1], rival[2], own[2]], "account_snapshot", ACCOUNT_SNAPSHOTS)
    g = await conn.fetch("SELECT follower_count, follower_change, growth_rate FROM audience_growth ORDER BY recorded_at")
    assert [(r[0], r[1]) for r in g] == [(1000, None), (1100, 100), (1210, 110)]
    assert [r[2] for r in g][1:] == [pytest.approx(10.0), pytest.approx(10.0)]
    rates = await conn.fetch("SELECT engagement_rate, posts_per_week FROM audience_growth ORDER BY recorded_at")
    assert [tuple(r) for r in rates] == [(None, None), (4.5, 3.0), (None, None)]
    assert await conn.fetchval("SELECT count(*) FROM audience_demographics") == 3
    assert await conn.fetchval("SELECT count(*) FROM audience_interests") == 3
    m = await conn.fetch("SELECT recorded_date, followers FROM competitor_metrics ORDER BY 1")
    assert [r[1] for r in m] == [5100, 5300]  # the day's latest
    p = await conn.fetchrow("SELECT * FROM competitor_profiles")
    assert p["name"] == "@rival" and p["first_seen_at"] == T0 + timedelta(hours=1)
    assert await conn.fetchval("SELECT relationship FROM connectors WHERE id = 'rival'") == "competitor"


async def test_the_job_tables_materialized_views_refresh_concurrently_with_the_seeds_figures(db):
    conn, write = db
    p1, p2 = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)

    def recent(ev: dict, minutes_ago: float) -> dict:  # daily_learning_metrics keeps 90 days
        return {**ev, "timestamp": (now - timedelta(minutes=minutes_ago)).isoformat()}

    pred = {"model_id": str(MODEL), "prediction_type": "viral_score", "predicted_score": 10.0}
    await write([recent(model_registered("active"), 10),
                 recent(event("model_prediction", {**pred, "prediction_id": str(p1)}, processing_time_ms=10), 3),
                 recent(event("model_prediction", {**pred, "prediction_id": str(p2)}, processing_time_ms=30), 2),
                 recent(event("prediction_outcome", {"prediction_id": str(p1), "actual_score": 8.0}), 1)])
    for mv in ("analytics_aggregated_daily", "analytics_aggregated_weekly", "platform_performance_summary",
               "daily_learning_metrics", "model_performance_summary"):
        await conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {mv}")
    m = await conn.fetchrow("SELECT * FROM model_performance_summary")
    assert (m["prediction_count"], m["validated_predictions"]) == (2, 1)
    assert m["avg_accuracy"] == 0.75  # 1 - |10 - 8| / 8, the only prediction with an outcome
    assert m["last_prediction"] == now - timedelta(minutes=2)
    d = {r["event_type"]: r for r in await conn.fetch("SELECT * FROM daily_learning_metrics")}
    assert sum(r["event_count"] for r in d.values()) == 4
    assert d["model_prediction"]["event_count"] == 2 and float(d["model_prediction"]["avg_processing_time"]) == 20


async def test_a_parked_event_refused_when_applied_is_handed_back_and_the_others_still_apply(db):
    conn, write = db
    evo, gen = uuid.uuid4(), uuid.uuid4()

    def individual(index: int, fitness: float) -> dict:
        return event("evolution_individual", {"experiment_id": str(evo), "generation_number": 0,
                                              "individual_id": str(uuid.uuid4()), "individual_index": index,
                                              "genotype": {"g": index}, "fitness_score": fitness})

    early = [individual(0, 0.5), individual(1, 0.7)]
    await write(early)  # no generation yet: both parked
    # the generation arrives with another individual at index 0: the parked one's place is taken
    await write([event("evolution_experiment", {"experiment_id": str(evo), "name": "e", "problem_definition": {},
                                                "objective_function": {}}),
                 event("evolution_generation", {"experiment_id": str(evo), "generation_id": str(gen),
                                                "generation_number": 0}, minutes=1),
                 individual(0, 0.9)])
    handed: list = []

    async def on_failed(failed):
        handed.extend(failed)

    assert await resume_parked(conn, on_failed=on_failed) == (2, 0, 1)
    ((row, why),) = handed
    assert row["event_id"] == uuid.UUID(early[0]["event_id"]) and "UniqueViolation" in why
    assert await conn.fetchval("SELECT count(*) FROM parked_events") == 0
    assert sorted(await conn.fetchval("SELECT array_agg(fitness_score) FROM evolution_individuals")) == [0.7, 0.9]
    assert await conn.fetchval("SELECT best_score FROM evolution_experiments") == 0.9


async def test_an_event_its_route_refuses_is_stored_unrouted_and_the_others_still_route(db):
    conn, write = db
    await write([model_registered()])
    clash = event("model_registered", {"model_id": str(uuid.uuid4()), "name": "viral-v", "version": "1.2",
                                       "model_type": "prediction"}, minutes=1)  # another id, same name + version
    fine = event("improvement_measured", {"improvement_type": "latency", "improvement_percentage": 5.0}, minutes=2)
    for direct in (True, False):
        result = await write([clash, fine], direct=direct)
        if direct:  # both stored; the clash is recorded unrouted, the other routed
            assert result.inserted == 2 and result.rejected == []
            (u,) = result.routing.unrouted
            assert (str(u.event_id), u.reason) == (clash["event_id"], "refused") and "UniqueViolation" in u.errors[0]
            assert result.routing.routed == 1
        else:  # the second time both are duplicates: nothing routed again
            assert result.inserted == 0 and result.duplicates == 2 and result.routing.unrouted == []
    assert await conn.fetchval("SELECT count(*) FROM ml_models") == 1
    assert await conn.fetchval("SELECT count(*) FROM ai_improvement_tracking") == 1
    ids = {str(r[0]) for r in await conn.fetch("SELECT id FROM learning_events")}
    assert {clash["event_id"], fine["event_id"]} <= ids
    row = await conn.fetchrow("SELECT event_id, event_type, reason, errors FROM unrouted_events")
    assert (str(row["event_id"]), row["event_type"], row["reason"]) == (clash["event_id"], "model_registered", "refused")


async def test_a_contract_miss_is_stored_recorded_and_routed_by_reroute_once_fixed(db):
    """Known type with a broken event_data: stored raw, not routed, recorded; unknown fields are
    kept in the raw log and ignored by routing; an unknown type is stored and counted."""
    conn, write = db
    broken = event("pattern_detection", {"score": 0.71})
    extra = event("model_registered", {"model_id": str(uuid.uuid4()), "name": "m2", "version": "1",
                                       "model_type": "prediction", "owner_team": "growth"})
    unknown = event("system_heartbeat", {"ok": True})
    result = await write([broken, extra, unknown])
    assert result.inserted == 3
    report = result.routing
    assert report.routed == 1 and dict(report.unknown) == {"system_heartbeat": 1}
    (u,) = report.unrouted
    assert (str(u.event_id), u.reason) == (broken["event_id"], "contract")
    assert any("pattern_type: Field required" in e for e in u.errors)
    stored = {str(r["id"]): r["event_data"] for r in await conn.fetch("SELECT id, event_data FROM learning_events")}
    assert stored[broken["event_id"]] == {"score": 0.71}
    assert stored[extra["event_id"]]["owner_team"] == "growth"  # kept as sent
    assert await conn.fetchval("SELECT name FROM ml_models WHERE id = $1", uuid.UUID(extra["event_data"]["model_id"])) == "m2"
    assert await conn.fetchval("SELECT count(*) FROM unrouted_events") == 1
    assert await conn.fetchval("SELECT count(*) FROM identified_patterns") == 0
