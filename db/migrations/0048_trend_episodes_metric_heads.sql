-- 0048: a detected trend is a row per episode (issue #25, second review, R4).
--
-- R4. trend_analysis had one row per (workspace, platform, type, key, source), so detect_trends
-- folded every detection of a key into one row from the earliest start to the latest end: #sale,
-- rising in the 6 h before Dec 1 12:00 and again before Dec 8 12:00, flat in between, was one row
-- Dec 1 06:00 .. Dec 8 12:00 and counted active on Dec 3-6. Now a detected key has a row per
-- episode (db/analytics/trends.py: a detection whose window overlaps or touches an episode extends
-- it; after a gap a new row starts). A reported trend keeps its one row (db/domain/insights.py),
-- now by a partial unique index. Rows written before stay as they are (the runs they merged are
-- not kept, so they cannot be split).
-- Readers that count trends count a key once, by its latest episode in their window: the report
-- source `trends` (db/reports/query.py) and trend_analysis_view, whose columns stay.

ALTER TABLE trend_analysis DROP CONSTRAINT trend_analysis_workspace_id_platform_trend_type_trend_key_s_key;
CREATE UNIQUE INDEX trend_analysis_reported_key ON trend_analysis (workspace_id, platform, trend_type, trend_key, source)
    WHERE source = 'reported';
-- a key's episodes (detect_trends looks up the ones a window touches); its prefix serves the
-- filters on platform and type as the unique key's did (0042)
CREATE INDEX idx_trend_key_episodes ON trend_analysis (workspace_id, platform, trend_type, trend_key, source, end_time);

CREATE OR REPLACE VIEW trend_analysis_view WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    trend_type,
    avg(engagement_impact) AS avg_impact,
    count(*) AS trend_count
FROM (
    SELECT DISTINCT ON (workspace_id, platform, trend_type, trend_key, source) workspace_id, platform, trend_type,
        engagement_impact
    FROM trend_analysis
    WHERE coalesce(end_time, start_time) >= now() - interval '30 days'
    ORDER BY workspace_id, platform, trend_type, trend_key, source, start_time DESC
) AS latest
GROUP BY workspace_id, platform, trend_type;

COMMENT ON VIEW trend_analysis_view IS
    'seed 001: per workspace, platform and trend type, the trends active in the last 30 days (end_time, else '
    'start_time, within them), each once by its latest episode: count and average engagement_impact (NULL '
    'impacts counted, not averaged); 0035, 0048';
