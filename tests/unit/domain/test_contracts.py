"""The domain's contracts (no services): event_data per event_type, content items, account
snapshots, and the synthetic mix meeting them."""

from __future__ import annotations

import uuid

import orjson
import pytest

from schemas.decode import decode_message
from schemas.learning import DATA_CONTRACTS, check_event_data
from streams.devkit.mix import MixGenerator


def _event(event_type: str, data: dict) -> bytes:
    return orjson.dumps({"event_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "event_type": event_type,
                         "timestamp": "2026-12-01T10:00:00+01:00", "event_data": data})


def test_every_event_type_of_the_mix_meets_its_contract_and_every_type_appears():
    mix = MixGenerator(seed=3).generate(3000, array_size=50)
    for kind, messages in mix.messages.items():
        for _, value in messages:
            decoded = decode_message(value, kind)
            assert decoded.rejected is None, (kind, decoded.rejected)
    assert set(mix.by_type) == set(DATA_CONTRACTS)
    assert mix.events["content_item"] > 0 and mix.events["account_snapshot"] > 0


def test_event_data_is_stored_as_sent_and_routed_in_its_normal_form():
    pid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    sent = {"prediction_id": pid, "model_id": mid, "prediction_type": "viral_score", "predicted_score": 3,
            "calibrated": True}
    (ev,) = decode_message(_event("model_prediction", sent), "learning_event").events
    assert ev.event_data == sent  # the raw log keeps what the producer sent, its unknown field too
    verdict = check_event_data(ev.event_type, ev.event_data)
    # routed: validated and dumped, the score a float, unset optional fields and unknown ones left out
    assert verdict.record == {"prediction_id": pid, "model_id": mid, "prediction_type": "viral_score",
                              "predicted_score": 3.0}
    assert verdict.errors == ()


def test_the_raw_log_takes_any_event_type_of_the_documented_form_and_any_event_data():
    for event_type in ("pattern_detection", "user_feedback", "Model.Prediction", "a", "x" * 100, "ns:type/v2-beta"):
        (ev,) = decode_message(_event(event_type, {"score": 0.71}), "learning_event").events
        assert (ev.event_type, ev.event_data) == (event_type, {"score": 0.71})
    assert check_event_data("Model.Prediction", {}) is None  # no contract: stored, counted, not routed
    for bad in ("", "x" * 101, "-leading", "with space", "ünïcode", "tab\t"):
        (err,) = decode_message(_event(bad, {}), "learning_event").rejected.errors
        assert (err.reason, err.path) in {("schema", "event_type"), ("oversize", "event_type")}, (bad, err)


@pytest.mark.parametrize(
    "value,needle",
    [(b"NaN", "not a finite number"), (b"Infinity", "not a finite number"), (b"-1e400", "not a finite number"),
     (b'"a\\u0000b"', "\\u0000"), (b'{"k\\u0000": 1}', "\\u0000")],
)
def test_event_data_postgresql_cannot_store_as_sent_is_refused_by_the_envelope(value, needle):
    raw = _event("anything", {"x": "HOLE"}).replace(b'"HOLE"', value)
    (err,) = decode_message(raw, "learning_event").rejected.errors
    assert (err.reason, err.path) == ("schema", "event_data")
    assert needle in err.message, err.message
    # a null, a backslash and the text "null" are fine
    (ev,) = decode_message(_event("anything", {"x": None, "y": "null \\u0000", "z": [1.5, None]}), "learning_event").events
    assert ev.event_data == {"x": None, "y": "null \\u0000", "z": [1.5, None]}


@pytest.mark.parametrize(
    "event_type,data,needle",
    [
        ("model_prediction", {"prediction_id": "x", "model_id": str(uuid.uuid4()), "prediction_type": "v",
                              "predicted_score": 1}, "prediction_id"),
        ("model_prediction", {"prediction_id": str(uuid.uuid4()), "model_id": str(uuid.uuid4()),
                              "prediction_type": "v"}, "predicted_score or predicted_value"),
        ("user_feedback", {"rating": 3}, "exactly one of prediction_id and suggestion_id"),
        ("training_progress", {"session_id": str(uuid.uuid4()), "model_id": str(uuid.uuid4()), "status": "paused"},
         "status"),
        ("pattern_detection", {"score": 0.71}, "pattern_type: Field required"),
        ("style_analysis", {"content_id": str(uuid.uuid4()), "style_tags": ["x" * 101]}, "style_tags.0"),
        ("embedding_computed", {"entity_type": "content", "entity_id": "a", "model": "m", "vector": []}, "vector"),
        ("trend_detected", {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#x",
                            "end_time": "9999-01-01T00:00:00Z"}, "end_time"),
    ],
)
def test_a_bad_event_data_is_stored_and_not_routed_with_its_reasons(event_type, data, needle):
    (ev,) = decode_message(_event(event_type, data), "learning_event").events
    assert ev.event_data == data
    verdict = check_event_data(event_type, ev.event_data)
    assert verdict.record is None
    assert any(needle in e for e in verdict.errors), verdict.errors


def test_unknown_fields_are_ignored_by_routing_nested_ones_too():
    data = {"model": "m", "prompt": "p", "new_field": {"a": 1},
            "prompt_template": {"name": "t", "template": "x", "owner": "z"},
            "suggestions": [{"suggestion_id": str(uuid.uuid4()), "suggestion_type": "s", "content": "c", "rank": 1}]}
    record = check_event_data("ai_interaction", data).record
    assert "new_field" not in record and "owner" not in record["prompt_template"] and "rank" not in record["suggestions"][0]
    # an unknown field cannot smuggle an envelope field into the routed record
    assert "workspace_id" not in check_event_data("ai_interaction", {**data, "workspace_id": str(uuid.uuid4())}).record


def test_content_items_and_account_snapshots_reject_what_their_tables_could_not_hold():
    item = {"event_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "content_id": str(uuid.uuid4()),
            "platform": "tiktok", "observed_at": "2026-12-01T10:00:00Z",
            "media": [{"url": "https://x/1.mp4", "media_type": "hologram"}]}
    (err,) = decode_message(orjson.dumps(item), "content_item").rejected.errors
    assert err.path == "media.0.media_type"
    snap = {"snapshot_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "connector_id": "a",
            "platform": "tiktok", "recorded_at": "2026-12-01T10:00:00Z", "followers": 10, "timezone": "Mars/Base"}
    (err,) = decode_message(orjson.dumps(snap), "account_snapshot").rejected.errors
    assert err.path == "timezone" and "Mars/Base" in err.message
    snap |= {"timezone": "Europe/Berlin", "followers": -1}
    (err,) = decode_message(orjson.dumps(snap), "account_snapshot").rejected.errors
    assert err.path == "followers"
    # far-off times are out of the acceptance window like any event time
    from datetime import UTC, datetime, timedelta
    accept = (datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(minutes=5))
    item |= {"media": [], "published_at": "2999-01-01T00:00:00Z"}
    (err,) = decode_message(orjson.dumps(item), "content_item", accept).rejected.errors
    assert (err.reason, err.path) == ("timestamp_out_of_range", "published_at")
