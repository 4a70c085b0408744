"""The domain's contracts (no services): event_data per event_type, content items, account
snapshots, and the synthetic mix meeting them."""

from __future__ import annotations

import uuid

import orjson
import pytest

from schemas.decode import decode_message
from schemas.learning import DATA_CONTRACTS
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


def test_event_data_is_validated_by_its_type_and_stored_in_its_normal_form():
    pid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    ok = decode_message(_event("model_prediction", {"prediction_id": pid, "model_id": mid,
                                                    "prediction_type": "viral_score", "predicted_score": 3}),
                        "learning_event")
    (ev,) = ok.events
    # validated and dumped: the score is a float, unset optional fields are left out
    assert ev.event_data == {"prediction_id": pid, "model_id": mid, "prediction_type": "viral_score",
                             "predicted_score": 3.0}


@pytest.mark.parametrize(
    "event_type,data,reason,needle",
    [
        ("model_prediction", {"prediction_id": "x", "model_id": str(uuid.uuid4()), "prediction_type": "v",
                              "predicted_score": 1}, "schema", "prediction_id"),
        ("model_prediction", {"prediction_id": str(uuid.uuid4()), "model_id": str(uuid.uuid4()),
                              "prediction_type": "v"}, "schema", "predicted_score or predicted_value"),
        ("user_feedback", {"rating": 3}, "schema", "exactly one of prediction_id and suggestion_id"),
        ("training_progress", {"session_id": str(uuid.uuid4()), "model_id": str(uuid.uuid4()), "status": "paused"},
         "schema", "status"),
        ("pattern_detection", {"pattern_type": "hook", "pattern_name": "q", "signature": {}, "source_id": "p",
                               "surprise": 1}, "schema", "surprise: Extra inputs are not permitted"),
        ("style_analysis", {"content_id": str(uuid.uuid4()), "style_tags": ["x" * 101]}, "oversize", "style_tags.0"),
        ("embedding_computed", {"entity_type": "content", "entity_id": "a", "model": "m", "vector": []},
         "schema", "vector"),
    ],
)
def test_a_bad_event_data_is_rejected_with_its_reason_and_where(event_type, data, reason, needle):
    decoded = decode_message(_event(event_type, data), "learning_event")
    assert decoded.events == []
    (err,) = decoded.rejected.errors
    assert (err.reason, err.path) == (reason, "event_data")
    assert needle in err.message


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


def test_a_far_off_time_inside_event_data_is_out_of_range():
    data = {"platform": "tiktok", "trend_type": "hashtag", "trend_key": "#x", "end_time": "9999-01-01T00:00:00Z"}
    (err,) = decode_message(_event("trend_detected", data), "learning_event").rejected.errors
    assert (err.reason, err.path) == ("timestamp_out_of_range", "event_data")
    assert "end_time" in err.message
    data["end_time"] = "2099-12-31T00:00:00Z"  # a planned end far ahead is fine
    assert decode_message(_event("trend_detected", data), "learning_event").rejected is None
