"""Event contracts for the three ingest topics (pydantic v2). No I/O here.

Column names follow the seeds (../shared/seeds/001 and 004). Every event carries its own id (the
idempotency key), a workspace_id (the tenant) and a timezone-aware timestamp; naive timestamps are
rejected, never guessed. Unknown fields are rejected too: a misspelt field silently dropped would be
data lost without a trace, and `metadata` is there for free-form context.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

#: most events a message value may carry as a JSON array (a scraper's page of results)
MAX_EVENTS_PER_MESSAGE = 1000
#: largest message value accepted, bytes (Kafka's default max.message.bytes is ~1 MiB)
MAX_MESSAGE_BYTES = 1_048_576
#: largest serialized size of one JSON object field (event_data, metadata, ...), bytes
MAX_OBJECT_BYTES = 65_536
#: most entries in a flat tag map
MAX_TAGS = 64


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


def _object_size_limit(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(orjson.dumps(value))
    except TypeError as exc:  # what JSONB (through orjson) cannot hold: an integer past 64 bits, nesting past 255
        raise PydanticCustomError("unstorable", "object cannot be stored: {why}", {"why": str(exc)}) from None
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


class _Contract(BaseModel):
    # enum fields hold their string value (what is stored and sent on)
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


class LearningEventType(str, Enum):
    model_prediction = "model_prediction"
    pattern_detection = "pattern_detection"
    user_feedback = "user_feedback"
    training_progress = "training_progress"
    system_optimization = "system_optimization"


class LearningEvent(_Contract):
    """An AI learning event (topic `learning-events`, table `learning_events`)."""

    event_id: UUID = Field(description="unique id of this event; the idempotency key")
    workspace_id: UUID = Field(description="tenant the event belongs to")
    event_type: LearningEventType
    event_subtype: Name100 | None = None
    timestamp: AwareDatetime = Field(description="when it happened, with a timezone")
    source_system: Name100 | None = Field(None, description="e.g. openevolve, pattern_analyzer")
    entity_type: Name100 | None = None
    entity_id: Name255 | None = None
    event_data: JsonObject = Field(description="the event payload (JSON object)")
    user_id: Name255 | None = None
    session_id: Name255 | None = None
    processing_time_ms: Annotated[int, Field(ge=0, le=2_147_483_647)] | None = None
    metadata: JsonObject | None = None


class AggregationLevel(str, Enum):
    raw = "raw"
    minute = "minute"
    hour = "hour"
    day = "day"


def _tag_count_limit(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_TAGS:
        raise PydanticCustomError(
            "oversize", "{n} tags, more than the {limit} allowed", {"n": len(value), "limit": MAX_TAGS}
        )
    return value


class PerformanceSample(_Contract):
    """A system performance sample (topic `performance-samples`, table `system_performance_metrics`)."""

    sample_id: UUID = Field(description="unique id of this sample; the idempotency key")
    workspace_id: UUID
    metric_name: Name100
    metric_category: Name100 | None = Field(None, description="e.g. database, api, ml_model")
    timestamp: AwareDatetime
    value: float = Field(allow_inf_nan=False, description="finite number")
    unit: Name50 | None = Field(None, description="e.g. ms, mb, percentage, count")
    tags: Annotated[dict[TagKey, TagValue], AfterValidator(_tag_count_limit)] = Field(
        default_factory=dict, description="flat string -> string map"
    )
    source_component: Name100 | None = None
    aggregation_level: AggregationLevel = AggregationLevel.raw


NonNegativeCount = Annotated[int, Field(ge=0, le=9_223_372_036_854_775_807)]


class EngagementUpdate(_Contract):
    """A snapshot of a post's cumulative engagement counters as the platform shows them
    (topic `engagement-updates`, table `content_performance_metrics`)."""

    update_id: UUID = Field(description="unique id of this update; the idempotency key")
    workspace_id: UUID
    content_id: UUID
    platform: Name50
    connector_id: Name100 | None = Field(None, description="the scraper/connector that read it")
    recorded_at: AwareDatetime
    views: NonNegativeCount = 0
    likes: NonNegativeCount = 0
    shares: NonNegativeCount = 0
    comments: NonNegativeCount = 0
    saves: NonNegativeCount = 0
    average_watch_time: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="seconds"
    )
    peak_engagement_time: AwareDatetime | None = None
    audience_demographics: JsonObject | None = None
    platform_metrics: JsonObject | None = None


class DeadLetterError(BaseModel):
    """One reason a message (or one member of its array) was set aside."""

    reason: Literal[
        "invalid_utf8",
        "invalid_json",
        "oversize",
        "too_many_events",
        "not_an_object",
        "naive_timestamp",
        "schema",
        "timestamp_out_of_range",
        "database_rejected",
        "window_stage",
        "alert_runtime",
    ]
    index: int | None = Field(None, description="position in the message's array, when it was one")
    path: str = Field("", description="field path inside the event, dotted")
    message: str


class DeadLetter(BaseModel):
    """Envelope published to `learnstream.dlq` for bad input, with where it came from."""

    model_config = ConfigDict(extra="forbid")

    source_topic: str
    partition: int
    offset: int
    key: str | None = Field(None, description="message key (base64 when not UTF-8)")
    key_encoding: Literal["utf-8", "base64"] | None = None
    value: str = Field(
        description="the raw message value exactly as consumed; for an array whose valid members "
        "were stored, a JSON array of only the rejected members (see `members`)"
    )
    value_encoding: Literal["utf-8", "base64"]
    value_truncated: bool = Field(
        False, description="true when `value` is only a prefix: the whole envelope would not fit in one "
        "message; `value_length` and `value_sha256` then describe the whole value"
    )
    value_length: int | None = Field(None, description="with value_truncated: bytes of the original value")
    value_sha256: str | None = Field(None, description="with value_truncated: hex SHA-256 of the original value")
    stage: Literal["ingest", "windows", "alerts"] = Field(
        "ingest", description="where it was set aside: ingest (decode, validation, the database write), "
        "windows (the window stage; the events are stored), alerts (the alert runtime)"
    )
    members: list[int] | None = Field(
        None, description="when set, `value` holds only these members (indexes into the original array)"
    )
    errors: list[DeadLetterError]
    errors_omitted: int = Field(0, description="errors left out to keep the envelope within the message size limit")
    received_at: AwareDatetime


#: topic kind -> the event-time fields an acceptance window applies to (the first is the event's
#: time, the one its table is partitioned and its windows are kept by; optional ones may be null)
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "learning_event": ("timestamp",),
    "performance_sample": ("timestamp",),
    "engagement_update": ("recorded_at", "peak_engagement_time"),
}

#: topic kind -> contract
CONTRACTS: dict[str, type[BaseModel]] = {
    "learning_event": LearningEvent,
    "performance_sample": PerformanceSample,
    "engagement_update": EngagementUpdate,
}
