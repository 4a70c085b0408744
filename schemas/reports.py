"""The contract of a custom report (seed 003 custom_reports.query_config): what a user may ask for.

A report names a source, metrics and dimensions from that source's whitelist, filters on
whitelisted fields (values only: they are bound as query parameters), a period and a time zone.
Nothing a user writes becomes SQL: db/reports/query.py holds one constant fragment per name here,
and a unit test keeps the two lists equal. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from schemas.types import Name100, Name255, TimeZone

#: rows a report may return at most (its `limit` defaults lower)
MAX_REPORT_ROWS = 10_000
#: the time dimensions every source has: buckets of the period in the report's time zone
TIME_DIMENSIONS = ("day", "week", "month")
FORMATS = ("csv", "json", "html")


@dataclass(frozen=True)
class Source:
    description: str
    metrics: dict[str, str]
    dimensions: dict[str, str]
    filters: dict[str, str]


_TIME = {"day": "the day (in the report's time zone)", "week": "the ISO week's Monday",
         "month": "the month's first day"}

SOURCES: dict[str, Source] = {
    "engagement": Source(
        "what the posts gained (content_performance_metrics, with content): each snapshot counts its "
        "counters minus its post's previous snapshot's (a post's first snapshot 0, a decrease 0), summed over "
        "the snapshots recorded in each time bucket (in the period when there is no time dimension)",
        metrics={
            "posts": "posts with a snapshot in the bucket",
            "views": "views gained", "likes": "likes gained", "shares": "shares gained",
            "comments": "comments gained", "saves": "saves gained",
            "interactions": "likes + shares + comments + saves gained",
            "engagement_rate": "interactions gained on posts that report views / views gained (empty when no "
                               "views were gained)",
            "avg_watch_time": "mean average_watch_time (seconds) of each post's latest snapshot in the bucket",
        },
        dimensions={**_TIME, "platform": "platform", "account": "the account (connector_id)",
                    "content_type": "the post's content type (video, image, ...)"},
        filters={"platform": "platforms", "account": "connector ids", "content_type": "content types",
                 "hashtag": "posts having any of these hashtags (case-insensitive)", "content_id": "post ids"},
    ),
    "learning": Source(
        "learning events (learning_events)",
        metrics={"events": "events", "mean_processing_ms": "mean processing_time_ms",
                 "p95_processing_ms": "95th percentile of processing_time_ms (continuous)",
                 "max_processing_ms": "largest processing_time_ms"},
        dimensions={**_TIME, "event_type": "event type", "event_subtype": "event subtype",
                    "source_system": "the producing system"},
        filters={"event_type": "event types", "source_system": "producing systems"},
    ),
    "predictions": Source(
        "prediction accuracy per model and day (model_accuracy_daily; its days are UTC days)",
        metrics={"predictions": "predictions measured",
                 "mean_accuracy": "mean relative-error accuracy % (100 x max(0, 1 - |p - a| / |a|); asymmetric), "
                                  "weighted by predictions",
                 "mean_ratio_accuracy": "mean ratio accuracy % (100 x min(p, a) / max(p, a); symmetric), weighted by "
                                        "the predictions where it is defined",
                 "mean_absolute_error": "mean absolute error, weighted by predictions"},
        dimensions={**_TIME, "model": "the model (name and version)", "prediction_type": "prediction type"},
        filters={"prediction_type": "prediction types", "model": "model names"},
    ),
    "posting_times": Source(
        "optimal posting times (optimal_posting_times, job optimal_posting_times): one cell per account and hour "
        "of the week in the account's time zone. The job keeps its latest run only, so the period does not filter "
        "it (day, week, month: when that run computed it)",
        metrics={"cells": "hours of the week with posts", "scored_cells": "cells with enough posts to be scored",
                 "best_score": "highest optimization_score (0-100; cells with too few posts have none)",
                 "posts": "posts published in those hours (sample_size)",
                 "avg_engagement": "mean measure of those posts (avg_engagement weighted by posts): the engagement "
                                   "rate, or interactions per post where the platform reports no views, at age 24 h "
                                   "or lifetime; group or filter by measure, they do not mix",
                 "mean_confidence": "mean confidence (posts / (posts + 10))"},
        dimensions={**_TIME, "platform": "platform", "account": "the account (connector_id)",
                    "measure": "engagement_rate or interactions_per_post, with ' (lifetime, posts >= 7 days)' for an "
                               "account measured on its mature posts' latest counts (no cell scored at age 24 h)",
                    "weekday": "day of the week in the account's time zone (0 = Sunday)",
                    "hour": "hour of the day in the account's time zone", "timezone": "the account's time zone"},
        filters={"platform": "platforms", "account": "connector ids", "measure": "measures"},
    ),
    "trends": Source(
        "trends (trend_analysis: detected by the detect_trends job or reported) active in the period: started "
        "before its end and not ended before its start, a key once (day, week, month: of their start, a key once "
        "per bucket)",
        metrics={"trends": "trends", "max_impact": "highest engagement_impact (% over the baseline; none if all "
                 "undefined)", "mean_impact": "mean engagement_impact over the trends that have one",
                 "new_trends": "detected trends labelled new (a baseline too small to compare with: no impact)",
                 "posts": "posts of the latest detections", "recent_gain": "interactions gained in the latest "
                 "detections' recent windows"},
        dimensions={**_TIME, "platform": "platform", "trend_type": "hashtag, style, ...",
                    "trend_key": "the hashtag, style, ...", "source": "detected or reported",
                    "status": "a detected trend's label: rising or new (empty for reported trends)"},
        filters={"platform": "platforms", "trend_type": "trend types", "trend_key": "trend keys",
                 "source": "detected, reported", "status": "rising, new"},
    ),
    "benchmarks": Source(
        "own accounts against their competitors (benchmark_comparisons, job benchmarks): the comparisons whose "
        "period ended in the report's period (day, week, month: of the compared period's start). Group or filter "
        "by metric: values of different metrics do not mix",
        metrics={"comparisons": "comparisons", "value": "the account's value (mean)",
                 "competitor_average": "the competitors' average (mean)",
                 "competitor_median": "the competitors' median (mean)", "competitors": "most competitors compared",
                 "percentile": "the account's percentile among them (mean)",
                 "ratio": "value / competitor_average (mean)",
                 "industry_average": "the platform's average over the competitor accounts other workspaces share "
                                     "(mean; none unless LEARNSTREAM_INDUSTRY_BENCHMARKS, or under its thresholds)"},
        dimensions={**_TIME, "account": "the own account (connector_id)", "platform": "platform",
                    "metric": "followers, follower_growth, ..."},
        filters={"account": "connector ids", "platform": "platforms", "metric": "metrics"},
    ),
    "experiments": Source(
        "A/B experiments per variant (ab_testing_experiments.results) active in the period: started (or, "
        "without a start, created) before its end and not ended before its start (day, week, month: of that start)",
        metrics={"experiments": "experiments", "assigned": "subjects assigned", "outcomes": "subjects with an outcome",
                 "judged": "subjects whose outcome says converted (true or false)",
                 "converted": "subjects that converted",
                 "conversion_rate": "converted / judged (the rate the experiment_significance job compares)",
                 "p_value": "the variant's p-value against the control (experiment_significance job: two-proportion "
                            "z-test, Bonferroni-adjusted; smallest when grouped over variants)",
                 "winners": "experiments with a winner (significant, enough subjects, at a decision point)"},
        dimensions={**_TIME, "experiment": "the experiment's name", "variant": "the variant",
                    "status": "draft, running, completed, cancelled",
                    "winner": "the experiment's winner (empty: no winner yet)",
                    "decision": "final, or why not (interim: n of N planned per arm, interim: no planned sample, "
                                "cancelled, no control arm: ..., no treatment arm: ...; empty: not judged yet)"},
        filters={"experiment": "experiment names", "variant": "variants", "status": "statuses"},
    ),
}

RelativePeriod = Literal["last_24_hours", "yesterday", "last_7_days", "last_30_days", "last_90_days",
                         "week_to_date", "month_to_date", "previous_week", "previous_month"]
_LAST_DAYS = {"yesterday": 1, "last_7_days": 7, "last_30_days": 30, "last_90_days": 90}

FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=255)]


def _bounded_day(d: date) -> date:
    if not date(2000, 1, 1) <= d <= date(2100, 1, 1):
        raise PydanticCustomError("period", "a period's days lie between 2000-01-01 and 2100-01-01, not {d}",
                                  {"d": d.isoformat()})
    return d


Day = Annotated[date, AfterValidator(_bounded_day)]


class AbsolutePeriod(BaseModel):
    """Whole days in the report's time zone: [start, end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start: Day
    end: Day

    @model_validator(mode="after")
    def _ordered(self) -> AbsolutePeriod:
        if self.end <= self.start:
            raise PydanticCustomError("period", "a period's end ({end}) must be after its start ({start})",
                                      {"start": self.start.isoformat(), "end": self.end.isoformat()})
        return self


class ReportQuery(BaseModel):
    """custom_reports.query_config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Literal["engagement", "learning", "predictions", "posting_times", "trends", "benchmarks", "experiments"]
    metrics: list[Name100] = Field(min_length=1, max_length=12)
    dimensions: list[Name100] = Field(default_factory=list, max_length=3)
    filters: dict[Name100, list[FilterValue]] = Field(default_factory=dict, max_length=8)
    period: RelativePeriod | AbsolutePeriod = "last_7_days"
    timezone: TimeZone = "UTC"
    limit: int = Field(1000, ge=1, le=MAX_REPORT_ROWS)

    @model_validator(mode="after")
    def _whitelisted(self) -> ReportQuery:
        src = SOURCES[self.source]
        for kind, names, allowed in (("metric", self.metrics, src.metrics),
                                     ("dimension", self.dimensions, src.dimensions),
                                     ("filter", list(self.filters), src.filters)):
            for name in names:
                if name not in allowed:
                    raise PydanticCustomError(
                        "not_whitelisted", "{source} has no {kind} '{name}'; it has: {allowed}",
                        {"source": self.source, "kind": kind, "name": name, "allowed": ", ".join(allowed)})
            if len(set(names)) != len(names):
                raise PydanticCustomError("duplicate", "a {kind} is named twice", {"kind": kind})
        if sum(d in TIME_DIMENSIONS for d in self.dimensions) > 1:
            raise PydanticCustomError("dimensions", "at most one of day, week, month", {})
        for name, values in self.filters.items():
            if not 1 <= len(values) <= 100:
                raise PydanticCustomError("filter", "filter '{name}' needs 1 to 100 values", {"name": name})
        return self

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)

    def resolve(self, at: datetime) -> tuple[datetime, datetime]:
        """The period as [start, end) in UTC for a run at `at` (a scheduled run: its scheduled time,
        so a rerun covers the same data). last_N_days and yesterday are the N whole days before
        `at`'s day in the report's zone; last_24_hours ends at `at`; *_to_date end at `at`;
        previous_week is Monday to Monday."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        today = local.date()

        def midnight(d: date) -> datetime:
            return datetime.combine(d, time(0), zone).astimezone(UTC)

        p = self.period
        if isinstance(p, AbsolutePeriod):
            return midnight(p.start), midnight(p.end)
        if p == "last_24_hours":
            return at.astimezone(UTC) - timedelta(hours=24), at.astimezone(UTC)
        if p in _LAST_DAYS:
            return midnight(today - timedelta(days=_LAST_DAYS[p])), midnight(today)
        monday = today - timedelta(days=today.weekday())
        first = today.replace(day=1)
        if p == "week_to_date":
            return midnight(monday), at.astimezone(UTC)
        if p == "month_to_date":
            return midnight(first), at.astimezone(UTC)
        if p == "previous_week":
            return midnight(monday - timedelta(days=7)), midnight(monday)
        assert p == "previous_month"
        return midnight((first - timedelta(days=1)).replace(day=1)), midnight(first)


def _cron(expr: str) -> str:
    if not croniter.is_valid(expr) or len(expr.split()) != 5:
        raise PydanticCustomError("cron", "'{expr}' is not a 5-field cron expression (minute hour day month weekday)",
                                  {"expr": expr})
    try:  # a schedule that can never fire (`0 0 31 2 *`) is refused, not found out by the job
        croniter(expr, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise PydanticCustomError("cron", "'{expr}' never fires (no date matches it)", {"expr": expr}) from None
    return expr


Cron = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_cron)]


class ReportSchedule(BaseModel):
    """report_schedules: when a report runs, in which zone (the cron's fields are local times there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cron: Cron
    timezone: TimeZone = "UTC"

    def next_after(self, t: datetime) -> datetime:
        """The first fire time after `t` (UTC). The cron's fields are wall-clock times of the
        schedule's zone, so 09:00 stays 09:00 across DST (computed on naive local times: croniter
        mis-steps over a DST change with zoneinfo zones); a time the clocks skip runs an hour later."""
        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, t.astimezone(zone).replace(tzinfo=None))
        while True:
            fire = it.get_next(datetime).replace(tzinfo=zone).astimezone(UTC)
            if fire > t:
                return fire

    def latest_at_or_before(self, t: datetime) -> datetime:
        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, (t + timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None))
        while True:
            fire = it.get_prev(datetime).replace(tzinfo=zone).astimezone(UTC)
            if fire <= t:
                return fire


class ReportDefinition(BaseModel):
    """What `learnstream reports add` stores: custom_reports (+ report_schedules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name255
    description: str | None = Field(None, max_length=2000)
    query: ReportQuery
    formats: list[Literal["csv", "json", "html"]] = Field(default_factory=lambda: ["csv"], min_length=1,
                                                          max_length=3)
    schedule: ReportSchedule | None = None
    created_by: Name255 | None = None

    @model_validator(mode="after")
    def _unique_formats(self) -> ReportDefinition:
        if len(set(self.formats)) != len(self.formats):
            raise PydanticCustomError("duplicate", "a format is named twice", {})
        return self
