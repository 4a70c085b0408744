-- 0033: optimal posting times ranked on enough posts and measured without views (issue #25,
-- item 7).
--
--  * optimal_posting_times.optimization_score becomes nullable: a cell with fewer posts than the
--    job's minimum (db/analytics/posting_times.py MIN_POSTS) is stored with its sample_size,
--    avg_engagement and confidence but no score (too few posts to rank), and an account whose
--    cells all have a lower bound of 0 has no score either (nothing to rank on).
--  * optimal_posting_times.metric names what avg_engagement (and the ranking) measures:
--    'engagement_rate' = (likes + shares + comments + saves) / views of each post's latest
--    snapshot, or 'interactions_per_post' = likes + shares + comments + saves of each post's latest
--    snapshot, for an account none of whose posts in the window reports views (a platform that
--    reports no views). Existing rows were computed as rates: the default.

ALTER TABLE optimal_posting_times
    ALTER COLUMN optimization_score DROP NOT NULL,
    ADD COLUMN metric varchar(30) NOT NULL DEFAULT 'engagement_rate'
        CONSTRAINT optimal_posting_times_metric CHECK (metric IN ('engagement_rate', 'interactions_per_post'));

COMMENT ON COLUMN optimal_posting_times.optimization_score IS
    '0-100: the cell''s lower bound against the account''s best; NULL when the cell has fewer than MIN_POSTS '
    'posts or the account''s best lower bound is 0 (0033)';
COMMENT ON COLUMN optimal_posting_times.metric IS
    'what avg_engagement measures: engagement_rate, or interactions_per_post for an account whose posts report '
    'no views (0033)';
