-- 0022: roles by duty (issue #24). The role that runs the migrations (learnstream_owner locally, the
-- owner's Secret in compose and k8s) owns every object; the workers log in as a member of
-- learnstream_service that owns nothing (learnstream_worker locally) and has no CREATEROLE/CREATEDB.
-- Until now the workers' role was the owner, so every DDL statement of the worker paths worked by
-- ownership. From here a worker gets:
--
--  * grants where DML is enough:
--      - every table, partition and sequence of schema public: SELECT, INSERT, UPDATE, DELETE
--        (sequences USAGE, SELECT, UPDATE); the tenant tables' row-level security (0013) still
--        decides which rows. Default privileges give the same on the tables and sequences later
--        migrations and the functions below make (as the owner), so a new table needs no grant of
--        its own. Partitions need their own grants: the ingest writer COPYs straight into a
--        partition (db/writer.py), where the parent's grants do not apply;
--      - schema_migrations: SELECT only (a worker reads which migrations are applied, writes none);
--      - data_retention_policies: SELECT and UPDATE (last_cleanup) only;
--      - audit_log: SELECT only (the audit trigger, SECURITY DEFINER since 0015, writes it; a
--        worker cannot forge or erase audit rows);
--      - the views: SELECT only; the materialized views: nothing (they have no row-level security,
--        so they stay the owner's, 0013; the refresh job goes through the function below, and a
--        migration that makes one must revoke what the default privileges give);
--      - schema archive (0014): USAGE and SELECT, INSERT, DELETE on its tables (retention moves rows
--        into archive.<table>, and the DEFAULT partition's rows of an archived range out of it);
--  * narrow SECURITY DEFINER functions owned by the owner, each with a pinned search_path, its
--    arguments checked against an allow-list (the time-partitioned tables of db/partitions.py, the
--    tables of db/retention.py RETAINED, a partition name of the parent's pattern, a relation of the
--    right kind in the right schema), EXECUTE revoked from PUBLIC and granted to learnstream_service
--    only:
--      ls_create_partition(parent, partition, lo, hi) -> rows moved from DEFAULT (NULL: it exists)
--          CREATE TABLE (LIKE parent), move DEFAULT's rows of the range, ATTACH, grants
--          (db/partitions.py; the caller's SET LOCAL lock_timeout and advisory lock still apply);
--      ls_detach_partition(parent, partition, finalize)
--          plain DETACH PARTITION (CONCURRENTLY cannot run in a function: a worker detaches with
--          lock_timeout, the owner may still detach CONCURRENTLY), or DETACH ... FINALIZE of a
--          partition an interrupted CONCURRENTLY left pending (db/retention.py);
--      ls_dispose_partition(partition, strategy, archive_name)
--          a detached partition: DROP TABLE ('drop'), or renamed (name or name_r<run>) and moved to
--          schema archive ('archive');
--      ls_archive_partition(parent, name, op, lo, hi)
--          on archive.<name> (a partition moved there): 'prepare' adds archived_at, 'attach'
--          attaches it to archive.<parent> FOR VALUES FROM lo TO hi (NULL: MINVALUE/MAXVALUE),
--          'drop' drops it (its rows were copied into an existing partition of that range);
--      ls_analyze(relation)          ANALYZE of a retained table or its DEFAULT partition;
--      ls_refresh_materialized_view(name)  REFRESH MATERIALIZED VIEW CONCURRENTLY (db/jobs.py).
--
-- What the worker can no longer do: create or drop any other object, ALTER or DROP a table, TRUNCATE,
-- CREATE ROLE or DATABASE, grant itself a role, COPY ... FROM PROGRAM (pg_execute_server_program is
-- no one's here). The owner keeps everything (it runs this file).

-- ----------------------------------------------------------------------------------------------
-- Grants

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO learnstream_service;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO learnstream_service;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM learnstream_service;
REVOKE INSERT, UPDATE, DELETE ON data_retention_policies FROM learnstream_service;
GRANT UPDATE (last_cleanup) ON data_retention_policies TO learnstream_service;
REVOKE INSERT, UPDATE, DELETE ON audit_log FROM learnstream_service;
DO $$
DECLARE m record;
BEGIN
    FOR m IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('m', 'v')
    LOOP
        IF m.relkind = 'm' THEN  -- no row-level security on a materialized view: nobody's but the owner's (0013)
            EXECUTE format('REVOKE ALL ON %s FROM learnstream_service', m.rel);
        ELSE
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM learnstream_service', m.rel);
        END IF;
    END LOOP;
END
$$;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO learnstream_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO learnstream_service;

GRANT USAGE ON SCHEMA archive TO learnstream_service;
GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA archive TO learnstream_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA archive GRANT SELECT, INSERT, DELETE ON TABLES TO learnstream_service;

-- ----------------------------------------------------------------------------------------------
-- The allow-lists

-- the time-partitioned tables (db/partitions.py PARTITIONED); their archive twins are archive.<name>
CREATE FUNCTION ls_partitioned_table(parent text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT parent IN ('learning_events', 'system_performance_metrics', 'content_performance_metrics',
                      'learning_rollups', 'performance_rollups', 'engagement_rollups')
$$;

-- `name` is a period partition's name of one of those tables (<parent>_yYYYYmMM[dDD]), optionally
-- with a retention run's suffix (_r<run id>) when `with_run` is true
CREATE FUNCTION ls_partition_name(name text, with_run boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE parent text;
BEGIN
    parent := substring(name FROM '^([a-z_]+)_y[0-9]{4}m[0-9]{2}(?:d[0-9]{2})?' || CASE WHEN with_run THEN '(?:_r[0-9]+)?' ELSE '' END || '$');
    IF parent IS NULL OR NOT public.ls_partitioned_table(parent) THEN
        RAISE EXCEPTION 'not a partition name of a time-partitioned table: %', name USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN parent;
END
$$;

CREATE FUNCTION ls_require_partitioned(parent text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF parent IS NULL OR NOT public.ls_partitioned_table(parent) THEN
        RAISE EXCEPTION 'not a time-partitioned table: %', parent USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- Partition DDL

CREATE FUNCTION ls_create_partition(parent text, part text, lo timestamptz, hi timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col text;
    moved bigint;
BEGIN
    PERFORM public.ls_require_partitioned(parent);
    IF public.ls_partition_name(part) <> parent OR lo IS NULL OR hi IS NULL OR hi <= lo THEN
        RAISE EXCEPTION 'bad partition % of % (% to %)', part, parent, lo, hi USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT a.attname INTO STRICT col FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = format('public.%I', parent)::regclass;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM public.%I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                   'INSERT INTO public.%I SELECT * FROM moved', parent || '_default', col, col, part)
        USING lo, hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, lo, hi);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO learnstream_service', part);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO learnstream_maintenance', part);
    RETURN moved;
END
$$;

CREATE FUNCTION ls_detach_partition(parent text, part text, finalize boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM public.ls_require_partitioned(parent);
    IF public.ls_partition_name(part) <> parent OR NOT EXISTS (
            SELECT FROM pg_inherits i
            WHERE i.inhparent = format('public.%I', parent)::regclass
              AND i.inhrelid = format('public.%I', part)::regclass) THEN
        RAISE EXCEPTION '% is not a partition of %', part, parent USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF finalize THEN
        EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I FINALIZE', parent, part);
    ELSE
        EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I', parent, part);
    END IF;
END
$$;

CREATE FUNCTION ls_dispose_partition(part text, strategy text, archive_name text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE parent text;
BEGIN
    parent := public.ls_partition_name(part);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('public.%I', part))
                   AND c.relkind = 'r' AND NOT c.relispartition) THEN
        RAISE EXCEPTION '% is not a detached partition', part USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF strategy = 'drop' THEN
        EXECUTE format('DROP TABLE public.%I', part);
    ELSIF strategy = 'archive' THEN
        archive_name := coalesce(archive_name, part);
        IF archive_name !~ ('^' || part || '(_r[0-9]+)?$') OR public.ls_partition_name(archive_name, true) <> parent THEN
            RAISE EXCEPTION 'bad archive name % for %', archive_name, part USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF archive_name <> part THEN
            EXECUTE format('ALTER TABLE public.%I RENAME TO %I', part, archive_name);
        END IF;
        EXECUTE format('ALTER TABLE public.%I SET SCHEMA archive', archive_name);
    ELSE
        RAISE EXCEPTION 'unknown strategy %', strategy USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

CREATE FUNCTION ls_archive_partition(parent text, name text, op text, lo timestamptz DEFAULT NULL,
                                     hi timestamptz DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM public.ls_require_partitioned(parent);
    IF public.ls_partition_name(name, true) <> parent OR NOT EXISTS (
            SELECT FROM pg_class c WHERE c.oid = to_regclass(format('archive.%I', name))
            AND c.relkind = 'r' AND NOT c.relispartition) THEN
        RAISE EXCEPTION 'archive.% is not a detached partition of %', name, parent USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF op = 'prepare' THEN
        EXECUTE format('ALTER TABLE archive.%I ADD COLUMN IF NOT EXISTS archived_at timestamptz NOT NULL DEFAULT now()', name);
    ELSIF op = 'attach' THEN
        EXECUTE format('ALTER TABLE archive.%I ATTACH PARTITION archive.%I FOR VALUES FROM (%s) TO (%s)', parent, name,
                       CASE WHEN lo IS NULL THEN 'MINVALUE' ELSE quote_literal(lo) END,
                       CASE WHEN hi IS NULL THEN 'MAXVALUE' ELSE quote_literal(hi) END);
    ELSIF op = 'drop' THEN
        EXECUTE format('DROP TABLE archive.%I', name);
    ELSE
        RAISE EXCEPTION 'unknown operation %', op USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- ----------------------------------------------------------------------------------------------
-- ANALYZE after retention, REFRESH of the materialized views

CREATE FUNCTION ls_analyze(relation text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (public.ls_partitioned_table(relation)
            OR (relation LIKE '%\_default' AND public.ls_partitioned_table(left(relation, -length('_default'))))
            OR relation IN ('alert_notifications', 'report_executions', 'engagement_by_time')) THEN
        RAISE EXCEPTION 'not a retained table: %', relation USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('ANALYZE public.%I', relation);
END
$$;

CREATE FUNCTION ls_refresh_materialized_view(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'm'
                   AND c.relname = name) THEN
        RAISE EXCEPTION 'not a materialized view: %', name USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY public.%I', name);
END
$$;

DO $$
DECLARE f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['ls_create_partition(text, text, timestamptz, timestamptz)',
                             'ls_detach_partition(text, text, boolean)',
                             'ls_dispose_partition(text, text, text)',
                             'ls_archive_partition(text, text, text, timestamptz, timestamptz)',
                             'ls_analyze(text)',
                             'ls_refresh_materialized_view(text)']
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO learnstream_service', f);
    END LOOP;
END
$$;
