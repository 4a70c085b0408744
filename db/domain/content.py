"""content, media_files, post_media_links (seeds 001/003 content and published_posts, 002
posts_core/posts_content/media_files/post_media_links): the content-items topic. An observation
newer than the stored one replaces the fields (and, when it lists media, the post's media links);
an older one can only move first_seen_at back; a redelivered one changes nothing."""

from __future__ import annotations

_R = """jsonb_to_recordset($1::jsonb) AS r(event_id uuid, workspace_id uuid, content_id uuid, platform text,
    connector_id text, external_id text, url text, title text, caption text, hashtags text[], mentions text[],
    media jsonb, author text, content_type text, status text, published_at timestamptz, observed_at timestamptz)"""

# the latest observation of each post in the batch, with the batch's earliest observation of it
_LATEST = f"""WITH f AS (
    SELECT DISTINCT ON (r.workspace_id, r.content_id) r.*,
        min(r.observed_at) OVER (PARTITION BY r.workspace_id, r.content_id) AS first_observed
    FROM {_R}
    ORDER BY r.workspace_id, r.content_id, r.observed_at DESC, r.event_id DESC
)"""

_CURRENT = """
, cur AS (
    SELECT f.* FROM f JOIN content c ON c.workspace_id = f.workspace_id AND c.id = f.content_id
                                    AND c.last_event_id = f.event_id
    WHERE jsonb_array_length(coalesce(f.media, '[]')) > 0
)"""

CONTENT_ITEM = (
    f"""
INSERT INTO media_files (workspace_id, url, media_type, duration_s, width, height, mime_type, first_seen_at)
SELECT DISTINCT ON (r.workspace_id, m.url) r.workspace_id, m.url, m.media_type, m.duration_s, m.width, m.height,
    m.mime_type, r.observed_at
FROM {_R},
     jsonb_to_recordset(r.media) AS m(url text, media_type text, duration_s double precision, width integer,
        height integer, mime_type text)
ORDER BY r.workspace_id, m.url, r.observed_at
ON CONFLICT (workspace_id, url) DO NOTHING
""",
    _LATEST + """
INSERT INTO content AS c (workspace_id, id, platform, connector_id, external_id, url, title, caption, hashtags,
    mentions, author, content_type, status, published_at, first_seen_at, last_seen_at, last_event_id)
SELECT workspace_id, content_id, platform, connector_id, external_id, url, title, caption, coalesce(hashtags, '{}'),
    coalesce(mentions, '{}'), author, content_type, status, published_at, first_observed, observed_at, event_id
FROM f
ON CONFLICT (workspace_id, id) DO UPDATE SET
    platform = excluded.platform, connector_id = coalesce(excluded.connector_id, c.connector_id),
    external_id = coalesce(excluded.external_id, c.external_id), url = coalesce(excluded.url, c.url),
    title = coalesce(excluded.title, c.title), caption = coalesce(excluded.caption, c.caption),
    hashtags = excluded.hashtags, mentions = excluded.mentions, author = coalesce(excluded.author, c.author),
    content_type = coalesce(excluded.content_type, c.content_type), status = excluded.status,
    published_at = coalesce(excluded.published_at, c.published_at),
    first_seen_at = least(c.first_seen_at, excluded.first_seen_at),
    last_seen_at = excluded.last_seen_at, last_event_id = excluded.last_event_id
WHERE excluded.last_seen_at > c.last_seen_at
""",
    _LATEST + """
UPDATE content c SET first_seen_at = f.first_observed
FROM f WHERE c.workspace_id = f.workspace_id AND c.id = f.content_id AND f.first_observed < c.first_seen_at
""",
    # the media links of the posts whose current observation is in this batch and lists media:
    # dropped, then written again from the observation (two statements: one statement may not
    # delete and insert the same row)
    _LATEST + _CURRENT + """
DELETE FROM post_media_links l USING cur WHERE l.workspace_id = cur.workspace_id AND l.content_id = cur.content_id
""",
    _LATEST + _CURRENT + """
INSERT INTO post_media_links (workspace_id, content_id, position, media_id)
SELECT cur.workspace_id, cur.content_id, (m.n - 1)::smallint, mf.id
FROM cur CROSS JOIN LATERAL jsonb_array_elements(cur.media) WITH ORDINALITY AS m(item, n)
JOIN media_files mf ON mf.workspace_id = cur.workspace_id AND mf.url = m.item ->> 'url'
""",
)
#: the statement whose row count is "rows written" (the content upsert)
COUNTED = (1,)
