-- 0023: access management without a CREATEROLE login at run time, created_by set by the database,
-- secret rotation audited, and a rules NOTIFY channel that carries no ids (issue #24, items 1 and 5).
--
--  * access_grant / access_revoke / access_list: SECURITY DEFINER functions owned by the role that
--    runs the migrations (it has CREATEROLE), with a pinned search_path, EXECUTE revoked from PUBLIC
--    and granted to the NOLOGIN group learnstream_access_admin only (operators' logins are given
--    it; the migrating role is made a member). `learnstream access grant|revoke|list` call them, so
--    the login that runs the CLI needs neither CREATEROLE nor the service role. They create, alter
--    and drop only plain member logins: a name matching ^[a-z_][a-z0-9_]{0,62}$ that does not start
--    with learnstream, pg_ or postgres; an existing role must be a LOGIN with no SUPERUSER,
--    CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION whose only membership is learnstream_member.
--    Anything else (a superuser, the service, owner, worker or maintenance roles, an operator's
--    login) is refused, by revoke too: revoke never drops a role it could not have made. Every
--    statement quotes the name with format('%I').
--  * passwords arrive as SCRAM-SHA-256 verifiers computed by the client
--    ('SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>', base64): access_grant refuses
--    anything else, so a plaintext password never reaches the server (nor its log, nor an error).
--  * created_by of the tables members may write (performance_alerts, custom_reports,
--    alert_channels: every table with a created_by column and a member_insert policy) is set by a
--    BEFORE INSERT trigger: a member's row gets session_user whatever it claims; the service (a
--    member of learnstream_service: the workers, the operators' CLI) is trusted to name whom it
--    acts for (`alerts rules add --created-by`; NULL when it names no one). An UPDATE never changes
--    it, by anyone (the trigger keeps the old value).
--  * alert_channels.secret_changed_at is kept by the database (a BEFORE trigger: the time the secret
--    last changed, whoever changed it and however), and audit_row records a change of a secret
--    column as action 'secret_rotated' (or 'secret_removed') in audit_log.action, without the old or
--    the new value: a rotation done by a workspace admin's UPDATE of the secret alone used to leave
--    no audit row (the column is left out of the values, so old and new looked equal).
--  * the performance_alerts trigger used to pg_notify('learnstream_alert_rules', <rule id>).
--    PostgreSQL has no privileges on LISTEN/NOTIFY channels: any role that can connect may LISTEN
--    on any channel and NOTIFY any channel. So the channel carries nothing but "something may have
--    changed" (an empty payload), and the workers trust it only as a hint: the trigger (SECURITY
--    DEFINER) bumps the changed rule's workspace's row of alert_rules_version, which only the
--    service reads and nobody else writes, and a worker reloads its rules only when that marker
--    moved (and at most once a second). A forged NOTIFY costs one small query per worker.

-- ----------------------------------------------------------------------------------------------
-- The operators' group

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnstream_access_admin') THEN
        CREATE ROLE learnstream_access_admin NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'learnstream_access_admin', 'MEMBER') THEN
        EXECUTE format('GRANT learnstream_access_admin TO %I', current_user);
    END IF;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- Access management

-- why `who` may not be made, changed or dropped by access_*; NULL when it may (a missing role may)
CREATE FUNCTION access_refusal(who text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE r pg_roles;
BEGIN
    IF who IS NULL OR who !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RETURN format('%L: a role name is lower-case letters, digits and _, starting with a letter or _ (1-63)', who);
    END IF;
    IF who LIKE 'learnstream%' OR who LIKE 'pg\_%' OR who LIKE 'postgres%' THEN
        RETURN format('%L: names starting with learnstream, pg_ or postgres are reserved', who);
    END IF;
    SELECT * INTO r FROM pg_roles WHERE rolname = who;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication
       OR NOT EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid
                      AND m.roleid = 'learnstream_member'::regrole)
       OR EXISTS (SELECT FROM pg_auth_members m WHERE m.member = r.oid
                  AND m.roleid <> 'learnstream_member'::regrole) THEN
        RETURN format('role %s exists and is not a workspace member role (a login whose only membership is '
                      'learnstream_member, without superuser, createrole, createdb, bypassrls or replication); '
                      'access management does not touch it', who);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION access_refusal(text) FROM PUBLIC;

-- make `login` a member of workspace `ws` as `member_role`; creates the login (password_verifier
-- required) or sets its password (when a verifier is given). Returns whether the role was created.
CREATE FUNCTION access_grant(login text, ws uuid, member_role workspace_role, password_verifier text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    why     text    := public.access_refusal(login);
    created boolean := false;
BEGIN
    IF why IS NOT NULL THEN
        RAISE EXCEPTION '%', why USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF member_role IS NULL THEN
        RAISE EXCEPTION 'a workspace role is needed (viewer, editor, admin or owner)' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF password_verifier IS NOT NULL AND password_verifier !~
            '^SCRAM-SHA-256\$[0-9]{1,7}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$' THEN
        -- never echo it: it may be a plaintext password sent by mistake
        RAISE EXCEPTION 'the password must be a SCRAM-SHA-256 verifier computed by the client (not shown)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM public.workspaces WHERE id = ws) THEN
        RAISE EXCEPTION 'no workspace % (`learnstream workspaces add` registers one)', ws USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = login) THEN
        IF password_verifier IS NULL THEN
            RAISE EXCEPTION 'a new role needs a password' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION '
                       'PASSWORD %L IN ROLE learnstream_member', login, password_verifier);
        created := true;
    ELSIF password_verifier IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', login, password_verifier);
    END IF;
    INSERT INTO public.workspace_members AS m (workspace_id, role_name, role, granted_by)
    VALUES (ws, login, member_role, session_user)
    ON CONFLICT (workspace_id, role_name) DO UPDATE
        SET role = EXCLUDED.role, granted_at = now(), granted_by = EXCLUDED.granted_by;
    RETURN created;
END
$$;

-- remove `login`'s membership of `ws` (of every workspace when NULL); drop the login when it has no
-- membership left in this database and drop_role. Refuses a role access_grant could not have made.
CREATE FUNCTION access_revoke(login text, ws uuid DEFAULT NULL, drop_role boolean DEFAULT true,
                              OUT removed integer, OUT dropped boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE why text := public.access_refusal(login);
BEGIN
    IF why IS NOT NULL THEN
        RAISE EXCEPTION '%', why USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM public.workspace_members WHERE role_name = login AND (ws IS NULL OR workspace_id = ws);
    GET DIAGNOSTICS removed = ROW_COUNT;
    dropped := false;
    IF drop_role AND EXISTS (SELECT FROM pg_roles WHERE rolname = login)
       AND NOT EXISTS (SELECT FROM public.workspace_members WHERE role_name = login) THEN
        EXECUTE format('DROP ROLE %I', login);
        dropped := true;
    END IF;
END
$$;

-- every membership (of `ws` only when given), for `learnstream access list`
CREATE FUNCTION access_list(ws uuid DEFAULT NULL)
RETURNS TABLE (role_name name, workspace_id uuid, workspace varchar, role text, granted_by name,
               granted_at timestamptz, role_exists boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.role_name, m.workspace_id, w.name, m.role::text, m.granted_by, m.granted_at, r.rolname IS NOT NULL
    FROM public.workspace_members m JOIN public.workspaces w ON w.id = m.workspace_id
    LEFT JOIN pg_roles r ON r.rolname = m.role_name
    WHERE ws IS NULL OR m.workspace_id = ws
    ORDER BY w.name, m.role_name
$$;

REVOKE ALL ON FUNCTION access_grant(text, uuid, workspace_role, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION access_revoke(text, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION access_list(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_grant(text, uuid, workspace_role, text) TO learnstream_access_admin;
GRANT EXECUTE ON FUNCTION access_revoke(text, uuid, boolean) TO learnstream_access_admin;
GRANT EXECUTE ON FUNCTION access_list(uuid) TO learnstream_access_admin;
GRANT USAGE ON SCHEMA public TO learnstream_access_admin;
GRANT USAGE ON TYPE workspace_role TO learnstream_access_admin;

-- ----------------------------------------------------------------------------------------------
-- created_by set by the database

CREATE FUNCTION set_created_by() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT pg_has_role(session_user, 'learnstream_service', 'MEMBER') THEN
            NEW.created_by := session_user;
        END IF;
    ELSE
        NEW.created_by := OLD.created_by;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION set_created_by() FROM PUBLIC;

DO $$
DECLARE t regclass;
BEGIN
    FOR t IN
        SELECT DISTINCT c.oid::regclass FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND p.polname = 'member_insert'
          AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'created_by'
                      AND NOT a.attisdropped)
    LOOP
        EXECUTE format('CREATE TRIGGER set_created_by BEFORE INSERT OR UPDATE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION set_created_by()', t);
    END LOOP;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- Secret rotation: kept and audited by the database, never its value

CREATE FUNCTION alert_channels_secret_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.secret_changed_at := CASE WHEN NEW.secret IS NULL THEN NULL ELSE now() END;
    ELSIF NEW.secret IS DISTINCT FROM OLD.secret THEN
        NEW.secret_changed_at := now();
    ELSE
        NEW.secret_changed_at := OLD.secret_changed_at;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION alert_channels_secret_changed() FROM PUBLIC;
CREATE TRIGGER secret_changed BEFORE INSERT OR UPDATE ON alert_channels
    FOR EACH ROW EXECUTE FUNCTION alert_channels_secret_changed();

ALTER TABLE audit_log ADD COLUMN action varchar(32);  -- e.g. secret_rotated; NULL for a plain change

-- audit_row(workspace column or '', key columns 'a,b', ignored columns 'x,y'[, secret columns 's,t']):
-- as in 0015; a secret column's values are never recorded, its change is: action secret_rotated
-- (or secret_removed when it became NULL) on an UPDATE, even when nothing else changed.
CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ws_col  text   := TG_ARGV[0];
    keys    text[] := string_to_array(TG_ARGV[1], ',');
    ignored text[] := coalesce(string_to_array(nullif(TG_ARGV[2], ''), ','), '{}');
    secrets text[] := CASE WHEN TG_NARGS > 3 THEN coalesce(string_to_array(nullif(TG_ARGV[3], ''), ','), '{}')
                           ELSE '{}' END;
    old_j   jsonb;
    new_j   jsonb;
    k       text;
    key_j   jsonb  := '{}';
    act     text;
    role_s  text   := current_setting('role');
BEGIN
    IF TG_OP <> 'INSERT' THEN old_j := to_jsonb(OLD) - ignored - secrets; END IF;
    IF TG_OP <> 'DELETE' THEN new_j := to_jsonb(NEW) - ignored - secrets; END IF;
    IF TG_OP = 'UPDATE' THEN
        FOREACH k IN ARRAY secrets LOOP
            IF (to_jsonb(OLD) -> k) IS DISTINCT FROM (to_jsonb(NEW) -> k) THEN
                act := CASE WHEN to_jsonb(NEW) ->> k IS NULL THEN 'secret_removed' ELSE 'secret_rotated' END;
            END IF;
        END LOOP;
        IF old_j = new_j AND act IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    FOREACH k IN ARRAY keys LOOP
        key_j := key_j || jsonb_build_object(k, coalesce(to_jsonb(NEW), to_jsonb(OLD)) -> k);
    END LOOP;
    INSERT INTO public.audit_log (actor, acting_role, table_name, operation, row_key, workspace_id, old_values,
                                  new_values, action)
    VALUES (session_user, nullif(role_s, 'none'), TG_TABLE_NAME, TG_OP, key_j,
            CASE WHEN ws_col = '' THEN NULL ELSE (coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> ws_col)::uuid END,
            old_j, new_j, act);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_row() FROM PUBLIC;

DROP TRIGGER audit ON alert_channels;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON alert_channels
    FOR EACH ROW EXECUTE FUNCTION audit_row('workspace_id', 'workspace_id,name', 'updated_at,secret', 'secret');

-- ----------------------------------------------------------------------------------------------
-- The rules' change marker and a NOTIFY without ids

CREATE TABLE alert_rules_version (
    workspace_id uuid        PRIMARY KEY,
    version      bigint      NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now()
);
SELECT enable_workspace_isolation('alert_rules_version');
REVOKE ALL ON alert_rules_version FROM learnstream_member;  -- the workers' marker, nobody else's

CREATE OR REPLACE FUNCTION learnstream_alert_rules_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.alert_rules_version AS v (workspace_id, version)
    VALUES (coalesce(NEW.workspace_id, OLD.workspace_id), 1)
    ON CONFLICT (workspace_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    IF TG_OP = 'UPDATE' AND NEW.workspace_id IS DISTINCT FROM OLD.workspace_id THEN
        INSERT INTO public.alert_rules_version AS v (workspace_id, version) VALUES (OLD.workspace_id, 1)
        ON CONFLICT (workspace_id) DO UPDATE SET version = v.version + 1, changed_at = now();
    END IF;
    PERFORM pg_notify('learnstream_alert_rules', '');  -- a hint only: no id, and anyone can send it
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION learnstream_alert_rules_changed() FROM PUBLIC;
