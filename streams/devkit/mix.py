"""A realistic, seeded synthetic mix for the domain (demo and bench): per workspace, accounts (own
and competitors) with daily snapshots, posts with their metadata, and the AI components' learning
events of every routed type, in the order those components emit them (a model is registered before
it predicts, an experiment before its assignments), each workspace keyed to one partition.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PLATFORMS = ["tiktok", "instagram", "youtube"]
HOOKS = ["question", "countdown", "before-after", "pov", "hot-take", "tutorial", "reaction", "story"]
STYLES = ["fast-cut", "captions", "voiceover", "duet", "b-roll", "talking-head", "meme", "asmr"]
#: publish slots of the day (UTC hours) in the mix with engagement; the evening ones engage better
SLOTS = (8, 12, 18, 20)
HASHTAGS = ["#fyp", "#ai", "#learn", "#tech", "#diy", "#fitness", "#food", "#travel", "#music", "#news"]


@dataclass
class Mix:
    #: topic kind -> messages (key, value), in publish order
    messages: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)
    #: topic kind -> events in them
    events: dict[str, int] = field(default_factory=dict)
    #: learning event type -> events
    by_type: dict[str, int] = field(default_factory=dict)


class MixGenerator:
    def __init__(self, seed: int = 7, now: datetime | None = None, workspaces: int = 2) -> None:
        self.rng = random.Random(seed)
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.workspaces = [self._id() for _ in range(workspaces)]

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _at(self, minutes_ago: float) -> str:
        return (self.now - timedelta(minutes=minutes_ago)).isoformat()

    def generate(self, learning_events: int, array_size: int = 100, learning_span_min: float = 360.0,
                 engagement: bool = True) -> Mix:
        """About `learning_events` learning events over all workspaces (timed over the last
        `learning_span_min` minutes), plus the content items and account snapshots that go with
        them; packed `array_size` per message (1 = single events). With `engagement`, also the posts'
        engagement updates and predictions of their views a day after publishing (what the jobs
        measure); the bench leaves them out so its figures stay those of the routed mix."""
        self.learning_span = learning_span_min
        self.engagement = engagement
        mix = Mix()
        per_ws = max(60, learning_events // len(self.workspaces))
        streams: dict[str, list[tuple[str, dict]]] = {"learning_event": [], "content_item": [], "account_snapshot": [],
                                                      "engagement_update": []}
        for ws in self.workspaces:
            for kind, evs in self._workspace(ws, per_ws).items():
                streams[kind].extend((ws, e) for e in evs)
        if not engagement:
            del streams["engagement_update"]
        for kind, evs in streams.items():
            msgs: list[tuple[bytes, bytes]] = []
            for ws in self.workspaces:
                mine = [e for w, e in evs if w == ws]
                for i in range(0, len(mine), array_size):
                    chunk = mine[i:i + array_size]
                    msgs.append((ws.encode(), orjson.dumps(chunk[0] if array_size == 1 else chunk)))
            mix.messages[kind] = msgs
            mix.events[kind] = len(evs)
            if kind == "learning_event":
                for _, e in evs:
                    mix.by_type[e["event_type"]] = mix.by_type.get(e["event_type"], 0) + 1
        return mix

    def _workspace(self, ws: str, n: int) -> dict[str, list[dict]]:
        r = self.rng
        out: dict[str, list[dict]] = {"learning_event": [], "content_item": [], "account_snapshot": [],
                                      "engagement_update": []}
        span = 7 * 24 * 60.0  # posts: a week of history, minutes
        learn = out["learning_event"]

        def ev(event_type: str, data: dict[str, Any], minutes_ago: float, **extra: Any) -> None:
            learn.append({"event_id": self._id(), "workspace_id": ws, "event_type": event_type,
                          "timestamp": self._at(max(0.0, minutes_ago)), "source_system": extra.pop("source", "ai"),
                          "event_data": data, "processing_time_ms": r.randrange(2, 400), **extra})

        # accounts: one own account per platform, two competitors; a snapshot a day for 8 days back
        # (the benchmarks' week, the 7 UTC days before today, needs one within a day before its start)
        own = [(f"{p}-own-{ws[:4]}", p) for p in PLATFORMS]
        rivals = [(f"{p}-rival{i}-{ws[:4]}", p) for p in PLATFORMS[:2] for i in (1, 2)]
        for acct, platform in own + rivals:
            followers = r.randrange(2_000, 200_000)
            competitor = acct in {a for a, _ in rivals}
            for day in range(8, -1, -1):
                followers = int(followers * (1 + r.uniform(-0.002, 0.02)))
                snap = {"snapshot_id": self._id(), "workspace_id": ws, "connector_id": acct, "platform": platform,
                        "relationship": "competitor" if competitor else "own", "handle": f"@{acct}",
                        "recorded_at": self._at(day * 1440 + 5), "followers": followers,
                        "following": r.randrange(50, 900), "posts_count": r.randrange(40, 900)}
                if competitor:
                    snap |= {"engagement_rate": round(r.uniform(1, 8), 3), "posts_per_week": round(r.uniform(2, 20), 1)}
                else:
                    snap |= {"timezone": r.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
                             "demographics": {"age_ranges": {"18-24": 38.0, "25-34": 34.0, "35-44": 18.0, "45+": 10.0},
                                              "gender_distribution": {"female": 52.0, "male": 46.0, "other": 2.0},
                                              "top_countries": {"US": 41.0, "DE": 12.0, "GB": 9.0}},
                             "interests": [{"category": c, "affinity_score": round(r.random(), 3),
                                            "audience_percentage": round(r.uniform(5, 60), 1)}
                                           for c in r.sample(["tech", "fitness", "food", "travel", "music"], 3)]}
                out["account_snapshot"].append(snap)
        # posts: observed twice (the caption edited once)
        posts = [self._id() for _ in range(max(10, n // 20))]
        published_at: dict[str, float] = {}  # post -> minutes ago
        views_at_day: dict[str, int] = {}  # post -> views 24 h after publishing
        for i, post in enumerate(posts):
            acct, platform = r.choice(own)
            trending = self.engagement and i % 10 == 0  # one post in ten carries #trending: it surges in the last hours
            if trending:
                published = r.uniform(2 * 1440, 3 * 1440)
            elif self.engagement:  # accounts post at a few slots of the day (UTC), so the hours compare
                # three weeks of posts, so the last week's days (a trend's baseline) are alike
                at = (self.now - timedelta(days=r.randrange(21))).replace(hour=r.choice(SLOTS), minute=r.randrange(60))
                at = at if at <= self.now - timedelta(hours=1) else at - timedelta(days=1)
                published = (self.now - at).total_seconds() / 60
            else:
                published = r.uniform(60, span)
            published_at[post] = published
            tags = ["#trending"] if trending else r.sample(HASHTAGS, 3)
            item = {"event_id": self._id(), "workspace_id": ws, "content_id": post, "platform": platform,
                    "connector_id": acct, "external_id": f"{platform}-{r.randrange(10**9)}",
                    "url": f"https://{platform}.example/p/{post[:8]}", "caption": "Watch this",
                    "hashtags": tags, "mentions": [], "author": f"@{acct}", "content_type": "video",
                    "media": [{"url": f"https://cdn.example/{post}.mp4", "media_type": "video",
                               "duration_s": round(r.uniform(7, 60), 1)}],
                    "published_at": self._at(published), "observed_at": self._at(published - 1)}
            out["content_item"].append(item)
            out["content_item"].append({**item, "event_id": self._id(), "caption": "Watch this (edited)",
                                        "observed_at": self._at(published / 2)})
            if not self.engagement:
                continue
            # engagement: posts published in the evening (17-21 h UTC) engage about twice as well
            hour = (self.now - timedelta(minutes=published)).hour
            rate = r.uniform(0.03, 0.06) * (2.0 if 17 <= hour < 21 else 1.0)
            reach = r.randrange(2_000, 50_000)
            # a scraper reads each post every 6 hours for its first 5 days (from an hour after
            # publishing); its reach grows over a few days
            points = [60 + 360 * k for k in range(int((min(published, 5 * 1440) - 60) // 360) + 1)]
            for after in points:
                grown = reach * (1 - 0.97 ** (1 + after / 60))
                if trending and published - after <= 6 * 60:  # quiet for days, then a surge in the last hours
                    grown *= 8
                views = int(grown)
                inter = int(views * rate)
                if 24 * 60 <= after < 30 * 60:
                    views_at_day[post] = views
                out["engagement_update"].append({
                    "update_id": self._id(), "workspace_id": ws, "content_id": post, "platform": platform,
                    "connector_id": acct, "recorded_at": self._at(published - after), "views": views,
                    "likes": int(inter * 0.7), "shares": int(inter * 0.1), "comments": int(inter * 0.15),
                    "saves": inter - int(inter * 0.7) - int(inter * 0.1) - int(inter * 0.15)})
        # the AI components' events: the last hours (older ones would be a backfill for the windows)
        span = self.learning_span
        # models, a dataset, training curves
        models = [self._id() for _ in range(2)]
        dataset = self._id()
        ev("dataset_registered", {"dataset_id": dataset, "name": "engagement", "version": "w48",
                                  "dataset_type": "engagement", "record_count": 250_000, "quality_score": 0.94},
           span * 1.05, source="trainer")
        for i, m in enumerate(models):  # viral-b is viral-a retrained: its parent
            ev("model_registered", {"model_id": m, "name": f"viral-{'ab'[i]}", "version": f"1.{i}",
                                    "model_type": "prediction", "framework": "pytorch", "status": "active",
                                    "hyperparameters": {"lr": 0.001 * (i + 1)},
                                    "performance_metrics": {"auc": round(0.78 + 0.03 * i, 3), "mae": round(11.2 - 1.3 * i, 2)},
                                    **({"parent_model_id": models[0]} if i else {})}, span * 1.04, source="trainer")
        # predictions of a post's views a day after publishing, made at publishing (the accuracy job
        # measures them on the 24 h snapshot)
        for post, views in list(views_at_day.items())[: len(views_at_day) // 2 if self.engagement else 0]:
            ev("model_prediction", {"prediction_id": self._id(), "model_id": r.choice(models), "prediction_type": "views",
                                    "target_entity_type": "content", "target_entity_id": post,
                                    "predicted_score": float(int(views * r.uniform(0.7, 1.3))), "horizon_hours": 24},
               published_at[post], entity_type="content", entity_id=post)
        session = self._id()
        epochs = 10
        for e in range(1, epochs + 1):
            ev("training_progress", {"session_id": session, "model_id": models[0], "dataset_id": dataset,
                                     "epoch": e, "total_epochs": epochs, "loss": round(1.2 * 0.78 ** e, 4),
                                     "val_loss": round(1.3 * 0.8 ** e + 0.02, 4),
                                     "status": "completed" if e == epochs else "running"},
               span * (1 - e / (epochs + 1)), source="trainer")
        # A/B experiment, evolution experiment
        exp = self._id()
        ev("ab_experiment", {"experiment_id": exp, "name": f"caption emoji {ws[:4]}", "status": "running",
                             "control_variant": {"emoji": False}, "treatment_variants": [{"emoji": True}],
                             "target_metrics": ["ctr"], "traffic_allocation": {"control": 50.0, "emoji": 50.0}},
           span)
        evo = self._id()
        ev("evolution_experiment", {"experiment_id": evo, "name": "hook evolution", "status": "running",
                                    "problem_definition": {"optimize": "hook text"},
                                    "objective_function": {"maximize": "watch_time"}, "population_size": 8},
           span, source="openevolve")
        # the rest: weighted by how often AI components emit each
        weights = {"model_prediction": 30, "prediction_outcome": 14, "user_feedback": 4, "pattern_detection": 16,
                   "ab_assignment": 10, "ab_outcome": 6, "evolution": 5, "style_analysis": 5, "trend_detected": 2,
                   "improvement_measured": 2, "system_optimization": 1, "ai_interaction": 4, "embedding_computed": 1}
        kinds, w = list(weights), list(weights.values())
        predictions: list[tuple[str, float]] = []
        subjects: list[str] = []
        generation = [-1, 0]  # number, individuals in it
        pattern_sigs = [{"hook": h, "length": b} for h in HOOKS for b in ("short", "long")]
        left = n - len(learn)
        for i in range(max(0, left)):
            t = span * (1 - (i + 1) / (left + 1))
            kind = r.choices(kinds, w)[0]
            post = r.choice(posts)
            if kind == "model_prediction" or (kind in ("prediction_outcome", "user_feedback") and not predictions):
                pid, score = self._id(), round(r.uniform(10, 100), 2)
                predictions.append((pid, score))
                ev("model_prediction", {"prediction_id": pid, "model_id": r.choice(models),
                                        "prediction_type": "viral_score", "target_entity_type": "content",
                                        "target_entity_id": post, "predicted_score": score,
                                        "confidence": round(r.uniform(0.4, 0.95), 3), "horizon_hours": 24,
                                        "features": {"hook": r.choice(HOOKS)}}, t, entity_type="content",
                   entity_id=post)
            elif kind == "prediction_outcome":
                pid, score = predictions.pop(r.randrange(len(predictions)))
                ev("prediction_outcome", {"prediction_id": pid, "actual_score": round(score * r.uniform(0.6, 1.3), 2),
                                          "actual_metrics": {"views": r.randrange(1000, 90000)}}, t)
            elif kind == "user_feedback":
                pid, _ = r.choice(predictions)
                ev("user_feedback", {"prediction_id": pid, "rating": r.randrange(1, 6), "correct": r.random() < 0.7},
                   t, user_id=f"user-{r.randrange(50)}")
            elif kind == "pattern_detection":
                sig = r.choice(pattern_sigs)
                bias = HOOKS.index(sig["hook"]) / len(HOOKS)  # some hooks work better
                ev("pattern_detection", {"pattern_type": "hook", "pattern_name": f"{sig['hook']} ({sig['length']})",
                                         "signature": sig, "source_type": "content", "source_id": post,
                                         "content_id": post, "success": r.random() < 0.25 + 0.6 * bias,
                                         "engagement": round(r.lognormvariate(4 + bias, 0.5), 2),
                                         "confidence": round(r.uniform(0.5, 0.99), 3)}, t, source="pattern_analyzer")
            elif kind == "ab_assignment":
                subject = f"user-{len(subjects)}"
                subjects.append(subject)
                ev("ab_assignment", {"experiment_id": exp, "subject_id": subject,
                                     "variant": r.choice(["control", "emoji"])}, t)
            elif kind == "ab_outcome" and subjects:
                ev("ab_outcome", {"experiment_id": exp, "subject_id": r.choice(subjects),
                                  "converted": r.random() < 0.3, "value": round(r.uniform(0, 5), 2)}, t)
            elif kind == "evolution":
                if generation[0] < 0 or generation[1] >= 8:
                    generation[:] = [generation[0] + 1, 0]
                    ev("evolution_generation", {"experiment_id": evo, "generation_id": self._id(),
                                                "generation_number": generation[0], "completed": True}, t,
                       source="openevolve")
                else:
                    ev("evolution_individual", {"experiment_id": evo, "generation_number": generation[0],
                                                "individual_id": self._id(), "individual_index": generation[1],
                                                "genotype": {"hook": r.choice(HOOKS)},
                                                "fitness_score": round(r.uniform(0, 1) + 0.1 * generation[0], 4),
                                                "evaluation_status": "completed"}, t, source="openevolve")
                    generation[1] += 1
            elif kind == "style_analysis":
                ev("style_analysis", {"content_id": post, "style_tags": r.sample(STYLES, 2),
                                      "visual_style": {"palette": r.choice(["warm", "cool", "mono"])}}, t)
            elif kind == "trend_detected":
                ev("trend_detected", {"platform": r.choice(PLATFORMS), "trend_type": "hashtag",
                                      "trend_key": r.choice(HASHTAGS), "engagement_impact": round(r.uniform(-5, 40), 2)}, t)
            elif kind in ("improvement_measured", "system_optimization"):
                before = round(r.uniform(5, 10), 3)
                ev(kind, {"improvement_type": "accuracy" if kind == "improvement_measured" else "system_optimization",
                          "metric": "mae", "before_metrics": {"mae": before},
                          "after_metrics": {"mae": round(before * r.uniform(0.8, 1.02), 3)}}, t)
            elif kind == "ai_interaction":
                ev("ai_interaction", {"conversation_id": f"c{r.randrange(100)}", "model": "caption-llm",
                                      "prompt": "Suggest a caption for this clip", "response": "Wait for it...",
                                      "prompt_tokens": r.randrange(20, 400), "completion_tokens": r.randrange(5, 200),
                                      "latency_ms": r.randrange(200, 3000),
                                      "prompt_template": {"name": "caption", "version": "2", "template": "Suggest {x}",
                                                          "variables": ["x"]},
                                      "suggestions": [{"suggestion_id": self._id(), "suggestion_type": "caption",
                                                       "content": "Wait for it..."}]}, t, user_id=f"user-{r.randrange(50)}")
            elif kind == "embedding_computed":
                ev("embedding_computed", {"entity_type": "content", "entity_id": post, "model": "clip-small",
                                          "vector": [round(r.gauss(0, 1), 4) for _ in range(32)]}, t)
        return out
