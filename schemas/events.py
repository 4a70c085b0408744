"""Event contracts for the three ingest topics (pydantic v2). No I/O here.

Column names follow the schema's design documents (learning_events, content performance). Every event carries its own id (the
idempotency key), a workspace_id (the tenant) and a timezone-aware timestamp; naive timestamps are
rejected, never guessed. Unknown fields are rejected too: a misspelt field silently dropped would be
data lost without a trace, and `metadata` is there for free-form context.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.content import AccountSnapshot, ContentItem
from schemas.learning import MAX_ERROR_CHARS, MAX_ERRORS
from schemas.types import (
    MAX_OBJECT_BYTES,
    JsonObject,
    Name50,
    Name100,
    Name255,
    TagKey,
    TagValue,
    Timestamp,
    Uuid,
    integer,
    safe_dumps,
)

__all__ = ["MAX_OBJECT_BYTES", "JsonObject", "safe_dumps"]  # re-exported

#: most events a message value may carry as a JSON array (a scraper's page of results)
MAX_EVENTS_PER_MESSAGE = 1000
#: largest message value accepted, bytes (Kafka's default max.message.bytes is ~1 MiB)
MAX_MESSAGE_BYTES = 1_048_576
#: most entries in a flat tag map
MAX_TAGS = 64


class _Contract(BaseModel):
    # enum fields hold their string value (what is stored and sent on)
    # strict: a field takes the JSON type its schema names, nothing coerced (schemas/types.py)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_enum_values=True)


#: a learning event's type: any name of 1..100 characters, a letter or digit first, then letters,
#: digits and `_ . : / -` (seed 004: `event_type VARCHAR(100)`, an open set). The types with a
#: contract (schemas/learning.py: DATA_CONTRACTS) are routed into the domain tables; any other is
#: stored in the raw log and counted (`learnstream_unrouted_total{reason="unknown_type"}`).
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
EventType = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=EVENT_TYPE_PATTERN)]


Millis = integer(ge=0, le=2_147_483_647)


class LearningEvent(_Contract):
    """An AI learning event (topic `learning-events`, table `learning_events`). The envelope is the
    gate of the raw log: an event whose envelope is valid is stored whatever its event_type and
    event_data; the contract of event_data applies to routing (schemas/learning.py)."""

    event_id: Uuid = Field(description="unique id of this event; the idempotency key")
    workspace_id: Uuid = Field(description="tenant the event belongs to")
    event_type: EventType = Field(description="what happened; the known types' event_data has a contract")
    event_subtype: Name100 | None = None
    timestamp: Timestamp = Field(description="when it happened, with a timezone")
    source_system: Name100 | None = Field(None, description="e.g. openevolve, pattern_analyzer")
    entity_type: Name100 | None = None
    entity_id: Name255 | None = None
    event_data: JsonObject = Field(
        description="the event payload (JSON object), stored as sent; for a known event_type, routed "
        "into the domain tables when it meets that type's contract (learning_event_data.<type>.json)"
    )
    user_id: Name255 | None = None
    session_id: Name255 | None = None
    processing_time_ms: Millis | None = None
    metadata: JsonObject | None = None


class AggregationLevel(str, Enum):
    raw = "raw"
    minute = "minute"
    hour = "hour"
    day = "day"


class PerformanceSample(_Contract):
    """A system performance sample (topic `performance-samples`, table `system_performance_metrics`)."""

    sample_id: Uuid = Field(description="unique id of this sample; the idempotency key")
    workspace_id: Uuid
    metric_name: Name100
    metric_category: Name100 | None = Field(None, description="e.g. database, api, ml_model")
    timestamp: Timestamp
    value: float = Field(allow_inf_nan=False, description="finite number")
    unit: Name50 | None = Field(None, description="e.g. ms, mb, percentage, count")
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] = Field(
        default_factory=dict, description="flat string -> string map"
    )
    source_component: Name100 | None = None
    # not strict: from Python, the value ("raw") is taken as well as the member; from JSON, only a value
    aggregation_level: AggregationLevel = Field(AggregationLevel.raw, strict=False)


NonNegativeCount = integer(ge=0, le=9_223_372_036_854_775_807)


class EngagementUpdate(_Contract):
    """A snapshot of a post's cumulative engagement counters as the platform shows them
    (topic `engagement-updates`, table `content_performance_metrics`)."""

    update_id: Uuid = Field(description="unique id of this update; the idempotency key")
    workspace_id: Uuid
    content_id: Uuid
    platform: Name50
    connector_id: Name100 | None = Field(None, description="the scraper/connector that read it")
    recorded_at: Timestamp
    views: NonNegativeCount = 0
    likes: NonNegativeCount = 0
    shares: NonNegativeCount = 0
    comments: NonNegativeCount = 0
    saves: NonNegativeCount = 0
    average_watch_time: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="seconds"
    )
    peak_engagement_time: Timestamp | None = None
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
        "unresolved_reference",
        "unknown_workspace",
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
    stage: Literal["ingest", "windows", "alerts", "domain"] = Field(
        "ingest", description="where it was set aside: ingest (decode, validation, the database write), "
        "windows (the window stage; the events are stored), alerts (the alert runtime), domain (a learning "
        "event stored in learning_events whose referent never came: partition and offset are -1, the value "
        "is the routed record)"
    )
    members: list[int] | None = Field(
        None, description="when set, `value` holds only these members (indexes into the original array)"
    )
    errors: list[DeadLetterError]
    errors_omitted: int = Field(0, description="errors left out to keep the envelope within the message size limit")
    received_at: AwareDatetime


#: why a stored learning event was not routed: its event_data misses its type's contract, or a
#: domain table refused its record (a unique key, a CHECK); `unknown_type` is only counted
UnroutedReason = Literal["contract", "refused"]


class UnroutedEvent(BaseModel):
    """Announced on `learnstream.unrouted` (and kept in table unrouted_events): a learning event that
    IS stored in learning_events but was not routed into the domain tables. Fix the producer (or
    the contract), then `learnstream domain reroute` routes it from the raw log."""

    model_config = ConfigDict(extra="forbid")

    stored: Literal[True] = Field(True, description="always true: the event is in learning_events")
    workspace_id: UUID
    event_id: UUID
    timestamp: AwareDatetime = Field(description="the event's time (with event_id, its key in learning_events)")
    event_type: str
    reason: UnroutedReason
    errors: Annotated[list[Annotated[str, StringConstraints(max_length=MAX_ERROR_CHARS)]], Field(max_length=MAX_ERRORS)]
    source_topic: str
    partition: int
    offset: int
    detected_at: AwareDatetime


#: topic kind -> the event-time fields an acceptance window applies to (the first is the event's
#: time, the one its table is partitioned and its windows are kept by; optional ones may be null)
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "learning_event": ("timestamp",),
    "performance_sample": ("timestamp",),
    "engagement_update": ("recorded_at", "peak_engagement_time"),
    "content_item": ("observed_at", "published_at"),
    "account_snapshot": ("recorded_at",),
}

#: topic kind -> the field of its events that is their idempotency key
ID_FIELD: dict[str, str] = {
    "learning_event": "event_id",
    "performance_sample": "sample_id",
    "engagement_update": "update_id",
    "content_item": "event_id",
    "account_snapshot": "snapshot_id",
}

#: topic kind -> contract
CONTRACTS: dict[str, type[BaseModel]] = {
    "learning_event": LearningEvent,
    "performance_sample": PerformanceSample,
    "engagement_update": EngagementUpdate,
    "content_item": ContentItem,
    "account_snapshot": AccountSnapshot,
}
