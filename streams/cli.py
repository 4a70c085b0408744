"""The `learnstream` command: the only module that registers command groups. Expected failures
print one line `learnstream: error: …` and exit 2 (streams/cli_support.py).

The product's commands are registered here; the dev kit's (demo, bench, services: streams/devkit/)
are declared as `learnstream.commands` entry points and imported only when one of them is run, so
`learnstream worker` never loads them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import click

from db.migrate import migrate
from db.pool import connect
from streams.cli_support import expected_failures
from streams.config import load_settings

#: the entry-point group other installed packages (the dev kit) declare their commands under
PLUGIN_GROUP = "learnstream.commands"


@cache
def plugins() -> dict[str, EntryPoint]:
    """The commands declared under PLUGIN_GROUP, by name (not imported)."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class Commands(click.Group):
    """The registered commands, plus the plugins' (PLUGIN_GROUP), each imported when it is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugins()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in plugins():
            command = plugins()[name].load()
            self.add_command(command, name)
        return command


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="learnstream")
def cli() -> None:
    """learnstream: Kafka -> Faust -> partitioned PostgreSQL ingest for learning events,
    performance samples and engagement updates.

    Configuration comes from LEARNSTREAM_* environment variables and from the env file that
    `learnstream services up` writes (.learnstream/services.env); flags override both.
    """


def register() -> click.Group:
    """Register every product command group on `cli` (idempotent) and return it."""
    from streams.access.audit_cli import audit
    from streams.access.cli import access, workspaces
    from streams.alerts.channels_cli import channels
    from streams.alerts.cli import alerts
    from streams.alerts.rules_cli import metrics_cmd, rules
    from streams.analytics.cli import analytics
    from streams.domain.cli import domain
    from streams.jobs.cli import jobs
    from streams.kafka_cli import kafka
    from streams.maintenance.cli import maintenance
    from streams.reports.cli import reports

    for sub in (rules, metrics_cmd, channels):
        alerts.add_command(sub)
    for group in (alerts, analytics, domain, jobs, reports, workspaces, access, audit, maintenance, kafka):
        cli.add_command(group)
    return cli


@cli.command("migrate")
@click.option("--database-url", help="PostgreSQL DSN of the schema owner [default: LEARNSTREAM_ADMIN_DATABASE_URL, "
              "else LEARNSTREAM_DATABASE_URL]")
@expected_failures
def migrate_cmd(database_url: str | None) -> None:
    """Apply pending SQL migrations (db/migrations) and make the current partitions.

    Runs as the schema owner (LEARNSTREAM_ADMIN_DATABASE_URL; `learnstream services up` writes it),
    never as the workers' login. Each migration runs in its own transaction and is recorded in
    schema_migrations; re-running is a no-op, and an applied migration that was edited since is refused.
    """
    import asyncpg

    from streams.config import admin_dsn

    settings = load_settings()
    dsn = database_url or admin_dsn(settings)

    async def run() -> None:
        from db.partitions import ensure_partitions

        conn = await connect(dsn)
        try:
            applied = await migrate(conn)
            created = await ensure_partitions(conn)
        except asyncpg.InsufficientPrivilegeError as exc:
            from streams.cli_support import fail

            who = await conn.fetchval("SELECT current_user")
            fail(f"migrate needs the schema owner, but it runs as {who!r}: {exc}. Set "
                 "LEARNSTREAM_ADMIN_DATABASE_URL (or --database-url) to the owner's DSN "
                 "(`learnstream services up` writes it to .learnstream/services.env)")
        finally:
            await conn.close()
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
        if not applied:
            click.echo("schema is current; nothing to apply")
        if created:
            click.echo(f"created {len(created)} partitions")

    asyncio.run(run())


@cli.command("worker")
@click.option("--bootstrap", help="Kafka bootstrap servers [env LEARNSTREAM_KAFKA_BOOTSTRAP]")
@click.option("--database-url", help="PostgreSQL DSN [env LEARNSTREAM_DATABASE_URL]")
@click.option("--app-id", help="Faust app id / consumer group [default learnstream]")
@click.option("--metrics-port", type=int, help="/metrics, /healthz and /readyz port, 0 disables [default 9464]")
@click.option("--metrics-host", help="their address [default 127.0.0.1]")
@click.option("--batch-max", "batch_max_events", type=int, help="messages per batch at most [default 5000]")
@click.option("--batch-within", "batch_within_s", type=float, help="seconds before a partial batch is flushed [default 0.1]")
@click.option("--partitions", "topic_partitions", type=int, help="partitions of topics the worker creates [default 8]")
@click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]), help="[default info]")
@expected_failures
def worker_cmd(**flags) -> None:
    """Run the ingest worker until SIGTERM/SIGINT.

    Declares the topics if missing, then consumes learning-events, performance-samples and
    engagement-updates in batches, stores them idempotently in PostgreSQL and sends bad input to
    learnstream.dlq. Exits non-zero at once when Kafka cannot be reached; waits out PostgreSQL
    outages with retries. The metrics port serves /metrics, /healthz (200 while the event loop
    answers) and /readyz (200 while consuming, the database answers and the lag is at most
    LEARNSTREAM_READY_MAX_LAG; 503 with JSON naming the failed check otherwise).
    """
    settings = load_settings(**flags)
    _logging(settings.log_level if settings.log_level != "warn" else "warning")
    from streams.worker import run_worker

    run_worker(settings)


@cli.command("publish")
@click.argument("topic")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--array-size", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="events per message; >1 packs lines of the same workspace into JSON arrays")
@click.option("--validate", is_flag=True, help="check each line against the topic's contract first; refuse the bad ones")
@click.option("--kind", type=click.Choice(["learning_event", "performance_sample", "engagement_update", "content_item",
                                           "account_snapshot"]),
              help="contract to validate against when TOPIC is not one of the configured topics")
@click.option("--bootstrap", help="Kafka bootstrap servers [env LEARNSTREAM_KAFKA_BOOTSTRAP]")
@click.option("--kafka-config", type=click.Path(exists=True, dir_okay=False),
              help="kcat-style client config naming the principal to publish as, e.g. "
                   "$LEARNSTREAM_KCAT_PRODUCER_CONFIG; its bootstrap.servers is used unless --bootstrap "
                   "[env LEARNSTREAM_KAFKA_CONFIG_FILE]")
@expected_failures
def publish_cmd(topic: str, source, array_size: int, validate: bool, kind: str | None, bootstrap: str | None,
                kafka_config: str | None) -> None:
    """Publish JSONL (one event per line) from SOURCE (a file, or - for stdin) to TOPIC.

    Messages are keyed by workspace_id. With --validate, lines that break the contract are
    listed on stderr with their line numbers and not sent, and the exit status is 1.
    """
    from streams.kafka_auth import kafka_auth, read_kcat_config
    from streams.publish import plan_jsonl, publish_messages

    if kafka_config and not bootstrap:
        bootstrap = read_kcat_config(kafka_config).get("bootstrap.servers")
    settings = load_settings(kafka_bootstrap=bootstrap, kafka_config_file=kafka_config)
    if kind is None:
        kind = {v: k for k, v in settings.source_topics.items()}.get(topic)
    plan = plan_jsonl(source, kind, array_size=array_size, validate=validate)
    for line, problem in plan.refused:
        click.echo(f"line {line}: {problem}", err=True)
    sent = asyncio.run(publish_messages(settings.kafka_bootstrap, topic, plan.messages, auth=kafka_auth(settings)))
    click.echo(f"published {plan.events} events in {sent} messages to {topic}"
               + (f"; refused {len(plan.refused)} lines" if plan.refused else ""))
    if plan.refused:
        sys.exit(1)


@cli.group("schemas")
def schemas_group() -> None:
    """The event contracts as JSON Schema files (schemas/jsonschema/)."""


@schemas_group.command("export")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path(__file__).resolve().parent.parent / "schemas" / "jsonschema", show_default=True)
@click.option("--check", is_flag=True, help="only compare; exit 1 when the files differ from the models")
def schemas_export(directory: Path, check: bool) -> None:
    """Write (or --check) one JSON Schema per contract, plus the message and dead-letter schemas."""
    from schemas.export import documents

    docs = documents()
    stale = [n for n, body in docs.items() if not (directory / n).exists() or (directory / n).read_bytes() != body]
    if check:
        for n in stale:
            click.echo(f"out of date: {directory / n}", err=True)
        sys.exit(1 if stale else 0)
    directory.mkdir(parents=True, exist_ok=True)
    for n, body in docs.items():
        (directory / n).write_bytes(body)
    click.echo(f"wrote {len(docs)} schemas to {directory} ({len(stale)} changed)")


def main() -> None:
    register()
    cli(prog_name="learnstream")


if __name__ == "__main__":
    main()
