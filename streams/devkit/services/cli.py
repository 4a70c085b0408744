"""`learnstream services up|down|status`: real local Kafka + PostgreSQL, no Docker needed.

Mounted on the main CLI with ``cli.add_command(services)``.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import NoReturn

import click

from streams.devkit import services as api


def _fail(err: api.ServicesError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(1)


@click.group(name="services")
def services() -> None:
    """Run a real single-node Kafka 4.1.1 (KRaft) and a private PostgreSQL locally.

    Both listen on 127.0.0.1 on free ports that stay stable for this state dir
    (LEARNSTREAM_STATE_DIR, default ./.learnstream). Kafka jars are downloaded once with Maven
    into ${LEARNSTREAM_CACHE_DIR:-~/.cache/learnstream}. Typical use:

        eval "$(learnstream services up)"
    """


@services.command()
@click.option(
    "--force-local",
    is_flag=True,
    help="Start local services even if LEARNSTREAM_KAFKA_BOOTSTRAP and "
    "LEARNSTREAM_DATABASE_URL are already set.",
)
def up(force_local: bool) -> None:
    """Start or reuse Kafka + PostgreSQL; print settings.

    Prints the connection settings once both are ready.

    Idempotent: services already running for this state dir are reused. If both
    LEARNSTREAM_KAFKA_BOOTSTRAP and LEARNSTREAM_DATABASE_URL are set, nothing is started; those
    services are only checked. Prints shell lines on stdout (progress goes to stderr), so
    `eval "$(learnstream services up)"` configures the current shell: the settings are written to
    <state dir>/services.env (mode 0600), which learnstream and `make` read, and the lines source
    it; the DSNs are shown as comments with their passwords masked. LEARNSTREAM_DATABASE_URL is the
    workers' login (learnstream_worker), LEARNSTREAM_ADMIN_DATABASE_URL the schema owner's
    (learnstream_owner: `learnstream migrate` and operators).
    """
    try:
        settings = api.up(force_local=force_local)
    except api.ServicesError as err:
        _fail(err)
    env_file = api.services_env_file()
    for key, value in settings.items():
        if "://" in value and env_file.exists():
            # a DSN holds a password: never printed; the shell reads it from the 0600 env file
            click.echo(f"# {key}={api.postgres.redact(value)}")
            continue
        if key.endswith("PASSWORD") and env_file.exists():  # the Kafka worker's: the same
            click.echo(f"# {key}=***")
            continue
        click.echo(f"export {key}={shlex.quote(value)}")
    if env_file.exists():
        click.echo(f"set -a; . {shlex.quote(str(env_file))}; set +a")


@services.command()
def down() -> None:
    """Stop Kafka + PostgreSQL, keeping their data.

    Kafka gets SIGTERM (SIGKILL after 30 s), PostgreSQL a fast shutdown. Data, logs and ports
    are kept, so the next `up` resumes with the same topics, tables and ports. Removes
    <state dir>/services.env.
    """
    try:
        api.down()
    except api.ServicesError as err:
        _fail(err)


@services.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Show whether Kafka + PostgreSQL are running.

    Prints pids, ports/URLs, data dirs and log files.

    Exit status: 0 if both are running, 3 otherwise (like `pg_ctl status`).
    """
    try:
        info = api.status()
    except api.ServicesError as err:
        _fail(err)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"state dir: {info['state_dir']}")
        click.echo(f"env file:  {info['env_file'] or '(none: services not up)'}")
        for name, svc in (("kafka", info["kafka"]), ("postgres", info["postgres"])):
            where = svc.get("bootstrap") or svc.get("url") or "-"
            pid = f" (pid {svc['pid']})" if svc["pid"] else ""
            click.echo(f"{name:9s}  {svc['state']}{pid}  {where}")
            click.echo(f"           data: {svc['data_dir']}")
            click.echo(f"           log:  {svc['log_file']}")
        if info["postgres"].get("admin_url"):
            click.echo(f"           owner: {info['postgres']['admin_url']}")
        local = {
            "LEARNSTREAM_KAFKA_BOOTSTRAP": info["kafka"]["bootstrap"],
            "LEARNSTREAM_DATABASE_URL": info["postgres"]["url"],
            "LEARNSTREAM_ADMIN_DATABASE_URL": info["postgres"].get("admin_url"),
        }
        for key, value in info["env_overrides"].items():
            if value != local.get(key):
                click.echo(
                    f"note: {key}={value} is set in this environment and overrides the above"
                )
    running = all(info[s]["state"] == "running" for s in ("kafka", "postgres"))
    sys.exit(0 if running else 3)


if __name__ == "__main__":  # pragma: no cover - `python -m streams.devkit.services.cli up`
    services()


@services.command()
def browser() -> None:
    """Make sure a headless Chromium is installed (for the report screenshot tests); print its path.

    Installs Debian's chromium with apt-get when it is missing and this runs as root."""
    from streams.devkit.services import browser as chromium

    try:
        path = chromium.ensure()
    except api.ServicesError as err:
        _fail(err)
    click.echo(str(path))


@services.command()
def monitoring() -> None:
    """Make sure Prometheus, promtool and Alertmanager are installed (for the tests that scrape a
    worker and deliver alerts, and for the demo); print their paths.

    Installs Debian's prometheus and prometheus-alertmanager with apt-get when a binary is missing
    and this runs as root (`apt-get update` first only if the install fails). Idempotent: prints
    `<name>: <path> (already installed)` when nothing had to be done."""
    from streams.devkit.services import monitoring as mon

    before = {name: mon.find_binary(name) for name in mon.BINARIES}
    try:
        found = mon.ensure()
    except api.ServicesError as err:
        _fail(err)
    for name, path in found.items():
        click.echo(f"{name}: {path}" + (" (already installed)" if before[name] else " (installed)"))
