"""Field types the contracts share: bounded strings and size-bounded JSON objects. No I/O."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import available_timezones

import orjson
from pydantic import AfterValidator, AwareDatetime, StringConstraints
from pydantic_core import PydanticCustomError

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
NestedTime = Annotated[AwareDatetime, AfterValidator(_nested_time)]


_ZONES = frozenset(available_timezones())


def _zone(name: str) -> str:
    if name not in _ZONES:
        raise PydanticCustomError("timezone", "unknown IANA time zone '{name}'", {"name": name})
    return name


#: an IANA time zone name (Europe/Berlin), checked against the zone database
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone)]
