-- 0013: real tenant isolation (issue #11; seeds 000 "RLS on all tables", 002 organizations and
-- members, 003 "users can only access workspaces they're members of, role-based permissions (owner,
-- admin, editor, viewer), service role bypass for backend operations, FORCE RLS on all tables").
--
-- Until now every tenant table filtered on the session setting learnstream.workspace_id, which any
-- client may set to any workspace, and the tables' owner was exempt. From here:
--
--  * organizations, workspaces and workspace_members (a database role mapped to a workspace with
--    one of 003's roles). A person or dashboard that reads the database directly logs in as its
--    own role (made by `learnstream access grant`), a member of the group learnstream_member;
--  * every table with a workspace_id gets FORCE ROW LEVEL SECURITY and policies that decide by the
--    mapping of current_user, never by a setting the client controls:
--      service_all   TO learnstream_service  (the workers: every workspace, read and write)
--      member_read   TO learnstream_member   (SELECT: the workspaces current_user is a member of)
--      member_write  TO learnstream_member   (INSERT/UPDATE/DELETE, only on the tables a workspace
--                                             role may edit, at its level: an editor edits alert
--                                             rules and reports, an admin also manages members);
--    the old setting-based workspace_isolation policies are dropped (a permissive policy left behind
--    would OR the setting back in);
--  * the schema's owner (the role that runs migrations and the workers) is made a member of
--    learnstream_service: FORCE makes the owner subject to the policies, service_all lets it
--    through. learnstream_maintenance is the one role with BYPASSRLS (for an operator's repairs and
--    dumps); `learnstream services up` creates it as superuser, this migration makes it NOLOGIN
--    where it is missing and gives it BYPASSRLS only if the migrating role may;
--  * the membership lookup is member_workspaces(who, at_least), SECURITY DEFINER (the policies
--    would otherwise need the members to read workspace_members, whose own policy would recurse)
--    with a pinned search_path, answering only for a role the session user is a member of: a
--    client asking for another role's workspaces gets nothing;
--  * materialized views cannot have row-level security: they stay granted to no one, and each gets
--    a security_barrier view <name>_mine that reads it as the owner and keeps the rows of
--    current_user's workspaces; the other views are security_invoker (0007), so the tables'
--    policies apply to the reader;
--  * the workspaces the data already names are registered (registration 'backfill'), so a
--    database migrated with data keeps working with LEARNSTREAM_WORKSPACE_REGISTRATION=registered.

-- ----------------------------------------------------------------------------------------------
-- Roles (cluster-wide: created once, reused by every database of the cluster)

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_service') THEN
        CREATE ROLE learnstream_service NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_member') THEN
        CREATE ROLE learnstream_member NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_maintenance') THEN
        CREATE ROLE learnstream_maintenance NOLOGIN;
    END IF;
    IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'learnstream_maintenance') THEN
        BEGIN
            ALTER ROLE learnstream_maintenance BYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'learnstream_maintenance lacks BYPASSRLS (only a superuser can give it)';
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'learnstream_service', 'MEMBER') THEN
        EXECUTE format('GRANT learnstream_service TO %I', current_user);
    END IF;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- Organizations, workspaces, members

CREATE TYPE workspace_role AS ENUM ('viewer', 'editor', 'admin', 'owner');  -- ordered: owner >= admin >= ...

CREATE TABLE organizations (
    id         uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    name       varchar(255) NOT NULL,
    slug       varchar(100) NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    created_at timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE workspaces (
    id              uuid         PRIMARY KEY,
    organization_id uuid         REFERENCES organizations (id) ON DELETE SET NULL,
    name            varchar(255) NOT NULL CHECK (length(name) > 0),
    registration    varchar(10)  NOT NULL DEFAULT 'cli' CHECK (registration IN ('cli', 'auto', 'backfill')),
    settings        jsonb        NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX idx_workspaces_organization ON workspaces (organization_id);

CREATE TABLE workspace_members (
    workspace_id uuid           NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    role_name    name           NOT NULL,   -- a database role (login), see `learnstream access`
    role         workspace_role NOT NULL,
    granted_by   name           NOT NULL DEFAULT current_user,
    granted_at   timestamptz    NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, role_name)
);
CREATE INDEX idx_workspace_members_role_name ON workspace_members (role_name);

-- the workspaces the data already names
DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT IN ('workspace_members')
          AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id'
                      AND NOT a.attisdropped AND a.atttypid = 'uuid'::regtype)
    LOOP
        EXECUTE format('INSERT INTO workspaces (id, name, registration) '
                       'SELECT DISTINCT workspace_id, workspace_id::text, ''backfill'' FROM %s '
                       'WHERE workspace_id IS NOT NULL ON CONFLICT (id) DO NOTHING', t);
    END LOOP;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- The membership lookup the policies use

CREATE FUNCTION member_workspaces(who name, at_least workspace_role) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.workspace_id FROM public.workspace_members m
    WHERE m.role_name = who AND m.role >= at_least
      AND pg_catalog.pg_has_role(session_user, who, 'MEMBER')
$$;
REVOKE ALL ON FUNCTION member_workspaces(name, workspace_role) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION member_workspaces(name, workspace_role) TO learnstream_member, learnstream_service;

-- ----------------------------------------------------------------------------------------------
-- Policies

-- enable_workspace_isolation(table[, write_level]): FORCE row-level security, the service's and
-- the members' policies, SELECT for members (and writes from write_level up). Later migrations
-- call it for each new table with a workspace_id.
DROP FUNCTION enable_workspace_isolation(regclass);
CREATE FUNCTION enable_workspace_isolation(t regclass, write_level workspace_role DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE p record;
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
        EXECUTE format('CREATE POLICY member_delete ON %s FOR DELETE TO learnstream_member USING (workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, %L)))', t, write_level);
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO learnstream_member', t);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION enable_workspace_isolation(regclass, workspace_role) FROM PUBLIC;

-- every table with a workspace_id: what a workspace role may edit, and reading for the rest
SELECT enable_workspace_isolation(c.oid::regclass,
       CASE c.relname WHEN 'performance_alerts' THEN 'editor'
                      WHEN 'custom_reports' THEN 'editor'
                      WHEN 'report_schedules' THEN 'editor'
                      WHEN 'workspace_members' THEN 'admin' END::workspace_role)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped);

-- workspaces: members read theirs, an owner renames or edits settings of its own
ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY service_all ON workspaces TO learnstream_service USING (true) WITH CHECK (true);
CREATE POLICY member_read ON workspaces FOR SELECT TO learnstream_member
    USING (id IN (SELECT public.member_workspaces(current_user, 'viewer')));
CREATE POLICY member_update ON workspaces FOR UPDATE TO learnstream_member
    USING (id IN (SELECT public.member_workspaces(current_user, 'owner')))
    WITH CHECK (id IN (SELECT public.member_workspaces(current_user, 'owner')));
GRANT SELECT, INSERT, UPDATE, DELETE ON workspaces TO learnstream_service;
GRANT SELECT ON workspaces TO learnstream_member;
GRANT UPDATE (name, settings, updated_at) ON workspaces TO learnstream_member;

-- organizations: members read the organizations of their workspaces
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY service_all ON organizations TO learnstream_service USING (true) WITH CHECK (true);
CREATE POLICY member_read ON organizations FOR SELECT TO learnstream_member
    USING (id IN (SELECT w.organization_id FROM workspaces w));  -- workspaces' own policy filters w
GRANT SELECT, INSERT, UPDATE, DELETE ON organizations TO learnstream_service;
GRANT SELECT ON organizations TO learnstream_member;

-- an admin manages members but cannot make anyone (itself included) an owner, nor change an owner
CREATE POLICY member_no_owner_grant ON workspace_members AS RESTRICTIVE FOR INSERT TO learnstream_member
    WITH CHECK (role <> 'owner' OR workspace_id IN (SELECT public.member_workspaces(current_user, 'owner')));
CREATE POLICY member_no_owner_change ON workspace_members AS RESTRICTIVE FOR UPDATE TO learnstream_member
    USING (role <> 'owner' OR workspace_id IN (SELECT public.member_workspaces(current_user, 'owner')))
    WITH CHECK (role <> 'owner' OR workspace_id IN (SELECT public.member_workspaces(current_user, 'owner')));
CREATE POLICY member_no_owner_removal ON workspace_members AS RESTRICTIVE FOR DELETE TO learnstream_member
    USING (role <> 'owner' OR workspace_id IN (SELECT public.member_workspaces(current_user, 'owner')));
-- granted_by is the granting role, whoever says otherwise
REVOKE INSERT, UPDATE ON workspace_members FROM learnstream_member;
GRANT INSERT (workspace_id, role_name, role), UPDATE (role) ON workspace_members TO learnstream_member;

-- ----------------------------------------------------------------------------------------------
-- Views and materialized views

-- the security_invoker views (0007): readable by members, filtered by the tables' policies
DO $$
DECLARE v regclass;
BEGIN
    FOR v IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
          AND coalesce(c.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on']
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO learnstream_member, learnstream_service', v);
    END LOOP;
END
$$;

-- each materialized view: a security_barrier view of the member's workspaces' rows
DO $$
DECLARE m record;
BEGIN
    FOR m IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'm'
          AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id')
    LOOP
        EXECUTE format('CREATE VIEW %I WITH (security_barrier) AS SELECT * FROM %I WHERE workspace_id IN '
                       '(SELECT public.member_workspaces(current_user, ''viewer''))', m.relname || '_mine', m.relname);
        EXECUTE format('GRANT SELECT ON %I TO learnstream_member', m.relname || '_mine');
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', m.relname);
    END LOOP;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- What else a member may reach

GRANT USAGE ON SCHEMA public TO learnstream_member, learnstream_service, learnstream_maintenance;
-- the maintenance role (BYPASSRLS) may repair and dump any table; granted here for the tables made so far,
-- by enable_workspace_isolation for the tenant tables made later
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO learnstream_maintenance;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- a role an operator made before #11 read through the old setting; it has no policy now
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_reader') THEN
        EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM learnstream_reader';
    END IF;
END
$$;
