"""connectors, audience_growth, audience_demographics, audience_interests, competitor_profiles,
competitor_metrics (seed 003): the account-snapshots topic. Own accounts' snapshots are their
audience's history (one row per snapshot time, with its engagement rate and posts per week when
sent); a competitor's are one row per UTC day, the day's latest snapshot. follower_change and
growth_rate compare each snapshot with the one before it in time, whatever order they arrive in.

A time zone the stream accepted (Python's zone list) that PostgreSQL does not know is stored as
NULL (the account counts as UTC; connectors.timezone has CHECK timezone_known, migration 0038)
rather than refusing the snapshot, whose counts are good; the account's earlier known zone stays."""

from __future__ import annotations

_R = """jsonb_to_recordset($1::jsonb) AS r(snapshot_id uuid, workspace_id uuid, connector_id text, platform text,
    relationship text, handle text, display_name text, timezone text, recorded_at timestamptz, followers bigint,
    following bigint, posts_count bigint, engagement_rate double precision, posts_per_week double precision,
    avg_likes double precision, avg_comments double precision, retention_rate double precision,
    demographics jsonb, interests jsonb)"""

ACCOUNT_SNAPSHOT = (
    f"""
INSERT INTO connectors AS c (workspace_id, id, platform, handle, display_name, relationship, timezone,
    first_seen_at, last_seen_at)
SELECT DISTINCT ON (r.workspace_id, r.connector_id) r.workspace_id, r.connector_id, r.platform,
    (array_agg(r.handle) FILTER (WHERE r.handle IS NOT NULL) OVER w)[1],
    (array_agg(r.display_name) FILTER (WHERE r.display_name IS NOT NULL) OVER w)[1], r.relationship,
    (array_agg(timezone_or_null(r.timezone)) FILTER (WHERE timezone_or_null(r.timezone) IS NOT NULL) OVER w)[1],
    min(r.recorded_at) OVER w, r.recorded_at
FROM {_R}
WINDOW w AS (PARTITION BY r.workspace_id, r.connector_id ORDER BY r.recorded_at DESC
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
ORDER BY r.workspace_id, r.connector_id, r.recorded_at DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    platform = CASE WHEN excluded.last_seen_at > c.last_seen_at THEN excluded.platform ELSE c.platform END,
    handle = CASE WHEN excluded.last_seen_at > c.last_seen_at THEN coalesce(excluded.handle, c.handle) ELSE c.handle END,
    display_name = CASE WHEN excluded.last_seen_at > c.last_seen_at
        THEN coalesce(excluded.display_name, c.display_name) ELSE c.display_name END,
    relationship = CASE WHEN excluded.last_seen_at > c.last_seen_at THEN excluded.relationship ELSE c.relationship END,
    timezone = CASE WHEN excluded.last_seen_at > c.last_seen_at
        THEN coalesce(excluded.timezone, c.timezone) ELSE c.timezone END,
    first_seen_at = least(c.first_seen_at, excluded.first_seen_at),
    last_seen_at = greatest(c.last_seen_at, excluded.last_seen_at)
WHERE excluded.last_seen_at > c.last_seen_at OR excluded.first_seen_at < c.first_seen_at
""",
    f"""
INSERT INTO audience_growth (workspace_id, connector_id, platform, recorded_at, follower_count, following_count,
    posts_count, retention_rate, engagement_rate, posts_per_week, snapshot_id)
SELECT r.workspace_id, r.connector_id, r.platform, r.recorded_at, r.followers, r.following, r.posts_count,
    r.retention_rate, r.engagement_rate, r.posts_per_week, r.snapshot_id
FROM {_R}
WHERE r.relationship = 'own'
ON CONFLICT (workspace_id, connector_id, recorded_at) DO NOTHING
""",
    f"""
WITH a AS (
    SELECT r.workspace_id, r.connector_id, min(r.recorded_at) AS since FROM {_R}
    WHERE r.relationship = 'own' GROUP BY r.workspace_id, r.connector_id
), b AS (
    SELECT a.workspace_id, a.connector_id,
        coalesce((SELECT max(g.recorded_at) FROM audience_growth g WHERE g.workspace_id = a.workspace_id
                  AND g.connector_id = a.connector_id AND g.recorded_at < a.since), a.since) AS start
    FROM a
), w AS (
    SELECT g.workspace_id, g.connector_id, g.recorded_at,
        g.follower_count - lag(g.follower_count) OVER win AS change, lag(g.follower_count) OVER win AS before
    FROM audience_growth g JOIN b ON g.workspace_id = b.workspace_id AND g.connector_id = b.connector_id
                                 AND g.recorded_at >= b.start
    WINDOW win AS (PARTITION BY g.workspace_id, g.connector_id ORDER BY g.recorded_at)
)
UPDATE audience_growth g SET follower_change = w.change, growth_rate = 100.0 * w.change / nullif(w.before, 0)
FROM w
WHERE g.workspace_id = w.workspace_id AND g.connector_id = w.connector_id AND g.recorded_at = w.recorded_at
  AND w.before IS NOT NULL AND g.follower_change IS DISTINCT FROM w.change
""",
    f"""
INSERT INTO audience_demographics (workspace_id, connector_id, platform, recorded_at, age_ranges,
    gender_distribution, top_countries, top_cities, total_followers, snapshot_id)
SELECT r.workspace_id, r.connector_id, r.platform, r.recorded_at,
    coalesce(r.demographics -> 'age_ranges', '{{}}'), coalesce(r.demographics -> 'gender_distribution', '{{}}'),
    coalesce(r.demographics -> 'top_countries', '{{}}'), coalesce(r.demographics -> 'top_cities', '{{}}'),
    r.followers, r.snapshot_id
FROM {_R}
WHERE r.relationship = 'own' AND r.demographics IS NOT NULL
ON CONFLICT (workspace_id, connector_id, recorded_at) DO NOTHING
""",
    f"""
INSERT INTO audience_interests (workspace_id, connector_id, platform, interest_category, recorded_at,
    affinity_score, audience_percentage, engagement_rate)
SELECT r.workspace_id, r.connector_id, r.platform, i.category, r.recorded_at, i.affinity_score,
    i.audience_percentage, i.engagement_rate
FROM {_R},
     jsonb_to_recordset(coalesce(r.interests, '[]')) AS i(category text, affinity_score double precision,
        audience_percentage double precision, engagement_rate double precision)
WHERE r.relationship = 'own'
ON CONFLICT (workspace_id, connector_id, interest_category, recorded_at) DO NOTHING
""",
    f"""
INSERT INTO competitor_profiles AS p (workspace_id, id, name, platform, handle, is_active, first_seen_at, last_seen_at)
SELECT DISTINCT ON (r.workspace_id, r.connector_id) r.workspace_id, r.connector_id,
    coalesce(r.display_name, r.handle, r.connector_id), r.platform, r.handle, true,
    min(r.recorded_at) OVER (PARTITION BY r.workspace_id, r.connector_id), r.recorded_at
FROM {_R}
WHERE r.relationship = 'competitor'
ORDER BY r.workspace_id, r.connector_id, r.recorded_at DESC
ON CONFLICT (workspace_id, id) DO UPDATE SET
    name = CASE WHEN excluded.last_seen_at > p.last_seen_at THEN excluded.name ELSE p.name END,
    handle = CASE WHEN excluded.last_seen_at > p.last_seen_at THEN coalesce(excluded.handle, p.handle) ELSE p.handle END,
    first_seen_at = least(p.first_seen_at, excluded.first_seen_at),
    last_seen_at = greatest(p.last_seen_at, excluded.last_seen_at)
WHERE excluded.last_seen_at > p.last_seen_at OR excluded.first_seen_at < p.first_seen_at
""",
    f"""
INSERT INTO competitor_metrics AS m (workspace_id, competitor_id, recorded_date, recorded_at, followers, following,
    posts_count, engagement_rate, posts_per_week, avg_likes, avg_comments, snapshot_id)
SELECT DISTINCT ON (r.workspace_id, r.connector_id, (r.recorded_at AT TIME ZONE 'UTC')::date)
    r.workspace_id, r.connector_id, (r.recorded_at AT TIME ZONE 'UTC')::date, r.recorded_at, r.followers,
    r.following, r.posts_count, r.engagement_rate, r.posts_per_week, r.avg_likes, r.avg_comments, r.snapshot_id
FROM {_R}
WHERE r.relationship = 'competitor'
ORDER BY r.workspace_id, r.connector_id, (r.recorded_at AT TIME ZONE 'UTC')::date, r.recorded_at DESC
ON CONFLICT (workspace_id, competitor_id, recorded_date) DO UPDATE SET
    recorded_at = excluded.recorded_at, followers = excluded.followers, following = excluded.following,
    posts_count = excluded.posts_count, engagement_rate = excluded.engagement_rate,
    posts_per_week = excluded.posts_per_week, avg_likes = excluded.avg_likes, avg_comments = excluded.avg_comments,
    snapshot_id = excluded.snapshot_id
WHERE excluded.recorded_at > m.recorded_at
""",
)
#: the statements whose row counts are "rows written": a new snapshot of an own account (growth),
#: a competitor's snapshot that became its day's latest
COUNTED = (1, 6)
