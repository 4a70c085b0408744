"""Real local services for dev, tests and demos: a single-node Kafka (KRaft) and a private
PostgreSQL cluster, both run as plain processes on loopback (no Docker needed).

Public API::

    up(force_local=False) -> {"LEARNSTREAM_KAFKA_BOOTSTRAP": ..., "LEARNSTREAM_DATABASE_URL": ...}
    down()                -> stop both (data is kept), remove the services env file
    status()              -> dict describing both services
    ServicesError         -> expected failures: one clear line, then the relevant log tail

State (data, logs, pid files, chosen ports) lives in ``state_dir()`` (``./.learnstream`` by
default); the Kafka jars are downloaded once into
``${LEARNSTREAM_CACHE_DIR:-~/.cache/learnstream}``.
After ``up()`` the connection settings are also written to ``services_env_file()`` as plain
``KEY=VALUE`` lines, which ``streams.config.load_settings`` and ``make`` both read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from streams.cli_support import CommandError
from streams.config import services_env_file, state_dir

KAFKA_ENV = "LEARNSTREAM_KAFKA_BOOTSTRAP"
DATABASE_ENV = "LEARNSTREAM_DATABASE_URL"
#: the owner's DSN (migrations, operators); LEARNSTREAM_DATABASE_URL is the worker's
ADMIN_DATABASE_ENV = "LEARNSTREAM_ADMIN_DATABASE_URL"

T = TypeVar("T")


class ServicesError(CommandError):
    """An expected failure of `learnstream services` (missing tool, a service that won't start...).

    ``str(err)`` is one clear line, followed by the tail of the relevant log when there is one.
    """

    def __init__(
        self,
        message: str,
        log_file: Path | str | None = None,
        *,
        extra: str = "",
        since: str | None = None,
    ) -> None:
        self.message = message
        self.log_file = Path(log_file) if log_file else None
        text = message
        if extra.strip():
            text += "\n" + extra.rstrip()
        if self.log_file is not None:
            lines = tail(self.log_file, since=since)
            if lines:
                text += f"\n--- last lines of {self.log_file} ---\n{lines}"
            else:
                text += f"\n(log file {self.log_file} is empty or missing)"
        super().__init__(text)


# --------------------------------------------------------------------------------------------
# Small helpers shared by kafka.py and postgres.py. They are defined BEFORE those modules are
# imported at the bottom of this file, so `from streams.devkit.services import log, ...` works there.
# --------------------------------------------------------------------------------------------


def log(message: str) -> None:
    """Brief progress message on stderr (stdout is reserved for `export ...` lines)."""
    print(f"[learnstream services] {message}", file=sys.stderr, flush=True)


def tail(path: Path | str, lines: int = 30, since: str | None = None) -> str:
    """Last `lines` lines of a text file ('' if it does not exist).

    With `since`, only lines after the last line starting with that marker (the current run).
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    all_lines = data.splitlines()
    if since:
        starts = [i for i, line in enumerate(all_lines) if line.startswith(since)]
        if starts:
            all_lines = all_lines[starts[-1] :]
    return "\n".join(all_lines[-lines:])


def apt_install(packages: list[str], what: str, hint: str) -> None:
    """Install Debian `packages` with apt-get (as root), logging to /var/tmp; `apt-get update` only
    when the first try fails (a fresh machine's lists may be stale). `hint` says what to do without root."""
    import shutil
    import subprocess

    if os.geteuid() != 0:
        raise ServicesError(f"{what} not found: install it, e.g. `{hint}`")
    apt = shutil.which("apt-get")
    if not apt:
        raise ServicesError(f"{what} not found and apt-get is not available: install it ({hint})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt_log = Path(f"/var/tmp/learnstream-apt-{packages[0]}.log")
    log(f"{what} not found: installing {' '.join(packages)} with apt-get (log: {apt_log}) ...")
    install = [apt, "install", "-y", *packages]
    with open(apt_log, "ab") as out:
        def run(cmd: list[str]) -> int:
            return subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode

        if run(install) == 0:
            return
        for cmd in ([apt, "update"], install):
            rc = run(cmd)
            if rc != 0:
                raise ServicesError(f"`{' '.join(cmd)}` failed (exit {rc})", apt_log)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port (TIME_WAIT leftovers do not count, as for servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", exclude: tuple[int, ...] = ()) -> int:
    """A currently free TCP port on the loopback interface (asks the kernel: bind to port 0)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port
    raise ServicesError("could not find a free TCP port on 127.0.0.1")


def choose_port(stored: int | None, exclude: tuple[int, ...] = ()) -> int:
    """Reuse `stored` if it is still free (stable ports across restarts), else pick a new one."""
    if stored and stored not in exclude and port_is_free(stored):
        return stored
    return free_port(exclude=exclude)


def pid_alive(pid: int | None) -> bool:
    """True if process `pid` exists and is not a zombie (reaps it if it is our own dead child)."""
    if not pid or pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text` through a temporary file created with `mode` (O_EXCL: never an
    existing file, never a symlink), so a private file (0600) is private from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only (0600 from the first byte)."""
    write_atomic(path, text, mode=0o600)


def private_dir(path: Path, *, traversable: bool = False) -> Path:
    """`path` as a directory only its owner may list or write (0700), made so from its creation.
    `traversable` (0711): others may pass through to a path inside they know (the `postgres` OS
    user to its cluster under the state dir, when we run as root), but not list it."""
    mode = 0o711 if traversable else 0o700
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (flock). NOT re-entrant: take it only in public entry points."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            log(f"waiting for another `learnstream services` run (lock {path}) ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="learnstream-services")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# Imported here, after the helpers above exist (the submodules import them from this package).
from streams.devkit.services import kafka, postgres  # noqa: E402


def principal_config(principal: str) -> str | None:
    """The kcat config file of a local Kafka principal (admin, worker, producer, alerts), from the
    environment or the services env file (LEARNSTREAM_KCAT_<PRINCIPAL>_CONFIG); None if unknown."""
    key = f"LEARNSTREAM_KCAT_{principal.upper()}_CONFIG"
    if os.environ.get(key):
        return os.environ[key]
    try:
        for line in services_env_file().read_text().splitlines():
            if line.startswith(f"{key}="):
                return line.partition("=")[2].strip() or None
    except OSError:
        pass
    return None


def principal_auth(principal: str):
    """The KafkaAuth of a local principal, with SCRAM-SHA-512 (its kcat config says PLAIN, for
    kcat's sake: see kafka.py); None when no config names it: the process's settings then decide,
    as for services given by the environment."""
    import dataclasses

    from streams.kafka_auth import from_kcat_config

    path = principal_config(principal)
    if not path or not Path(path).exists():
        return None
    auth = from_kcat_config(path)[1]
    return dataclasses.replace(auth, sasl_mechanism=kafka.MECHANISM) if auth.sasl else auth


def principal_env(principal: str) -> dict[str, str]:
    """LEARNSTREAM_KAFKA_* settings naming a local principal (empty when unknown)."""
    auth = principal_auth(principal)
    if auth is None:
        return {}
    return {"LEARNSTREAM_KAFKA_SECURITY_PROTOCOL": auth.security_protocol,
            "LEARNSTREAM_KAFKA_SASL_MECHANISM": auth.sasl_mechanism,
            "LEARNSTREAM_KAFKA_SASL_USERNAME": auth.username, "LEARNSTREAM_KAFKA_SASL_PASSWORD": auth.password}


def _lock_file(sd: Path) -> Path:
    return sd / "services.lock"


def _write_env_file(settings: dict[str, str]) -> Path:
    path = services_env_file()
    body = "# written by `learnstream services up`; removed by `learnstream services down`\n"
    body += "".join(f"{key}={value}\n" for key, value in settings.items())
    write_atomic(path, body, mode=0o600)  # it holds the roles' passwords
    return path


def up(*, force_local: bool = False) -> dict[str, str]:
    """Make sure Kafka and PostgreSQL are running and ready; return their connection settings.

    If both LEARNSTREAM_KAFKA_BOOTSTRAP and LEARNSTREAM_DATABASE_URL are set in the environment
    (and not `force_local`), nothing is started: those services are checked and returned.
    Otherwise each local service is reused when already running, else started. Idempotent.
    """
    env_bootstrap = os.environ.get(KAFKA_ENV, "").strip()
    env_dsn = os.environ.get(DATABASE_ENV, "").strip()
    if env_bootstrap and env_dsn and not force_local:
        log(f"{KAFKA_ENV} and {DATABASE_ENV} are set: using those services, starting nothing")
        kafka.wait_ready(env_bootstrap, timeout=30.0)
        postgres.wait_ready(env_dsn, timeout=30.0)
        settings = {KAFKA_ENV: env_bootstrap, DATABASE_ENV: env_dsn}
        if os.environ.get(ADMIN_DATABASE_ENV, "").strip():
            settings[ADMIN_DATABASE_ENV] = os.environ[ADMIN_DATABASE_ENV].strip()
        return settings
    for name, value in ((KAFKA_ENV, env_bootstrap), (DATABASE_ENV, env_dsn)):
        if value:
            log(
                f"note: {name} is set in the environment and takes precedence over the local "
                "service in this shell"
            )

    # passwords and the services env file live in it; as root the `postgres` OS user must pass
    # through it to its cluster in <state>/postgres
    sd = private_dir(state_dir(), traversable=os.geteuid() == 0)
    with file_lock(_lock_file(sd)):
        # Start the (slow) broker first, set up PostgreSQL while the JVM boots, then wait.
        broker = kafka.start(sd)
        dsn, admin_dsn = postgres.ensure_running(sd)
        bootstrap = kafka.finish_start(broker)
        settings = {KAFKA_ENV: bootstrap, DATABASE_ENV: dsn, ADMIN_DATABASE_ENV: admin_dsn, **kafka.client_env(sd)}
        env_file = _write_env_file(settings)
    log(f"services ready; settings written to {env_file}")
    return settings


def down() -> None:
    """Stop the local Kafka and PostgreSQL (data is kept) and remove the services env file."""
    sd = state_dir()
    if not sd.exists():
        log(f"nothing to stop: {sd} does not exist")
        return
    errors: list[ServicesError] = []
    with file_lock(_lock_file(sd)):
        for stop in (kafka.stop, postgres.stop):
            try:
                stop(sd)
            except ServicesError as exc:
                errors.append(exc)
        with contextlib.suppress(FileNotFoundError):
            services_env_file().unlink()
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ServicesError(
            "failed to stop the services", extra="\n\n".join(str(e) for e in errors)
        )


def status() -> dict:
    """Describe both local services: state (running/stopped), pid, port/url, data dir, log file."""
    sd = state_dir()
    env_file = services_env_file()
    overrides = {k: postgres.redact(os.environ[k]) for k in (KAFKA_ENV, DATABASE_ENV, ADMIN_DATABASE_ENV)
                 if os.environ.get(k)}
    return {
        "state_dir": str(sd),
        "env_file": str(env_file) if env_file.exists() else None,
        "env_overrides": overrides,
        "kafka": kafka.status(sd),
        "postgres": postgres.status(sd),
    }


__all__ = ["ServicesError", "down", "status", "up"]
