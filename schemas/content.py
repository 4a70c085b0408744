"""Contracts of the content-items and account-snapshots topics (pydantic v2). No I/O.

content-items: what a scraper read of a post (its metadata, not its counters: those are
engagement-updates). account-snapshots: an account's state at a time, own or a competitor's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.types import Name50, Name100, Name255, Timestamp, TimeZone, Uuid, integer

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Count = integer(ge=0, le=9_223_372_036_854_775_807)
Rate = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pixels = integer(gt=0, le=100_000)


class _Contract(BaseModel):
    # strict: a field takes the JSON type its schema names, nothing coerced (schemas/types.py)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MediaItem(_Contract):
    url: Url
    media_type: Literal["image", "video", "audio", "gif", "document"]
    duration_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    width: Pixels | None = None
    height: Pixels | None = None
    mime_type: Name100 | None = None


class ContentItem(_Contract):
    """A post as a scraper saw it (topic `content-items`, table `content` + media_files /
    post_media_links). An observation newer than the stored one updates the changed fields; the
    first observation's time stays first_seen_at."""

    event_id: Uuid = Field(description="unique id of this observation")
    workspace_id: Uuid
    content_id: Uuid = Field(description="the post's id, as engagement-updates name it")
    platform: Name50
    connector_id: Name100 | None = Field(None, description="the account / connector it was read from")
    external_id: Name255 | None = Field(None, description="the platform's own post id")
    url: Url | None = None
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    caption: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    hashtags: Annotated[list[Tag], Field(max_length=100)] = Field(default_factory=list)
    mentions: Annotated[list[Tag], Field(max_length=100)] = Field(default_factory=list)
    media: Annotated[list[MediaItem], Field(max_length=20)] = Field(default_factory=list)
    author: Name255 | None = None
    content_type: Name50 | None = Field(None, description="video, image, carousel, text, ...")
    status: Literal["draft", "scheduled", "published", "deleted"] = "published"
    published_at: Timestamp | None = None
    observed_at: Timestamp = Field(description="when the scraper read it")


class Interest(_Contract):
    category: Name100
    affinity_score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    audience_percentage: Percent | None = None
    engagement_rate: Rate | None = None


Distribution = Annotated[dict[Name100, Percent], Field(max_length=250)]


class Demographics(_Contract):
    age_ranges: Distribution = Field(default_factory=dict, description='{"18-24": 31.5, ...} in %')
    gender_distribution: Distribution = Field(default_factory=dict)
    top_countries: Distribution = Field(default_factory=dict)
    top_cities: Distribution = Field(default_factory=dict)


class AccountSnapshot(_Contract):
    """An account's state at a time (topic `account-snapshots`). Own accounts fill connectors,
    audience_growth, audience_demographics and audience_interests; competitors fill
    competitor_profiles and competitor_metrics (the day's latest snapshot)."""

    snapshot_id: Uuid = Field(description="unique id of this snapshot; the idempotency key")
    workspace_id: Uuid
    connector_id: Name100 = Field(description="the account's id (a connector for own accounts)")
    platform: Name50
    relationship: Literal["own", "competitor"] = "own"
    handle: Name255 | None = None
    display_name: Name255 | None = None
    timezone: TimeZone | None = Field(None, description="IANA zone of the account's audience, e.g. Europe/Berlin")
    recorded_at: Timestamp
    followers: Count
    following: Count | None = None
    posts_count: Count | None = None
    engagement_rate: Rate | None = Field(None, description="interactions per follower per post, %")
    posts_per_week: Rate | None = None
    avg_likes: Rate | None = None
    avg_comments: Rate | None = None
    retention_rate: Percent | None = None
    demographics: Demographics | None = None
    interests: Annotated[list[Interest], Field(max_length=200)] = Field(default_factory=list)
