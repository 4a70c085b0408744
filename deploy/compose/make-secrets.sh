#!/bin/sh
# Makes the secrets docker-compose.yml reads (once; an existing file is kept), in
# deploy/compose/secrets/ (git-ignored), a directory only its owner may enter (0700), each file
# private from its creation (umask 077):
#   postgres_password, learnstream_owner_password, learnstream_worker_password  (docker secrets:
#       the postgres image and deploy/postgres/init/10-learnstream-roles.sh read them)
#   grafana_admin_password  (docker secret: Grafana's admin login)
#   grafana_db_password  (docker secret: the analytics data source's member login grafana_analytics;
#       `learnstream access grant grafana_analytics --workspace <UUID> --password-stdin < …` sets it)
#   owner.env   LEARNSTREAM_ADMIN_DATABASE_URL (the migrate service)
#   worker.env  LEARNSTREAM_DATABASE_URL (the workers)
#   kafka.env   KAFKA_{ADMIN,CONTROLLER,WORKER,PRODUCER,ALERTS}_PASSWORD: the Kafka principals'
#       passwords, which docker-compose.yml interpolates (`docker compose --env-file
#       deploy/compose/secrets/kafka.env …`); it stays 0600
# The passwords are URL-safe (they sit in the DSNs as they are). Run it before `docker compose up`.
set -eu
umask 077
dir=$(dirname "$0")/secrets
mkdir -p "$dir"
gen() { [ -s "$dir/$1" ] || head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$dir/$1"; }
gen postgres_password
gen learnstream_owner_password
gen learnstream_worker_password
gen grafana_admin_password
gen grafana_db_password
[ -s "$dir/owner.env" ] || printf 'LEARNSTREAM_ADMIN_DATABASE_URL=postgresql://learnstream_owner:%s@postgres:5432/learnstream\n' \
    "$(cat "$dir/learnstream_owner_password")" > "$dir/owner.env"
[ -s "$dir/worker.env" ] || printf 'LEARNSTREAM_DATABASE_URL=postgresql://learnstream_worker:%s@postgres:5432/learnstream\n' \
    "$(cat "$dir/learnstream_worker_password")" > "$dir/worker.env"
if [ ! -s "$dir/kafka.env" ]; then
    for p in ADMIN CONTROLLER WORKER PRODUCER ALERTS; do
        printf 'KAFKA_%s_PASSWORD=%s\n' "$p" "$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done > "$dir/kafka.env"
fi
# compose bind-mounts a file secret with its host mode and owner, and the postgres image reads it as
# the container's postgres user (Grafana's as uid 472): the password files become readable inside
# the container (0644); on the host the 0700 directory still keeps everyone else out
chmod 700 "$dir"
chmod 644 "$dir/postgres_password" "$dir/learnstream_owner_password" "$dir/learnstream_worker_password" \
    "$dir/grafana_admin_password" "$dir/grafana_db_password"
echo "secrets in $dir"
