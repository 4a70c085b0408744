"""`learnstream kafka acls`: the principals' ACLs for the configured topic names and app id."""

from __future__ import annotations

import asyncio

import click

from streams.cli_support import CommandError, expected_failures
from streams.config import load_settings
from streams.kafka_acls import ALERTS, PRODUCER, WORKER, acl_plan, apply_acls
from streams.kafka_auth import kafka_auth


@click.group("kafka")
def kafka() -> None:
    """Kafka principals and their ACLs (docs/operations.md#kafka-principals-and-acls)."""


@kafka.command("acls")
@click.option("--producer", default=PRODUCER, show_default=True, help="SASL user name of the producer principal")
@click.option("--worker", default=WORKER, show_default=True, help="SASL user name of the worker principal")
@click.option("--alerts", default=ALERTS, show_default=True, help="SASL user name of the alert consumer principal")
@click.option("--apply", is_flag=True, help="create them on the broker (as an admin principal: "
              "LEARNSTREAM_KAFKA_CONFIG_FILE or LEARNSTREAM_KAFKA_SASL_*); without it, only list them")
@expected_failures
def acls_cmd(producer: str, worker: str, alerts: str, apply: bool) -> None:
    """List (or --apply) the ACLs that let the producer, worker and alerts principals do their
    jobs, and nothing more, on the configured topics (LEARNSTREAM_*_TOPIC) and app id.

    Run it once per app id / set of topic names, e.g. for a new producer principal:
    `learnstream kafka acls --producer team-x --apply`. Creating an ACL that exists is a no-op.
    """
    settings = load_settings()
    plan = acl_plan(settings, {PRODUCER: producer, WORKER: worker, ALERTS: alerts})
    for acl in plan:
        click.echo(str(acl))
    if apply:
        try:
            asyncio.run(apply_acls(settings.kafka_bootstrap, kafka_auth(settings), plan))
        except PermissionError as exc:
            raise CommandError(str(exc)) from exc
        click.echo(f"applied {len(plan)} ACLs on {settings.kafka_bootstrap}")
