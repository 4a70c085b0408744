"""Optimal posting times (seed 003): per workspace, platform and account, the hours of the week
whose posts engaged best, in the account's time zone (connectors.timezone; UTC when unknown).

A post's measure (`metric`) is taken at one age, AGE_HOURS (24 h) after its publication, so that
posts are compared at the same age (review 2 R7: each post's latest, lifetime count made a
weeks-old hour beat this week's at the same performance, 1,000 against 100 on one curve). Its views
and interactions (likes + shares + comments + saves) at that age are interpolated linearly between
its last snapshot at or before the age (none: its publication, 0 views and 0 interactions) and its
first snapshot at or after it, recorded by the run's time and at most MAX_AGE_HOURS (48 h) after
publication. A post without such a snapshot is left out: younger than 24 h at the run, or not
scraped between ages 24 h and 48 h (over a longer gap the interpolated value says little).
'engagement_rate' = interactions / views at that age; a post with 0 views then has no rate and is
left out (its account's other posts still count). An account none of whose measured posts in the
window reports views (a platform that reports no views) is measured by 'interactions_per_post' =
interactions at that age instead, so it still gets recommendations.

Lifetime fallback (review 3 F7): an account none of whose cells scores at that age (no cell of
MIN_POSTS posts measured at 24 h; e.g. a history imported in one go, one snapshot per post taken
weeks after publication) is measured on its posts at least LIFETIME_MIN_AGE_DAYS (7) days old at
their latest snapshot by the run's time, on that snapshot's counts (mature posts, whose counts have
mostly settled; a younger post is left out, so it is never compared with old ones on lifetime
counts). It is used when it scores a cell, or when no post of the account is measured at 24 h;
else the account keeps its 24 h cells. One basis per account (its cells never mix them), named in
`metric`: 'engagement_rate (lifetime, posts >= 7 days)' / 'interactions_per_post (lifetime, ...)'
(rate or interactions chosen as above over the lifetime posts). Posts in neither are left out.
A cell is (day of week, hour)
of the publish time in the account's zone, over the posts published in the window (WINDOW_DAYS before
the run); n = its posts, mean = their mean measure (avg_engagement).

Few posts must not decide. A cell's mean is shrunk toward the account's mean with a prior worth
PRIOR_POSTS posts, shrunk = (n * mean + PRIOR_POSTS * account_mean) / (n + PRIOR_POSTS),
confidence = n / (n + PRIOR_POSTS), and ranked by the lower bound of that estimate:
lower = max(0, shrunk - Z * sd / sqrt(n + PRIOR_POSTS)), sd = the standard deviation of the
account's posts' measures (the shrunk mean's spread when each post varies like the account's
posts do), so of two cells with the same shrunk mean the better-sampled one ranks higher. A cell
with fewer than MIN_POSTS posts is stored (sample_size, avg_engagement, confidence) with
optimization_score NULL: too few posts to rank. optimization_score = 100 * lower / the account's
best lower among its ranked cells; NULL too when that best is 0 (nothing to rank on). Each
workspace is recomputed whole in its own transaction (its old cells deleted), so a run twice gives
the same rows; a workspace whose data fails the computation is skipped, its old cells kept
(db/analytics/per_workspace.py; counted in job_workspaces_skipped). Interactions are summed in
numeric (four counters near 2^63 exceed bigint).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from db.analytics.per_workspace import OnSkip, each_workspace

PRIOR_POSTS = 10
WINDOW_DAYS = 90
#: posts are compared at this age (hours after publication) ...
AGE_HOURS = 24
#: ... measured only with a snapshot between AGE_HOURS and this age (hours after publication)
MAX_AGE_HOURS = 48
#: a cell with fewer posts is stored unranked (optimization_score NULL)
MIN_POSTS = 3
#: the lower bound's z (one-sided 95 %)
Z = 1.645
RATE, INTERACTIONS = "engagement_rate", "interactions_per_post"
#: the fallback (lifetime) basis: posts at least this many days old at their latest snapshot ...
LIFETIME_MIN_AGE_DAYS = 7
#: ... and the text appended to their measure (metric 'engagement_rate (lifetime, posts >= 7 days)')
LIFETIME = f" (lifetime, posts >= {LIFETIME_MIN_AGE_DAYS} days)"

_WORKSPACES = """
SELECT workspace_id FROM content
 WHERE published_at >= $1::timestamptz - make_interval(days => $2::integer) AND published_at < $1::timestamptz
UNION SELECT workspace_id FROM optimal_posting_times
"""

_DELETE = "DELETE FROM optimal_posting_times WHERE workspace_id = $1"

_INSERT = """
WITH known AS (
    -- each post's snapshots around its age $9 h: the first at or after it (by age $10 h and the run's
    -- time $2) and the last at or before it, else its publication with 0 views and 0 interactions
    SELECT c.workspace_id, c.platform, coalesce(c.connector_id, '') AS connector_id,
        coalesce(k.timezone, 'UTC') AS tz, c.published_at, c.published_at + make_interval(hours => $9::integer) AS age,
        lo.at AS lo_at, lo.views AS lo_views, lo.interactions AS lo_interactions,
        hi.at AS hi_at, hi.views AS hi_views, hi.interactions AS hi_interactions
    FROM content c
    LEFT JOIN connectors k ON k.workspace_id = c.workspace_id AND k.id = c.connector_id
    CROSS JOIN LATERAL (
        SELECT m.recorded_at AS at, m.views::numeric AS views,
            m.likes::numeric + m.shares + m.comments + m.saves AS interactions  -- can exceed bigint
        FROM content_performance_metrics m
        WHERE m.workspace_id = c.workspace_id AND m.content_id = c.id
          AND m.recorded_at >= c.published_at + make_interval(hours => $9::integer)
          AND m.recorded_at <= c.published_at + make_interval(hours => $10::integer) AND m.recorded_at <= $2
        ORDER BY m.recorded_at, m.id DESC LIMIT 1
    ) AS hi
    CROSS JOIN LATERAL (
        SELECT u.at, u.views, u.interactions FROM (
            (SELECT m.recorded_at AS at, m.views::numeric AS views,
                m.likes::numeric + m.shares + m.comments + m.saves AS interactions, 0 AS pick
             FROM content_performance_metrics m
             WHERE m.workspace_id = c.workspace_id AND m.content_id = c.id
               AND m.recorded_at <= c.published_at + make_interval(hours => $9::integer)
             ORDER BY m.recorded_at DESC, m.id DESC LIMIT 1)
            UNION ALL
            SELECT c.published_at, 0, 0, 1) AS u
        ORDER BY u.at DESC, u.pick LIMIT 1
    ) AS lo
    WHERE c.workspace_id = $1
      AND c.published_at >= $2::timestamptz - make_interval(days => $3::integer) AND c.published_at < $2::timestamptz
), at_age AS (
    -- the counts at the age, linear between the two (one snapshot at the age exactly: its own)
    SELECT workspace_id, platform, connector_id, tz, published_at, 0 AS basis,
        CASE WHEN hi_at = lo_at THEN hi_views
             ELSE lo_views + (hi_views - lo_views) * extract(epoch FROM age - lo_at) / extract(epoch FROM hi_at - lo_at)
        END AS views,
        CASE WHEN hi_at = lo_at THEN hi_interactions
             ELSE lo_interactions + (hi_interactions - lo_interactions) * extract(epoch FROM age - lo_at)
                  / extract(epoch FROM hi_at - lo_at)
        END AS interactions
    FROM known
), lifetime AS (
    -- the fallback basis (1): each post's latest snapshot by the run's time, if the post was at least
    -- $11 days old at it (a mature post, whose counts have mostly settled)
    SELECT c.workspace_id, c.platform, coalesce(c.connector_id, '') AS connector_id,
        coalesce(k.timezone, 'UTC') AS tz, c.published_at, 1 AS basis, s.views, s.interactions
    FROM content c
    LEFT JOIN connectors k ON k.workspace_id = c.workspace_id AND k.id = c.connector_id
    CROSS JOIN LATERAL (
        SELECT m.recorded_at AS at, m.views::numeric AS views,
            m.likes::numeric + m.shares + m.comments + m.saves AS interactions
        FROM content_performance_metrics m
        WHERE m.workspace_id = c.workspace_id AND m.content_id = c.id AND m.recorded_at <= $2
        ORDER BY m.recorded_at DESC, m.id DESC LIMIT 1
    ) AS s
    WHERE c.workspace_id = $1
      AND c.published_at >= $2::timestamptz - make_interval(days => $3::integer) AND c.published_at < $2::timestamptz
      AND s.at >= c.published_at + make_interval(days => $11::integer)
), latest AS (
    SELECT * FROM at_age UNION ALL SELECT * FROM lifetime
), measured AS (
    -- per account and basis: a rate, or interactions where none of the basis' posts reports views
    SELECT workspace_id, platform, connector_id, basis,
        CASE WHEN max(views) > 0 THEN $7 ELSE $8 END AS metric
    FROM latest GROUP BY 1, 2, 3, 4
), posts AS (
    SELECT l.workspace_id, l.platform, l.connector_id, l.tz, l.published_at, l.basis,
        CASE WHEN l.basis = 1 THEN a.metric || $12 ELSE a.metric END AS metric,
        CASE WHEN a.metric = $7 THEN l.interactions::double precision / nullif(l.views, 0)
             ELSE l.interactions::double precision END AS value
    FROM latest l JOIN measured a USING (workspace_id, platform, connector_id, basis)
), cells_any AS (
    SELECT workspace_id, platform, connector_id, basis, tz, metric,
        extract(dow FROM published_at AT TIME ZONE tz)::smallint AS dow,
        extract(hour FROM published_at AT TIME ZONE tz)::smallint AS hour,
        count(*) AS n, avg(value) AS mean
    FROM posts WHERE value IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), chosen AS (
    -- one basis per account: at age unless it scores no cell (none of $5 posts) and the lifetime
    -- basis scores one, or it measures no post at all
    SELECT workspace_id, platform, connector_id,
        CASE WHEN count(*) FILTER (WHERE basis = 0 AND n >= $5) = 0
                  AND (count(*) FILTER (WHERE basis = 1 AND n >= $5) > 0 OR count(*) FILTER (WHERE basis = 0) = 0)
             THEN 1 ELSE 0 END AS basis
    FROM cells_any GROUP BY 1, 2, 3
), cells AS (
    SELECT c.* FROM cells_any c JOIN chosen USING (workspace_id, platform, connector_id, basis)
), account AS (
    SELECT p.workspace_id, p.platform, p.connector_id, avg(p.value) AS mean, coalesce(stddev_samp(p.value), 0) AS sd
    FROM posts p JOIN chosen USING (workspace_id, platform, connector_id, basis)
    WHERE p.value IS NOT NULL GROUP BY 1, 2, 3
), shrunk AS (
    SELECT c.*, a.sd, (c.n * c.mean + $4 * a.mean) / (c.n + $4) AS shrunk,
        c.n::double precision / (c.n + $4) AS confidence
    FROM cells c JOIN account a USING (workspace_id, platform, connector_id)
), scored AS (
    SELECT *, CASE WHEN n >= $5 THEN greatest(shrunk - $6 * sd / sqrt(n + $4), 0) END AS lower
    FROM shrunk
)
-- no least(100, ...): LEAST ignores NULLs (an unranked cell would get 100); lower / best <= 1, so <= 100
-- (divided first: 100 * lower / best can round to 100.00000000000001)
INSERT INTO optimal_posting_times (workspace_id, platform, connector_id, day_of_week, hour_of_day, timezone,
    optimization_score, avg_engagement, sample_size, confidence, window_days, computed_at, metric)
SELECT workspace_id, platform, connector_id, dow, hour, tz,
    100.0 * (lower / nullif(max(lower) OVER (PARTITION BY workspace_id, platform, connector_id), 0)),
    mean, n, confidence, $3, $2, metric
FROM scored
"""


async def optimal_posting_times(conn: asyncpg.Connection, until: datetime, window_days: int = WINDOW_DAYS,
                                prior_posts: int = PRIOR_POSTS, min_posts: int = MIN_POSTS, z: float = Z,
                                age_hours: int = AGE_HOURS, max_age_hours: int = MAX_AGE_HOURS,
                                lifetime_min_age_days: int = LIFETIME_MIN_AGE_DAYS, on_skip: OnSkip | None = None) -> int:
    """Recompute optimal_posting_times from the posts published in the `window_days` before
    `until`, each measured at `age_hours` after publication (a snapshot by `max_age_hours` needed;
    an account that scores no cell so: each post at least `lifetime_min_age_days` old at its latest
    snapshot, measured on it),
    one transaction per workspace (one whose data fails is skipped: each_workspace);
    -> cells written (ranked or not)."""
    async def one(workspace) -> int:
        await conn.execute(_DELETE, workspace)
        status = await conn.execute(_INSERT, workspace, until, window_days, prior_posts, min_posts, z,
                                    RATE, INTERACTIONS, age_hours, max_age_hours, lifetime_min_age_days,
                                    f" (lifetime, posts >= {lifetime_min_age_days} days)")
        return int(status.rsplit(" ", 1)[1])

    workspaces = [w for (w,) in await conn.fetch(_WORKSPACES, until, window_days)]
    return await each_workspace(conn, "optimal_posting_times", workspaces, one, on_skip)
