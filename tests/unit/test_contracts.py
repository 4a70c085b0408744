"""Event contracts and the message decoder, without services."""

from __future__ import annotations

import uuid
from collections import Counter

import orjson
import pytest
from pydantic import ValidationError

from schemas import EngagementUpdate, LearningEvent, PerformanceSample, decode_message
from schemas.events import MAX_EVENTS_PER_MESSAGE
from streams.devkit.synthetic import ID_FIELD, Generator

KINDS = ["learning_event", "performance_sample", "engagement_update"]


def test_a_valid_event_of_each_kind_round_trips():
    g = Generator(seed=1)
    for kind, model in zip(KINDS, [LearningEvent, PerformanceSample, EngagementUpdate]):
        ev = g.event(kind)
        decoded = decode_message(orjson.dumps(ev), kind)
        assert decoded.rejected is None
        [got] = decoded.events
        assert isinstance(got, model)
        assert str(getattr(got, ID_FIELD[kind])) == ev[ID_FIELD[kind]]
        assert got.workspace_id == uuid.UUID(ev["workspace_id"])


@pytest.mark.parametrize(
    "change, reason, path",
    [
        ({"timestamp": "2026-11-23T10:00:00"}, "naive_timestamp", "timestamp"),
        ({"timestamp": "yesterday"}, "schema", "timestamp"),
        ({"event_type": "no spaces"}, "schema", "event_type"),
        ({"processing_time_ms": -1}, "schema", "processing_time_ms"),
        ({"event_data": [1, 2]}, "schema", "event_data"),
        ({"event_data": {"blob": "x" * 70_000}}, "oversize", "event_data"),
        ({"entity_id": "e" * 256}, "oversize", "entity_id"),
        ({"unknown_field": 1}, "schema", "unknown_field"),
        ({"workspace_id": "not-a-uuid"}, "schema", "workspace_id"),
    ],
)
def test_learning_event_violations_are_classified(change, reason, path):
    ev = Generator(seed=2).learning_event() | change
    decoded = decode_message(orjson.dumps(ev), "learning_event")
    assert decoded.events == []
    [err] = decoded.rejected.errors
    assert (err.reason, err.path, err.index) == (reason, path, None)


def test_required_event_data_and_finite_values():
    g = Generator(seed=3)
    ev = g.learning_event()
    del ev["event_data"]
    assert decode_message(orjson.dumps(ev), "learning_event").rejected.errors[0].path == "event_data"
    with pytest.raises(ValidationError):
        PerformanceSample.model_validate(g.performance_sample() | {"value": float("nan")})
    s = g.performance_sample() | {"tags": {"a": 1}}
    assert decode_message(orjson.dumps(s), "performance_sample").rejected.errors[0].path == "tags.a"
    s = g.performance_sample() | {"tags": {f"k{i}": "v" for i in range(65)}}
    assert decode_message(orjson.dumps(s), "performance_sample").rejected.errors[0].reason == "oversize"
    u = g.engagement_update() | {"views": -3}
    assert decode_message(orjson.dumps(u), "engagement_update").rejected.errors[0].path == "views"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"event_id": ', "invalid_json"),
        (b"[1, 2", "invalid_json"),
        (b"42", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"", "invalid_json"),
        (None, "invalid_json"),
        (b" " * 1_048_577, "oversize"),
    ],
)
def test_whole_message_faults(raw, reason):
    decoded = decode_message(raw, "learning_event")
    assert decoded.events == []
    assert [e.reason for e in decoded.rejected.errors] == [reason]
    assert decoded.rejected.events == 1


def test_an_array_keeps_its_valid_siblings_and_names_each_bad_index():
    g = Generator(seed=4)
    good = [g.learning_event() for _ in range(3)]
    arr = [good[0], g.bad_member("learning_event", "naive_timestamp"), good[1], 7,
           g.bad_member("learning_event", "oversize"), good[2]]
    decoded = decode_message(orjson.dumps(arr), "learning_event")
    assert [str(e.event_id) for e in decoded.events] == [e["event_id"] for e in good]
    assert [(e.index, e.reason) for e in decoded.rejected.errors] == [
        (1, "naive_timestamp"), (3, "not_an_object"), (4, "oversize")
    ]
    assert decoded.rejected.events == 3


def test_array_limits():
    g = Generator(seed=5)
    full = [g.learning_event() for _ in range(MAX_EVENTS_PER_MESSAGE)]
    assert len(decode_message(orjson.dumps(full), "learning_event").events) == MAX_EVENTS_PER_MESSAGE
    over = decode_message(orjson.dumps(full + [g.learning_event()]), "learning_event")
    assert over.events == [] and over.rejected.errors[0].reason == "too_many_events"
    assert over.rejected.events == MAX_EVENTS_PER_MESSAGE + 1
    assert decode_message(b"[]", "learning_event").events == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("array_size", [1, 100])
def test_the_generator_predicts_what_the_decoder_does(kind, array_size):
    w = Generator(seed=7).workload(kind, 2000, array_size=array_size, invalid_share=0.05, duplicate_share=0.02)
    got, ids, valid = Counter(), set(), 0
    for _, value in w.messages:
        d = decode_message(value, kind)
        valid += len(d.events)
        ids |= {str(getattr(e, ID_FIELD[kind])) for e in d.events}
        if d.rejected:
            got.update(d.rejected.reasons())
    assert valid == w.valid_events and ids == set(w.expected) and got == w.invalid
    assert w.duplicates > 0 and sum(w.invalid.values()) > 0
