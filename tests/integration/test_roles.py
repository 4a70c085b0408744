"""Roles by duty (issue #24), with hostile clients on the real PostgreSQL.

Before: the workers, the tests and the CLI all logged in as `learnstream`, password `learnstream`,
the owner of the schema with CREATEROLE and CREATEDB: any local OS user could `psql -U learnstream`,
read every workspace's webhook secrets and `GRANT pg_execute_server_program` to it (a shell as the
postgres OS user). Now the workers log in as learnstream_worker (a member of learnstream_service
that owns nothing), the owner's and the worker's passwords are generated and kept in 0600 files,
and the old password opens nothing.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from db.databases import dsn_as, dsn_for
from streams.config import services_env_file, state_dir
from streams.devkit import services as api
from streams.devkit.services import postgres
from tests.support import admin_dsn

pytestmark = pytest.mark.services

local = pytest.mark.skipif(
    bool(os.environ.get("LEARNSTREAM_TEST_CONTAINERS") == "1" or os.environ.get("LEARNSTREAM_DATABASE_URL")),
    reason="checks the local services' roles and files")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@local
async def test_the_well_known_password_logs_in_as_no_role(services):
    for role in ("learnstream", "learnstream_owner", "learnstream_worker", "learnstream_service", "postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(dsn_as(services["LEARNSTREAM_DATABASE_URL"], role, "learnstream"), timeout=10)


@local
async def test_the_worker_login_cannot_escalate_and_owns_nothing(stack):
    assert stack.worker_dsn.startswith("postgresql://learnstream_worker:")
    conn = await asyncpg.connect(stack.worker_dsn, timeout=10)
    try:
        me = await conn.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, "
            "pg_has_role(current_user, 'learnstream_service', 'USAGE') AS service FROM pg_roles "
            "WHERE rolname = current_user")
        assert dict(me) == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False, "rolbypassrls": False,
                            "rolreplication": False, "service": True}
        # it reads what the service needs (webhook secrets included: delivery signs with them)
        assert await conn.fetchval("SELECT count(secret) FROM alert_channels") == 0
        hostile = [
            "CREATE ROLE mallory LOGIN PASSWORD 'x'",
            "CREATE DATABASE mallory",
            "GRANT pg_execute_server_program TO current_user",
            "GRANT pg_read_server_files TO current_user",
            "GRANT learnstream_maintenance TO current_user",
            "COPY (SELECT 1) TO PROGRAM 'id'",
            "CREATE TEMP TABLE IF NOT EXISTS out (line text); COPY out FROM PROGRAM 'id'",
            "ALTER TABLE learning_events ADD COLUMN mallory int",
            "ALTER TABLE alert_channels DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE alert_channels NO FORCE ROW LEVEL SECURITY",
            "DROP TABLE alert_channels",
            "TRUNCATE learning_events",
            "CREATE TABLE public.mallory (x int)",
            "CREATE FUNCTION public.mallory() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "DROP POLICY service_all ON workspaces",
            "REFRESH MATERIALIZED VIEW analytics_aggregated_daily",
            "ALTER ROLE learnstream_worker CREATEROLE",
            "ALTER DATABASE " + stack.dsn.rsplit("/", 1)[1] + " OWNER TO learnstream_worker",
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
            "DELETE FROM audit_log",
            "UPDATE data_retention_policies SET retention_period = '1 day'",
            # the owner's functions take only what their allow-lists name
            "SELECT ls_detach_partition('alert_channels', 'alert_channels')",
            "SELECT ls_dispose_partition('alert_channels', 'drop')",
            "SELECT ls_dispose_partition('learning_events_default', 'drop')",
            "SELECT ls_create_partition('alert_channels', 'alert_channels_y2026m01', now(), now() + interval '1 day')",
            "SELECT ls_create_partition('learning_events', 'learning_events_y2026m01; DROP TABLE x', now(), now())",
            "SELECT ls_archive_partition('learning_events', 'learning_events', 'drop')",
            "SELECT ls_analyze('pg_authid')",
            "SELECT ls_refresh_materialized_view('alert_channels')",
        ]
        for sql in hostile:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        owned = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole) AS relations, "
            "(SELECT count(*) FROM pg_namespace WHERE nspowner = current_user::regrole) AS schemas, "
            "(SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole) AS functions, "
            "(SELECT count(*) FROM pg_type WHERE typowner = current_user::regrole) AS types, "
            "(SELECT count(*) FROM pg_database WHERE datdba = current_user::regrole) AS databases")
        assert dict(owned) == {"relations": 0, "schemas": 0, "functions": 0, "types": 0, "databases": 0}
        # every relation of the schemas is the owner's, who runs the migrations
        owners = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'archive')")
        assert [r["owner"] for r in owners] == ["learnstream_owner"]
    finally:
        await conn.close()


@local
async def test_the_worker_makes_partitions_and_refreshes_views_through_the_owners_functions(stack):
    """What a worker needs of DDL, as the worker: a partition made (DEFAULT's rows moved into it, and
    the writer's direct COPY into it allowed), a materialized view refreshed."""
    from datetime import UTC, datetime

    from db.jobs import refresh_materialized_views
    from db.partitions import ensure_partition, period_of
    from db.tables import TABLES

    spec = TABLES["learning_event"]
    far = datetime(2031, 5, 17, 12, tzinfo=UTC)
    period = period_of(spec, far)
    conn = await asyncpg.connect(stack.worker_dsn, timeout=10)
    try:
        ws = uuid.uuid4()
        await conn.execute(
            "INSERT INTO learning_events (id, workspace_id, \"timestamp\", event_type, event_data) "
            "VALUES (gen_random_uuid(), $1, $2, 'e', '{}')", ws, far)
        assert await conn.fetchval("SELECT count(*) FROM learning_events_default") == 1
        assert await ensure_partition(conn, spec, period) == 1
        assert await ensure_partition(conn, spec, period) is None
        assert await conn.fetchval(f"SELECT count(*) FROM {period.name}") == 1
        assert await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = $1",
                                   period.name) == "learnstream_owner"
        await conn.copy_records_to_table(period.name, records=[], columns=["id"])  # direct COPY allowed
        assert await refresh_materialized_views(conn) == 5
    finally:
        await conn.close()


@local
async def test_the_worker_cannot_misplace_a_partition_nor_detach_or_drop_a_live_one(stack):
    """Review of #24 (migration 0027): as learnstream_worker, (a) a partition attached with bounds
    other than its name's period (learning_events_y2027m03 up to 'infinity' wedged partition
    maintenance for good), (b) bounds shifted by the session's TimeZone/DateStyle (IST read back as
    Israel time), (c) the current month detached and dropped for every tenant: all refused; an
    expired partition (retention's path) is still detached and dropped."""
    from datetime import UTC, datetime

    from db.partitions import ensure_partition, period_of
    from db.tables import TABLES

    spec = TABLES["learning_event"]
    bound_sql = ("SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
                 "WHERE c.oid = to_regclass($1) AND c.relispartition")
    conn = await asyncpg.connect(stack.worker_dsn, timeout=10)
    owner = await asyncpg.connect(stack.dsn, timeout=10)
    try:
        await conn.execute("SET TimeZone = 'UTC'")
        # (a) only the name's own period
        for sql in [
            "SELECT ls_create_partition('learning_events', 'learning_events_y2027m03', '2027-03-01', 'infinity')",
            "SELECT ls_create_partition('learning_events', 'learning_events_y2027m03', '2027-02-01', '2027-04-01')",
            "SELECT ls_create_partition('learning_events', 'learning_events_y2027m03d01', '2027-03-01', '2027-03-02')",
            "SELECT ls_create_partition('learning_rollups', 'learning_rollups_y2027m03', '2027-03-01', '2027-04-01')",
            "SELECT ls_create_partition('learning_events', 'learning_events_y2027m13', '2027-12-01', '2028-01-01')",
            "SELECT ls_create_partition('learning_rollups', 'learning_rollups_y2027m02d30', '2027-03-02', '2027-03-03')",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT to_regclass('learning_events_y2027m03')") is None
        # (b) a hostile session's TimeZone and DateStyle do not move the bounds
        await conn.execute("SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, MDY'")
        for month in (3, 4):  # the next month still fits: nothing wedged
            assert await ensure_partition(conn, spec, period_of(spec, datetime(2027, month, 15, tzinfo=UTC))) == 0
        await conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'")
        assert [await conn.fetchval(bound_sql, n) for n in ("learning_events_y2027m03", "learning_events_y2027m04")] == [
            "FOR VALUES FROM ('2027-03-01 00:00:00+00') TO ('2027-04-01 00:00:00+00')",
            "FOR VALUES FROM ('2027-04-01 00:00:00+00') TO ('2027-05-01 00:00:00+00')"]
        # (c) a live partition (learning_events keeps 2 years) is neither detached nor disposed of
        current = period_of(spec, datetime.now(UTC))
        await ensure_partition(conn, spec, current)
        for sql in [f"SELECT ls_detach_partition('learning_events', '{current.name}')",
                    f"SELECT ls_detach_partition('learning_events', '{current.name}', true)",
                    "SELECT ls_detach_partition('learning_events', 'learning_events_y2027m03')"]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        assert await conn.fetchval(bound_sql, current.name) is not None
        await owner.execute(f"ALTER TABLE learning_events DETACH PARTITION {current.name}")
        for strategy in ("drop", "archive"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("SELECT ls_dispose_partition($1, $2)", current.name, strategy)
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", current.name)
        # an expired partition: refused while its table has no retention policy, then retention's path
        old = period_of(spec, datetime(2020, 1, 10, tzinfo=UTC))
        assert await ensure_partition(conn, spec, old) == 0
        await owner.execute("DELETE FROM data_retention_policies WHERE table_name = 'learning_events'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SELECT ls_detach_partition('learning_events', $1)", old.name)
        await owner.execute("INSERT INTO data_retention_policies (table_name, retention_period, archive_strategy) "
                            "VALUES ('learning_events', interval '2 years', 'drop')")
        async with conn.transaction():
            await conn.execute("SELECT ls_detach_partition('learning_events', $1)", old.name)
            await conn.execute("SELECT ls_dispose_partition($1, 'drop')", old.name)
        assert await conn.fetchval("SELECT to_regclass($1)", old.name) is None
    finally:
        await owner.close()
        await conn.close()


@local
def test_passwords_and_the_services_env_are_private_files():
    sd = state_dir()
    lay = postgres.layout(sd)
    assert _mode(sd) & 0o066 == 0, oct(_mode(sd))  # 0700 (0711 as root: the postgres user passes through)
    assert _mode(lay.meta) == 0o700
    assert _mode(sd / "kafka") == 0o700
    assert _mode(services_env_file()) == 0o600
    for path in (lay.superuser_password_file, lay.password_file("learnstream_owner"),
                 lay.password_file("learnstream_worker")):
        assert _mode(path) == 0o600, path
    text = services_env_file().read_text()
    owner = lay.password_file("learnstream_owner").read_text().strip()
    worker = lay.password_file("learnstream_worker").read_text().strip()
    assert f"LEARNSTREAM_DATABASE_URL=postgresql://learnstream_worker:{worker}@" in text
    assert f"LEARNSTREAM_ADMIN_DATABASE_URL=postgresql://learnstream_owner:{owner}@" in text
    # `services up` prints no password
    from streams.devkit.services.cli import services as services_cli

    out = CliRunner().invoke(services_cli, ["up"])
    assert out.exit_code == 0, out.output
    assert owner not in out.output and worker not in out.output
    assert "# LEARNSTREAM_DATABASE_URL=postgresql://learnstream_worker:***@" in out.output
    status = CliRunner().invoke(services_cli, ["status", "--json"])
    assert owner not in status.output and worker not in status.output


def test_secret_files_are_0600_from_their_first_byte(tmp_path, monkeypatch):
    """Written through a file created 0600 (O_EXCL), whatever the umask: never chmod'ed afterwards."""
    seen: list[int] = []
    real_write = os.write

    def spying_write(fd: int, data: bytes) -> int:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spying_write)
    old = os.umask(0)
    try:
        postgres.write_secret(tmp_path / "pw", "s3cret\n")
        api.write_atomic(tmp_path / "env", "A=1\n", mode=0o600)
    finally:
        os.umask(old)
    assert seen == [0o600, 0o600]
    assert _mode(tmp_path / "pw") == _mode(tmp_path / "env") == 0o600
    # a planted symlink at the temporary name is not followed
    target = tmp_path / "target"
    target.write_text("")
    os.symlink(target, tmp_path / f".pw.tmp{os.getpid()}")
    postgres.write_secret(tmp_path / "pw", "again\n")
    assert target.read_text() == "" and (tmp_path / "pw").read_text() == "again\n"


def test_a_planted_relocation_directory_is_not_used(tmp_path):
    """/var/tmp/learnstream-pg-<hash> is predictable: when someone else made it (a symlink, a
    directory open to others), a fresh private one is used instead."""
    import hashlib
    import shutil

    sd = tmp_path / "state"
    planted = Path(f"/var/tmp/learnstream-pg-{hashlib.sha256(str(sd).encode()).hexdigest()[:12]}")
    bait = tmp_path / "bait"
    bait.mkdir(mode=0o777)
    os.chmod(bait, 0o777)
    chosen: list[Path] = []
    try:
        os.symlink(bait, planted)
        chosen.append(postgres._private_root(sd))
        planted.unlink()
        planted.mkdir(mode=0o777)
        os.chmod(planted, 0o777)
        chosen.append(postgres._private_root(sd))
        for root in chosen:
            assert root != planted and root.name.startswith("learnstream-pg-")
            assert _mode(root) == 0o700 and not root.is_symlink()
        assert list(bait.iterdir()) == []
    finally:
        if planted.is_symlink():
            planted.unlink()
        elif planted.exists():
            planted.rmdir()
        for root in chosen:
            shutil.rmtree(root, ignore_errors=True)


@local
async def test_up_retires_a_legacy_role_with_the_well_known_password(services, monkeypatch):
    """A state dir from before #24: role `learnstream` (password `learnstream`) owns a database and
    its objects. `services up` hands them to learnstream_owner and the old password opens nothing.
    (Played with a role of another name, so that tests running meanwhile never meet a `learnstream`.)"""
    legacy_role = f"learnstream_legacy_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(postgres, "LEGACY_ROLE", legacy_role)
    sd = state_dir()
    lay = postgres.layout(sd)
    port = int(lay.port_file.read_text())
    superuser = postgres._admin_url(lay, port)
    name = f"t_legacy_{uuid.uuid4().hex[:8]}"
    su = await asyncpg.connect(superuser, timeout=10)
    try:
        await su.execute(f"CREATE ROLE {legacy_role} LOGIN CREATEDB CREATEROLE PASSWORD 'learnstream'")
        await su.execute(f"CREATE DATABASE {name} OWNER {legacy_role}")
        legacy = await asyncpg.connect(dsn_for(dsn_as(superuser, legacy_role, "learnstream"), name), timeout=10)
        try:
            await legacy.execute("CREATE TABLE legacy_table (x int)")
        finally:
            await legacy.close()
        api.up()
        assert not await su.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", legacy_role)
        assert await su.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1",
                                 name) == "learnstream_owner"
        owner = await asyncpg.connect(dsn_for(admin_dsn(services), name), timeout=10)
        try:
            assert await owner.fetchval(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'legacy_table'") == "learnstream_owner"
        finally:
            await owner.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(dsn_for(dsn_as(superuser, legacy_role, "learnstream"), name), timeout=10)
    finally:
        await su.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await su.execute(f"DROP ROLE IF EXISTS {legacy_role}")
        await su.close()


@local
async def test_up_sends_the_roles_scram_verifiers_never_their_passwords(services):
    """`services up` (re)sets the owner's and the worker's passwords on every run: what reaches the
    server (here its statement log) is their SCRAM verifier, never the password."""
    sd = state_dir()
    lay = postgres.layout(sd)
    port = int(lay.port_file.read_text())
    su = await asyncpg.connect(postgres._admin_url(lay, port), timeout=10)
    try:
        await su.execute("ALTER ROLE postgres SET log_statement = 'ddl'")
        start = lay.log_file.stat().st_size
        api.up()
        logged = lay.log_file.read_bytes()[start:].decode("utf-8", "replace")
    finally:
        await su.execute("ALTER ROLE postgres RESET log_statement")
        await su.close()
    owner = lay.password_file("learnstream_owner").read_text().strip()
    worker = lay.password_file("learnstream_worker").read_text().strip()
    assert owner not in logged and worker not in logged
    assert logged.count("PASSWORD 'SCRAM-SHA-256$4096:") == 2, logged[-3000:]
    for role, password in (("learnstream_owner", owner), ("learnstream_worker", worker)):
        conn = await asyncpg.connect(dsn_as(services["LEARNSTREAM_DATABASE_URL"], role, password), timeout=10)
        await conn.close()


@local
async def test_a_failed_legacy_retirement_leaves_its_well_known_login_closed(services, monkeypatch):
    """The legacy role loses LOGIN and its password first: when handing its objects over fails
    (here: its database cannot be reached), its well-known password opens nothing already."""
    import db.databases

    legacy_role = f"learnstream_legacy_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(postgres, "LEGACY_ROLE", legacy_role)
    lay = postgres.layout(state_dir())
    superuser = postgres._admin_url(lay, int(lay.port_file.read_text()))
    su = await asyncpg.connect(superuser, timeout=10)
    real_dsn_for = db.databases.dsn_for
    monkeypatch.setattr(db.databases, "dsn_for",
                        lambda dsn, name: real_dsn_for(dsn, "no_such_database_" + uuid.uuid4().hex[:6]))
    try:
        await su.execute(f"CREATE ROLE {legacy_role} LOGIN PASSWORD 'learnstream'")
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await postgres._retire_legacy_role(su, superuser)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(dsn_as(superuser, legacy_role, "learnstream"), timeout=10)
        assert await su.fetchval("SELECT rolcanlogin OR rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1",
                                 legacy_role) is False
    finally:
        await su.execute(f"DROP ROLE IF EXISTS {legacy_role}")
        await su.close()


@local
@pytest.mark.serial  # restarts the shared PostgreSQL: run alone
def test_the_server_runs_without_the_callers_learnstream_settings(services, monkeypatch):
    """pg_ctl (and so the postmaster, for its whole life) gets the caller's environment without its
    LEARNSTREAM_* settings: Kafka's SASL password and the like stay out of /proc/<pid>/environ."""
    monkeypatch.setenv("LEARNSTREAM_KAFKA_SASL_PASSWORD", "not-for-postgres")
    postgres.pg_stop()
    postgres.pg_start()
    pid, _ = postgres._postmaster(postgres.layout(state_dir()))
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError as exc:
        pytest.skip(f"cannot read the postmaster's environment: {exc}")
    keys = [e.split(b"=", 1)[0].decode() for e in environ.split(b"\0") if e]
    assert keys and [k for k in keys if k.startswith("LEARNSTREAM_")] == []
