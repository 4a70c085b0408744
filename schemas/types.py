"""Field types the contracts share: bounded strings, size-bounded JSON objects, and the strict wire
types (RFC 3339 times, canonical UUIDs, integers) that make pydantic accept exactly what the exported
JSON Schemas say. No I/O."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import available_timezones

import orjson
from pydantic import AfterValidator, AwareDatetime, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

#: largest serialized size of one JSON object field (event_data, metadata, ...), bytes
MAX_OBJECT_BYTES = 65_536


def safe_dumps(value: Any) -> bytes | None:
    """JSON of a parsed value whatever it holds (orjson, or the standard library for integers past
    64 bits); None when it is nested too deeply to write."""
    try:
        return orjson.dumps(value)
    except TypeError:
        try:
            return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (RecursionError, ValueError, TypeError):
            return None


def _unstorable(value: Any, path: str = "") -> str | None:
    """Where `value` holds what PostgreSQL's jsonb cannot store as sent: a number that is not finite
    (NaN, Infinity, beyond the double range: JSON has no such numbers, and orjson would write null)
    or a NUL character (jsonb refuses \\u0000). None: storable."""
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path or '(value)'}: {value} is not a finite number"
    if isinstance(value, str):
        return f"{path or '(value)'}: a \\u0000 character" if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                return f"{path}.{k!r}: a \\u0000 character in a key"
            found = _unstorable(v, f"{path}.{k}" if path else k)
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _unstorable(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _object_size_limit(value: dict[str, Any]) -> dict[str, Any]:
    try:
        data = orjson.dumps(value)
    except TypeError as exc:  # what JSONB (through orjson) cannot hold: an integer past 64 bits, nesting past 255
        raise PydanticCustomError("unstorable", "object cannot be stored: {why}", {"why": str(exc)}) from None
    size = len(data)
    # orjson writes a non-finite number as null and a NUL as \u0000: only then is the object walked
    if b"null" in data or b"\\u0000" in data:
        why = _unstorable(value)
        if why is not None:
            raise PydanticCustomError("unstorable", "object cannot be stored: {why}", {"why": why})
    if size > MAX_OBJECT_BYTES:
        raise PydanticCustomError(
            "oversize",
            "object is {size} bytes serialized, more than the {limit} allowed",
            {"size": size, "limit": MAX_OBJECT_BYTES},
        )
    return value


# --- strict wire types ---------------------------------------------------------------------------
# The contracts validate in pydantic's strict mode (no "149" -> 149, no true -> 1.0, no epoch number
# -> datetime). Where strict pydantic and JSON Schema still differ, these types settle it, each with
# pydantic-core constraints only (no Python callback per field):
# * a time is an RFC 3339 date-time string (strict pydantic also takes "2026-01-31 12:00Z", a
#   "+0100" offset, a comma fraction or a numeric string as epoch seconds); the exported schema says
#   `format: date-time` and the same `pattern`, so it holds where formats are not asserted;
# * a UUID is the hyphenated 8-4-4-4-12 form, any case (pydantic also takes 32 bare hex digits,
#   braces and urn:uuid:); exported as `format: uuid` with the pattern;
# * an integer may come as an integral JSON number (1.0): JSON Schema's "integer" is a number with no
#   fractional part, and strict pydantic would refuse 1.0.

#: RFC 3339 `date-time` (section 5.6), ASCII digits; the offset is required (the exported schema)
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: the same with the offset optional: pydantic checks the form first, then the time itself, so a
#: missing offset is reported as such (`timezone_aware`: DLQ reason `naive_timestamp`)
_RFC3339_OR_NAIVE = RFC3339_PATTERN.removesuffix(")$") + ")?$"
#: a UUID in its canonical hyphenated form (any case)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True, slots=True)
class _FromString:
    """A datetime or UUID that JSON carries as a string of one form: from JSON, the string's form is
    checked (`pattern`, or for a UUID its length: 36 characters that parse as a UUID are exactly the
    hyphenated form), then it is parsed; from Python, an instance (or such a string) is taken."""

    json_pattern: str
    format: str
    message: str
    pattern: str | None = None
    length: int | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        typed = handler(source)  # datetime_schema (timezone-aware) or uuid_schema
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=self.pattern, min_length=self.length, max_length=self.length, strict=True),
            custom_error_type=f"{self.format.replace('-', '')}_form", custom_error_message=self.message,
        )
        parsed = core_schema.chain_schema([text, {**typed, "strict": False}])  # type: ignore[typeddict-item]
        return core_schema.json_or_python_schema(
            json_schema=parsed,
            python_schema=core_schema.union_schema([{**typed, "strict": True}, parsed]),  # type: ignore[typeddict-item]
            serialization=typed.get("serialization"),
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "format": self.format, "pattern": self.json_pattern}


#: a timezone-aware time, as an RFC 3339 date-time string
Timestamp = Annotated[
    AwareDatetime,
    _FromString(RFC3339_PATTERN, "date-time", "Input should be an RFC 3339 date-time string, e.g. 2026-01-31T12:00:00Z",
                pattern=_RFC3339_OR_NAIVE),
]
#: a UUID, as a hyphenated 8-4-4-4-12 string (any case)
Uuid = Annotated[
    UUID,
    _FromString(UUID_PATTERN, "uuid", "Input should be a UUID string in the hyphenated form 8-4-4-4-12", length=36),
]


@dataclass(frozen=True, slots=True)
class _Integral:
    """An int that may come as an integral JSON number (1.0), as JSON Schema's "integer" allows;
    never as a string or a boolean. Put it after the Field constraints it keeps."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        constrained = handler(source)  # int_schema with its bounds
        number = core_schema.union_schema(
            [core_schema.int_schema(strict=True), core_schema.float_schema(strict=True)],
            custom_error_type="int_type",  # "Input should be a valid integer"
        )
        # the lax int of a Python number: an int as is, a float only without a fractional part
        return core_schema.chain_schema([number, {**constrained, "strict": False}])  # type: ignore[typeddict-item]

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(schema["steps"][1])  # type: ignore[index]


def integer(ge: int | None = None, le: int | None = None, gt: int | None = None) -> type[int]:
    """An int within bounds that JSON may carry as an integral number (see _Integral)."""
    return Annotated[int, Field(ge=ge, le=le, gt=gt), _Integral()]  # type: ignore[return-value]


#: a JSON object field stored as JSONB, bounded in serialized size
JsonObject = Annotated[dict[str, Any], AfterValidator(_object_size_limit)]


def _bounded(n: int) -> type[str]:
    return Annotated[str, StringConstraints(min_length=1, max_length=n)]  # type: ignore[return-value]


Name50 = _bounded(50)
Name100 = _bounded(100)
Name255 = _bounded(255)
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TagValue = Annotated[str, StringConstraints(max_length=255)]


#: the range of a time inside an event's data (a trend's end, an experiment's dates): wider than the
#: acceptance window of the event's own time (a planned end may lie ahead), but bounded, so a
#: far-off date cannot stretch what the tables compute from it
NESTED_TIME_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _nested_time(t: datetime) -> datetime:
    lo, hi = NESTED_TIME_RANGE
    if not lo <= t < hi:
        raise PydanticCustomError(
            "timestamp_out_of_range", "{t} is outside the accepted range [{lo}, {hi})",
            {"t": t.isoformat(), "lo": lo.isoformat(), "hi": hi.isoformat()},
        )
    return t


#: an aware datetime inside event data, within NESTED_TIME_RANGE
NestedTime = Annotated[Timestamp, AfterValidator(_nested_time)]


_ZONES = frozenset(available_timezones())


def _zone(name: str) -> str:
    if name not in _ZONES:
        raise PydanticCustomError("timezone", "unknown IANA time zone '{name}'", {"name": name})
    return name


#: an IANA time zone name (Europe/Berlin), checked against the zone database
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]
