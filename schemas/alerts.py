"""Alert contracts (seed 003: performance_alerts, alert_notifications, alert_severity, alert_status).
No I/O.

* AlertRule: a rule as stored in performance_alerts, plus the lifecycle timings of the issue
  (for_duration, keep_firing_for, repeat_interval) and nodata_after.
* AlertNotification: what goes to the `alert-notifications` topic and alert_notifications rows,
  one per state change of a (rule, labels) fingerprint, re-sent every repeat_interval while firing.
* AlertCommand: an acknowledgement or a mute with an expiry, from the `alert-commands` topic or the CLI.

Notification statuses and the seed's alert_status: firing = active, acknowledged, resolved and
muted are the seed's; nodata is added for a watched metric that went silent.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Literal
from uuid import UUID

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
#: the longest duration a rule may name (window, for, keep_firing_for, repeat_interval, nodata_after):
#: 365 days. Longer is no monitoring, and an unbounded one (`.inf`) overflows the engine's timedelta;
#: migration 0019 holds performance_alerts to the same bound
MAX_DURATION_S = 365 * 86400.0


def _not_blank(v: str) -> str:
    if not re.search(r"\S", v):
        raise ValueError("must not be empty or blank")
    return v


#: a duration's bounds beside its lower one: finite, at most MAX_DURATION_S
_BOUNDED = {"le": MAX_DURATION_S, "allow_inf_nan": False}

#: a name of a rule or metric: 1 to 100 characters, not all whitespace (0019: `~ '[^[:space:]]'`)
RuleName = Annotated[Name, AfterValidator(_not_blank)]


class AlertSeverity(str, Enum):
    info = "info"
    warning = "warning"
    critical = "critical"


#: comparison of a window's value with the threshold; pct_change compares the absolute percent
#: change from the previous window's value of the same series with the threshold (>=)
ConditionOp = Literal[">", ">=", "<", "<=", "=", "!=", "pct_change"]

NotificationStatus = Literal["firing", "resolved", "nodata", "acknowledged", "muted"]


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    id: UUID
    workspace_id: UUID
    alert_name: RuleName
    alert_type: RuleName = "threshold"
    metric: RuleName = Field(description="the windowed aggregate watched, e.g. api_latency.p95")
    condition_op: ConditionOp
    threshold_value: float = Field(allow_inf_nan=False)
    window_s: float = Field(60.0, gt=0, **_BOUNDED, description="window the metric is aggregated over")
    severity: AlertSeverity = AlertSeverity.warning
    notification_channels: list[Name] = Field(default_factory=list)
    is_active: bool = True
    for_duration_s: float = Field(0.0, ge=0, **_BOUNDED, description="condition must hold this long before firing")
    keep_firing_for_s: float = Field(0.0, ge=0, **_BOUNDED, description="stay firing this long after the condition clears")
    repeat_interval_s: float = Field(3600.0, gt=0, **_BOUNDED, description="re-send a firing notification this often")
    nodata_after_s: float | None = Field(None, gt=0, **_BOUNDED, description="a series silent this long is NoData")


def fingerprint(rule_id: UUID, labels: dict[str, str]) -> str:
    """Stable id of one alert instance: the rule and the labels of its series."""
    body = orjson.dumps([str(rule_id), sorted(labels.items())])
    return hashlib.sha256(body).hexdigest()[:16]


class AlertNotification(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    fingerprint: str
    rule_id: UUID
    rule_name: str
    workspace_id: UUID
    severity: AlertSeverity
    status: NotificationStatus
    current_value: float | None = None
    threshold: float
    condition_op: ConditionOp
    window_s: float
    labels: dict[str, str] = Field(default_factory=dict)
    message: str
    triggered_at: AwareDatetime = Field(description="when the alert started firing (or went NoData)")
    resolved_at: AwareDatetime | None = None
    sent_at: AwareDatetime
    repeat: bool = Field(False, description="a re-send of a still-firing alert (repeat_interval)")
    acknowledged_by: str | None = None


class AlertCommand(BaseModel):
    """`ack` an alert instance (by fingerprint), or `mute` a fingerprint or a whole rule until `until`."""

    model_config = ConfigDict(extra="forbid")

    command: Literal["ack", "mute", "unmute"]
    workspace_id: UUID
    fingerprint: str | None = None
    rule_id: UUID | None = None
    until: AwareDatetime | None = Field(None, description="mute expiry (required for mute)")
    by: Annotated[str, StringConstraints(max_length=255)] | None = None
    issued_at: AwareDatetime

    @model_validator(mode="after")
    def _target(self) -> AlertCommand:
        if (self.fingerprint is None) == (self.rule_id is None):
            raise ValueError("name exactly one of fingerprint or rule_id")
        if self.command == "ack" and self.fingerprint is None:
            raise ValueError("ack names a fingerprint")
        if self.command == "mute" and (self.until is None or self.until <= self.issued_at):
            raise ValueError("mute needs an `until` after `issued_at`")
        return self


def describe(rule: AlertRule, value: float | None, labels: dict[str, str], status: str, at: datetime) -> str:
    where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    what = "no data" if value is None else f"{rule.metric} = {value:g} ({rule.condition_op} {rule.threshold_value:g})"
    return f"[{status}] {rule.alert_name}: {what}{' for ' + where if where else ''} at {at.isoformat()}"
