-- 0012: engagement_by_time gains the date dimension (issue #10).
--
-- Until now a cell was (workspace, platform, connector, day of week, UTC hour) summed over all
-- time, so nothing could ask for the last 90 days, and retention (#11) could not drop old cells.
-- A cell is now (workspace, platform, connector, UTC day, UTC hour); day_of_week stays (the seed's
-- column, and what engagement_summary_by_day groups by) and must agree with the day.
-- engagement_by_time is by construction the sum of the stored tumbling engagement windows (the
-- writer adds each window it inserts, a recompute adds its difference), so the cells are rebuilt
-- here from engagement_rollups, exactly, in this migration's one transaction.

ALTER TABLE engagement_by_time ADD COLUMN day date;

DELETE FROM engagement_by_time;

INSERT INTO engagement_by_time (workspace_id, platform, connector_id, day, day_of_week, hour_of_day,
                                windows, updates, minutes, views_gained, interactions_gained)
SELECT workspace_id, platform, coalesce(connector_id, ''),
       (window_start AT TIME ZONE 'UTC')::date,
       extract(dow FROM window_start AT TIME ZONE 'UTC')::smallint,
       extract(hour FROM window_start AT TIME ZONE 'UTC')::smallint,
       count(*), sum(updates), sum(window_s) / 60.0, sum(views_gained),
       sum(likes_gained + comments_gained + shares_gained + saves_gained)
FROM engagement_rollups WHERE window_s = step_s
GROUP BY 1, 2, 3, 4, 5, 6;

ALTER TABLE engagement_by_time
    ALTER COLUMN day SET NOT NULL,
    DROP CONSTRAINT engagement_by_time_pkey,
    ADD PRIMARY KEY (workspace_id, platform, connector_id, day, hour_of_day),
    ADD CONSTRAINT engagement_by_time_day_of_week CHECK (day_of_week = extract(dow FROM day));

CREATE INDEX idx_engagement_by_time_day ON engagement_by_time (day);
