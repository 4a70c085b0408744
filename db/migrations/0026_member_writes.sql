-- 0026: members cannot take table locks that stop the service (issue #24).
--
-- PostgreSQL lets a role LOCK a table in any mode when it holds table-level UPDATE, DELETE or
-- TRUNCATE on it (INSERT allows up to ROW EXCLUSIVE, SELECT only ACCESS SHARE), and row-level
-- security does not apply to LOCK. Since 0013 every workspace member login (a viewer too: the
-- grants are the group learnstream_member's, the policies decide the rows) could
-- `LOCK TABLE performance_alerts IN ACCESS EXCLUSIVE MODE` (alert_channels, workspace_members,
-- custom_reports, report_schedules alike) and keep the transaction open: the workers' rule reloads,
-- the delivery's channel directory, the reports and every member's row-level security check (it
-- reads workspace_members) then waited, for every workspace.
--
--  * table-level UPDATE, DELETE and TRUNCATE are revoked from learnstream_member on every relation
--    that has them (found in the catalog, not listed by hand). Where it had table-level UPDATE it gets
--    column-level UPDATE on every column the table has (but generated ones): an UPDATE statement does
--    what it did before, under the same policies (column privileges do not permit LOCK: PostgreSQL's
--    lock check looks at table-level privileges only). The column grants already made
--    (workspaces (name, settings, updated_at), workspace_members (role)) stay.
--  * members delete through SECURITY DEFINER functions that apply the rules the member_delete and
--    member_no_owner_removal policies applied (those policies stay, inert without DELETE):
--      delete_alert_rule(rule_id)                   editor   performance_alerts
--      delete_report(report_id)                     editor   custom_reports (its schedules and
--                                                            executions go with it, as before)
--      delete_report_schedule(schedule_id)          editor   report_schedules
--      delete_alert_channel(workspace, channel)     admin    alert_channels
--      remove_member(workspace, member)             admin    workspace_members; an owner's row only
--                                                            by an owner
--    Each returns the number of rows it deleted: 0 when the row does not exist or is not the
--    caller's to delete (it does not say which). Who asks: the optional last argument acting_as,
--    which defaults to current_user evaluated by the caller (the role after SET ROLE, the role the
--    policies judge), checked by member_workspaces like every policy (only a role the session's
--    login is a member of counts). Pinned search_path, schema-qualified names, EXECUTE granted to
--    learnstream_member only. The audit trail is unchanged: audit_row records actor = session_user
--    (the member's login) and acting_role (its SET ROLE) inside the function as outside.
--  * enable_workspace_isolation(t, write_level) grants members INSERT and column-level UPDATE from
--    now on, no DELETE: a later table members may delete from needs its own function.
--
-- What a member still takes: ACCESS SHARE where it reads (like any reader), ROW SHARE/ROW EXCLUSIVE
-- where it may insert. Neither conflicts with the workers' reads and writes; they conflict with DDL
-- (retention's DETACH PARTITION waits with a lock_timeout and retries).

-- ----------------------------------------------------------------------------------------------
-- Table-level UPDATE, DELETE, TRUNCATE: revoked; UPDATE kept per column

DO $$
DECLARE
    r    record;
    cols text;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel,
               bool_or(a.privilege_type = 'UPDATE') AS had_update,
               string_agg(DISTINCT a.privilege_type, ', ') AS privs
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
        WHERE a.grantee = 'learnstream_member'::regrole
          AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        GROUP BY c.oid
    LOOP
        EXECUTE format('REVOKE %s ON %s FROM learnstream_member', r.privs, r.rel);
        IF r.had_update THEN
            SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
            FROM pg_attribute
            WHERE attrelid = r.rel AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
            EXECUTE format('GRANT UPDATE (%s) ON %s TO learnstream_member', cols, r.rel);
        END IF;
    END LOOP;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- Later tables: INSERT and column UPDATE, never table-level UPDATE or DELETE

CREATE OR REPLACE FUNCTION enable_workspace_isolation(t regclass, write_level workspace_role DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p    record;
    cols text;
BEGIN
    FOR p IN SELECT polname FROM pg_policy WHERE polrelid = t LOOP
        EXECUTE format('DROP POLICY %I ON %s', p.polname, t);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY service_all ON %s TO learnstream_service USING (true) WITH CHECK (true)', t);
    EXECUTE format('CREATE POLICY member_read ON %s FOR SELECT TO learnstream_member USING (workspace_id IN '
                   '(SELECT public.member_workspaces(current_user, ''viewer'')))', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO learnstream_service', t);
    EXECUTE format('GRANT SELECT ON %s TO learnstream_member', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO learnstream_maintenance', t);
    IF write_level IS NOT NULL THEN
        EXECUTE format('CREATE POLICY member_insert ON %s FOR INSERT TO learnstream_member WITH CHECK (workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, %L)))', t, write_level);
        EXECUTE format('CREATE POLICY member_update ON %s FOR UPDATE TO learnstream_member USING (workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, %L))) WITH CHECK (workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, %L)))', t, write_level, write_level);
        -- table-level UPDATE or DELETE would let a member LOCK the table in any mode (0026)
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
        FROM pg_attribute WHERE attrelid = t AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        EXECUTE format('GRANT INSERT, UPDATE (%s) ON %s TO learnstream_member', cols, t);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION enable_workspace_isolation(regclass, workspace_role) FROM PUBLIC;

-- ----------------------------------------------------------------------------------------------
-- Deleting, for members

CREATE FUNCTION delete_alert_rule(rule_id uuid, acting_as name DEFAULT current_user) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM public.performance_alerts
        WHERE id = rule_id AND workspace_id IN (SELECT public.member_workspaces(acting_as, 'editor'))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

CREATE FUNCTION delete_report(report_id uuid, acting_as name DEFAULT current_user) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM public.custom_reports
        WHERE id = report_id AND workspace_id IN (SELECT public.member_workspaces(acting_as, 'editor'))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

CREATE FUNCTION delete_report_schedule(schedule_id uuid, acting_as name DEFAULT current_user) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM public.report_schedules
        WHERE id = schedule_id AND workspace_id IN (SELECT public.member_workspaces(acting_as, 'editor'))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

CREATE FUNCTION delete_alert_channel(workspace uuid, channel text, acting_as name DEFAULT current_user)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM public.alert_channels
        WHERE workspace_id = workspace AND name = channel
          AND workspace_id IN (SELECT public.member_workspaces(acting_as, 'admin'))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

-- an admin removes members of its workspace (itself too); an owner's membership only an owner removes
CREATE FUNCTION remove_member(workspace uuid, member name, acting_as name DEFAULT current_user) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM public.workspace_members
        WHERE workspace_id = workspace AND role_name = member
          AND workspace_id IN (SELECT public.member_workspaces(acting_as, 'admin'))
          AND (role <> 'owner' OR workspace_id IN (SELECT public.member_workspaces(acting_as, 'owner')))
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;

DO $$
DECLARE f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['delete_alert_rule(uuid, name)', 'delete_report(uuid, name)',
                             'delete_report_schedule(uuid, name)', 'delete_alert_channel(uuid, text, name)',
                             'remove_member(uuid, name, name)']::regprocedure[] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO learnstream_member', f);
    END LOOP;
END
$$;
