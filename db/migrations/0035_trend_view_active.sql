-- 0035: trend_analysis_view counts the trends active in the last 30 days (issue #25, seed views).
--
-- 0007 kept seed 001's filter, start_time within the last 30 days of now(). In 001 a row was one
-- detection; here trend_analysis folds every report of a trend into one row (0006, db/domain/insights.py:
-- the earliest start, the latest end, the latest impact), so a trend first reported 40 days ago and
-- reported again 3 days ago (start 40 days ago, end 3 days ago) fell out of the view although it is
-- current: the oracle's tiktok hashtags #a (impact 40), #b (none) and #long (1,000, started 40 days
-- ago, still reported 3 days ago) gave 2 trends averaging 40; now 3 trends, (40 + 1,000) / 2 = 520.
-- A trend is in the window when its latest end (its start when it has none) is within the last 30
-- days. Columns, grouping and averaging unchanged (a trend without impact is counted, not averaged).

CREATE OR REPLACE VIEW trend_analysis_view WITH (security_invoker = true) AS
SELECT
    workspace_id,
    platform,
    trend_type,
    avg(engagement_impact) AS avg_impact,
    count(*) AS trend_count
FROM trend_analysis
WHERE coalesce(end_time, start_time) >= now() - interval '30 days'
GROUP BY workspace_id, platform, trend_type;

COMMENT ON VIEW trend_analysis_view IS
    'seed 001: per workspace, platform and trend type, the trends active in the last 30 days (end_time, else '
    'start_time, within them): count and average engagement_impact (NULL impacts counted, not averaged); 0035';
