"""Benchmarks (seed 003 benchmark_comparisons): each own account against the active competitors
on its platform in its workspace, per metric and period [start, end).

Metrics, from audience_growth (own accounts) and competitor_metrics (competitors), each from
snapshots of the period or its edges only (review 2 R3: a value from months ago is not this
period's, and growth since months ago is not this period's growth):

* `followers`: the latest count recorded in the period [start, end);
* `follower_growth`: % change over the period, per the period's length: from the count at its start
  f0, the latest snapshot at or before the start and at most EDGE_TOLERANCE (1 day) before it (t0),
  to the count at its end f1, the latest at or before the end and at most EDGE_TOLERANCE before it
  (t1; review 3 F4: a snapshot exactly at END counts, so an account scraped weekly at the edges has a
  growth), scaled to the period's length (review 3 F6: spans of 6 to 8 days are not one week):

      follower_growth = (f1 - f0) / f0 x (end - start) / (t1 - t0) x 100

  (10 followers a day from 1000 over a 7-day period: 7 % whether measured over 6, 7 or 8 days, give
  or take the compounding). NULL without both counts (an account scraped 60 days before the week and
  in it has no growth for the week: it is not +10 % "this week" against competitors' +1 % of a week),
  when they are one snapshot (t0 = t1: a single snapshot shows no growth, not 0 %), and when f0 is 0;
* `engagement_rate`, `posts_per_week`: the latest value recorded in the period (snapshots without
  it are skipped).

An account without a metric's value is left out of it: an own account gets no row for that metric,
a competitor is not counted in its average, median, count and the percentiles against it. Per own
account and metric: the workspace's competitors' average and median, their count, the account's
percentile among them (those below it plus half those equal, over the count, x 100) and ratio
(value / average); with no competitor having the metric, count 0 and those NULL.

`industry_average` (review finding 14), only with `industry=True` (the operator's
LEARNSTREAM_INDUSTRY_BENCHMARKS; else NULL): per reader workspace, platform and metric, the average
over the competitor accounts (platform, id) that at least INDUSTRY_MIN_TRACKERS workspaces OTHER than
the reader track (each once, the mean of those workspaces' values), published only when at least
INDUSTRY_MIN_ACCOUNTS such accounts from at least INDUSTRY_MIN_WORKSPACES such workspaces have the
metric and no account's |value| exceeds INDUSTRY_MAX_SHARE of their sum of |values| (dominance),
else NULL. The reader's own values and accounts never enter its figure (it cannot move what it
reads), a competitor only one workspace tracks enters no one's, own accounts never enter it.

Values up to the double's limit (an engagement rate of 1.7e308 is a valid Rate) do not fail the
run: averages and ratios are overflow-safe (db/analytics/safe.py), NULL when the figure is no
double (value / average = 1.7e308 / 0.5).

A run for the same period rewrites the same rows and deletes the period's rows it no longer
computes (e.g. the 0 % growth a single snapshot got before issue #25).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from db.analytics.safe import avg, ratio

#: follower_growth: the snapshots taken as the counts at the period's start and end are at most this
#: much before those edges (else the growth is NULL)
EDGE_TOLERANCE = timedelta(days=1)
#: industry_average needs this many workspaces with a value of the metric on the platform ...
INDUSTRY_MIN_WORKSPACES = 5
#: ... and this many distinct competitor accounts with one
INDUSTRY_MIN_ACCOUNTS = 10
#: an account counts only when this many workspaces besides the reader track it (none's private list enters)
INDUSTRY_MIN_TRACKERS = 2
#: dominance: no account's |value| may exceed this share of the accounts' sum of |values|
INDUSTRY_MAX_SHARE = 0.5

_BENCHMARK = """
WITH own AS (
    SELECT k.workspace_id, k.id, k.platform, l.follower_count AS last, l.recorded_at AS last_at,
        f.follower_count AS first, f.recorded_at AS first_at, e.follower_count AS final, e.recorded_at AS final_at,
        (SELECT g.engagement_rate FROM audience_growth g WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
            AND g.recorded_at >= $1 AND g.recorded_at < $2 AND g.engagement_rate IS NOT NULL
            ORDER BY g.recorded_at DESC LIMIT 1) AS engagement_rate,
        (SELECT g.posts_per_week FROM audience_growth g WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
            AND g.recorded_at >= $1 AND g.recorded_at < $2 AND g.posts_per_week IS NOT NULL
            ORDER BY g.recorded_at DESC LIMIT 1) AS posts_per_week
    FROM connectors k
    LEFT JOIN LATERAL (
        SELECT g.follower_count, g.recorded_at FROM audience_growth g
        WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id AND g.recorded_at >= $1 AND g.recorded_at < $2
        ORDER BY g.recorded_at DESC LIMIT 1) AS l ON true
    LEFT JOIN LATERAL (
        SELECT g.follower_count, g.recorded_at FROM audience_growth g
        WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
          AND g.recorded_at <= $1 AND g.recorded_at >= $1 - $8::interval
        ORDER BY g.recorded_at DESC LIMIT 1) AS f ON true
    LEFT JOIN LATERAL (
        SELECT g.follower_count, g.recorded_at FROM audience_growth g
        WHERE g.workspace_id = k.workspace_id AND g.connector_id = k.id
          AND g.recorded_at <= $2 AND g.recorded_at >= $2 - $8::interval
        ORDER BY g.recorded_at DESC LIMIT 1) AS e ON true
    WHERE k.relationship = 'own'
), rivals AS (
    SELECT p.workspace_id, p.id, p.platform, l.followers AS last, l.recorded_at AS last_at,
        f.followers AS first, f.recorded_at AS first_at, e.followers AS final, e.recorded_at AS final_at,
        (SELECT m.engagement_rate FROM competitor_metrics m WHERE m.workspace_id = p.workspace_id
            AND m.competitor_id = p.id AND m.recorded_at >= $1 AND m.recorded_at < $2 AND m.engagement_rate IS NOT NULL
            ORDER BY m.recorded_at DESC LIMIT 1) AS engagement_rate,
        (SELECT m.posts_per_week FROM competitor_metrics m WHERE m.workspace_id = p.workspace_id
            AND m.competitor_id = p.id AND m.recorded_at >= $1 AND m.recorded_at < $2 AND m.posts_per_week IS NOT NULL
            ORDER BY m.recorded_at DESC LIMIT 1) AS posts_per_week
    FROM competitor_profiles p
    LEFT JOIN LATERAL (
        SELECT m.followers, m.recorded_at FROM competitor_metrics m
        WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id AND m.recorded_at >= $1 AND m.recorded_at < $2
        ORDER BY m.recorded_at DESC LIMIT 1) AS l ON true
    LEFT JOIN LATERAL (
        SELECT m.followers, m.recorded_at FROM competitor_metrics m
        WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
          AND m.recorded_at <= $1 AND m.recorded_at >= $1 - $8::interval
        ORDER BY m.recorded_at DESC LIMIT 1) AS f ON true
    LEFT JOIN LATERAL (
        SELECT m.followers, m.recorded_at FROM competitor_metrics m
        WHERE m.workspace_id = p.workspace_id AND m.competitor_id = p.id
          AND m.recorded_at <= $2 AND m.recorded_at >= $2 - $8::interval
        ORDER BY m.recorded_at DESC LIMIT 1) AS e ON true
    WHERE p.is_active
), own_values AS (
    SELECT o.workspace_id, o.id, o.platform, v.metric, v.value
    FROM own o, LATERAL (VALUES
        ('followers', o.last::double precision),
        ('follower_growth', CASE WHEN o.first_at < o.final_at
                                 THEN 100.0 * (o.final - o.first) / nullif(o.first, 0)
                                      * extract(epoch FROM $2 - $1) / extract(epoch FROM o.final_at - o.first_at) END),
        ('engagement_rate', o.engagement_rate),
        ('posts_per_week', o.posts_per_week)) AS v(metric, value)
    WHERE v.value IS NOT NULL
), rival_values AS (
    SELECT r.workspace_id, r.id, r.platform, v.metric, v.value
    FROM rivals r, LATERAL (VALUES
        ('followers', r.last::double precision),
        ('follower_growth', CASE WHEN r.first_at < r.final_at
                                 THEN 100.0 * (r.final - r.first) / nullif(r.first, 0)
                                      * extract(epoch FROM $2 - $1) / extract(epoch FROM r.final_at - r.first_at) END),
        ('engagement_rate', r.engagement_rate),
        ('posts_per_week', r.posts_per_week)) AS v(metric, value)
    WHERE v.value IS NOT NULL
), readers AS (  -- industry_average, when on: for each workspace with rows, over the OTHER workspaces
    SELECT DISTINCT workspace_id AS reader, platform, metric FROM own_values WHERE $5
), shared AS (  -- values of the accounts (platform, id) that at least $6 workspaces track
    SELECT r.workspace_id, r.platform, r.id, r.metric, r.value
    FROM rival_values r
    WHERE $5 AND (r.platform, r.id, r.metric) IN (SELECT platform, id, metric FROM rival_values
                                                  GROUP BY platform, id, metric HAVING count(*) >= $6)
), accounts AS (  -- an account at least $6 OTHER workspaces track, once: the mean of their values (never the reader's)
    SELECT d.reader, s.platform, s.metric, s.id, """ + avg("s.value") + """ AS value, array_agg(s.workspace_id) AS sources
    FROM readers d JOIN shared s ON s.platform = d.platform AND s.metric = d.metric AND s.workspace_id <> d.reader
    GROUP BY d.reader, s.platform, s.metric, s.id
    HAVING count(*) >= $6
), sources AS (  -- how many other workspaces' values enter a reader's figure
    SELECT reader, platform, metric, count(*) AS n
    FROM (SELECT DISTINCT a.reader, a.platform, a.metric, w FROM accounts a, unnest(a.sources) AS w) AS u
    GROUP BY reader, platform, metric
), pooled AS (
    SELECT reader, platform, metric, """ + avg("value") + """ AS average, count(*) AS n,
        -- in numeric: a sum of floats can overflow
        max(abs(value))::numeric AS top, sum(abs(value)::numeric) AS total
    FROM accounts GROUP BY reader, platform, metric
), industry AS (  -- dominance: no account over $7 of the sum of |values|
    SELECT p.reader, p.platform, p.metric, p.average
    FROM pooled p JOIN sources w USING (reader, platform, metric)
    WHERE p.n >= $4 AND w.n >= $3 AND p.top <= $7::numeric * p.total
), compared AS (
    SELECT o.workspace_id, o.id, o.platform, o.metric, o.value,
        """ + avg("r.value") + """ AS average,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY r.value) AS median, count(r.value) AS n,
        100.0 * (count(*) FILTER (WHERE r.value < o.value) + 0.5 * count(*) FILTER (WHERE r.value = o.value))
            / nullif(count(r.value), 0) AS percentile
    FROM own_values o
    LEFT JOIN rival_values r ON r.workspace_id = o.workspace_id AND r.platform = o.platform AND r.metric = o.metric
    GROUP BY o.workspace_id, o.id, o.platform, o.metric, o.value
)
INSERT INTO benchmark_comparisons AS b (workspace_id, connector_id, platform, metric, period_start, period_end,
    user_value, industry_average, competitor_average, competitor_median, competitor_count, percentile, ratio,
    computed_at)
SELECT c.workspace_id, c.id, c.platform, c.metric, ($1 AT TIME ZONE 'UTC')::date, ($2 AT TIME ZONE 'UTC')::date,
    c.value, i.average, c.average, c.median, c.n, c.percentile, """ + ratio("c.value", "c.average") + """,
    clock_timestamp()
FROM compared c
LEFT JOIN industry i ON i.reader = c.workspace_id AND i.platform = c.platform AND i.metric = c.metric
ON CONFLICT (workspace_id, connector_id, metric, period_start, period_end) DO UPDATE SET
    platform = excluded.platform, user_value = excluded.user_value, industry_average = excluded.industry_average,
    competitor_average = excluded.competitor_average, competitor_median = excluded.competitor_median,
    competitor_count = excluded.competitor_count, percentile = excluded.percentile, ratio = excluded.ratio,
    computed_at = excluded.computed_at
RETURNING b.workspace_id, b.id
"""

# the period's rows this run did not compute (a metric that became undefined, an account gone)
_STALE = """
DELETE FROM benchmark_comparisons b
WHERE b.period_start = ($1 AT TIME ZONE 'UTC')::date AND b.period_end = ($2 AT TIME ZONE 'UTC')::date
  AND (b.workspace_id, b.id) NOT IN (SELECT * FROM unnest($3::uuid[], $4::uuid[]))
"""


async def benchmark_accounts(conn: asyncpg.Connection, start: datetime, end: datetime, *, industry: bool = False) -> int:
    """benchmark_comparisons for the period [start, end) (dates in UTC), industry_average only with
    `industry` (else NULL); -> rows written."""
    async with conn.transaction():
        written = await conn.fetch(_BENCHMARK, start, end, INDUSTRY_MIN_WORKSPACES, INDUSTRY_MIN_ACCOUNTS, industry,
                                   INDUSTRY_MIN_TRACKERS, INDUSTRY_MAX_SHARE, EDGE_TOLERANCE)
        await conn.execute(_STALE, start, end, [r["workspace_id"] for r in written], [r["id"] for r in written])
    return len(written)
