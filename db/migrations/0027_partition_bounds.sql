-- 0027: the owner's partition functions (0022) trust their bounds to the name and the clock (issue #24 review).
--
--  * ls_create_partition took any lo < hi for a well-formed name: learning_events_y2027m03 could be
--    attached FOR VALUES FROM ('2027-03-01') TO ('infinity') and every later month's partition then
--    "would overlap" for good. Now the bounds are those of the name and the table's period
--    (db/partitions.py period_of: <table>_yYYYYmMM for a monthly table, _yYYYYmMMdDD for a daily one,
--    [start, start + 1 period) in UTC); any other name or bounds is refused.
--  * bounds were rendered (%L, quote_literal) in the session's TimeZone and DateStyle: a session with
--    TimeZone 'Asia/Kolkata' and DateStyle 'SQL, MDY' printed "IST", read back as Israel time, and
--    stored UTC bounds shifted by 3:30. Every partition function now runs with TimeZone UTC and
--    DateStyle ISO (function SET clauses).
--  * ls_detach_partition and ls_dispose_partition took any partition: a worker could detach and drop
--    the current month of every tenant. Now they take only a partition retention would take
--    (db/retention.py): one whose upper bound is at or before now() - the table's retention_period in
--    data_retention_policies, computed in UTC; a table without a policy has no retention, and nothing
--    of it is detached or disposed of through them. ls_detach_partition checks the attached bound
--    and the name's; ls_dispose_partition (a detached table has no bound) the name's.

-- the period of a time-partitioned table's partitions (db/tables.py, db/rollups.py TableSpec.period)
CREATE FUNCTION ls_partition_period(parent text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN parent IN ('learning_events', 'content_performance_metrics') THEN 'month'
                WHEN parent IN ('system_performance_metrics', 'learning_rollups', 'performance_rollups',
                                'engagement_rollups') THEN 'day' END
$$;

-- a partition's parent and bounds [lo, hi) from its name (no _r suffix), as db/partitions.py makes them
CREATE FUNCTION ls_partition_bounds(part text, OUT parent text, OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO' AS $$
DECLARE
    m text[];
    period text;
BEGIN
    parent := public.ls_partition_name(part);
    period := public.ls_partition_period(parent);
    m := regexp_match(part, '_y([0-9]{4})m([0-9]{2})(?:d([0-9]{2}))?$');
    IF period IS NULL OR (period = 'day') <> (m[3] IS NOT NULL) THEN
        RAISE EXCEPTION 'not a % partition name of %: %', period, parent, part USING ERRCODE = 'insufficient_privilege';
    END IF;
    BEGIN
        lo := make_timestamptz(m[1]::int, m[2]::int, coalesce(m[3], '01')::int, 0, 0, 0, 'UTC');
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'not a date in partition name %', part USING ERRCODE = 'insufficient_privilege';
    END;
    IF to_char(lo AT TIME ZONE 'UTC', CASE WHEN period = 'day' THEN '"y"YYYY"m"MM"d"DD' ELSE '"y"YYYY"m"MM' END)
            <> substring(part FROM '_(y[0-9md]+)$') THEN
        RAISE EXCEPTION 'not a date in partition name %', part USING ERRCODE = 'insufficient_privilege';
    END IF;
    hi := ((lo AT TIME ZONE 'UTC') + CASE WHEN period = 'day' THEN interval '1 day' ELSE interval '1 month' END)
          AT TIME ZONE 'UTC';
END
$$;

-- refuses unless retention would take a partition of `parent` ending at `ends` now (db/retention.py:
-- cutoff = now() - retention_period computed in UTC, expired when upper <= cutoff; no policy: never)
CREATE FUNCTION ls_require_expired(parent text, part text, ends timestamptz) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET DateStyle = 'ISO' AS $$
DECLARE cutoff timestamptz;
BEGIN
    SELECT (now() AT TIME ZONE 'UTC' - p.retention_period) AT TIME ZONE 'UTC' INTO cutoff
    FROM public.data_retention_policies p WHERE p.table_name = parent;
    IF cutoff IS NULL OR ends IS NULL OR ends > cutoff THEN
        RAISE EXCEPTION '% is not past % retention (ends %, cutoff %)', part, parent, ends, coalesce(cutoff::text, 'none')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

DO $$
DECLARE f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['ls_partition_period(text)', 'ls_partition_bounds(text)',
                             'ls_require_expired(text, text, timestamptz)']
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION ls_create_partition(parent text, part text, lo timestamptz, hi timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col text;
    moved bigint;
    b record;
BEGIN
    PERFORM public.ls_require_partitioned(parent);
    b := public.ls_partition_bounds(part);
    IF b.parent <> parent OR lo IS DISTINCT FROM b.lo OR hi IS DISTINCT FROM b.hi THEN
        RAISE EXCEPTION 'bad partition % of % (% to %; its period is % to %)', part, parent, lo, hi, b.lo, b.hi
            USING ERRCODE = 'insufficient_privilege';
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
        USING b.lo, b.hi;
    GET DIAGNOSTICS moved = ROW_COUNT;
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part, b.lo, b.hi);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO learnstream_service', part);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO learnstream_maintenance', part);
    RETURN moved;
END
$$;

CREATE OR REPLACE FUNCTION ls_detach_partition(parent text, part text, finalize boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bound text;
    ends timestamptz;
BEGIN
    PERFORM public.ls_require_partitioned(parent);
    IF public.ls_partition_name(part) <> parent OR NOT EXISTS (
            SELECT FROM pg_inherits i
            WHERE i.inhparent = format('public.%I', parent)::regclass
              AND i.inhrelid = format('public.%I', part)::regclass) THEN
        RAISE EXCEPTION '% is not a partition of %', part, parent USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- the attached upper bound (MAXVALUE: none) and the name's, whichever is later
    bound := pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = format('public.%I', part)::regclass;
    ends := substring(bound FROM '^FOR VALUES FROM \(.*\) TO \(''([^'']*)''\)$')::timestamptz;
    PERFORM public.ls_require_expired(parent, part, CASE WHEN ends IS NULL THEN NULL
                                                         ELSE greatest(ends, (public.ls_partition_bounds(part)).hi) END);
    IF finalize THEN
        EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I FINALIZE', parent, part);
    ELSE
        EXECUTE format('ALTER TABLE public.%I DETACH PARTITION public.%I', parent, part);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ls_dispose_partition(part text, strategy text, archive_name text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE parent text;
BEGIN
    parent := public.ls_partition_name(part);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('public.%I', part))
                   AND c.relkind = 'r' AND NOT c.relispartition) THEN
        RAISE EXCEPTION '% is not a detached partition', part USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM public.ls_require_expired(parent, part, (public.ls_partition_bounds(part)).hi);
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

-- bounds rendered and read in UTC, ISO, whatever the caller's session says
ALTER FUNCTION ls_create_partition(text, text, timestamptz, timestamptz) SET TimeZone = 'UTC';
ALTER FUNCTION ls_create_partition(text, text, timestamptz, timestamptz) SET DateStyle = 'ISO';
ALTER FUNCTION ls_detach_partition(text, text, boolean) SET TimeZone = 'UTC';
ALTER FUNCTION ls_detach_partition(text, text, boolean) SET DateStyle = 'ISO';
ALTER FUNCTION ls_dispose_partition(text, text, text) SET TimeZone = 'UTC';
ALTER FUNCTION ls_dispose_partition(text, text, text) SET DateStyle = 'ISO';
ALTER FUNCTION ls_archive_partition(text, text, text, timestamptz, timestamptz) SET TimeZone = 'UTC';
ALTER FUNCTION ls_archive_partition(text, text, text, timestamptz, timestamptz) SET DateStyle = 'ISO';
