-- 0036: interactions_gained() (0028) is not executable by PUBLIC (issue #25, review finding 17).
--
-- CREATE FUNCTION grants EXECUTE to PUBLIC by default: any role that could connect could call it.
-- It is SECURITY INVOKER (row-level security still applies to the caller), but the project's
-- rule is that functions are executable by the roles that need them only: learnstream_service
-- keeps its grant (0028). The trends job (db/analytics/trends.py) no longer calls it: it compares
-- 6-hour windows on interactions interpolated between snapshots (see docs/jobs-and-reports.md,
-- "Detected trends"); interactions_gained() stays 0028's "gained in (t0, t1]" for SQL readers.

REVOKE EXECUTE ON FUNCTION interactions_gained(uuid, uuid, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION interactions_gained(uuid, uuid, timestamptz, timestamptz) TO learnstream_service;
