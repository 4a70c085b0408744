"""`learnstream alerts`: follow notifications, acknowledge and mute alerts (commands go to the
alert-commands topic, where the workers' alert engine picks them up); the rules and the metrics
they may watch are `rules_cli.py`'s."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from uuid import UUID

import click
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from schemas.alerts import AlertCommand, AlertNotification
from streams.cli_support import expected_failures, parse_duration
from streams.config import load_settings
from streams.kafka_auth import kafka_auth, read_kcat_config
from streams.publish import publish_messages
from streams.topics import ensure_topics


def format_line(n: AlertNotification) -> str:
    labels = " ".join(f"{k}={v}" for k, v in sorted(n.labels.items()))
    value = "no data" if n.current_value is None else f"{n.current_value:g} {n.condition_op} {n.threshold:g}"
    extra = " (repeat)" if n.repeat else ""
    extra += f" by {n.acknowledged_by}" if n.status == "acknowledged" and n.acknowledged_by else ""
    return (f"{n.sent_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z {n.severity.upper():<8} {n.status:<12} "
            f"{n.rule_name}: {value} {labels} [{n.fingerprint}]{extra}").rstrip()


@click.group("alerts")
def alerts() -> None:
    """Alert rules (`alerts rules`, `alerts metrics`); follow notifications, acknowledge and mute alerts."""


@alerts.command("tail")
@click.option("--from-beginning", is_flag=True, help="start at the oldest notification, not the next one")
@click.option("--workspace", type=click.UUID, help="only this workspace's alerts")
@click.option("--json", "as_json", is_flag=True, help="print the notifications as JSON lines")
@click.option("--max", "max_count", type=int, help="exit after this many notifications")
@click.option("--bootstrap", help="Kafka bootstrap servers [env LEARNSTREAM_KAFKA_BOOTSTRAP]")
def tail(from_beginning: bool, workspace: UUID | None, as_json: bool, max_count: int | None, bootstrap: str | None) -> None:
    """Follow the alert-notifications topic, one line per notification, until Ctrl-C."""
    settings = load_settings(kafka_bootstrap=bootstrap)
    topic = settings.alert_notifications_topic

    async def run() -> None:
        auth = kafka_auth(settings)
        await ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions,
                            replication_factor=settings.topic_replication_factor, auth=auth)
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, group_id=None, **auth.client_kwargs(),
            auto_offset_reset="earliest" if from_beginning else "latest",
        )
        await consumer.start()
        seen = 0
        try:
            async for record in consumer:
                try:
                    n = AlertNotification.model_validate_json(record.value)
                except ValidationError as exc:
                    click.echo(f"(unreadable notification at {record.partition}:{record.offset}: "
                               f"{exc.errors()[0]['msg']})", err=True)
                    continue
                if workspace is not None and n.workspace_id != workspace:
                    continue
                click.echo(n.model_dump_json() if as_json else format_line(n))
                seen += 1
                if max_count is not None and seen >= max_count:
                    return
        finally:
            await consumer.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


def _send(command: AlertCommand, bootstrap: str | None, kafka_config: str | None) -> None:
    if kafka_config and not bootstrap:
        bootstrap = read_kcat_config(kafka_config).get("bootstrap.servers")
    settings = load_settings(kafka_bootstrap=bootstrap, kafka_config_file=kafka_config)
    topic = settings.alert_commands_topic

    async def run() -> None:
        auth = kafka_auth(settings)
        await ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions,
                            replication_factor=settings.topic_replication_factor, auth=auth)
        await publish_messages(settings.kafka_bootstrap, topic,
                               [(str(command.workspace_id).encode(), command.model_dump_json().encode())], auth=auth)

    asyncio.run(run())
    target = f"alert {command.fingerprint}" if command.fingerprint else f"rule {command.rule_id}"
    until = f" until {command.until.isoformat()}" if command.until else ""
    click.echo(f"sent {command.command} for {target}{until} to {topic}")


def _command(kind: str, workspace: UUID, fingerprint: str | None, rule: UUID | None, by: str | None,
             until: datetime | None = None) -> AlertCommand:
    try:
        return AlertCommand(command=kind, workspace_id=workspace, fingerprint=fingerprint, rule_id=rule,
                            by=by, until=until, issued_at=datetime.now(UTC))
    except ValidationError as exc:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc


_target = [
    click.option("--workspace", type=click.UUID, required=True, help="the alert's workspace"),
    click.option("--fingerprint", help="one alert instance (as `alerts tail` shows it)"),
    click.option("--rule", type=click.UUID, help="every instance of a rule"),
    click.option("--by", help="who (recorded with the status change)"),
    click.option("--bootstrap", help="Kafka bootstrap servers [env LEARNSTREAM_KAFKA_BOOTSTRAP]"),
    click.option("--kafka-config", type=click.Path(exists=True, dir_okay=False),
                 help="kcat-style client config naming the principal to send as (one that may write the "
                      "alert commands, e.g. $LEARNSTREAM_KCAT_ADMIN_CONFIG); its bootstrap.servers is used "
                      "unless --bootstrap [env LEARNSTREAM_KAFKA_CONFIG_FILE]"),
]


def _with_target(fn):
    for opt in reversed(_target):
        fn = opt(fn)
    return fn


@alerts.command("ack")
@_with_target
@expected_failures
def ack(workspace, fingerprint, rule, by, bootstrap, kafka_config) -> None:
    """Acknowledge a firing alert: its status becomes acknowledged and repeats stop until it resolves."""
    _send(_command("ack", workspace, fingerprint, rule, by), bootstrap, kafka_config)


@alerts.command("mute")
@_with_target
@click.option("--for", "duration", required=True, help="how long, e.g. 30m, 2h, 1d")
@expected_failures
def mute(workspace, fingerprint, rule, by, bootstrap, kafka_config, duration) -> None:
    """Mute an alert (--fingerprint) or a whole rule (--rule) for a while; nothing is sent meanwhile,
    and what changed is sent when the mute expires."""
    until = datetime.now(UTC) + parse_duration(duration)
    _send(_command("mute", workspace, fingerprint, rule, by, until), bootstrap, kafka_config)


@alerts.command("unmute")
@_with_target
@expected_failures
def unmute(workspace, fingerprint, rule, by, bootstrap, kafka_config) -> None:
    """End a mute before it expires."""
    _send(_command("unmute", workspace, fingerprint, rule, by), bootstrap, kafka_config)

