"""A custom report's query: one constant SQL fragment per whitelisted name of schemas/reports.py.

The statement is assembled from these constants only, chosen by names the contract has already
checked against the same whitelist; every value (workspace, period, time zone, limit, filter
values) is a bound parameter. The workspace is always in the WHERE clause: reports run as the
tables' owner, whom row-level security does not filter.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from db.analytics.read import EXPERIMENT_VARIANTS, json_number, json_text
from db.analytics.safe import avg as safe_avg
from schemas.reports import ReportQuery

# $1 workspace, $2 period start, $3 period end, $4 time zone, $5 row limit; filters from $6
_PARAMS = "SELECT $1::uuid AS ws, $2::timestamptz AS t0, $3::timestamptz AS t1, $4::text AS tz, $5::integer AS n"


def _buckets(col: str) -> dict[str | None, str]:
    return {None: "NULL::date",
            "day": f"({col} AT TIME ZONE p.tz)::date",
            "week": f"date_trunc('week', {col} AT TIME ZONE p.tz)::date",
            "month": f"date_trunc('month', {col} AT TIME ZONE p.tz)::date"}


def _rounded(expr: str, places: int) -> str:
    return f"round(({expr})::numeric, {places})::double precision"



class _Family:
    """One source's statement: `{bucket}`, `{inner}` (filters on the scanned table), `{select}`,
    `{outer}` (filters after joins), `{group}`, `{order}` are filled from the dicts below."""

    def __init__(self, template: str, bucket: dict[str | None, str], dimensions: dict[str, str],
                 metrics: dict[str, str], inner: dict[str, str], outer: dict[str, str]) -> None:
        self.template, self.bucket, self.dimensions, self.metrics = template, bucket, dimensions, metrics
        self.inner, self.outer = inner, outer


#: a detected trend's label (db/analytics/trends.py: rising or new), NULL unless a JSON string
_TREND_STATUS = json_text("t.trend_data", "status")

#: a variant's (Bonferroni-adjusted) p-value against the control, from the experiment_significance
#: job's `significance` (NULL for the control and before a run)
_VARIANT_P = json_number("(e.significance -> 'vs_control' -> v.key)", "adjusted_p_value", "double precision")

FAMILIES: dict[str, _Family] = {
    # What the posts gained in each bucket: content_gains_between (migration 0040), the rows of
    # content_gains (0028, the one definition of "gained") recorded in the period, computed from the
    # period's snapshots and one high-water-mark row per post before it rather than through the
    # view, whose window would read every snapshot of the workspace: a post's first snapshot 0, a
    # decrease 0; a bucket sums the gains of the snapshots recorded in it. avg_watch_time (an
    # average, not a counter) takes each post's latest snapshot in the bucket, so a post scraped
    # often does not weigh more.
    "engagement": _Family(
        f"""
WITH p AS ({_PARAMS}),
g AS (
    SELECT g.* FROM content_gains_between($1::uuid, $2::timestamptz, $3::timestamptz) g
    WHERE true {{inner}}
),
snap AS (
    SELECT g.*, {{bucket}} AS bucket, row_number() OVER (PARTITION BY g.content_id, {{bucket}}
                                                        ORDER BY g.recorded_at DESC, g.id DESC) = 1 AS latest
    FROM g CROSS JOIN p
)
SELECT {{select}}
FROM snap s CROSS JOIN p LEFT JOIN content c ON c.workspace_id = p.ws AND c.id = s.content_id
WHERE true {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        _buckets("g.recorded_at"),
        dimensions={"day": "s.bucket", "week": "s.bucket", "month": "s.bucket", "platform": "s.platform",
                    "account": "coalesce(s.connector_id, '')", "content_type": "coalesce(c.content_type, '')"},
        metrics={
            "posts": "count(DISTINCT s.content_id)",
            "views": "bigint_or_null(coalesce(sum(s.views_gained), 0))",
            "likes": "bigint_or_null(coalesce(sum(s.likes_gained), 0))",
            "shares": "bigint_or_null(coalesce(sum(s.shares_gained), 0))",
            "comments": "bigint_or_null(coalesce(sum(s.comments_gained), 0))",
            "saves": "bigint_or_null(coalesce(sum(s.saves_gained), 0))",
            "interactions": "bigint_or_null(coalesce(sum(s.interactions_gained), 0))",
            # interactions gained on snapshots that report views (content_gains.reports_views, 0047), as the
            # aggregates and posting times: a platform without views adds none to the rate
            "engagement_rate": _rounded("sum(s.interactions_gained) FILTER (WHERE s.reports_views)::numeric "
                                        "/ nullif(sum(s.views_gained), 0)", 6),
            # the latest snapshot's own row, looked up by its key (only for the rows the FILTER keeps)
            "avg_watch_time": _rounded("avg((SELECT m.average_watch_time FROM content_performance_metrics m "
                                       "WHERE m.workspace_id = p.ws AND m.recorded_at = s.recorded_at AND m.id = s.id)) "
                                       "FILTER (WHERE s.latest)", 3),
        },
        inner={"platform": "g.platform = ANY({p}::text[])", "account": "g.connector_id = ANY({p}::text[])",
               "content_id": "g.content_id::text = ANY({p}::text[])"},
        # hashtag: case-insensitive, as trend keys are (lower-cased, db/analytics/trends.py)
        outer={"content_type": "c.content_type = ANY({p}::text[])",
               "hashtag": "EXISTS (SELECT FROM unnest(c.hashtags) h, unnest({p}::text[]) f WHERE lower(h) = lower(f))"},
    ),
    "learning": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM learning_events e CROSS JOIN p
WHERE e.workspace_id = p.ws AND e."timestamp" >= p.t0 AND e."timestamp" < p.t1 {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        {},
        dimensions={**{k: v for k, v in _buckets('e."timestamp"').items() if k}, "event_type": "e.event_type",
                    "event_subtype": "coalesce(e.event_subtype, '')",
                    "source_system": "coalesce(e.source_system, '')"},
        metrics={"events": "count(*)",
                 "mean_processing_ms": _rounded("avg(e.processing_time_ms)", 3),
                 "p95_processing_ms": _rounded(
                     "percentile_cont(0.95) WITHIN GROUP (ORDER BY e.processing_time_ms)", 3),
                 "max_processing_ms": "max(e.processing_time_ms)"},
        inner={"event_type": "e.event_type = ANY({p}::text[])", "source_system": "e.source_system = ANY({p}::text[])"},
        outer={},
    ),
    "predictions": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM model_accuracy_daily a CROSS JOIN p
JOIN ml_models mm ON mm.workspace_id = a.workspace_id AND mm.id = a.model_id
WHERE a.workspace_id = p.ws AND a.day >= (p.t0 AT TIME ZONE p.tz)::date AND a.day < (p.t1 AT TIME ZONE p.tz)::date
    {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        {},
        dimensions={"day": "a.day", "week": "date_trunc('week', a.day)::date",
                    "month": "date_trunc('month', a.day)::date",
                    "model": "mm.name || ' ' || mm.version", "prediction_type": "a.prediction_type"},
        metrics={"predictions": "bigint_or_null(coalesce(sum(a.predictions), 0))",
                 "mean_accuracy": _rounded("sum(a.mean_accuracy * a.predictions) / nullif(sum(a.predictions), 0)", 3),
                 "mean_ratio_accuracy": _rounded("sum(a.mean_ratio_accuracy * a.ratio_predictions) "
                                                 "/ nullif(sum(a.ratio_predictions), 0)", 3),
                 "mean_absolute_error": _rounded(
                     "sum(a.mean_absolute_error * a.predictions) / nullif(sum(a.predictions), 0)", 6)},
        inner={"prediction_type": "a.prediction_type = ANY({p}::text[])", "model": "mm.name = ANY({p}::text[])"},
        outer={},
    ),
    "posting_times": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM optimal_posting_times t CROSS JOIN p
WHERE t.workspace_id = p.ws {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        {},
        dimensions={**{k: v for k, v in _buckets("t.computed_at").items() if k}, "platform": "t.platform",
                    "account": "t.connector_id", "weekday": "t.day_of_week", "hour": "t.hour_of_day",
                    "timezone": "t.timezone", "measure": "t.metric"},
        metrics={"cells": "count(*)", "scored_cells": "count(t.optimization_score)",
                 "best_score": _rounded("max(t.optimization_score)", 3),
                 "posts": "bigint_or_null(coalesce(sum(t.sample_size), 0))",
                 "avg_engagement": _rounded("sum(t.avg_engagement * t.sample_size) / nullif(sum(t.sample_size) "
                                            "FILTER (WHERE t.avg_engagement IS NOT NULL), 0)", 6),
                 "mean_confidence": _rounded("avg(t.confidence)", 3)},
        inner={"platform": "t.platform = ANY({p}::text[])", "account": "t.connector_id = ANY({p}::text[])",
               "measure": "t.metric = ANY({p}::text[])"},
        outer={},
    ),
    "trends": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM p CROSS JOIN LATERAL (
    -- a trend once per time bucket (once in all when no day/week/month is grouped): its latest
    -- episode active in the period that started in the bucket (a key that trended, stopped and
    -- trended again has a row per episode, db/analytics/trends.py, db/domain/insights.py: by week,
    -- episodes of Dec 1 and Dec 8 count one in each week)
    SELECT DISTINCT ON (t.platform, t.trend_type, t.trend_key, t.source, {{bucket}}) t.* FROM trend_analysis t
    WHERE t.workspace_id = p.ws AND t.start_time < p.t1 AND (t.end_time IS NULL OR t.end_time >= p.t0)
    ORDER BY t.platform, t.trend_type, t.trend_key, t.source, {{bucket}}, t.start_time DESC
) t
WHERE true {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        _buckets("t.start_time"),
        dimensions={**{k: v for k, v in _buckets("t.start_time").items() if k}, "platform": "t.platform",
                    "trend_type": "t.trend_type", "trend_key": "t.trend_key", "source": "t.source",
                    "status": f"coalesce({_TREND_STATUS}, '')"},
        metrics={"trends": "count(*)", "max_impact": _rounded("max(t.engagement_impact)", 3),
                 "mean_impact": _rounded(safe_avg("t.engagement_impact"), 3),
                 "new_trends": f"count(*) FILTER (WHERE {_TREND_STATUS} = 'new')",
                 "posts": f"bigint_or_null(sum({json_number('t.trend_data', 'posts', 'numeric')}))",
                 "recent_gain": f"bigint_or_null(sum({json_number('t.trend_data', 'recent_gain', 'numeric')}))"},
        inner={"platform": "t.platform = ANY({p}::text[])", "trend_type": "t.trend_type = ANY({p}::text[])",
               "trend_key": "t.trend_key = ANY({p}::text[])", "source": "t.source = ANY({p}::text[])",
               "status": f"{_TREND_STATUS} = ANY({{p}}::text[])"},
        outer={},
    ),
    "benchmarks": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM benchmark_comparisons b CROSS JOIN p
WHERE b.workspace_id = p.ws AND b.period_end > (p.t0 AT TIME ZONE p.tz)::date
    AND b.period_end <= (p.t1 AT TIME ZONE p.tz)::date {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        {},
        dimensions={"day": "b.period_start", "week": "date_trunc('week', b.period_start)::date",
                    "month": "date_trunc('month', b.period_start)::date", "account": "b.connector_id",
                    "platform": "b.platform", "metric": "b.metric"},
        metrics={"comparisons": "count(*)", "value": _rounded(safe_avg("b.user_value"), 6),
                 "competitor_average": _rounded(safe_avg("b.competitor_average"), 6),
                 "competitor_median": _rounded(safe_avg("b.competitor_median"), 6),
                 "competitors": "max(b.competitor_count)", "percentile": _rounded("avg(b.percentile)", 3),
                 "ratio": _rounded(safe_avg("b.ratio"), 6),
                 "industry_average": _rounded(safe_avg("b.industry_average"), 6)},
        inner={"account": "b.connector_id = ANY({p}::text[])", "platform": "b.platform = ANY({p}::text[])",
               "metric": "b.metric = ANY({p}::text[])"},
        outer={},
    ),
    "experiments": _Family(
        f"""
WITH p AS ({_PARAMS})
SELECT {{select}}
FROM ab_testing_experiments e CROSS JOIN p
LEFT JOIN LATERAL {EXPERIMENT_VARIANTS} AS v ON true
WHERE e.workspace_id = p.ws AND coalesce(e.start_date, e.created_at) < p.t1 AND (e.end_date IS NULL OR e.end_date >= p.t0)
    {{inner}} {{outer}}
{{group}} {{order}} LIMIT (SELECT n FROM p)""",
        {},
        dimensions={**{k: v for k, v in _buckets("coalesce(e.start_date, e.created_at)").items() if k},
                    "experiment": "e.experiment_name", "variant": "v.key", "status": "e.status",
                    "winner": "coalesce(e.winner_variant, '')",
                    "decision": "coalesce(e.significance ->> 'decision', '')"},
        metrics={"experiments": "count(DISTINCT e.id)",
                 "assigned": f"bigint_or_null(coalesce(sum({json_number('v.value', 'assigned', 'numeric')}), 0))",
                 "outcomes": f"bigint_or_null(coalesce(sum({json_number('v.value', 'outcomes', 'numeric')}), 0))",
                 "judged": f"bigint_or_null(coalesce(sum({json_number('v.value', 'judged', 'numeric')}), 0))",
                 "converted": f"bigint_or_null(coalesce(sum({json_number('v.value', 'converted', 'numeric')}), 0))",
                 "conversion_rate": _rounded(f"sum({json_number('v.value', 'converted', 'numeric')}) / nullif(sum("
                                             f"{json_number('v.value', 'judged', 'numeric')}), 0)", 6),
                 "p_value": _rounded(f"min({_VARIANT_P})", 6),
                 "winners": "count(DISTINCT e.id) FILTER (WHERE e.winner_variant IS NOT NULL)"},
        inner={"experiment": "e.experiment_name = ANY({p}::text[])", "status": "e.status = ANY({p}::text[])"},
        outer={"variant": "v.key = ANY({p}::text[])"},
    ),
}


def statement(query: ReportQuery) -> tuple[str, list[list[str]]]:
    """The SQL of `query` and its filter parameters ($6 on), from the constants above only."""
    fam = FAMILIES[query.source]
    params: list[list[str]] = []
    inner, outer = [], []
    for name, values in query.filters.items():
        params.append(list(values))
        target = inner if name in fam.inner else outer
        target.append("AND " + (fam.inner.get(name) or fam.outer[name]).format(p=f"${5 + len(params)}"))
    select = [f"{fam.dimensions[d]} AS {d}" for d in query.dimensions]
    select += [f"{fam.metrics[m]} AS {m}" for m in query.metrics]
    ordinals = ", ".join(str(i + 1) for i in range(len(query.dimensions)))
    sql = fam.template.format(
        bucket=fam.bucket.get(query.time_dimension, ""), inner=" ".join(inner), outer=" ".join(outer),
        select=", ".join(select), group=f"GROUP BY {ordinals}" if ordinals else "",
        order=f"ORDER BY {ordinals}" if ordinals else "")
    return sql, params


async def fetch(conn: asyncpg.Connection, workspace: UUID, query: ReportQuery, start: datetime,
                end: datetime) -> tuple[list[str], list[tuple]]:
    """-> (columns, rows) of the report over [start, end)."""
    sql, params = statement(query)
    records = await conn.fetch(sql, workspace, start, end, query.timezone, query.limit, *params)
    return [*query.dimensions, *query.metrics], [tuple(r.values()) for r in records]
