"""`learnstream alerts rules add|list|show|enable|disable|rm|apply` and `learnstream alerts metrics`:
alert rules without SQL. Rules are checked against the rule contract (schemas/alerts.py AlertRule)
and the metrics the windows produce (catalog.py); the workers pick every change up at once (the
performance_alerts trigger NOTIFYs them)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import get_args
from uuid import UUID

import click
import orjson

from schemas.alert_rules import SPEC_FIELDS, RuleInvalid, format_duration, parse_spec, to_rule
from schemas.alerts import AlertRule, AlertSeverity, ConditionOp
from streams.cli_support import expected_failures, run_on_database, text_table
from streams.config import load_settings


class RuleError(ValueError):
    """A rule request that cannot be done; the message says why (one line, exit status 2)."""


async def _check_workspaces(conn, ids: list[UUID]) -> None:
    from db.workspaces import existing_workspaces

    missing = sorted(set(ids) - await existing_workspaces(conn, list(ids)))
    if missing:
        raise RuleError("; ".join(f"no workspace {w} (`learnstream workspaces add NAME --id {w}` registers one)"
                                  for w in missing))


async def _unknown_channels(conn, rules: list[AlertRule]) -> list[tuple[AlertRule, str]]:
    """(rule, message) for each channel a rule names that its workspace does not have (alert_channels,
    migration 0017; the built-in topic channel needs no row): its notifications would be
    dead-lettered as `unknown_channel`."""
    from db.channels import list_channels
    from schemas.channels import BUILTIN_TOPIC

    known: dict[UUID, set[str]] = {}
    out = []
    for r in rules:
        if r.workspace_id not in known:
            known[r.workspace_id] = {c.name for c in await list_channels(conn, r.workspace_id)} | {BUILTIN_TOPIC}
            if load_settings().alertmanager_url:  # the workers' implicit `alertmanager` channel (streams/alerts/delivery)
                known[r.workspace_id].add("alertmanager")
        out += [(r, f"workspace {r.workspace_id} has no channel {ch!r} (`learnstream alerts channels add` adds one; "
                    f"{BUILTIN_TOPIC!r} is built in)") for ch in r.notification_channels if ch not in known[r.workspace_id]]
    return out


async def _find(conn, ref: str, workspace: UUID | None) -> AlertRule:
    """The rule `ref` names: an id, or a name (in --workspace, or the only one of that name)."""
    from db.alerts import get_rule, rules_named

    try:
        rule = await get_rule(conn, UUID(ref))
    except ValueError:
        rule = None
    if rule is not None and workspace in (None, rule.workspace_id):
        return rule
    found = await rules_named(conn, ref, workspace)
    if not found:
        raise RuleError(f"no alert rule {ref!r}" + (f" in workspace {workspace}" if workspace else ""))
    if len(found) > 1:
        raise RuleError(f"{len(found)} workspaces have a rule named {ref!r}: say which with --workspace")
    return found[0]


def _window_note(rules: list[AlertRule]) -> None:
    """A line on stderr for each rule over windows the workers (as configured here) do not close."""
    s = load_settings()
    sizes = {s.window_tumbling_s, s.window_hopping_s}
    for r in rules:
        if r.window_s not in sizes:
            click.echo(f"note: rule {r.alert_name!r} watches {format_duration(r.window_s)} windows; the workers close "
                       f"{' and '.join(format_duration(x) for x in sorted(sizes))} windows (LEARNSTREAM_WINDOW_TUMBLING_S, "
                       "LEARNSTREAM_WINDOW_HOPPING_S), so it fires only where they are configured so", err=True)


_OPTION_OF = {"channels": "--channel", "enabled": "--disabled"}


def _option(spec_field: str) -> str:
    return _OPTION_OF.get(spec_field, "--" + spec_field.replace("_", "-"))


def _default(spec_name: str) -> str:
    """The contract's default of a duration field, for --help."""
    return format_duration(AlertRule.model_fields[SPEC_FIELDS[spec_name]].default)


_WORKSPACE_FILTER = click.option("--workspace", "-w", type=click.UUID, help="the rule's workspace (needed when RULE is a "
                                 "name that two workspaces use)")


@click.group("rules")
def rules() -> None:
    """Alert rules: the metric a rule watches (`learnstream alerts metrics`), its condition and window,
    severity, channels and timings. Workers reload them at once on every change.

    One at a time with add|enable|disable|rm, or as code: `rules apply FILE.yaml` makes a workspace's
    rules match a file. A rule's name is unique in its workspace; RULE is a rule's id or its name.
    """


@rules.command("add")
@click.option("--workspace", "-w", type=click.UUID, required=True, help="the rule's workspace (registered: `workspaces list`)")
@click.option("--name", required=True, help="the rule's name, unique in its workspace (1-100 characters)")
@click.option("--metric", required=True, help="what it watches, e.g. api_latency.p95 (`learnstream alerts metrics`)")
@click.option("--op", required=True, type=click.Choice(list(get_args(ConditionOp))),
              help="compare the window's value with the threshold; pct_change: the absolute percent change from the "
                   "series' previous window is >= the threshold")
@click.option("--threshold", required=True, type=float, help="a finite number")
@click.option("--window", help=f"the windows' size, e.g. 60s, 5m [default {_default('window')}]")
@click.option("--severity", type=click.Choice([s.value for s in AlertSeverity]),
              help=f"[default {AlertRule.model_fields['severity'].default.value}]")
@click.option("--channel", "channels", multiple=True,
              help="deliver to this channel of the workspace (repeatable; `alerts channels list`; `topic` is built in)")
@click.option("--for", "for_", help=f"the condition holds this long before it fires [default {_default('for')}]")
@click.option("--keep-firing-for",
              help=f"stay firing this long after the condition clears [default {_default('keep_firing_for')}]")
@click.option("--repeat-interval", help=f"re-send while firing this often [default {_default('repeat_interval')}]")
@click.option("--nodata-after", help="a watched series silent this long is NoData [default: never]")
@click.option("--disabled", is_flag=True, help="add it disabled (`rules enable` starts it)")
@click.option("--created-by", help="who adds it (kept with the rule)")
@expected_failures
def add_cmd(workspace, name, metric, op, threshold, window, severity, channels, for_, keep_firing_for,
            repeat_interval, nodata_after, disabled, created_by) -> None:
    """Add a rule; prints its id."""
    given = {"name": name, "metric": metric, "op": op, "threshold": threshold, "window": window,
             "severity": severity, "channels": list(channels) or None, "for": for_,
             "keep_firing_for": keep_firing_for, "repeat_interval": repeat_interval, "nodata_after": nodata_after,
             "enabled": False if disabled else None}
    try:
        rule = to_rule(parse_spec({k: v for k, v in given.items() if v is not None}), workspace, uuid.uuid4())
    except RuleInvalid as exc:
        for f, msg in exc.problems:
            click.echo(f"learnstream: error: {_option(f)}: {msg}", err=True)
        sys.exit(2)
    from streams.alerts.catalog import check_metric

    why = check_metric(rule.metric)
    if why:
        click.echo(f"learnstream: error: --metric: {why}", err=True)
        sys.exit(2)

    async def go(conn):
        import asyncpg

        from db.alerts import add_rule

        await _check_workspaces(conn, [workspace])
        unknown = await _unknown_channels(conn, [rule])
        if unknown:
            raise RuleError("; ".join(f"--channel: {why}" for _, why in unknown))
        try:
            await add_rule(conn, rule, created_by=created_by)
        except asyncpg.UniqueViolationError:
            raise RuleError(f"workspace {workspace} already has a rule named {name!r}") from None

    run_on_database(go)
    _window_note([rule])
    click.echo(str(rule.id))


@rules.command("list")
@click.option("--workspace", "-w", type=click.UUID, help="only this workspace's rules")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array of the rules (every field)")
@expected_failures
def list_cmd(workspace: UUID | None, as_json: bool) -> None:
    """The rules, by workspace and name: id, workspace, name, metric, condition, window, severity,
    whether active, channels."""
    from db.alerts import load_rules_checked
    from streams.alerts.rules import condition, field_text

    found, invalid = run_on_database(lambda conn: load_rules_checked(conn, [workspace] if workspace else None))
    found.sort(key=lambda r: (str(r.workspace_id), r.alert_name))
    if as_json:
        click.echo(orjson.dumps([r.model_dump(mode="json") for r in found]
                                + [{"id": r.key.split(" ", 1)[0], "workspace_id": str(r.workspace_id),
                                    "invalid": r.reason} for r in invalid]).decode())
        return
    if not found and not invalid:
        click.echo("no alert rules" + (f" in workspace {workspace}" if workspace else "")
                   + "; add one with `alerts rules add` or `alerts rules apply`")
        return
    rows = [[str(r.id), str(r.workspace_id), r.alert_name, r.metric, condition(r), format_duration(r.window_s),
             field_text(r, "severity"), "yes" if r.is_active else "no", field_text(r, "channels")] for r in found]
    for r in invalid:  # skipped by the workers; fix it with SQL or `rules apply` under its name, or delete it
        rule_id, _, name = r.key.partition(" ")
        rows.append([rule_id, str(r.workspace_id), name, f"invalid: {r.reason}", "", "", "", "", ""])
    rows.sort(key=lambda row: (row[1], row[2]))
    for line in text_table(["id", "workspace", "name", "metric", "condition", "window", "severity", "active", "channels"],
                       rows):
        click.echo(line)
    click.echo(f"{len(found)} rule{'s' if len(found) != 1 else ''}"
               + (f", {len(invalid)} invalid (skipped by the workers)" if invalid else ""))


@rules.command("show")
@click.argument("ref", metavar="RULE")
@_WORKSPACE_FILTER
@expected_failures
def show_cmd(ref: str, workspace: UUID | None) -> None:
    """One rule: every field, who made it, and its notifications (how many, the last, how many of
    its alert instances are open)."""
    from db.alerts import rule_history
    from streams.alerts.rules import condition, field_text

    async def go(conn):
        r = await _find(conn, ref, workspace)
        return r, await rule_history(conn, r.id)

    r, h = run_on_database(go)
    last = (f"; last {h['last_sent_at']:%Y-%m-%d %H:%M:%S}Z ({h['last_status']})"
            if h["last_sent_at"] else "")
    for label, value in [
        ("rule", f"{r.alert_name} ({r.id})"),
        ("workspace", str(r.workspace_id)),
        ("metric", r.metric),
        ("condition", f"{condition(r)} over {format_duration(r.window_s)} windows"),
        ("severity", field_text(r, "severity")),
        ("channels", field_text(r, "channels")),
        ("active", "yes" if r.is_active else "no"),
        ("for", field_text(r, "for")),
        ("keep firing", field_text(r, "keep_firing_for")),
        ("repeat", field_text(r, "repeat_interval")),
        ("no data", field_text(r, "nodata_after") if r.nodata_after_s else "never"),
        ("created", f"{h['created_at']:%Y-%m-%d %H:%M:%S}Z" + (f" by {h['created_by']}" if h["created_by"] else "")),
        ("updated", f"{h['updated_at']:%Y-%m-%d %H:%M:%S}Z"),
        ("notified", f"{h['notifications']} notification{'s' if h['notifications'] != 1 else ''}{last}; "
                     f"{h['open_instances']} open"),
    ]:
        click.echo(f"{label:<12}{value}")


def _toggle_command(name: str, active: bool, doc: str) -> None:
    @rules.command(name, help=doc)
    @click.argument("ref", metavar="RULE")
    @_WORKSPACE_FILTER
    @expected_failures
    def toggle(ref: str, workspace: UUID | None) -> None:
        from db.alerts import set_rule_active

        async def go(conn):
            r = await _find(conn, ref, workspace)
            return r, await set_rule_active(conn, r.id, active)

        r, changed = run_on_database(go)
        state = "enabled" if active else "disabled"
        click.echo(f"{state if changed else 'already ' + state}: rule {r.alert_name!r} ({r.id}) of workspace {r.workspace_id}")


_toggle_command("enable", True, "Start evaluating a disabled rule.")
_toggle_command("disable", False, "Stop evaluating a rule (kept, with its history; `rules enable` starts it again).")


@rules.command("rm")
@click.argument("ref", metavar="RULE")
@_WORKSPACE_FILTER
@expected_failures
def rm_cmd(ref: str, workspace: UUID | None) -> None:
    """Delete a rule; its notifications stay, as history."""
    from db.alerts import remove_rule

    async def go(conn):
        r = await _find(conn, ref, workspace)
        await remove_rule(conn, r.id)
        return r

    r = run_on_database(go)
    click.echo(f"removed rule {r.alert_name!r} ({r.id}) of workspace {r.workspace_id}")


@rules.command("apply")
@click.argument("path", metavar="FILE.yaml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "-w", type=click.UUID, help="the workspace of the rules that name none (a file of templates)")
@click.option("--yes", is_flag=True, help="apply the plan (in one transaction); without it, only print it")
@expected_failures
def apply_cmd(path: Path, workspace: UUID | None, yes: bool) -> None:
    """Make the rules of the file's workspaces match FILE.yaml: create the rules it adds, update the
    ones whose fields differ, delete the ones it leaves out. A dry run by default: prints the plan
    (+ create, ~ update with the changed fields, - delete) and changes nothing.

    \b
    workspace: 3f0c...          # or per rule, or --workspace
    rules:
      - name: api latency high  # unique in its workspace: how a rule is matched
        metric: api_latency.p95 # `learnstream alerts metrics`
        op: ">"                 # > >= < <= = != pct_change (quoted: > starts a YAML block)
        threshold: 500
        window: 1m              # and severity, channels, for, keep_firing_for,
                                # repeat_interval, nodata_after, enabled
    """
    from streams.alerts.rules import RulesFileInvalid, render

    try:
        p = _apply(path, workspace, yes)
    except RulesFileInvalid as exc:
        for line in exc.problems:
            click.echo(f"learnstream: error: {line}", err=True)
        sys.exit(2)
    _window_note([c.rule for c in p.changes if c.action != "delete"])
    for line in render(p, str(path)):
        click.echo(line)
    if p.changes:
        click.echo(f"applied: {p.count('create')} created, {p.count('update')} updated, {p.count('delete')} deleted"
                   if yes else "dry run: nothing changed; `--yes` applies this plan")


def _apply(path: Path, workspace: UUID | None, yes: bool):
    """The plan of rules file `path` against the stored rules, applied when `yes`. Raises
    RulesFileInvalid for what the file says, RuleError for an unknown workspace."""
    from db.alerts import add_rule, load_rules, lock_workspace_rules, remove_rule, update_rule
    from streams.alerts.rules import RulesFileInvalid, plan, read_rules_file

    try:
        desired = read_rules_file(path.read_text(encoding="utf-8"), str(path), workspace)
    except UnicodeDecodeError as exc:
        raise RuleError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not desired.workspaces:
        raise RuleError(f"{path}: no rules and no workspace: name the workspace whose rules it holds")
    number = {r.id: n for r, n in zip(desired.rules, desired.numbers)}
    created_by = f"alerts rules apply {path.name}"

    async def go(conn):
        await _check_workspaces(conn, desired.workspaces)
        unknown = await _unknown_channels(conn, desired.rules)
        if unknown:
            raise RulesFileInvalid(str(path), [f"rule {number[r.id]} ({r.alert_name}): channels: {why}"
                                               for r, why in unknown])
        if not yes:
            return plan(desired, await load_rules(conn, desired.workspaces))
        async with conn.transaction():
            await lock_workspace_rules(conn, desired.workspaces)
            p = plan(desired, await load_rules(conn, desired.workspaces))
            for c in p.changes:
                if c.action == "delete":
                    await remove_rule(conn, c.rule.id)
            for c in p.changes:
                if c.action == "update":
                    await update_rule(conn, c.rule)
                elif c.action == "create":
                    await add_rule(conn, c.rule, created_by=created_by)
        return p

    return run_on_database(go)


@click.command("metrics")
@click.option("--workspace", "-w", type=click.UUID, help="performance metric names seen in this workspace only")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array: metric, kind, labels")
@expected_failures
def metrics_cmd(workspace: UUID | None, as_json: bool) -> None:
    """The metric names an alert rule may watch, as the windows produce them: learning.<stat>
    (labels event_type, source_system), engagement.<stat> (content_id, platform, connector_id),
    and <metric_name>.<stat> for each metric_name of performance samples that windows were
    closed for (labels: the samples' tags)."""
    from db.alerts import performance_metric_names
    from streams.alerts.catalog import ANY_METRIC_NAME, fixed_metrics, stats, watchable

    names = run_on_database(lambda conn: performance_metric_names(conn, workspace))
    found = fixed_metrics() + [m for n in names for m in watchable("performance_sample", n)]
    if as_json:
        click.echo(orjson.dumps([{"metric": m.metric, "kind": m.kind, "labels": list(m.labels) or None}
                                 for m in found]).decode())
        return
    width = max(len(m.metric) for m in found)
    tags = "the samples' tags"
    for m in found:
        click.echo(f"{m.metric:<{width}}  {', '.join(m.labels) if m.labels else tags}")
    where = f" in workspace {workspace}" if workspace else ""
    click.echo(f"{len(names)} performance metric name{'s' if len(names) != 1 else ''} with closed windows{where}; "
               f"any other's samples give {ANY_METRIC_NAME}.{{{','.join(stats('performance_sample'))}}}")
