#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as the
# superuser `postgres` (its password: the postgres_password secret). Makes the roles by duty
# (docs/tenancy-and-security.md, "Roles"), each with its password from its own secret:
#   learnstream_owner   owns the database learnstream and everything in it; runs `learnstream migrate`
#                       (compose: service migrate) and the operators' commands; CREATEROLE for
#                       `learnstream access`. Never a superuser, never a worker's login.
#   learnstream_worker  the workers' login: a member of learnstream_service (the row-level security
#                       policies' service role), owns nothing, NOCREATEROLE NOCREATEDB.
# psql's :'var' quotes the passwords and sends them in plain text to the image's init-time server
# (Unix socket only, no statement logging unless configured), which stores only their SCRAM
# verifiers (password_encryption); the plain text is in this script's environment and psql's
# arguments (-v) while it runs.
set -eu
owner_password=$(cat /run/secrets/learnstream_owner_password)
worker_password=$(cat /run/secrets/learnstream_worker_password)
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$owner_password" -v worker_password="$worker_password" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE learnstream_service NOLOGIN;
CREATE ROLE learnstream_maintenance NOLOGIN BYPASSRLS;
CREATE ROLE learnstream_owner LOGIN CREATEROLE NOCREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD :'owner_password';
CREATE ROLE learnstream_worker LOGIN NOCREATEROLE NOCREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD :'worker_password';
GRANT learnstream_service TO learnstream_worker;
GRANT learnstream_service TO learnstream_owner;
CREATE DATABASE learnstream OWNER learnstream_owner;
SQL
