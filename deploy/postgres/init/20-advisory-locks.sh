#!/bin/sh
# Run once by the postgres image after 10-learnstream-roles.sh, as the superuser. PostgreSQL grants
# the advisory lock functions to PUBLIC: a workspace member could hold the keys the workers
# coordinate with (the partition manager's, the job runner's, the parked-events expiry's) and
# stall or skip that work for every workspace. Only the service and the owner may take them, in
# template1 too (databases made later inherit it). The same statement as `learnstream services up`
# runs on the local cluster (streams/devkit/services/postgres.py, RESTRICT_ADVISORY_LOCKS).
set -eu
for db in template1 postgres learnstream; do
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$db" <<'SQL'
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace
               AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO learnstream_service, learnstream_owner', f);
    END LOOP;
END
$$;
SQL
done
