"""No poison pills, the pure parts (issue #8): the acceptance window of event times, failure
classification, produced messages split or cut to fit, window-input validated on read."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from aiokafka import errors as kafka_errors
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.decode import decode_message
from schemas.events import DeadLetter, DeadLetterError
from streams.dead_letters import encode_dead_letter
from streams.retry import CONTENT, TRANSIENT, UNKNOWN, PermanentFailure, Retrier, classify
from streams.sizing import ItemTooLarge, MessageLimits, pack
from streams.windows.input import parse_input

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ACCEPT = (datetime(2000, 1, 1, tzinfo=UTC), NOW + timedelta(minutes=5))


def _sample(ts: str) -> dict:
    return {"sample_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "metric_name": "lat",
            "timestamp": ts, "value": 1.0}


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+00:00", "1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z",
                                "2026-12-02T12:05:01Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_outside_the_window_is_rejected_with_its_reason(ts):
    d = decode_message(orjson.dumps(_sample(ts)), "performance_sample", ACCEPT)
    assert d.events == [] and d.rejected is not None
    [err] = d.rejected.errors
    assert (err.reason, err.path) == ("timestamp_out_of_range", "timestamp")
    assert d.rejected.reasons() == {"timestamp_out_of_range": 1}


@pytest.mark.parametrize("ts", ["2000-01-01T00:00:00Z", "2026-12-02T12:05:00Z", "2026-12-02T11:00:00-01:00"])
def test_times_at_the_edges_and_inside_are_accepted(ts):
    d = decode_message(orjson.dumps(_sample(ts)), "performance_sample", ACCEPT)
    assert d.rejected is None and len(d.events) == 1


def test_an_array_keeps_its_members_in_range_and_names_the_others_by_index():
    members = [_sample("2026-12-02T11:00:00Z"), _sample("0001-01-01T00:00:00Z"), 7,
               _sample("2026-12-02T11:30:00Z"), _sample("2999-06-01T00:00:00Z")]
    d = decode_message(orjson.dumps(members), "performance_sample", ACCEPT)
    assert [str(e.sample_id) for e in d.events] == [members[0]["sample_id"], members[3]["sample_id"]]
    assert [i for i, _ in d.rejected.members] == [1, 2, 4]
    assert [(e.index, e.reason) for e in d.rejected.errors] == [
        (1, "timestamp_out_of_range"), (2, "not_an_object"), (4, "timestamp_out_of_range")]
    assert d.rejected.reasons() == {"timestamp_out_of_range": 2, "not_an_object": 1}
    assert d.rejected.members[0][1]["sample_id"] == members[1]["sample_id"]


def test_an_engagement_peak_time_is_held_to_the_window_too():
    ev = {"update_id": str(uuid.uuid4()), "workspace_id": str(uuid.uuid4()), "content_id": str(uuid.uuid4()),
          "platform": "x", "recorded_at": "2026-12-02T11:00:00Z", "peak_engagement_time": "2999-01-01T00:00:00Z"}
    d = decode_message(orjson.dumps(ev), "engagement_update", ACCEPT)
    assert d.rejected.errors[0].path == "peak_engagement_time"
    ev["peak_engagement_time"] = None
    assert decode_message(orjson.dumps(ev), "engagement_update", ACCEPT).events


@pytest.mark.parametrize("exc, kind", [
    (asyncpg.exceptions.CheckViolationError("x"), CONTENT),
    (asyncpg.exceptions.UntranslatableCharacterError("x"), CONTENT),
    (asyncpg.exceptions.ProgramLimitExceededError("x"), CONTENT),
    (asyncpg.exceptions.AdminShutdownError("x"), TRANSIENT),
    (asyncpg.exceptions.ConnectionDoesNotExistError("x"), TRANSIENT),
    (asyncpg.exceptions.UndefinedTableError("x"), TRANSIENT),
    (asyncpg.exceptions.InterfaceError("connection is closed"), TRANSIENT),
    (ConnectionRefusedError(), TRANSIENT),
    (TimeoutError(), TRANSIENT),
    (kafka_errors.KafkaConnectionError(), TRANSIENT),
    (kafka_errors.KafkaTimeoutError(), TRANSIENT),
    (kafka_errors.NotLeaderForPartitionError(), TRANSIENT),
    (kafka_errors.MessageSizeTooLargeError(), CONTENT),
    (ValueError("year 0 is out of range"), CONTENT),
    (RuntimeError("?"), UNKNOWN),
])
def test_failures_are_classified(exc, kind):
    assert classify(exc) == kind


async def test_the_retrier_waits_out_infrastructure_and_gives_up_on_the_rest():
    calls = {"n": 0}

    async def flaky():
        calls["n"] += 1
        if calls["n"] < 6:
            raise ConnectionResetError("down")
        return "ok"

    assert await Retrier(0.001, 0.002)("flaky", flaky) == "ok" and calls["n"] == 6

    async def too_large():
        calls["n"] += 1
        raise kafka_errors.MessageSizeTooLargeError()

    calls["n"] = 0
    with pytest.raises(PermanentFailure):
        await Retrier(0.001, 0.002)("too large", too_large)
    assert calls["n"] == 1  # content: never retried

    async def odd():
        calls["n"] += 1
        raise RuntimeError("odd")

    calls["n"] = 0
    with pytest.raises(PermanentFailure):
        await Retrier(0.001, 0.002)("odd", odd)
    assert calls["n"] == 3  # unknown: bounded


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=3000), max_size=200), st.integers(4000, 20000))
def test_pack_keeps_order_and_every_part_fits(items, budget):
    encode = lambda part: orjson.dumps([base64.b64encode(x).decode() for x in part])  # noqa: E731
    if any(len(encode([x])) > budget for x in items):
        with pytest.raises(ItemTooLarge):
            pack(items, encode, budget)
        return
    parts = pack(items, encode, budget)
    assert [x for part, _ in parts for x in part] == list(items)
    assert all(len(data) <= budget and data == encode(part) for part, data in parts)


def test_limits_take_the_smaller_of_producer_and_topic():
    lim = MessageLimits(max_request_size=1_000_000, topic_max={"small": 300_000}, default_topic_max=2_000_000)
    assert lim.budget("small") == 300_000 - 512 and lim.budget("other") == 1_000_000 - 512


def _letter(value: str, encoding: str = "utf-8", errors: int = 1) -> DeadLetter:
    return DeadLetter(source_topic="t", partition=1, offset=2, value=value, value_encoding=encoding,
                      errors=[DeadLetterError(reason="invalid_json", message="bad " * 10)] * errors,
                      received_at=NOW)


@pytest.mark.parametrize("raw", [b"x" * 1_040_000, b"\x00" * 600_000, "é".encode() * 500_000])
def test_a_dead_letter_too_large_carries_a_prefix_its_length_and_hash(raw):
    letter = _letter(raw.decode())
    data = encode_dead_letter(letter, 1_000_000 - 512)
    assert len(data) <= 1_000_000 - 512
    d = orjson.loads(data)
    assert d["value_truncated"] is True and d["value_length"] == len(raw)
    assert d["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(d["value"].encode()) and len(d["value"]) > 100_000
    DeadLetter.model_validate(d)


def test_a_binary_value_is_cut_in_its_base64_form_and_errors_are_capped():
    raw = bytes(range(256)) * 4000
    letter = _letter(base64.b64encode(raw).decode(), "base64", errors=5000)
    d = orjson.loads(encode_dead_letter(letter, 500_000))
    assert d["value_truncated"] and d["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(base64.b64decode(d["value"]))
    assert len(d["errors"]) == 100 and d["errors_omitted"] == 4900


def test_a_dead_letter_that_fits_is_left_whole():
    d = orjson.loads(encode_dead_letter(_letter("{bad"), 1_000_000))
    assert d["value"] == "{bad" and d["value_truncated"] is False and d["value_length"] is None


@pytest.mark.parametrize("value", [
    b"not json", b"[]", b'{"k": "performance_sample", "w": "x", "t": "s"}',
    b'{"k": "nope", "w": "x", "t": "s", "i": []}',
    b'{"k": "performance_sample", "w": "x", "t": "s", "i": [[[0, 1], null, ["id", "m", {}, 1.0]]]}',
    b'{"k": "performance_sample", "w": "x", "t": "s", "i": [[[0, 1], 5.0, ["id", "m", {"a": 1}, "x"]]]}',
    b'{"k": "learning_event", "w": "x", "t": "s", "i": [[[0, 1], 5.0, ["id", "m"]]]}',
])
def test_window_input_is_validated_on_read(value):
    with pytest.raises((ValidationError, orjson.JSONDecodeError)):
        parse_input(value)


def test_valid_window_input_parses():
    msg = parse_input(orjson.dumps({"k": "learning_event", "w": "ws", "t": "src",
                                    "i": [[[0, 1], 5.0, ["id", "prediction", None, 12], False]]}))
    assert msg["i"][0][1] == 5.0 and msg["i"][0][2][3] == 12
