-- 0031: own accounts' engagement rate and posts per week (issue #25, item 4).
--
-- An account-snapshots event carries engagement_rate (interactions per follower per post, %) and
-- posts_per_week for own accounts and competitors alike; competitors' land in competitor_metrics
-- (0006), own accounts' were dropped, so the `benchmarks` job could not compare them. They now land
-- in audience_growth next to the snapshot's follower count (db/domain/accounts.py); NULL when the
-- snapshot did not carry them. Rows written before this migration have NULL.

ALTER TABLE audience_growth
    ADD COLUMN engagement_rate double precision CHECK (engagement_rate >= 0),
    ADD COLUMN posts_per_week  double precision CHECK (posts_per_week >= 0);
