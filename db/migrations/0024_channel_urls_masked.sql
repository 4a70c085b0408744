-- 0024: members see alert channel URLs masked (issue #24 item 2).
--
-- A channel's URL may carry a credential (https://user:password@host/..., ?token=...): members
-- (viewers and editors as much as admins: they all act as learnstream_member) read the column
-- `url_masked` instead, the URL with its userinfo, every query value and its fragment replaced by
-- `***` (https://***@hooks.example/x?token=***), computed by the database (a generated column, so
-- it is never out of step). They are no longer granted SELECT on `url` (nor, as before, on
-- `secret`). Admins still set the URL (INSERT and UPDATE as before: writing a column needs no
-- SELECT on it); the workers (learnstream_service) read it whole.
--
-- The audit trail records url_masked, not url: audit_log is readable by the workspace's members.
-- (A rotation of the secret stays audited as in 0023: the trigger keeps its fourth argument.)
-- The alert_channels rows already there are masked in place.
--
-- mask_url(text) is the same function as schemas.channels.redact_url in Python (tested against
-- each other).

CREATE FUNCTION mask_url(u text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
    WITH a AS (
        SELECT regexp_replace(u, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1***@') AS v
    ), f AS (
        SELECT split_part(v, '#', 1) AS v, CASE WHEN strpos(v, '#') > 0 THEN '#***' ELSE '' END AS frag FROM a
    ), q AS (
        SELECT split_part(v, '?', 1) AS base,
               CASE WHEN strpos(v, '?') > 0 THEN substr(v, strpos(v, '?') + 1) END AS query, frag
        FROM f
    )
    SELECT base
           || CASE WHEN query IS NULL THEN '' ELSE '?' || coalesce((
                  SELECT string_agg(CASE WHEN strpos(p, '=') > 0 THEN split_part(p, '=', 1) || '=***'
                                         WHEN p = '' THEN '' ELSE '***' END, '&' ORDER BY n)
                  FROM unnest(string_to_array(query, '&')) WITH ORDINALITY AS t(p, n)), '') END
           || frag
    FROM q
$$;
GRANT EXECUTE ON FUNCTION mask_url(text) TO PUBLIC;

ALTER TABLE alert_channels ADD COLUMN url_masked text GENERATED ALWAYS AS (mask_url(url)) STORED;

REVOKE SELECT ON alert_channels FROM learnstream_member;
GRANT SELECT (workspace_id, name, kind, url_masked, secret_changed_at, timeout_s, is_active, created_by, created_at,
              updated_at) ON alert_channels TO learnstream_member;

DROP TRIGGER audit ON alert_channels;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON alert_channels
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,name', 'updated_at,secret,url', 'secret');

UPDATE audit_log SET
    old_values = CASE WHEN old_values ? 'url'
                      THEN (old_values - 'url') || jsonb_build_object('url_masked', mask_url(old_values ->> 'url'))
                      ELSE old_values END,
    new_values = CASE WHEN new_values ? 'url'
                      THEN (new_values - 'url') || jsonb_build_object('url_masked', mask_url(new_values ->> 'url'))
                      ELSE new_values END
WHERE table_name = 'alert_channels' AND (old_values ? 'url' OR new_values ? 'url');
