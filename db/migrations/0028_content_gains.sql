-- 0028: one definition of "gained" (issue #25): what a post gained between consecutive snapshots.
--
-- content_performance_metrics holds cumulative counters as scrapers read them. Everything that
-- speaks of engagement *gained* in a period (the window stage, trends, the daily and weekly
-- aggregates, the engagement report source) uses this one definition, the window stage's
-- (streams/windows/panes.py engagement_delta):
--
--  * a snapshot's gain of a counter is its value minus the post's previous snapshot's (in
--    (recorded_at, id) order);
--  * a post's first snapshot gains 0 (its counts before it were not seen being gained: a post
--    published 60 days ago and first scraped now gained nothing now);
--  * a counter that went down (a reset, a bad scrape) gains 0, never a negative amount;
--  * interactions = likes + shares + comments + saves, each clamped first.
--
-- A period's gain is the sum of the gains of the snapshots recorded in it: the snapshot carries
-- what was gained since the one before, wherever that one lies.

CREATE VIEW content_gains WITH (security_invoker = true) AS
SELECT workspace_id, content_id, platform, connector_id, recorded_at, id,
    greatest(views - lag(views) OVER w, 0) AS views_gained,
    greatest(likes - lag(likes) OVER w, 0) AS likes_gained,
    greatest(shares - lag(shares) OVER w, 0) AS shares_gained,
    greatest(comments - lag(comments) OVER w, 0) AS comments_gained,
    greatest(saves - lag(saves) OVER w, 0) AS saves_gained,
    coalesce(greatest(likes - lag(likes) OVER w, 0) + greatest(shares - lag(shares) OVER w, 0)
             + greatest(comments - lag(comments) OVER w, 0) + greatest(saves - lag(saves) OVER w, 0), 0)
        AS interactions_gained,
    (lag(recorded_at) OVER w IS NULL) AS first_snapshot
FROM content_performance_metrics
WINDOW w AS (PARTITION BY workspace_id, content_id ORDER BY recorded_at, id);

COMMENT ON VIEW content_gains IS
    'per snapshot, what its post gained since its previous snapshot (first snapshot 0, decreases 0); 0028';

-- the first snapshot's gains are 0, not NULL: greatest(NULL, 0) is 0 (GREATEST ignores NULLs)

-- interactions a post gained in (t0, t1]: the gains of its snapshots recorded then. Reads the
-- post's last snapshot at or before t0 (the one the first of them is compared with) and those in
-- (t0, t1], through idx_content_performance_content.
CREATE FUNCTION interactions_gained(ws uuid, post uuid, t0 timestamptz, t1 timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH s AS (
        (SELECT recorded_at, id, likes, shares, comments, saves FROM content_performance_metrics
          WHERE content_id = post AND workspace_id = ws AND recorded_at <= t0
          ORDER BY recorded_at DESC, id DESC LIMIT 1)
        UNION ALL
        (SELECT recorded_at, id, likes, shares, comments, saves FROM content_performance_metrics
          WHERE content_id = post AND workspace_id = ws AND recorded_at > t0 AND recorded_at <= t1)
    ), g AS (
        SELECT recorded_at,
            greatest(likes - lag(likes) OVER w, 0) + greatest(shares - lag(shares) OVER w, 0)
            + greatest(comments - lag(comments) OVER w, 0) + greatest(saves - lag(saves) OVER w, 0) AS gained
        FROM s WINDOW w AS (ORDER BY recorded_at, id)
    )
    SELECT coalesce(sum(gained), 0)::bigint FROM g WHERE recorded_at > t0
$$;

GRANT SELECT ON content_gains TO learnstream_member, learnstream_service;
GRANT EXECUTE ON FUNCTION interactions_gained(uuid, uuid, timestamptz, timestamptz) TO learnstream_service;
