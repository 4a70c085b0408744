"""Rule specs, the metric catalog and the plan of a rules file (no I/O)."""

from __future__ import annotations

import uuid

import pytest

from db.rollups import ROLLUP_TABLES
from schemas.alert_rules import RuleInvalid, duration_s, format_duration, parse_spec, to_rule
from schemas.alerts import AlertRule
from schemas.rollups import Rollup
from streams.alerts.catalog import check_metric, fixed_metrics, stats, watchable
from streams.alerts.rules import RulesFileInvalid, plan, read_rules_file, render

WS = uuid.UUID(int=1)
OTHER = uuid.UUID(int=2)


@pytest.mark.parametrize("text, seconds", [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0),
                                           ("0.5s", 0.5), (" 1.5m ", 90.0), (45, 45.0), (2.5, 2.5)])
def test_durations(text, seconds):
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["5", "5x", "m", "-1s", "1 m", True])
def test_durations_refused(text):
    with pytest.raises(ValueError, match="use a number and s, m, h or d"):
        duration_s(text)


def test_durations_are_written_in_the_largest_exact_unit():
    assert [format_duration(s) for s in (0, 0.5, 59, 60, 90, 300, 3600, 5400, 86400, None)] == \
        ["0s", "0.5s", "59s", "1m", "90s", "5m", "1h", "90m", "1d", "-"]


def test_a_spec_becomes_the_rule_contract_with_its_defaults():
    spec = parse_spec({"name": "slow", "metric": "api_latency.p95", "op": ">", "threshold": 500, "window": "5m",
                       "for": "2m", "channels": ["alertmanager"], "enabled": False})
    rule = to_rule(spec, WS, uuid.UUID(int=9))
    assert rule == AlertRule(id=uuid.UUID(int=9), workspace_id=WS, alert_name="slow", metric="api_latency.p95",
                             condition_op=">", threshold_value=500, window_s=300, notification_channels=["alertmanager"],
                             for_duration_s=120, is_active=False)
    assert (rule.severity, rule.repeat_interval_s, rule.keep_firing_for_s, rule.nodata_after_s) == \
        ("warning", 3600.0, 0.0, None)


def test_errors_name_the_spec_fields():
    with pytest.raises(RuleInvalid) as exc:
        to_rule(parse_spec({"name": "", "metric": "m.max", "op": "gt", "window": 0, "repeat_interval": "0s",
                            "severity": "loud"}), WS, uuid.UUID(int=9))
    assert exc.value.problems == [
        ("name", "String should have at least 1 character"),
        ("op", "Input should be '>', '>=', '<', '<=', '=', '!=' or 'pct_change'"),
        ("threshold", "Field required"),
        ("window", "Input should be greater than 0"),
        ("severity", "Input should be 'info', 'warning' or 'critical'"),
        ("repeat_interval", "Input should be greater than 0"),
    ]
    with pytest.raises(RuleInvalid) as exc:
        parse_spec({"name": "x", "for": "soon", "threshhold": 1})
    assert exc.value.problems == [("for", "'soon': use a number and s, m, h or d (e.g. 30m, 2h)"),
                                  ("threshhold", "Extra inputs are not permitted")]
    with pytest.raises(RuleInvalid) as exc:
        parse_spec(["name", "x"])
    assert exc.value.problems == [("", "a rule is a mapping of fields, not list")]


def test_the_catalog_is_what_the_runtime_observes_of_each_rollup_table():
    assert stats("performance_sample") == ("count", "sum", "min", "max", "mean", "p50", "p95", "p99")
    names = [m.metric for m in fixed_metrics()]
    assert names[:2] == ["learning.count", "learning.errors"] and "engagement.velocity_per_min" in names
    assert len(names) == len(stats("learning_event")) + len(stats("engagement_update"))
    assert {m.labels for m in fixed_metrics()} == {("event_type", "source_system"),
                                                   ("content_id", "platform", "connector_id")}
    assert [m.metric for m in watchable("performance_sample", "api.latency")][-1] == "api.latency.p99"
    # every kind of window has its rollup table, so its metrics are listed
    assert set(ROLLUP_TABLES) == set(Rollup.model_fields["kind"].annotation.__args__)


@pytest.mark.parametrize("metric", ["api_latency.p95", "api.latency.max", "learning.error_rate",
                                    "engagement.views_gained", "processing_time_ms.p95"])
def test_metrics_the_windows_produce(metric):
    assert check_metric(metric) is None


@pytest.mark.parametrize("metric", ["api_latency", "api_latency.p90", ".p95", "learning.p95", "engagement.count",
                                    "learning.views_gained"])
def test_metrics_they_do_not(metric):
    assert check_metric(metric).startswith(f"{metric!r} is not a metric the windows produce")


def _rule(name: str, ws=WS, **kw) -> AlertRule:
    return AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name=name, metric=kw.pop("metric", "disk.max"),
                     condition_op=kw.pop("condition_op", ">"), threshold_value=kw.pop("threshold_value", 90), **kw)


FILE = f"""
workspace: {WS}
rules:
  - name: disk full
    metric: disk.max
    op: ">"
    threshold: 95
    repeat_interval: 30m
  - name: same
    metric: disk.max
    op: ">"
    threshold: 90
  - name: new
    workspace: {OTHER}
    metric: learning.error_rate
    op: ">="
    threshold: 0.1
    window: 5m
"""


def test_a_plan_creates_updates_and_deletes_to_match_the_file():
    desired = read_rules_file(FILE, "f.yaml")
    assert desired.workspaces == [WS, OTHER]
    disk, same, gone = _rule("disk full"), _rule("same"), _rule("gone")
    elsewhere = _rule("elsewhere", ws=uuid.UUID(int=3))
    p = plan(desired, [disk, same, gone, elsewhere])
    assert [(c.action, c.rule.alert_name) for c in p.changes] == [("update", "disk full"), ("create", "new"),
                                                                 ("delete", "gone")]
    update = p.changes[0]
    assert update.rule.id == disk.id
    assert update.fields == (("threshold", "90", "95"), ("repeat_interval", "1h", "30m"))
    assert render(p, "f.yaml") == [
        f"~ update {WS} 'disk full': threshold 90 -> 95, repeat_interval 1h -> 30m",
        f"+ create {OTHER} 'new': learning.error_rate >= 0.1 over 5m, warning",
        f"- delete {WS} 'gone' ({gone.id})",
        "plan: 1 to create, 1 to update, 1 to delete, 1 unchanged (2 workspaces)",
    ]
    applied = [c.rule for c in p.changes if c.action != "delete"] + [same, elsewhere]
    again = plan(read_rules_file(FILE, "f.yaml"), applied)
    assert (again.changes, again.unchanged) == ([], 3)
    assert render(again, "f.yaml") == ["no changes: the 3 rules of 2 workspaces match f.yaml"]


def test_the_workspace_comes_from_the_rule_the_file_or_the_command():
    body = "rules:\n  - {name: a, metric: disk.max, op: '>', threshold: 1}\n"
    assert read_rules_file(body, "t.yaml", WS).rules[0].workspace_id == WS
    with pytest.raises(RulesFileInvalid) as exc:
        read_rules_file(f"workspace: {WS}\n" + body, "t.yaml", OTHER)
    assert exc.value.problems == [f"t.yaml: the file is for workspace {WS}, --workspace says {OTHER}"]
    empty = read_rules_file(f"workspace: {WS}\nrules: []\n", "t.yaml")
    assert (empty.rules, empty.workspaces) == ([], [WS])
