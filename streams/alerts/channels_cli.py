"""`learnstream alerts channels add|list|rm`: where a rule's notifications are delivered
(alert_channels, migration 0017). A rule names its channels in notification_channels; the workers
deliver to them (streams/alerts/delivery/)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from uuid import UUID

import click
from pydantic import ValidationError

from schemas.channels import BUILTIN_TOPIC, KINDS, AlertChannel
from streams.cli_support import fail, parse_duration, run_on_database

#: where `add` reads a webhook secret from when --secret-file is not given
SECRET_ENV = "LEARNSTREAM_CHANNEL_SECRET"


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


@click.group("channels")
def channels() -> None:
    """Alert channels: where notifications of the rules that name them go.

    \b
    alertmanager  Alertmanager's v2 API (URL: its base, e.g. http://alertmanager:9093)
    webhook       a signed JSON POST of each notification (X-Learnstream-Signature)
    topic         the alert-notifications topic (every notification is there; `topic` is built in)
    """


@channels.command("add")
@click.argument("name")
@click.option("--workspace", "-w", type=click.UUID, required=True, help="the channel's workspace")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--url", help="alertmanager: its base URL; webhook: the URL POSTed to")
@click.option("--secret-file", type=click.Path(dir_okay=False, allow_dash=True),
              help=f"webhook: a file holding the HMAC secret ('-': stdin) [else env {SECRET_ENV}; else one is made "
                   "and printed once]")
@click.option("--timeout", "timeout", default="10s", show_default=True, help="one HTTP attempt's limit, e.g. 5s")
@click.option("--disabled", is_flag=True, help="add it inactive (notifications to it are skipped)")
@click.option("--by", help="who (recorded in created_by; the audit log records the database login)")
def add(name: str, workspace: UUID, kind: str, url: str | None, secret_file: str | None, timeout: str,
        disabled: bool, by: str | None) -> None:
    """Add a channel, or replace the one of that name (a webhook keeps its secret unless a new one is given)."""
    from db.channels import list_channels, put_channel

    if name == BUILTIN_TOPIC:
        fail(f"`{BUILTIN_TOPIC}` is built in: every workspace has it")
    secret = None
    if secret_file is not None:
        secret = (sys.stdin.read() if secret_file == "-" else Path(secret_file).read_text()).strip()
    elif os.environ.get(SECRET_ENV):
        secret = os.environ[SECRET_ENV].strip()
    made = False

    async def go(conn):
        nonlocal secret, made
        if kind == "webhook" and secret is None:
            old = {c.name: c for c in await list_channels(conn, workspace)}.get(name)
            if old is not None and old.secret is not None:
                secret = old.secret.get_secret_value()
            else:
                secret, made = secrets.token_urlsafe(32), True
        try:
            ch = AlertChannel(workspace_id=workspace, name=name, kind=kind, url=url,
                              secret=secret if kind == "webhook" else None, timeout_s=_seconds(timeout),
                              is_active=not disabled)
        except ValidationError as exc:
            fail("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))
        return ch, await put_channel(conn, ch, by)

    if url and kind != "topic" and url.lower().startswith(("http://", "https://")):
        from streams.config import load_settings
        from streams.outbound import OutboundPolicy, check_url

        settings = load_settings()
        # the operator's own Alertmanager (LEARNSTREAM_ALERTMANAGER_URL) is trusted as configured, for
        # an alertmanager channel at exactly that URL (as the workers do), and for nothing else there
        trusted = kind == "alertmanager" and url == settings.alertmanager_url
        refused = None if trusted else check_url(OutboundPolicy(settings.outbound_allow), url)
        if refused is not None:  # the workers would refuse it at every delivery (refused_target)
            fail(f"channel {name} refused: {refused.text} (the workers' setting, which an operator sets)")
    ch, new = run_on_database(go)
    click.echo(f"{'added' if new else 'replaced'} {ch.kind} channel {ch.name} of workspace {workspace}"
               + (f" -> {ch.safe_url}" if ch.url else ""))
    if made:
        click.echo(f"webhook secret (shown once; the receiver checks X-Learnstream-Signature with it): {secret}")


@channels.command("list")
@click.option("--workspace", "-w", type=click.UUID, help="one workspace's (default: every workspace's)")
def list_cmd(workspace: UUID | None) -> None:
    """The channels, one a line (secrets are never shown); a stored row the contract refuses is
    listed as `invalid` with why (the workers skip it; `channels add` of its name replaces it)."""
    from db.channels import list_channels_checked

    found, invalid = run_on_database(lambda conn: list_channels_checked(conn, workspace))
    if not found and not invalid:
        click.echo("no alert channels (the built-in `topic` channel needs none)")
        return
    click.echo(f"{'WORKSPACE':<36}  {'NAME':<20} {'KIND':<12} {'TIMEOUT':>7} {'ACTIVE':<6} {'SECRET':<6} URL")
    lines = [(str(c.workspace_id), c.name,
              f"{str(c.workspace_id):<36}  {c.name:<20} {c.kind:<12} {c.timeout_s:>6g}s "
              f"{'yes' if c.is_active else 'no':<6} {'set' if c.secret else '-':<6} {c.safe_url}".rstrip())
             for c in found]
    lines += [(str(r.workspace_id), r.key, f"{str(r.workspace_id):<36}  {r.key:<20} invalid: {r.reason} (skipped)")
              for r in invalid]
    for *_, line in sorted(lines):
        click.echo(line)


@channels.command("rm")
@click.argument("name")
@click.option("--workspace", "-w", type=click.UUID, required=True, help="the channel's workspace")
def rm(name: str, workspace: UUID) -> None:
    """Remove a channel. Rules that still name it get their notifications dead-lettered
    (reason unknown_channel) until it is added again or the rule changes."""
    from db.channels import remove_channel, rules_naming

    async def go(conn):
        return await remove_channel(conn, workspace, name), await rules_naming(conn, workspace, name)

    gone, rules = run_on_database(go)
    if not gone:
        fail(f"workspace {workspace} has no alert channel {name!r}")
    click.echo(f"removed channel {name} of workspace {workspace}")
    if rules:
        click.echo(f"warning: still named by rules: {', '.join(rules)}", err=True)
