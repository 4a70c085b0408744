"""Alert rules as people write them: `learnstream alerts rules add` options and the entries of a
rules file (`learnstream alerts rules apply FILE.yaml`). No I/O.

A rule spec names its fields as a person would (op, threshold, window, for, ...) and its durations
as `60s`, `5m`, `2h`, `1d` or a number of seconds; `to_rule` turns it into the stored contract
(schemas.alerts.AlertRule), whose validation decides what is allowed, and names the fields of any
error the spec's way. A rules file:

    workspace: 3f0c...            # the rules' workspace (a rule may name its own instead)
    rules:
      - name: api latency high
        metric: api_latency.p95
        op: ">"
        threshold: 500
        window: 60s
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from schemas.alerts import MAX_DURATION_S, AlertRule

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(value: Any) -> float:
    """Seconds of `30s`, `5m`, `2h`, `1d`, or of a plain number (seconds); finite and at most
    MAX_DURATION_S (365 days), or ValueError."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip())
        if not m:
            raise ValueError(f"{value!r}: use a number and s, m, h or d (e.g. 30m, 2h)")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r}: a duration must be finite")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r}: at most {MAX_DURATION_S / 86400:g}d")
    return seconds


def format_duration(seconds: float | None) -> str:
    """The shortest of `1d`, `2h`, `5m`, `90s` that says `seconds` exactly; `-` for none."""
    if seconds is None:
        return "-"
    for unit in ("d", "h", "m"):
        n = seconds / _UNIT[unit]
        if seconds and n.is_integer():
            return f"{int(n)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(duration_s)]

#: a spec's field -> the AlertRule field it sets (the one place the two vocabularies meet)
SPEC_FIELDS: dict[str, str] = {
    "name": "alert_name",
    "metric": "metric",
    "op": "condition_op",
    "threshold": "threshold_value",
    "window": "window_s",
    "severity": "severity",
    "channels": "notification_channels",
    "for": "for_duration_s",
    "keep_firing_for": "keep_firing_for_s",
    "repeat_interval": "repeat_interval_s",
    "nodata_after": "nodata_after_s",
    "enabled": "is_active",
}
_RULE_TO_SPEC = {v: k for k, v in SPEC_FIELDS.items()}


class RuleSpec(BaseModel):
    """One rule as written; a field left out takes the contract's default (AlertRule)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    workspace: UUID | None = None
    name: Any = None
    metric: Any = None
    op: Any = None
    threshold: float | None = None
    window: Duration | None = None
    severity: Any = None
    channels: list[Any] | None = None
    for_: Duration | None = Field(None, alias="for")
    keep_firing_for: Duration | None = None
    repeat_interval: Duration | None = None
    nodata_after: Duration | None = None
    enabled: bool | None = None

    def fields(self) -> dict[str, Any]:
        """The fields given, by spec name."""
        given = self.model_dump(by_alias=True, exclude_unset=True, exclude={"workspace"})
        return {k: v for k, v in given.items() if k in SPEC_FIELDS}


class RuleInvalid(ValueError):
    """A rule spec the contract refuses: `problems` are (spec field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))


def _problems(exc: ValidationError, names: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        field = names.get(loc[0], loc[0]) if loc else ""
        if field == "for_":
            field = "for"
        out.append((field, e["msg"].removeprefix("Value error, ")))
    return out


def parse_spec(data: Any) -> RuleSpec:
    """A RuleSpec of a mapping (raises RuleInvalid, naming the spec's fields)."""
    if not isinstance(data, dict):
        raise RuleInvalid([("", f"a rule is a mapping of fields, not {type(data).__name__}")])
    try:
        return RuleSpec.model_validate(data)
    except ValidationError as exc:
        raise RuleInvalid(_problems(exc, {})) from None


def to_rule(spec: RuleSpec, workspace_id: UUID, rule_id: UUID) -> AlertRule:
    """The AlertRule `spec` describes in `workspace_id` (a field left out: the contract's default).
    Raises RuleInvalid."""
    values = {SPEC_FIELDS[k]: v for k, v in spec.fields().items()} | {"id": rule_id, "workspace_id": workspace_id}
    try:
        return AlertRule(**values)
    except ValidationError as exc:
        raise RuleInvalid(_problems(exc, _RULE_TO_SPEC)) from None


class RulesFile(BaseModel):
    """A rules file: rules of one workspace (`workspace`), or each rule naming its own."""

    model_config = ConfigDict(extra="forbid")

    workspace: UUID | None = None
    rules: list[Any] = Field(description="the rules, each a mapping of RuleSpec fields")
