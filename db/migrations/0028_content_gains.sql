-- 0028: one definition of "gained" (issue #25): what a post gained since it was last seen higher.
--
-- content_performance_metrics holds cumulative counters as scrapers read them. Everything that
-- speaks of engagement *gained* in a period (the window stage, the daily and weekly aggregates,
-- the engagement report source, trends) uses this one definition, the window stage's
-- (streams/windows/state.py with panes.py engagement_delta, and db/rollups.py's recompute):
--
--  * a snapshot's gain of a counter is its value minus the post's high-water mark of that counter:
--    the highest value of the snapshots before it (in (recorded_at, id) order), never negative;
--  * a post's first snapshot gains 0 (its counts before it were not seen being gained: a post
--    published 60 days ago and first scraped now gained nothing now);
--  * a counter below its mark (a reset, a bad scrape) gains 0, and the good scrape after it gains
--    only what is new: 1,300 -> 1,250 -> 1,400 gains 0 then 100, not 0 then 150;
--  * interactions = likes + shares + comments + saves, each counter's gain taken first.
--
-- A period's gain is the sum of the gains of the snapshots recorded in it: a snapshot carries what
-- was gained since the post was last seen, wherever that was. Over a post's life the gains add up
-- to its highest count minus its first. The trends job (which compares rates in 6-hour windows)
-- uses the same gains but spreads each over the time since the post's previous snapshot (0036,
-- db/analytics/trends.py), so that a post scraped every few days does not look like a rise.

-- Overflow-safe conversions (issue #25 review items 5, 6): counters are bigint up to 2^63 - 1 and
-- rates double precision up to 1.8e308, so sums, differences and ratios of stored values can leave
-- their type. Such arithmetic is done in numeric and brought back with these: the exact value when
-- the type holds it (a double: the nearest one), NULL when it does not (never an error, never a
-- wrapped or clamped number). NaN and +-Infinity give NULL.
CREATE FUNCTION bigint_or_null(x numeric) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN x >= -9223372036854775808 AND x <= 9223372036854775807 THEN x::bigint END
$$;
-- |x| under half the smallest subnormal double rounds to 0 (numeric -> double refuses an underflow)
CREATE FUNCTION float8_or_null(x numeric) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN abs(x) < 2.5e-324 THEN 0::double precision
                WHEN abs(x) <= 1.7976931348623157e308 THEN x::double precision END
$$;
COMMENT ON FUNCTION bigint_or_null(numeric) IS 'x as bigint, NULL when out of its range (or NaN); 0028';
COMMENT ON FUNCTION float8_or_null(numeric) IS
    'x as the nearest double precision, NULL when beyond +-1.8e308 (or NaN, infinite); 0028';
GRANT EXECUTE ON FUNCTION bigint_or_null(numeric) TO learnstream_member, learnstream_service;
GRANT EXECUTE ON FUNCTION float8_or_null(numeric) TO learnstream_member, learnstream_service;

CREATE VIEW content_gains WITH (security_invoker = true) AS
SELECT workspace_id, content_id, platform, connector_id, recorded_at, id,
    greatest(views - max(views) OVER w, 0) AS views_gained,
    greatest(likes - max(likes) OVER w, 0) AS likes_gained,
    greatest(shares - max(shares) OVER w, 0) AS shares_gained,
    greatest(comments - max(comments) OVER w, 0) AS comments_gained,
    greatest(saves - max(saves) OVER w, 0) AS saves_gained,
    -- numeric: four gains of up to 2^63 - 1 each can exceed bigint (likes = shares = 5e18)
    greatest(likes - max(likes) OVER w, 0)::numeric + greatest(shares - max(shares) OVER w, 0)
        + greatest(comments - max(comments) OVER w, 0) + greatest(saves - max(saves) OVER w, 0) AS interactions_gained,
    (count(*) OVER w = 0) AS first_snapshot
FROM content_performance_metrics
WINDOW w AS (PARTITION BY workspace_id, content_id ORDER BY recorded_at, id
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);

COMMENT ON VIEW content_gains IS
    'per snapshot, what its post gained over its high-water mark (first snapshot 0, decreases 0); 0028';

-- the first snapshot's gains are 0, not NULL: greatest(NULL, 0) is 0 (GREATEST ignores NULLs)

-- interactions a post gained in (t0, t1]: the gains of its snapshots recorded then (NULL when
-- that sum exceeds bigint: an impossible count is unknown, not an error for every tenant). Reads the
-- post's high-water marks at t0 (the maxima of its snapshots at or before t0, one row) and its
-- snapshots in (t0, t1], through idx_content_performance_content.
CREATE FUNCTION interactions_gained(ws uuid, post uuid, t0 timestamptz, t1 timestamptz) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH s AS (
        SELECT t0 AS recorded_at, NULL::uuid AS id, max(likes) AS likes, max(shares) AS shares,
            max(comments) AS comments, max(saves) AS saves
        FROM content_performance_metrics
        WHERE content_id = post AND workspace_id = ws AND recorded_at <= t0
        HAVING count(*) > 0
        UNION ALL
        SELECT recorded_at, id, likes, shares, comments, saves FROM content_performance_metrics
        WHERE content_id = post AND workspace_id = ws AND recorded_at > t0 AND recorded_at <= t1
    ), g AS (
        SELECT recorded_at,
            greatest(likes - max(likes) OVER w, 0)::numeric + greatest(shares - max(shares) OVER w, 0)
            + greatest(comments - max(comments) OVER w, 0) + greatest(saves - max(saves) OVER w, 0) AS gained
        FROM s WINDOW w AS (ORDER BY recorded_at, id NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    )
    SELECT bigint_or_null(coalesce(sum(gained), 0)) FROM g WHERE recorded_at > t0
$$;

GRANT SELECT ON content_gains TO learnstream_member, learnstream_service;
GRANT EXECUTE ON FUNCTION interactions_gained(uuid, uuid, timestamptz, timestamptz) TO learnstream_service;
