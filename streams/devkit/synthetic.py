"""Deterministic (seeded) synthetic workload: realistic events for the three topics, packed as
single-event messages or arrays, with a chosen share of duplicates and of bad input of every class.
Returns what a correct pipeline must store, so demos, tests and benchmarks can check the outcome.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.events import MAX_EVENTS_PER_MESSAGE

PLATFORMS = ["tiktok", "instagram", "youtube", "x", "linkedin"]
#: the plain workload's learning event types: routes that only insert (no referent, no shared row),
#: so the raw-ingest benches measure the log; streams/devkit/mix.py makes the routed mix
LEARNING_TYPES = ["improvement_measured", "style_analysis", "system_optimization"]
SOURCES = ["openevolve", "pattern_analyzer", "user_interface", "trainer"]
METRICS = [
    ("api_latency", "api", "ms"),
    ("db_query_time", "database", "ms"),
    ("model_inference_time", "ml_model", "ms"),
    ("queue_depth", "api", "count"),
    ("memory_used", "ml_model", "mb"),
]
#: member-level bad input (inside arrays, or as single messages)
MEMBER_FAULTS = ["naive_timestamp", "schema", "oversize", "not_an_object"]
#: message-level bad input (a whole message)
MESSAGE_FAULTS = ["invalid_json", "invalid_utf8", "too_many_events"]


@dataclass
class Workload:
    kind: str
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    #: distinct valid events a correct pipeline stores: id -> event dict
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    valid_events: int = 0  # valid events sent, duplicates included
    duplicates: int = 0
    invalid: Counter = field(default_factory=Counter)  # reason -> events set aside
    bad_messages: int = 0  # messages that produce a dead letter

    @property
    def events(self) -> int:
        return self.valid_events + sum(self.invalid.values())


#: a bounded string field per kind, to make an oversize member
OVERSIZE_FIELD = {"learning_event": "entity_id", "performance_sample": "metric_name", "engagement_update": "platform"}
ID_FIELD = {"learning_event": "event_id", "performance_sample": "sample_id", "engagement_update": "update_id"}


class Generator:
    def __init__(self, seed: int = 42, now: datetime | None = None, workspaces: int = 3, spread_s: float = 60.0) -> None:
        self.rng = random.Random(seed)
        self.now = now or datetime.now(UTC)
        self.spread_ms = max(1, int(spread_s * 1000))
        self.workspaces = [str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(workspaces)]
        self.contents = [str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(50)]
        self._views: dict[str, int] = {}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ts(self) -> str:
        # within the last `spread_s` (default a minute), millisecond precision, with a timezone
        t = self.now - timedelta(milliseconds=self.rng.randrange(self.spread_ms))
        return t.isoformat(timespec="milliseconds")

    def learning_event(self) -> dict[str, Any]:
        r = self.rng
        etype = r.choice(LEARNING_TYPES)
        return {
            "event_id": self._uuid(),
            "workspace_id": r.choice(self.workspaces),
            "event_type": etype,
            "event_subtype": r.choice(["hook", "caption", "thumbnail", "timing"]),
            "timestamp": self._ts(),
            "source_system": r.choice(SOURCES),
            "entity_type": "content",
            "entity_id": r.choice(self.contents),
            "event_data": self._learning_data(etype),
            "user_id": f"user-{r.randrange(1000)}",
            "session_id": f"s-{r.randrange(10_000)}",
            "processing_time_ms": int(r.lognormvariate(3.0, 0.8)),
            "metadata": {"model_version": f"v{r.randrange(1, 5)}"},
        }

    def _learning_data(self, etype: str) -> dict[str, Any]:
        r = self.rng
        if etype == "style_analysis":
            return {"content_id": r.choice(self.contents),
                    "visual_style": {"palette": r.choice(["warm", "cool", "mono"]), "cuts_per_min": r.randrange(2, 40)},
                    "style_tags": r.sample(["fast-cut", "captions", "voiceover", "duet", "b-roll"], 2)}
        before = round(r.uniform(0.3, 0.8), 4)
        return {"improvement_type": "system_optimization" if etype == "system_optimization"
                else r.choice(["accuracy", "latency", "engagement"]),
                "metric": "score", "before_metrics": {"score": before},
                "after_metrics": {"score": round(before + r.uniform(-0.05, 0.15), 4)},
                "context": {"hook_len": r.randrange(1, 12), "has_music": r.random() < 0.5}}

    def performance_sample(self) -> dict[str, Any]:
        r = self.rng
        name, category, unit = r.choice(METRICS)
        return {
            "sample_id": self._uuid(),
            "workspace_id": r.choice(self.workspaces),
            "metric_name": name,
            "metric_category": category,
            "timestamp": self._ts(),
            "value": round(r.lognormvariate(3.5, 0.6), 3),
            "unit": unit,
            "tags": {"host": f"worker-{r.randrange(4)}", "region": r.choice(["eu", "us"])},
            "source_component": r.choice(["scraper", "ranker", "api"]),
            "aggregation_level": "raw",
        }

    def engagement_update(self) -> dict[str, Any]:
        r = self.rng
        content = r.choice(self.contents)
        views = self._views.get(content, 0) + r.randrange(0, 500)
        self._views[content] = views
        return {
            "update_id": self._uuid(),
            "workspace_id": self.workspaces[hash(content) % len(self.workspaces)],
            "content_id": content,
            "platform": r.choice(PLATFORMS),
            "connector_id": f"{r.choice(PLATFORMS)}-scraper",
            "recorded_at": self._ts(),
            "views": views,
            "likes": views // 10,
            "shares": views // 50,
            "comments": views // 40,
            "saves": views // 80,
            "average_watch_time": round(r.uniform(2, 40), 2),
            "audience_demographics": {"18-24": 0.4, "25-34": 0.35, "35+": 0.25},
            "platform_metrics": {"completion_rate": round(r.random(), 3)},
        }

    def event(self, kind: str) -> dict[str, Any]:
        return getattr(self, kind)()

    def bad_member(self, kind: str, fault: str) -> Any:
        ev = self.event(kind)
        time_field = "recorded_at" if kind == "engagement_update" else "timestamp"
        if fault == "naive_timestamp":
            ev[time_field] = ev[time_field][:23]  # drop the offset
        elif fault == "schema":
            ev.pop("workspace_id")
        elif fault == "oversize":
            ev[OVERSIZE_FIELD[kind]] = "x" * 5000
        elif fault == "not_an_object":
            return self.rng.choice([42, "event", None])
        return ev

    def bad_message(self, kind: str, fault: str) -> bytes:
        if fault == "invalid_json":
            return orjson.dumps(self.event(kind))[:-7]
        if fault == "invalid_utf8":
            raw = orjson.dumps(self.event(kind))
            return raw[:20] + b"\xff\xfe" + raw[20:]
        if fault == "too_many_events":
            return orjson.dumps([self.event(kind) for _ in range(MAX_EVENTS_PER_MESSAGE + 1)])
        raise ValueError(fault)

    def workload(
        self,
        kind: str,
        events: int,
        *,
        array_size: int = 1,
        invalid_share: float = 0.02,
        duplicate_share: float = 0.01,
        member_faults: tuple[str, ...] = tuple(MEMBER_FAULTS),
        message_faults: tuple[str, ...] = tuple(MESSAGE_FAULTS),
    ) -> Workload:
        """About `events` events of `kind`, packed `array_size` per message (1 = plain objects),
        with bad input drawn from `member_faults` and `message_faults`."""
        r = self.rng
        w = Workload(kind)
        idf = ID_FIELD[kind]
        stored: list[dict[str, Any]] = []

        def member() -> tuple[Any, str | None]:
            x = r.random()
            if x < invalid_share:
                fault = r.choice(member_faults)
                return self.bad_member(kind, fault), fault
            if x < invalid_share + duplicate_share and stored:
                return r.choice(stored), "dup"
            ev = self.event(kind)
            stored.append(ev)
            return ev, None

        sent = 0
        while sent < events:
            if message_faults and r.random() < invalid_share / 4:
                fault = r.choice(message_faults)
                value = self.bad_message(kind, fault)
                n = MAX_EVENTS_PER_MESSAGE + 1 if fault == "too_many_events" else 1
                w.invalid[fault] += n
                w.bad_messages += 1
                w.messages.append((r.choice(self.workspaces).encode(), value))
                continue
            batch = [member() for _ in range(min(array_size, events - sent))]
            sent += len(batch)
            had_fault = False
            for ev, tag in batch:
                if tag is None or tag == "dup":
                    w.valid_events += 1
                    w.duplicates += tag == "dup"
                    w.expected[ev[idf]] = ev
                else:
                    w.invalid[tag] += 1
                    had_fault = True
            w.bad_messages += had_fault
            first = next((ev for ev, _ in batch if isinstance(ev, dict) and "workspace_id" in ev), None)
            key = (first["workspace_id"] if first else self.workspaces[0]).encode()
            value = orjson.dumps(batch[0][0] if array_size == 1 else [ev for ev, _ in batch])
            w.messages.append((key, value))
        return w
