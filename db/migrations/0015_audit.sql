-- 0015: the audit trail of configuration changes (issue #11; seed 000 "audit logging of system
-- changes", "keep audit logs"; 004 "add audit logging").
--
-- audit_log has one row per changed row of the configuration tables: alert rules, reports and their
-- schedules, workspaces, organizations, memberships, retention policies. Who: the session's login
-- role (session_user: the person or service that authenticated) and the role it acted as after a
-- SET ROLE, if any. Which row: its key columns. What: the old and the new row as jsonb (without
-- the columns a job rewrites on every run, e.g. a schedule's next_run_at: an UPDATE that changes
-- only those is not a change of configuration and writes nothing).
--
-- The trigger function is SECURITY DEFINER (a member who may edit an alert rule must not be able to
-- write audit rows of its own making: nobody but the owner is granted INSERT on audit_log), with a
-- pinned search_path and EXECUTE granted to no one (a trigger function runs for its trigger without
-- it). Members read the audit rows of their workspaces under the same row-level security as the
-- rest; rows of tables that belong to no workspace (retention policies, organizations) have no
-- workspace_id and are the service's and the maintenance role's to read.

CREATE TABLE audit_log (
    id            bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz  NOT NULL DEFAULT clock_timestamp(),
    actor         name         NOT NULL,               -- session_user
    acting_role   name,                                -- the role after SET ROLE, if one was set
    table_name    name         NOT NULL,
    operation     varchar(6)   NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    row_key       jsonb        NOT NULL,
    workspace_id  uuid,
    old_values    jsonb,
    new_values    jsonb,
    txid          bigint       NOT NULL DEFAULT txid_current()
);
CREATE INDEX idx_audit_log_workspace_at ON audit_log (workspace_id, at);
CREATE INDEX idx_audit_log_at ON audit_log (at);

-- audit_row(workspace column or '', key columns 'a,b', ignored columns 'x,y')
CREATE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ws_col  text   := TG_ARGV[0];
    keys    text[] := string_to_array(TG_ARGV[1], ',');
    ignored text[] := coalesce(string_to_array(nullif(TG_ARGV[2], ''), ','), '{}');
    old_j   jsonb;
    new_j   jsonb;
    row_j   jsonb;
    k       text;
    key_j   jsonb  := '{}';
    role_s  text   := current_setting('role');
BEGIN
    IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD) - ignored; END IF;
    IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW) - ignored; END IF;
    IF TG_OP = 'UPDATE' AND old_j = new_j THEN
        RETURN NULL;
    END IF;
    row_j := coalesce(new_j, old_j);
    FOREACH k IN ARRAY keys LOOP
        key_j := key_j || jsonb_build_object(k, coalesce(to_jsonb(NEW), to_jsonb(OLD)) -> k);
    END LOOP;
    INSERT INTO public.audit_log (actor, acting_role, table_name, operation, row_key, workspace_id, old_values, new_values)
    VALUES (session_user, nullif(role_s, 'none'), TG_TABLE_NAME, TG_OP, key_j,
            CASE WHEN ws_col = '' THEN NULL ELSE (coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> ws_col)::uuid END,
            old_j, new_j);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_row() FROM PUBLIC;

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON performance_alerts
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'id', 'updated_at');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON custom_reports
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,id', 'updated_at');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON report_schedules
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,id', 'next_run_at,last_run_at');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,role_name', '');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workspaces
    FOR EACH ROW EXECUTE FUNCTION audit_row('id', 'id', 'updated_at');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION audit_row('', 'id', '');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON data_retention_policies
    FOR EACH ROW EXECUTE FUNCTION audit_row('', 'id', 'last_cleanup');

SELECT enable_workspace_isolation('audit_log');
