-- 0005: rollup corrections (issue #8).
--
-- A closed window that receives late events (a backfill, a producer catching up) is recomputed
-- from the stored rows and written again: `revision` counts those recomputations (0: as closed
-- live; 1, 2, ...: recomputed, exact count/sum/min/max/mean and exact percentiles by
-- percentile_cont). engagement_by_time is adjusted by the difference in the same statement.
ALTER TABLE performance_rollups ADD COLUMN revision integer NOT NULL DEFAULT 0;
ALTER TABLE learning_rollups ADD COLUMN revision integer NOT NULL DEFAULT 0;
ALTER TABLE engagement_rollups ADD COLUMN revision integer NOT NULL DEFAULT 0;
