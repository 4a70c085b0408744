"""Trends detected from the streams themselves (seed 001 trend_analysis, source 'detected'):
hashtags (content.hashtags) and styles (content_style_analysis.style_tags) whose engagement
velocity in the recent window rises well above their baseline.

For a run at time T, a post's interactions at a time t, C(t), are its high-water-mark
interactions (each counter's highest value so far, likes + shares + comments + saves: the total
of migration 0028's content_gains, a decrease gains 0) interpolated linearly between its snapshot
at or before t and its first snapshot after t; before its first snapshot, the first's value (a
post's first snapshot gains 0: old posts first scraped now gained nothing now); after its last,
the last's (nothing is known yet). A post's gain in a window (t0, t1] is C(t1) - C(t0).

Why not 0028's "gained" as the aggregates and reports use it (a snapshot's whole gain at its
time): trends compare rates in 6-hour windows, and a post scraped every 3 days would put 72 h of
gains into the window holding its scrape and 0 into the others; at a steady 50 interactions/h,
ten such posts looked like a +250 % rise. Spread over the interval since the post's previous
snapshot, the scrape cadence cannot fake a rise: each window gains 300 a post. Over a post's
life the gains add up to the same total as 0028's.

A key's gain is the sum over its posts (each post once per key: #Sale and #sale on one post are
one post of #sale), rounded to a whole number of interactions; its velocity is that gain per
hour. The interactions are summed in numeric (four counters near 2^63 overflow a bigint); each
post's series is computed once per run, from its counters' maxima before the earliest window
and its snapshots from there on. Recent window: the RECENT_HOURS before T; baseline: the same hours
of the day on each of the BASELINE_DAYS days before (so a daily rhythm, posts every evening, is
no trend). A key trends when its posts gained at least MIN_GAIN interactions recently and its
recent velocity is at least RATIO times its baseline's (any velocity over a zero baseline). A
key's posts: its posts published before T with a snapshot after the earliest window start and
one at or before T.

A baseline of fewer than MIN_BASELINE_GAIN interactions (over all BASELINE_DAYS windows together)
is too small to divide by (a count of n has a relative error of about 1/sqrt(n): 10 % at 100; one
interaction made +1,049,900 %): such a trend is labelled new, trend_data 'status' = 'new', and its
engagement_impact is NULL. Otherwise 'status' = 'rising' and engagement_impact =
100 x (recent / baseline velocity - 1) %. So AVG(engagement_impact) (seed 001 key query 3,
trend_analysis_view) averages measured rises only; new trends still count as trends.

A trending key has a row per episode (migration 0048): the run's window (T - RECENT_HOURS, T] and
the key's detected rows it overlaps or touches (ending at or after its start, starting at or before
T) become one row, from the earliest start to the latest end, with the latest run's trend_data and
impact (the earliest row is kept, any other a late run bridges is merged into it); none: a new row.
So a key that stopped trending for more than a window starts a new row, and is not shown active in
the gap (#sale rising before Dec 1 12:00 and before Dec 8 12:00 was one row Dec 1 06:00 - Dec 8
12:00, active on Dec 3-6). A run for the same T gives the same rows.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

RECENT_HOURS = 6
BASELINE_DAYS = 7
RATIO = 3.0
MIN_GAIN = 1000
MIN_BASELINE_GAIN = 100

_WORKSPACES = "SELECT DISTINCT workspace_id FROM content WHERE published_at < $1"

_DETECT = """
WITH bounds AS (
    -- the windows' ends (e = 0) and starts (e = 1): T - d days (- h hours), d = 0 (recent) .. days
    SELECT d, e, $2::timestamptz - make_interval(days => d, hours => e * $3::integer) AS t
    FROM generate_series(0, $4::integer) AS d, (VALUES (0), (1)) AS b(e)
), posts AS (
    -- posts whose interactions are known in part of (T - days - h, T]: a snapshot after its start
    -- and one at or before T
    SELECT c.workspace_id, c.platform, c.id FROM content c
    WHERE c.workspace_id = $1 AND c.published_at < $2
      AND EXISTS (SELECT 1 FROM content_performance_metrics m WHERE m.workspace_id = c.workspace_id
                  AND m.content_id = c.id
                  AND m.recorded_at > $2 - make_interval(days => $4::integer, hours => $3::integer))
      AND EXISTS (SELECT 1 FROM content_performance_metrics m WHERE m.workspace_id = c.workspace_id
                  AND m.content_id = c.id AND m.recorded_at <= $2)
), snaps AS (
    -- per post: one base row (its counters' maxima at or before the earliest window start, at the
    -- time of its last snapshot then), its snapshots up to T, and its first snapshot after T
    SELECT p.id AS post, s.* FROM posts p CROSS JOIN LATERAL (
        SELECT max(m.recorded_at) AS recorded_at, NULL::uuid AS id, max(m.likes) AS likes,
            max(m.shares) AS shares, max(m.comments) AS comments, max(m.saves) AS saves
        FROM content_performance_metrics m
        WHERE m.workspace_id = $1 AND m.content_id = p.id
          AND m.recorded_at <= $2 - make_interval(days => $4::integer, hours => $3::integer)
        HAVING count(*) > 0
        UNION ALL
        SELECT m.recorded_at, m.id, m.likes, m.shares, m.comments, m.saves FROM content_performance_metrics m
        WHERE m.workspace_id = $1 AND m.content_id = p.id
          AND m.recorded_at > $2 - make_interval(days => $4::integer, hours => $3::integer) AND m.recorded_at <= $2
        UNION ALL
        (SELECT m.recorded_at, m.id, m.likes, m.shares, m.comments, m.saves FROM content_performance_metrics m
         WHERE m.workspace_id = $1 AND m.content_id = p.id AND m.recorded_at > $2
         ORDER BY m.recorded_at, m.id LIMIT 1)
    ) s
), hwm AS (
    -- the post's high-water-mark interactions after its n-th snapshot: each counter's running max,
    -- summed in numeric (four counters near 2^63 do not fit a bigint)
    SELECT post, recorded_at AS t, row_number() OVER w AS n,
        (max(likes) OVER w)::numeric + (max(shares) OVER w) + (max(comments) OVER w) + (max(saves) OVER w) AS c
    FROM snaps WINDOW w AS (PARTITION BY post ORDER BY recorded_at, id NULLS FIRST ROWS UNBOUNDED PRECEDING)
), located AS (
    -- each window bound t with the post's snapshots around it: the last at or before t (the n-th:
    -- the most recent time, and C never decreases: the max) and the first after t (the n+1-th)
    SELECT post, t, kind, d, e, max(n) OVER w AS n, max(t) FILTER (WHERE kind = 0) OVER w AS t0,
        max(c) OVER w AS c0
    FROM (SELECT post, t, 0 AS kind, NULL::integer AS d, NULL::integer AS e, n, c FROM hwm
          UNION ALL
          SELECT p.id, b.t, 1, b.d, b.e, NULL, NULL FROM posts p CROSS JOIN bounds b) x
    WINDOW w AS (PARTITION BY post ORDER BY t, kind ROWS UNBOUNDED PRECEDING)
), at_bounds AS (
    -- C(t): interpolated between them; before the first snapshot the first's value, after the
    -- last the last's
    SELECT l.post, l.d, l.e,
        CASE WHEN l.n IS NULL THEN h.c WHEN h.t IS NULL THEN l.c0
            ELSE l.c0 + (h.c - l.c0) * extract(epoch FROM l.t - l.t0) / extract(epoch FROM h.t - l.t0) END AS c
    FROM located l LEFT JOIN hwm h ON h.post = l.post AND h.n = coalesce(l.n, 0) + 1
    WHERE l.kind = 1
), gains AS (
    -- a window's gain: C(end) - C(start); recent: d = 0, baseline: d = 1 .. days
    SELECT post, sum(CASE e WHEN 0 THEN c ELSE -c END) FILTER (WHERE d = 0) AS recent,
        sum(CASE e WHEN 0 THEN c ELSE -c END) FILTER (WHERE d > 0) AS base
    FROM at_bounds GROUP BY post
), keys AS (
    -- a post counts once per key: #Sale and #sale on one post are one #sale
    SELECT DISTINCT ON (p.id, lower(t)) p.workspace_id, p.platform, g.recent, g.base,
        'hashtag' AS trend_type, lower(t) AS trend_key
    FROM posts p JOIN gains g ON g.post = p.id JOIN content c ON c.workspace_id = p.workspace_id AND c.id = p.id,
         unnest(c.hashtags) AS t
    UNION ALL
    SELECT DISTINCT ON (p.id, t) p.workspace_id, p.platform, g.recent, g.base, 'style', t
    FROM posts p JOIN gains g ON g.post = p.id
        JOIN content_style_analysis s ON s.workspace_id = p.workspace_id AND s.content_id = p.id,
         unnest(s.style_tags) AS t
), totals AS (
    -- gains rounded to whole interactions (numeric, any size)
    SELECT workspace_id, platform, trend_type, trend_key, count(*) AS posts, round(sum(recent)) AS recent_gain,
        round(sum(base)) AS baseline_gain
    FROM keys GROUP BY 1, 2, 3, 4
), velocity AS (
    SELECT *, recent_gain::double precision / $3 AS recent_rate,
        baseline_gain::double precision / ($4 * $3) AS baseline_rate
    FROM totals
), found AS (
    -- the keys trending at T, each with its recent window (T - h, T]
    SELECT workspace_id, platform, trend_type, trend_key,
        jsonb_build_object('status', CASE WHEN baseline_gain < $7 THEN 'new' ELSE 'rising' END,
                           'posts', posts, 'recent_gain', recent_gain, 'baseline_gain', baseline_gain,
                           'recent_per_hour', recent_rate, 'baseline_per_hour', baseline_rate,
                           'recent_hours', $3, 'baseline_days', $4) AS trend_data,
        CASE WHEN baseline_gain >= $7 THEN 100.0 * (recent_rate / baseline_rate - 1) END AS engagement_impact,
        $2 - make_interval(hours => $3) AS start_time
    FROM velocity
    WHERE recent_gain >= $6 AND recent_rate >= $5 * baseline_rate
), cand AS (
    -- the window (old = 0) and the key's detected episodes it overlaps or touches (old = 1): an
    -- episode that ended before the window's start is over (the key did not trend in between)
    SELECT workspace_id, platform, trend_type, trend_key, NULL::uuid AS id, start_time, $2::timestamptz AS end_time,
        trend_data, engagement_impact, $2::timestamptz AS created_at, $2::timestamptz AS last_event_at, 0 AS old
    FROM found
    UNION ALL
    SELECT a.workspace_id, a.platform, a.trend_type, a.trend_key, a.id, a.start_time, a.end_time, a.trend_data,
        a.engagement_impact, a.created_at, a.last_event_at, 1
    FROM found f JOIN trend_analysis a ON a.workspace_id = f.workspace_id AND a.platform = f.platform
        AND a.trend_type = f.trend_type AND a.trend_key = f.trend_key AND a.source = 'detected'
        AND a.end_time >= f.start_time AND a.start_time <= $2
), episode AS (
    -- one episode: the earliest of those rows is kept (none: a new row), the others merged into it;
    -- data and impact of the latest run (the window's on a tie: a re-run of T rewrites its own)
    SELECT workspace_id, platform, trend_type, trend_key,
        (array_agg(id ORDER BY start_time, id) FILTER (WHERE id IS NOT NULL))[1] AS keep,
        array_agg(id) FILTER (WHERE id IS NOT NULL) AS ids,
        min(start_time) AS start_time, max(end_time) AS end_time,
        (array_agg(trend_data ORDER BY last_event_at DESC, old))[1] AS trend_data,
        (array_agg(engagement_impact ORDER BY last_event_at DESC, old))[1] AS engagement_impact,
        min(created_at) AS created_at, max(last_event_at) AS last_event_at
    FROM cand GROUP BY workspace_id, platform, trend_type, trend_key
), merged AS (
    DELETE FROM trend_analysis a USING episode e
    WHERE a.workspace_id = e.workspace_id AND a.id = ANY (e.ids) AND a.id <> e.keep
), updated AS (
    UPDATE trend_analysis a SET start_time = e.start_time, end_time = e.end_time, trend_data = e.trend_data,
        engagement_impact = e.engagement_impact, created_at = e.created_at, last_event_at = e.last_event_at
    FROM episode e WHERE a.workspace_id = e.workspace_id AND a.id = e.keep
), inserted AS (
    INSERT INTO trend_analysis (workspace_id, platform, trend_type, trend_key, trend_data, engagement_impact,
        start_time, end_time, source, created_at, last_event_at)
    SELECT workspace_id, platform, trend_type, trend_key, trend_data, engagement_impact, start_time, end_time,
        'detected', created_at, last_event_at
    FROM episode WHERE keep IS NULL
)
SELECT count(*) FROM episode
"""


async def detect_trends(conn: asyncpg.Connection, at: datetime, recent_hours: int = RECENT_HOURS,
                        baseline_days: int = BASELINE_DAYS, ratio: float = RATIO, min_gain: int = MIN_GAIN,
                        min_baseline_gain: int = MIN_BASELINE_GAIN) -> int:
    """Detect the trends at time `at`, one transaction per workspace; -> trends written."""
    total = 0
    for (workspace,) in await conn.fetch(_WORKSPACES, at):
        async with conn.transaction():
            # the plan's estimated cost grows with the posts and crosses jit_above_cost: compiling
            # it took 1.5 s, running it 0.9 s (2,000 posts x 100 snapshots)
            await conn.execute("SET LOCAL jit = off")
            total += await conn.fetchval(_DETECT, workspace, at, recent_hours, baseline_days, ratio, min_gain,
                                         min_baseline_gain)
    return total
