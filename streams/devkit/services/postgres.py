"""A private PostgreSQL cluster for this state dir, listening on 127.0.0.1 only.

Layout: ``<state>/postgres`` holds the metadata we choose (``port``, optionally ``location``) and,
normally, the cluster itself: ``data/``, ``postgres.log`` and the Unix socket. initdb/postgres
refuse to run as root, so as root they run as the ``postgres`` OS user; if that user cannot reach
``<state>/postgres`` (e.g. the checkout lives under /root), the cluster is placed under
``/var/tmp/learnstream-pg-<hash of state dir>`` instead and that location is recorded in
``<state>/postgres/location``.

Authentication is ``scram-sha-256`` for every connection, the superuser's too: row-level security
(migration 0013) decides by the role a client logs in as, so a cluster that trusted any client to be
any role would isolate nothing. initdb starts with ``trust`` (it has no password to ask for); the
first start sets a generated superuser password, kept in ``<state>/postgres/superuser-password``
(mode 0600), then rewrites pg_hba.conf to scram and reloads. A cluster made before that is moved over
the same way. fsync stays ON so crash tests are honest.

Roles by duty (issue #24), each with a password generated here and kept in a file of
``<state>/postgres`` created mode 0600 (never written first and chmod'ed after):

* ``learnstream_owner`` (``owner-password``): owns the database and every object in it, runs
  ``learnstream migrate`` and the operators' commands (``LEARNSTREAM_ADMIN_DATABASE_URL``). CREATEDB
  (the tests and the bench make a database per run) and CREATEROLE (``learnstream access`` makes
  the members' logins; the tests make member roles). Never a superuser, never used by a worker.
* ``learnstream_worker`` (``worker-password``): the workers' login (``LEARNSTREAM_DATABASE_URL``), a
  member of ``learnstream_service`` (the row-level security policies' service role) that owns
  nothing and has no CREATEROLE/CREATEDB: the DDL a worker needs (partitions, retention, refreshing
  materialized views) goes through the narrow SECURITY DEFINER functions of migration 0022.

A state dir from before has the role ``learnstream`` with the well-known password ``learnstream``,
owner of everything: ``up`` makes the two roles, hands every object (in every database of the
cluster) and the databases to ``learnstream_owner`` (REASSIGN OWNED) and drops ``learnstream``
(or, should that fail, takes its LOGIN and password away).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.devkit.services import (
    ServicesError,
    apt_install,
    choose_port,
    file_lock,
    log,
    pid_alive,
    port_is_free,
    read_int,
    run_async,
    write_atomic,
)

OS_USER = "postgres"
DB_NAME = "learnstream"
#: owns the database and its objects; runs migrations and the operators' commands
OWNER_ROLE = "learnstream_owner"
#: the workers' login: a member of learnstream_service, owns nothing
WORKER_ROLE = "learnstream_worker"
#: the row-level security policies' role (migration 0013 makes it too); the worker is its member
SERVICE_ROLE = "learnstream_service"
#: the role of state dirs made before issue #24 (password 'learnstream'): removed by `up`
LEGACY_ROLE = "learnstream"
#: the one role with BYPASSRLS (migration 0013); only a superuser can make it so
MAINTENANCE_ROLE = "learnstream_maintenance"
#: first line of a pg_hba.conf this module wrote
HBA_MARKER = "# learnstream: scram-sha-256 for every connection (streams/devkit/services/postgres.py)"
READY_TIMEOUT_S = 60.0
SERVER_OPTIONS = ["-c", "max_connections=200", "-c", "shared_buffers=256MB"]


def _is_root() -> bool:
    return os.geteuid() == 0


def _url(role: str, password: str, port: int) -> str:
    return f"postgresql://{role}:{password}@127.0.0.1:{port}/{DB_NAME}"


def redact(url: str) -> str:
    """`url` with its password replaced by ***, for logs and printed output."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` (replacing it) through a file that is mode 0600 from its creation:
    O_CREAT|O_EXCL with mode 0600 (a umask can only narrow it), then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def role_password(lay: Layout, role: str, *, create: bool = False) -> str | None:
    """The generated password of `role` (<state>/postgres/<owner|worker>-password); with `create`,
    generated and stored (0600) when missing."""
    path = lay.password_file(role)
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if password or not create:
        return password or None
    password = secrets.token_urlsafe(24)
    write_secret(path, f"{password}\n")
    return password


def dsn(port: int, lay: Layout | None = None) -> str:
    """The worker's DSN (LEARNSTREAM_DATABASE_URL)."""
    lay = lay or layout_of_state()
    return _url(WORKER_ROLE, role_password(lay, WORKER_ROLE) or "", port)


def admin_dsn(port: int, lay: Layout | None = None) -> str:
    """The owner's DSN (LEARNSTREAM_ADMIN_DATABASE_URL): migrations and operators."""
    lay = lay or layout_of_state()
    return _url(OWNER_ROLE, role_password(lay, OWNER_ROLE) or "", port)


def layout_of_state() -> Layout:
    from streams.config import state_dir

    return layout(state_dir())


# ------------------------------------------------------------------------------ binaries


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)


def _candidate_bindirs() -> list[Path]:
    found: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                found.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    found += sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin")), key=_version_key, reverse=True
    )
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).parent)
    usable = []
    for d in found:
        if all(os.access(d / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            if d not in usable:
                usable.append(d)
    return usable


def _install_with_apt() -> None:
    apt_install(["postgresql"], "PostgreSQL server binaries (initdb, pg_ctl)", "sudo apt-get install -y postgresql")


def find_bindir(want_version: str | None = None) -> Path:
    """PostgreSQL server bin dir (pg_config --bindir, else highest /usr/lib/postgresql/*/bin).

    With `want_version` (an existing cluster's PG_VERSION) the matching major version is needed.
    """
    dirs = _candidate_bindirs()
    if not dirs:
        _install_with_apt()
        dirs = _candidate_bindirs()
        if not dirs:
            raise ServicesError("PostgreSQL was installed but initdb/pg_ctl are still not found")
    if want_version:
        for d in dirs:
            if _server_major(d) == want_version:
                return d
        raise ServicesError(
            f"the existing cluster needs PostgreSQL {want_version} binaries, found only "
            + ", ".join(f"{_server_major(d)} ({d})" for d in dirs)
        )
    return max(dirs, key=lambda d: tuple(int(x) for x in re.findall(r"\d+", _server_major(d))))


def _server_major(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "0"
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else "0"


# ------------------------------------------------------------------------------ running as


def _os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise ServicesError(
            f"running as root, but the `{OS_USER}` OS user that must run initdb/postgres does not "
            "exist (installing the `postgresql` package creates it)"
        ) from None


def _as_server_user(cmd: list[str]) -> list[str]:
    if not _is_root():
        return cmd
    _os_user()
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--", *cmd]
    return ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _chown_to_server_user(path: Path) -> None:
    if _is_root():
        user = _os_user()
        os.chown(path, user.pw_uid, user.pw_gid)


def _server_user_can_use(path: Path) -> bool:
    if not _is_root():
        return True
    rc = subprocess.run(
        _as_server_user(["test", "-w", str(path), "-a", "-x", str(path)]),
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ).returncode
    return rc == 0


# ------------------------------------------------------------------------------ layout


@dataclass(frozen=True)
class Layout:
    meta: Path  # <state>/postgres: port, location (written by us)
    root: Path  # where the cluster lives (== meta unless relocated), owned by the server user

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def port_file(self) -> Path:
        return self.meta / "port"

    @property
    def location_file(self) -> Path:
        return self.meta / "location"

    @property
    def superuser_password_file(self) -> Path:
        return self.meta / "superuser-password"

    def password_file(self, role: str) -> Path:
        return self.meta / f"{role.removeprefix('learnstream_')}-password"

    @property
    def initdb_done(self) -> Path:
        return self.root / "initdb.done"

    @property
    def socket_dir(self) -> str:
        # Unix socket paths are limited to 107 bytes; fall back to TCP only ('' = no socket).
        return str(self.root) if len(str(self.root)) + len("/.s.PGSQL.65535") < 100 else ""


def layout(sd: Path, *, create: bool = False) -> Layout:
    meta = sd / "postgres"
    loc = meta / "location"
    if loc.exists():
        root = Path(loc.read_text().strip())
        if not create:
            return Layout(meta, root)
        if root.is_dir():
            uid = _os_user().pw_uid if _is_root() else os.geteuid()
            if not _is_private_dir(root, uid):
                raise ServicesError(
                    f"the cluster's directory {root} (named in {loc}) is not a private directory of the "
                    f"`{OS_USER}` user (a symlink, another owner, or open to others): refusing to use it"
                )
            return Layout(meta, root)
    if not create:
        return Layout(meta, meta)
    meta.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(meta, 0o700)
    _chown_to_server_user(meta)
    if _server_user_can_use(meta):
        loc.unlink(missing_ok=True)
        return Layout(meta, meta)
    root = _private_root(sd)
    log(f"the `{OS_USER}` user cannot reach {meta}; placing the cluster in {root}")
    if not _server_user_can_use(root):
        raise ServicesError(f"the `{OS_USER}` user cannot write {root} either")
    write_atomic(loc, f"{root}\n")
    return Layout(meta, root)


def _is_private_dir(path: Path, uid: int) -> bool:
    """`path` is a real directory (not a symlink) owned by `uid`, reachable by no one else."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat as stat_mod

    return stat_mod.S_ISDIR(st.st_mode) and st.st_uid == uid and (st.st_mode & 0o077) == 0


def _private_root(sd: Path) -> Path:
    """A directory outside the state dir for the cluster, 0700 and owned by the server user, made by
    us: the name for this state dir (/var/tmp/learnstream-pg-<hash>) when it is free or already
    ours, else a fresh mkdtemp one. A path someone else planted (another owner, a symlink, a mode
    others can enter) is never used."""
    import tempfile

    uid = _os_user().pw_uid if _is_root() else os.geteuid()
    digest = hashlib.sha256(str(sd).encode()).hexdigest()[:12]
    root = Path(f"/var/tmp/learnstream-pg-{digest}")
    try:
        os.mkdir(root, 0o700)
        _chown_to_server_user(root)
    except FileExistsError:
        pass
    if _is_private_dir(root, uid):
        return root
    log(f"{root} exists but is not a private directory of the `{OS_USER}` user: not using it")
    root = Path(tempfile.mkdtemp(prefix="learnstream-pg-", dir="/var/tmp"))
    _chown_to_server_user(root)
    if not _is_private_dir(root, uid):
        raise ServicesError(f"could not make a private directory for the cluster ({root})")
    return root


def _postmaster(lay: Layout) -> tuple[int | None, int | None]:
    """(pid, port) from postmaster.pid if that postmaster is alive, else (None, None)."""
    try:
        lines = (lay.data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None, None
    return (pid, port) if pid_alive(pid) else (None, None)


# ------------------------------------------------------------------------------ readiness


async def _select_1(url: str, timeout: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _wait(url: str, timeout: float) -> Exception | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await _select_1(url, timeout=5)
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            if time.monotonic() >= deadline:
                return exc
        await asyncio.sleep(0.3)


def wait_ready(url: str, *, timeout: float = READY_TIMEOUT_S, log_file: Path | None = None) -> None:
    """Retry `SELECT 1` over asyncpg until it works; ServicesError after `timeout`."""
    error = run_async(_wait(url, timeout))
    if error is not None:
        shown = redact(url)
        raise ServicesError(
            f"PostgreSQL at {shown} is not ready after {timeout:.0f} s: "
            f"{type(error).__name__}: {error}",
            log_file,
        )


def _hba_is_scram(lay: Layout) -> bool:
    try:
        return (lay.data / "pg_hba.conf").read_text().startswith(HBA_MARKER)
    except OSError:
        return False


def superuser_password(lay: Layout) -> str | None:
    try:
        return lay.superuser_password_file.read_text().strip() or None
    except OSError:
        return None


def _admin_url(lay: Layout, port: int) -> str:
    password = superuser_password(lay) if _hba_is_scram(lay) else None
    auth = f"postgres:{password}" if password else "postgres"
    return f"postgresql://{auth}@127.0.0.1:{port}/postgres"


async def _set_superuser_password(port: int, password: str) -> None:
    import asyncpg

    from db.workspaces import scram_sha256_verifier

    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres", timeout=10)
    try:
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        # its SCRAM verifier, not the password; a literal: ALTER ROLE takes no parameters
        await conn.execute(f"ALTER ROLE postgres PASSWORD '{scram_sha256_verifier(password)}'")
    finally:
        await conn.close()


async def _reload(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.fetchval("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def _require_passwords(lay: Layout, port: int) -> None:
    """Move a trusting cluster to scram-sha-256 (see the module docstring); no-op once done."""
    if _hba_is_scram(lay):
        if superuser_password(lay) is None:
            raise ServicesError(
                f"PostgreSQL asks for passwords but {lay.superuser_password_file} is missing: restore it, or "
                "remove the cluster (`make clean`) to make a new one"
            )
        return
    password = secrets.token_urlsafe(24)
    write_secret(lay.superuser_password_file, f"{password}\n")
    run_async(_set_superuser_password(port, password))
    hba = lay.data / "pg_hba.conf"
    stat = hba.stat()
    write_atomic(
        hba,
        f"{HBA_MARKER}\n"
        "local   all  all                 scram-sha-256\n"
        "host    all  all  127.0.0.1/32   scram-sha-256\n"
        "host    all  all  ::1/128        scram-sha-256\n",
    )
    os.chown(hba, stat.st_uid, stat.st_gid)
    os.chmod(hba, 0o600)
    run_async(_reload(_admin_url(lay, port)))
    log("PostgreSQL now asks every role for its password (scram-sha-256)")


async def _ensure_roles_and_db(admin_url: str, owner_password: str, worker_password: str) -> None:
    """The roles by duty (see the module docstring) and the database, owned by the owner; a state
    dir's legacy `learnstream` role handed over and removed."""
    import asyncpg

    from db.workspaces import scram_sha256_verifier

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute("SET password_encryption = 'scram-sha-256'")

        async def exists(role: str) -> bool:
            return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))

        if not await exists(MAINTENANCE_ROLE):
            await conn.execute(f"CREATE ROLE {MAINTENANCE_ROLE} NOLOGIN BYPASSRLS")
        elif not await conn.fetchval("SELECT rolbypassrls FROM pg_roles WHERE rolname = $1", MAINTENANCE_ROLE):
            await conn.execute(f"ALTER ROLE {MAINTENANCE_ROLE} BYPASSRLS")
        if not await exists(SERVICE_ROLE):
            await conn.execute(f"CREATE ROLE {SERVICE_ROLE} NOLOGIN")
        # the SCRAM verifier of each password is sent, never the password itself (which would show in
        # the server's log with log_statement, in pg_stat_statements...): a literal, as ALTER ROLE takes
        # no parameters; base64 and '$:' only, no quote
        if not await exists(OWNER_ROLE):
            log(f"creating role {OWNER_ROLE}")
            await conn.execute(f"CREATE ROLE {OWNER_ROLE}")
        await conn.execute(
            f"ALTER ROLE {OWNER_ROLE} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS NOREPLICATION "
            f"PASSWORD '{scram_sha256_verifier(owner_password)}'"
        )
        if not await exists(WORKER_ROLE):
            log(f"creating role {WORKER_ROLE}")
            await conn.execute(f"CREATE ROLE {WORKER_ROLE}")
        await conn.execute(
            f"ALTER ROLE {WORKER_ROLE} LOGIN INHERIT NOCREATEDB NOCREATEROLE NOSUPERUSER NOBYPASSRLS "
            f"NOREPLICATION PASSWORD '{scram_sha256_verifier(worker_password)}'"
        )
        await conn.execute(f"GRANT {SERVICE_ROLE} TO {WORKER_ROLE}")
        # the owner runs the migrations: 0013 makes the migrating role a member of the service role
        await conn.execute(f"GRANT {SERVICE_ROLE} TO {OWNER_ROLE}")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
            log(f"creating database {DB_NAME}")
            await conn.execute(f"CREATE DATABASE {DB_NAME} OWNER {OWNER_ROLE}")
        if await exists(LEGACY_ROLE):
            await _retire_legacy_role(conn, admin_url)
        databases = [r[0] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname = ANY($1::text[])",
            ["template1", "postgres", DB_NAME])]
    finally:
        await conn.close()
    for database in databases:
        await _restrict_advisory_locks(admin_url, database)


#: PostgreSQL lets every role take any advisory lock (EXECUTE granted to PUBLIC): a workspace member
#: holding the keys the workers coordinate with (the partition manager's, the job runner's) would
#: stall or skip that work for every workspace. Only the service and the owner may take them: a
#: superuser's change in each database, template1 included (so databases made later inherit it).
RESTRICT_ADVISORY_LOCKS = f"""
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'pg_catalog'::regnamespace
               AND p.proname ~ '^pg_(try_)?advisory_(xact_)?lock(_shared)?$'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {SERVICE_ROLE}, {OWNER_ROLE}', f);
    END LOOP;
END
$$
"""


async def _restrict_advisory_locks(admin_url: str, database: str) -> None:
    import asyncpg

    from db.databases import dsn_for

    conn = await asyncpg.connect(dsn_for(admin_url, database), timeout=10)
    try:
        await conn.execute(RESTRICT_ADVISORY_LOCKS)
    finally:
        await conn.close()


async def _retire_legacy_role(conn, admin_url: str) -> None:
    """Hand everything the pre-#24 role `learnstream` owns (in every database) to the owner, then
    drop it; if it cannot be dropped, it keeps no LOGIN and no password."""
    import asyncpg

    from db.databases import dsn_for

    log(f"upgrading: role {LEGACY_ROLE} (well-known password) hands its objects to {OWNER_ROLE} and goes")
    # first of all, its login goes and its sessions (a worker started before the upgrade) end: an
    # upgrade failing below never leaves the well-known login working
    await conn.execute(f"ALTER ROLE {LEGACY_ROLE} NOLOGIN PASSWORD NULL")
    await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", LEGACY_ROLE)
    databases = [r["datname"] for r in await conn.fetch(
        "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")]
    for name in databases:
        if await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) = $2 FROM pg_database WHERE datname = $1", name, LEGACY_ROLE):
            await conn.execute(f'ALTER DATABASE "{name}" OWNER TO {OWNER_ROLE}')
        try:
            db = await asyncpg.connect(dsn_for(admin_url, name), timeout=10)
        except asyncpg.InvalidCatalogNameError:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                raise
            continue  # dropped since it was listed (a test's database, say): nothing of it to hand over
        try:
            await db.execute(f"REASSIGN OWNED BY {LEGACY_ROLE} TO {OWNER_ROLE}")
            await db.execute(f"DROP OWNED BY {LEGACY_ROLE}")  # its remaining privileges
        finally:
            await db.close()
    try:
        await conn.execute(f"DROP ROLE {LEGACY_ROLE}")
    except asyncpg.PostgresError as exc:
        log(f"role {LEGACY_ROLE} kept without LOGIN or password (cannot drop it: {exc})")
    else:
        log(f"role {LEGACY_ROLE} dropped")


# ------------------------------------------------------------------------------ lifecycle


def server_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment initdb, pg_ctl and so the postmaster run with: the caller's without its
    LEARNSTREAM_* settings (Kafka SASL passwords, database URLs with passwords...), which the server
    does not need and would otherwise keep in /proc/<pid>/environ for its whole life."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not k.startswith("LEARNSTREAM_")}


def _run_pg(cmd: list[str], lay: Layout, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            _as_server_user(cmd),
            cwd=lay.root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            start_new_session=True,
            env=server_env(),
        )
    except subprocess.TimeoutExpired:
        raise ServicesError(
            f"`{Path(cmd[0]).name}` timed out after {timeout:.0f} s", lay.log_file
        ) from None


def _initdb(lay: Layout, bindir: Path) -> None:
    if lay.initdb_done.exists() and (lay.data / "PG_VERSION").exists():
        return
    if lay.data.exists():
        log(f"removing half-initialised cluster {lay.data}")
        shutil.rmtree(lay.data)
    log(f"creating PostgreSQL cluster in {lay.data}")
    # -A trust: private dev/test cluster, reachable on 127.0.0.1 only (see module docstring).
    proc = _run_pg(
        [
            str(bindir / "initdb"),
            "-D",
            str(lay.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-locale",
        ],
        lay,
        timeout=180,
    )
    if proc.returncode != 0:
        raise ServicesError(
            f"initdb failed (exit {proc.returncode})", extra=(proc.stdout + proc.stderr)[-4000:]
        )
    lay.initdb_done.write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")


def _server_options(lay: Layout, port: int) -> str:
    opts = [
        "-c",
        "listen_addresses=127.0.0.1",
        "-p",
        str(port),
        "-k",
        lay.socket_dir,
        *SERVER_OPTIONS,
    ]
    try:  # small /dev/shm (containers default to 64 MB) breaks parallel queries with posix shm
        if shutil.disk_usage("/dev/shm").total < 512 * 1024 * 1024:
            opts += ["-c", "dynamic_shared_memory_type=mmap"]
    except OSError:
        pass
    return shlex.join(opts)  # pg_ctl passes -o through /bin/sh


def _start(lay: Layout, port: int) -> None:
    version = (lay.data / "PG_VERSION").read_text().strip()
    bindir = find_bindir(version)
    if lay.log_file.exists() and lay.log_file.stat().st_size > 50 * 1024 * 1024:
        os.replace(lay.log_file, lay.log_file.with_suffix(".log.1"))
    log(f"starting PostgreSQL {version} on 127.0.0.1:{port} (log: {lay.log_file})")
    started = time.monotonic()
    proc = _run_pg(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(lay.data),
            "-l",
            str(lay.log_file),
            "-o",
            _server_options(lay, port),
            "-w",
            "-t",
            "90",
            "start",
        ],
        lay,
        timeout=120,
    )
    if proc.returncode != 0:
        raise ServicesError(
            f"PostgreSQL failed to start on port {port} (pg_ctl exit {proc.returncode})",
            lay.log_file,
            extra=(proc.stdout + proc.stderr).strip()[-2000:],
        )
    log(f"PostgreSQL started in {time.monotonic() - started:.1f} s")


def _ensure(sd: Path, *, same_port: bool = False) -> str:
    """Reuse or start the cluster; create role/db; return the DSN. Caller holds the lock."""
    lay = layout(sd, create=True)
    pid, port = _postmaster(lay)
    if pid is None:
        stored = read_int(lay.port_file)
        if same_port:
            if not stored:
                raise ServicesError(
                    "PostgreSQL has no recorded port yet: run `learnstream services up` first"
                )
            if not port_is_free(stored):
                raise ServicesError(
                    f"cannot restart PostgreSQL on its port {stored}: the port "
                    "is in use by another process"
                )
            port = stored
        else:
            port = choose_port(stored)
            if stored and stored != port:
                log(f"previous PostgreSQL port {stored} is taken; using {port}")
        if not (lay.initdb_done.exists() and (lay.data / "PG_VERSION").exists()):
            _initdb(lay, find_bindir())
        write_atomic(lay.port_file, f"{port}\n")
        _start(lay, port)
    else:
        log(f"PostgreSQL already running on 127.0.0.1:{port} (pid {pid})")
        if read_int(lay.port_file) != port:
            write_atomic(lay.port_file, f"{port}\n")
    wait_ready(_admin_url(lay, port), log_file=lay.log_file)
    try:
        _require_passwords(lay, port)
        run_async(_ensure_roles_and_db(
            _admin_url(lay, port),
            role_password(lay, OWNER_ROLE, create=True) or "",
            role_password(lay, WORKER_ROLE, create=True) or "",
        ))
    except ServicesError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ServicesError(
            f"creating the roles/database {DB_NAME} failed: {type(exc).__name__}: {exc}", lay.log_file
        ) from None
    url = dsn(port, lay)
    wait_ready(url, timeout=15, log_file=lay.log_file)
    return url


def ensure_running(sd: Path) -> tuple[str, str]:
    """Used by `up()` (which holds the services lock): reuse or start; -> (worker DSN, owner DSN)."""
    url = _ensure(sd)
    lay = layout(sd)
    return url, admin_dsn(read_int(lay.port_file) or 0, lay)


def _stop(sd: Path) -> None:
    lay = layout(sd)
    pid, port = _postmaster(lay)
    if pid is None:
        log("PostgreSQL is not running")
        return
    version = (lay.data / "PG_VERSION").read_text().strip()
    bindir = find_bindir(version)
    log(f"stopping PostgreSQL (pid {pid}, port {port}) ...")
    proc = _run_pg(
        [str(bindir / "pg_ctl"), "-D", str(lay.data), "-m", "fast", "-w", "-t", "60", "stop"],
        lay,
        timeout=90,
    )
    if proc.returncode != 0 and pid_alive(pid):
        raise ServicesError(
            f"pg_ctl stop failed (exit {proc.returncode})",
            lay.log_file,
            extra=(proc.stdout + proc.stderr).strip()[-2000:],
        )
    log("PostgreSQL stopped")


def stop(sd: Path) -> None:
    """Used by `down()` (which holds the services lock)."""
    _stop(sd)


def _lock(sd: Path):
    return file_lock(sd / "services.lock")


def pg_stop(sd: Path | None = None) -> None:
    """Stop ONLY PostgreSQL (fast shutdown), keeping its data and port for `pg_start()`."""
    from streams.config import state_dir

    sd = sd or state_dir()
    with _lock(sd):
        _stop(sd)


def pg_start(sd: Path | None = None) -> str:
    """Start ONLY PostgreSQL again on the SAME port and data; return the worker's DSN (no-op if running)."""
    from streams.config import state_dir

    sd = sd or state_dir()
    sd.mkdir(parents=True, exist_ok=True)
    with _lock(sd):
        return _ensure(sd, same_port=True)


def status(sd: Path) -> dict:
    lay = layout(sd)
    pid, port = _postmaster(lay)
    port = port or read_int(lay.port_file)
    return {
        "state": "running" if pid else "stopped",
        "pid": pid,
        "port": port,
        "url": redact(dsn(port, lay)) if port else None,
        "admin_url": redact(admin_dsn(port, lay)) if port else None,
        "data_dir": str(lay.data),
        "log_file": str(lay.log_file),
    }
