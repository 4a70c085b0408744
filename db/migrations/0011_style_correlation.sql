-- 0011: content_style_analysis.engagement_correlation computed by the style_correlation job (#10).
-- correlation_computed_at is set on the rows the job computed; a value an analyser sent (the column
-- set, this one null) is kept.
ALTER TABLE content_style_analysis ADD COLUMN correlation_computed_at timestamptz;
