"""Turn one Kafka message value into validated events and classified errors. No I/O.

Wire format: UTF-8 JSON; a value is one event object or a JSON array of up to
MAX_EVENTS_PER_MESSAGE event objects. The happy path is one pydantic-core call per message
(`validate_json` on the raw bytes); only a message with errors is parsed a second time, to keep
its valid siblings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from schemas.events import (
    CONTRACTS,
    MAX_EVENTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    DeadLetterError,
)

#: pydantic error types -> DLQ reason (anything else is "schema")
_REASONS = {
    "timezone_aware": "naive_timestamp",
    "oversize": "oversize",
    "string_too_long": "oversize",
    "too_long": "oversize",
}


@dataclass(slots=True)
class Rejected:
    """Why (part of) a message was set aside."""

    errors: list[DeadLetterError]
    #: how many events of the message this rejects (1 for a whole non-array message)
    events: int


@dataclass(slots=True)
class Decoded:
    events: list[BaseModel] = field(default_factory=list)
    rejected: Rejected | None = None


@dataclass(frozen=True, slots=True)
class Decoder:
    one: TypeAdapter
    many: TypeAdapter


@lru_cache(maxsize=None)
def decoder_for(kind: str) -> Decoder:
    model = CONTRACTS[kind]
    return Decoder(
        one=TypeAdapter(model),
        many=TypeAdapter(Annotated[list[model], Field(max_length=MAX_EVENTS_PER_MESSAGE)]),  # type: ignore[valid-type]
    )


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _whole(reason: str, message: str) -> Decoded:
    return Decoded(rejected=Rejected([DeadLetterError(reason=reason, message=message)], events=1))


def _syntax_error(raw: bytes) -> Decoded:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _whole("invalid_utf8", f"value is not valid UTF-8: {exc.reason} at byte {exc.start}")
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _whole("invalid_json", f"value is not valid JSON: {exc}")
    return _whole("invalid_json", "value is not valid JSON")  # pragma: no cover - pydantic disagreed


def _member_errors(exc: ValidationError, indexed: bool) -> dict[int | None, list[DeadLetterError]]:
    by_index: dict[int | None, list[DeadLetterError]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        loc = err["loc"]
        index = loc[0] if indexed else None
        inner = loc[1:] if indexed else loc
        kind = err["type"]
        if kind == "model_type" and not inner:
            reason = "not_an_object"
        else:
            reason = _REASONS.get(kind, "schema")
        by_index.setdefault(index, []).append(
            DeadLetterError(reason=reason, index=index, path=_path(inner), message=err["msg"])
        )
    return by_index


def decode_message(raw: bytes | None, kind: str) -> Decoded:
    """Validate a message value for topic kind `kind` (a key of schemas.events.CONTRACTS)."""
    if raw is None:
        return _whole("invalid_json", "message has no value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        return _whole("oversize", f"value is {len(raw)} bytes, more than the {MAX_MESSAGE_BYTES} allowed")
    dec = decoder_for(kind)
    first = raw.lstrip()[:1]
    if first == b"[":
        try:
            return Decoded(events=dec.many.validate_json(raw))
        except ValidationError as exc:
            return _partial_array(raw, exc, dec)
    if first != b"{":
        # not an object and not an array: a JSON scalar or garbage
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _syntax_error(raw)
        return _whole("not_an_object", "value must be a JSON object or an array of objects")
    try:
        return Decoded(events=[dec.one.validate_json(raw)])
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            return _syntax_error(raw)
        errors = _member_errors(exc, indexed=False)[None]
        return Decoded(rejected=Rejected(errors, events=1))


def _partial_array(raw: bytes, exc: ValidationError, dec: Decoder) -> Decoded:
    top = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in top):
        return _syntax_error(raw)
    members = orjson.loads(raw)
    if len(members) > MAX_EVENTS_PER_MESSAGE:
        return Decoded(
            rejected=Rejected(
                [
                    DeadLetterError(
                        reason="too_many_events",
                        message=f"array has {len(members)} events, more than the {MAX_EVENTS_PER_MESSAGE} allowed",
                    )
                ],
                events=len(members),
            )
        )
    by_index = _member_errors(exc, indexed=True)
    good = [m for i, m in enumerate(members) if i not in by_index]
    events = dec.many.validate_python(good) if good else []
    errors = [e for i in sorted(by_index) for e in by_index[i]]
    return Decoded(events=events, rejected=Rejected(errors, events=len(by_index)))
