"""Turn one Kafka message value into validated events and classified errors. No I/O.

Wire format: UTF-8 JSON; a value is one event object or a JSON array of up to
MAX_EVENTS_PER_MESSAGE event objects. The happy path is one pydantic-core call per message
(`validate_json` on the raw bytes); only a message with errors is parsed a second time, to keep
its valid siblings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Annotated, Any, Union

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from schemas.events import (
    CONTRACTS,
    MAX_EVENTS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    TIME_FIELDS,
    DeadLetterError,
    safe_dumps,
)

#: the accepted range of event times, [earliest, latest] (aware datetimes): an event outside it is
#: rejected with reason `timestamp_out_of_range` (see streams.config: by default 2000-01-01 UTC up
#: to now + 5 minutes of clock skew)
Acceptance = tuple[datetime, datetime]

#: pydantic error types -> DLQ reason (anything else is "schema")
_REASONS = {
    "timezone_aware": "naive_timestamp",
    "oversize": "oversize",
    "string_too_long": "oversize",
    "too_long": "oversize",
    "timestamp_out_of_range": "timestamp_out_of_range",
}


@dataclass(slots=True)
class Rejected:
    """Why (part of) a message was set aside."""

    errors: list[DeadLetterError]
    #: how many events of the message this rejects (1 for a whole non-array message)
    events: int
    #: for an array whose valid members are kept: (index, member) of the rejected ones
    members: list[tuple[int, Any]] | None = None

    def reasons(self) -> Counter[str]:
        """Rejected events by reason: each bad member counts once, under its first error's
        reason; an error about the whole message stands for all of its events."""
        first: dict[int | None, str] = {}
        for err in self.errors:
            first.setdefault(err.index, err.reason)
        if self.events > len(first):
            return Counter({self.errors[0].reason: self.events})
        return Counter(first.values())


@dataclass(slots=True)
class Decoded:
    events: list[BaseModel] = field(default_factory=list)
    rejected: Rejected | None = None


@dataclass(frozen=True, slots=True)
class Decoder:
    model: type[BaseModel]
    one: TypeAdapter
    #: list of (model | anything): a member that fails the model comes back as its raw JSON
    #: value instead of failing the array, so one pass keeps the valid siblings (left_to_right
    #: tries the model first; no Python callback per member)
    many: TypeAdapter


@cache
def decoder_for(kind: str) -> Decoder:
    model = CONTRACTS[kind]
    member = Annotated[Union[model, Any], Field(union_mode="left_to_right")]  # type: ignore[valid-type]  # noqa: UP007
    return Decoder(
        model=model,
        one=TypeAdapter(model),
        many=TypeAdapter(Annotated[list[member], Field(max_length=MAX_EVENTS_PER_MESSAGE)]),
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
    return _whole("invalid_json", "value is JSON nested deeper than the validator reads")


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


def decode_message(raw: bytes | None, kind: str, accept: Acceptance | None = None) -> Decoded:
    """Validate a message value for topic kind `kind` (a key of schemas.events.CONTRACTS); with
    `accept`, events whose times fall outside it are rejected too (`timestamp_out_of_range`)."""
    try:
        decoded, members = _decode(raw, kind)
        if accept is not None and decoded.events:
            return _apply_acceptance(decoded, members, kind, accept)
        return decoded
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # a validator's own failure on odd input
        return _whole("schema", f"value cannot be validated: {exc.__class__.__name__}: {exc}"[:1000])


def _decode(raw: bytes | None, kind: str) -> tuple[Decoded, list[Any] | None]:
    """The decoded message, and for an array its members as validated (events and raw rejects)."""
    if raw is None:
        return _whole("invalid_json", "message has no value (tombstone)"), None
    if len(raw) > MAX_MESSAGE_BYTES:
        return _whole("oversize", f"value is {len(raw)} bytes, more than the {MAX_MESSAGE_BYTES} allowed"), None
    dec = decoder_for(kind)
    first = raw.lstrip()[:1]
    if first == b"[":
        try:
            members = dec.many.validate_json(raw)
        except ValidationError as exc:
            members = _members_one_by_one(raw, exc, dec)
            if members is None:
                return _whole_array_error(raw, exc), None
        model = dec.model
        events = [m for m in members if type(m) is model]
        if len(events) == len(members):
            return Decoded(events=events), members
        return _bad_members(members, events, dec), members
    if first != b"{":
        # not an object and not an array: a JSON scalar or garbage
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _syntax_error(raw), None
        return _whole("not_an_object", "value must be a JSON object or an array of objects"), None
    try:
        return Decoded(events=[dec.one.validate_json(raw)]), None
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            return _syntax_error(raw), None
        errors = _member_errors(exc, indexed=False)[None]
        return Decoded(rejected=Rejected(errors, events=1)), None


def _members_one_by_one(raw: bytes, exc: ValidationError, dec: Decoder) -> list[Any] | None:
    """An array pydantic's JSON parser refused though it is JSON (a member nested deeper than the
    parser goes): each member validated alone, so the others are kept. None: not that case."""
    if not any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or len(parsed) > MAX_EVENTS_PER_MESSAGE:
        return None
    members: list[Any] = []
    for m in parsed:
        data = safe_dumps(m) if isinstance(m, dict) else None
        try:
            members.append(dec.one.validate_json(data) if data is not None else m)
        except ValidationError:
            members.append(m)
    return members


def _whole_array_error(raw: bytes, exc: ValidationError) -> Decoded:
    """An array that fails as a whole: bad JSON or too many members (members cannot fail it)."""
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return _syntax_error(raw)
    too_long = next((e for e in errors if e["type"] == "too_long" and not e["loc"]), None)
    if too_long is not None:
        n = too_long.get("ctx", {}).get("actual_length") or len(orjson.loads(raw))
        return Decoded(
            rejected=Rejected(
                [
                    DeadLetterError(
                        reason="too_many_events",
                        message=f"array has {n} events, more than the {MAX_EVENTS_PER_MESSAGE} allowed",
                    )
                ],
                events=int(n),
            )
        )
    raise exc  # pragma: no cover - nothing else can fail a list of `model | Any`


def _bad_members(members: list[Any], events: list[BaseModel], dec: Decoder) -> Decoded:
    """Name the errors of the members that came back raw (the rare path: validated again alone,
    in JSON mode, so the errors are exactly those of a single-event message)."""
    errors: list[DeadLetterError] = []
    bad: list[tuple[int, Any]] = []
    for i, m in enumerate(members):
        if type(m) is dec.model:
            continue
        bad.append((i, m))
        if not isinstance(m, dict):
            errors.append(DeadLetterError(reason="not_an_object", index=i, message="Input should be an object"))
            continue
        data = safe_dumps(m)
        if data is None:
            errors.append(DeadLetterError(reason="invalid_json", index=i, message="nested too deeply"))
            continue
        try:
            dec.one.validate_json(data)
        except ValidationError as exc:
            errors.extend(e.model_copy(update={"index": i}) for e in _member_errors(exc, indexed=False)[None])
        else:  # pragma: no cover - valid alone but not in the list: cannot happen
            raise AssertionError("member validated alone but not in its array")
    return Decoded(events=events, rejected=Rejected(errors, events=len(bad), members=bad))


@cache
def _time_getters(kind: str) -> tuple[tuple[str, attrgetter], ...]:
    return tuple((f, attrgetter(f)) for f in TIME_FIELDS[kind])


def _in_range(t: datetime | None, lo: datetime, hi: datetime) -> bool:
    return t is None or lo <= t <= hi


def _all_in_range(events: list[Any], getters: tuple[tuple[str, attrgetter], ...], lo: datetime, hi: datetime) -> bool:
    """Every time of every event within [lo, hi]: a C-level min and max per time field."""
    for _, get in getters:
        times = [t for t in map(get, events) if t is not None] if len(getters) > 1 else list(map(get, events))
        if times and (min(times) < lo or max(times) > hi):
            return False
    return True


def _apply_acceptance(decoded: Decoded, members: list[Any] | None, kind: str, accept: Acceptance) -> Decoded:
    """Set aside the events whose times are outside `accept`. The common case (every time in range)
    costs a C-level min and max per time field; only a message with an event out of range is walked."""
    lo, hi = accept
    events = decoded.events
    getters = _time_getters(kind)
    if len(events) == 1:  # a single-event message (the most common shape): no lists, no min/max
        ev = events[0]
        if all(_in_range(get(ev), lo, hi) for _, get in getters):
            return decoded
    elif _all_in_range(events, getters, lo, hi):
        return decoded

    def problems(ev: Any, index: int | None) -> list[DeadLetterError]:
        return [
            DeadLetterError(
                reason="timestamp_out_of_range", index=index, path=name,
                message=f"{name} {get(ev).isoformat()} is outside the accepted range "
                f"[{lo.isoformat()}, {hi.isoformat()}]",
            )
            for name, get in getters if not _in_range(get(ev), lo, hi)
        ]

    if members is None:  # a single event
        errors = problems(events[0], None)
        return Decoded(rejected=Rejected(errors, events=1))
    model = type(events[0])
    kept: list[Any] = []
    bad: list[tuple[int, Any]] = []
    errors: list[DeadLetterError] = []
    for i, m in enumerate(members):
        if type(m) is not model:
            continue
        errs = problems(m, i)
        if errs:
            bad.append((i, m.model_dump(mode="json", exclude_unset=True)))
            errors.extend(errs)
        else:
            kept.append(m)
    before = decoded.rejected
    if before is not None:
        bad += before.members or []
        errors += before.errors
        bad.sort(key=lambda x: x[0])
        errors.sort(key=lambda e: e.index if e.index is not None else -1)
    return Decoded(events=kept, rejected=Rejected(errors, events=len(bad), members=bad))
