"""Alert rules as code: a rules file read and checked as a whole, and the plan that makes the stored
rules of its workspaces match it (create, update with the changed fields, delete). A rule is
identified by (workspace, name). No I/O but reading the file; `rules_cli.py` runs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import yaml
from pydantic import ValidationError

from schemas.alert_rules import SPEC_FIELDS, RuleInvalid, RulesFile, format_duration, parse_spec, to_rule
from schemas.alerts import AlertRule
from streams.alerts.catalog import check_metric


class RulesFileInvalid(ValueError):
    """A rules file that cannot be applied; one line per problem, each naming the rule and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = [f"{source}: {p}" for p in problems]
        super().__init__("\n".join(self.problems))


def number(x: float) -> str:
    """A threshold as written: 500, 0.25, 1e+20."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def condition(rule: AlertRule) -> str:
    return f"{rule.condition_op} {number(rule.threshold_value)}"


def field_text(rule: AlertRule, spec_field: str) -> str:
    """One field of `rule`, as a rules file writes it."""
    value = getattr(rule, SPEC_FIELDS[spec_field])
    if spec_field in ("window", "for", "keep_firing_for", "repeat_interval", "nodata_after"):
        return format_duration(value)
    if spec_field == "threshold":
        return number(value)
    if spec_field == "channels":
        return ",".join(value) or "-"
    if spec_field == "enabled":
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def describe_rule(rule: AlertRule) -> str:
    """`metric op threshold over 1m, severity` and what differs from the contract's defaults."""
    text = f"{rule.metric} {condition(rule)} over {format_duration(rule.window_s)}, {field_text(rule, 'severity')}"
    if rule.notification_channels:
        text += f", channels {field_text(rule, 'channels')}"
    defaults = AlertRule.model_fields
    for f in ("for", "keep_firing_for", "repeat_interval", "nodata_after"):
        if getattr(rule, SPEC_FIELDS[f]) != defaults[SPEC_FIELDS[f]].default:
            text += f", {f} {field_text(rule, f)}"
    return text + ("" if rule.is_active else ", disabled")


# ------------------------------------------------------------------------------ the file


@dataclass(frozen=True)
class DesiredRules:
    rules: list[AlertRule]
    #: each rule's number in the file (1-based)
    numbers: list[int]
    #: the workspaces the file speaks for: their rules not in the file are deleted
    workspaces: list[UUID]


def read_rules_file(text: str, source: str, default_workspace: UUID | None = None) -> DesiredRules:
    """The rules a file describes (new ids), checked as a whole. A rule's workspace is its own, else
    the file's, else `default_workspace` (a file of templates). Raises RulesFileInvalid."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise RulesFileInvalid(source, [f"not valid YAML: {getattr(exc, 'problem', None) or exc}{where}"]) from None
    if not isinstance(data, dict):
        raise RulesFileInvalid(source, ["expected a mapping with `rules:` (a list of rules) and optionally `workspace:`"])
    try:
        doc = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise RulesFileInvalid(source, [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    if doc.workspace is not None and default_workspace is not None and doc.workspace != default_workspace:
        raise RulesFileInvalid(source, [f"the file is for workspace {doc.workspace}, --workspace says {default_workspace}"])
    file_ws = doc.workspace or default_workspace

    problems: list[str] = []
    rules: list[AlertRule] = []
    numbers: list[int] = []
    first: dict[tuple[UUID, str], int] = {}
    for i, data in enumerate(doc.rules, 1):
        name = data.get("name") if isinstance(data, dict) else None
        label = f"rule {i}" + (f" ({name})" if isinstance(name, str) and name else "")
        try:
            spec = parse_spec(data)
            ws = spec.workspace or file_ws
            if ws is None:
                raise RuleInvalid([("workspace", "none given: name one at the top of the file, in the rule or with --workspace")])
            rule = to_rule(spec, ws, uuid.uuid4())
        except RuleInvalid as exc:
            problems += [f"{label}: {f}: {m}" if f else f"{label}: {m}" for f, m in exc.problems]
            continue
        why = check_metric(rule.metric)
        if why:
            problems.append(f"{label}: metric: {why}")
            continue
        key = (rule.workspace_id, rule.alert_name)
        if key in first:
            problems.append(f"{label}: name: rule {first[key]} has the same name in workspace {rule.workspace_id}")
            continue
        first[key] = i
        rules.append(rule)
        numbers.append(i)
    if problems:
        raise RulesFileInvalid(source, problems)
    workspaces = {r.workspace_id for r in rules} | ({file_ws} if file_ws is not None else set())
    return DesiredRules(rules, numbers, sorted(workspaces))


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete"]
    #: create: the new rule; update: the rule as it will be (the stored rule's id); delete: the stored rule
    rule: AlertRule
    #: update: (field, now, then) of each field that changes
    fields: tuple[tuple[str, str, str], ...] = ()


@dataclass
class Plan:
    workspaces: list[UUID]
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


def plan(desired: DesiredRules, current: list[AlertRule]) -> Plan:
    """What makes `current` (the stored rules of the desired workspaces) match `desired`."""
    stored = {(r.workspace_id, r.alert_name): r for r in current if r.workspace_id in desired.workspaces}
    out = Plan(desired.workspaces)
    wanted = set()
    for rule in desired.rules:
        key = (rule.workspace_id, rule.alert_name)
        wanted.add(key)
        old = stored.get(key)
        if old is None:
            out.changes.append(Change("create", rule))
            continue
        diff = tuple((f, field_text(old, f), field_text(rule, f)) for f in SPEC_FIELDS if f != "name"
                     and _value(old, f) != _value(rule, f))
        if diff:
            out.changes.append(Change("update", rule.model_copy(update={"id": old.id, "alert_type": old.alert_type}), diff))
        else:
            out.unchanged += 1
    for key in sorted(set(stored) - wanted, key=lambda k: (str(k[0]), k[1])):
        out.changes.append(Change("delete", stored[key]))
    return out


def _value(rule: AlertRule, spec_field: str) -> Any:
    value = getattr(rule, SPEC_FIELDS[spec_field])
    return getattr(value, "value", value)


def render(p: Plan, source: str) -> list[str]:
    """The plan, one line per change, then a summary line."""
    lines = []
    for c in p.changes:
        r = c.rule
        if c.action == "create":
            lines.append(f"+ create {r.workspace_id} {r.alert_name!r}: {describe_rule(r)}")
        elif c.action == "update":
            what = ", ".join(f"{f} {old} -> {new}" for f, old, new in c.fields)
            lines.append(f"~ update {r.workspace_id} {r.alert_name!r}: {what}")
        else:
            lines.append(f"- delete {r.workspace_id} {r.alert_name!r} ({r.id})")
    spaces = f"{len(p.workspaces)} workspace{'s' if len(p.workspaces) != 1 else ''}"
    if not p.changes:
        lines.append(f"no changes: the {p.unchanged} rule{'s' if p.unchanged != 1 else ''} of {spaces} match {source}")
    else:
        lines.append(f"plan: {p.count('create')} to create, {p.count('update')} to update, {p.count('delete')} to delete, "
                     f"{p.unchanged} unchanged ({spaces})")
    return lines
