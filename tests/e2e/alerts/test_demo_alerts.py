"""`learnstream demo`'s alert step (issue #13) on a test's own stack: the rule is added with the CLI
(`alerts rules add`, after `workspaces add` and `alerts channels add`), a worker with the demo's
2 s windows fires it on a live spike, and a local Alertmanager (Debian's prometheus-alertmanager,
started by the step) holds the alert, read back through its v2 API, until it resolves. Without
Alertmanager the step says so in one line and still shows the rule firing on the topic."""

from __future__ import annotations

import pytest

from streams.config import Settings
from streams.devkit.demo import (
    ALERTMANAGER_MISSING,
    DEMO_CHANNEL,
    DEMO_RULE,
    DEMO_WINDOWS,
    outbound_allow,
    show_alerts,
)
from streams.devkit.services import free_port
from streams.devkit.services.monitoring import find_binary
from tests.support import metric

pytestmark = pytest.mark.services

WINDOWS = {f"LEARNSTREAM_{k.upper()}": str(v) for k, v in DEMO_WINDOWS.items()}


def test_the_demos_cli_rule_fires_into_a_local_alertmanager(stack, start_worker, tmp_path, monkeypatch, capsys):
    am_port = free_port()
    env = stack.env(**WINDOWS, **outbound_allow(am_port))  # the demo allows its own Alertmanager, as here
    for k, v in env.items():
        if k.startswith("LEARNSTREAM_"):
            monkeypatch.setenv(k, v)
    settings = Settings()
    worker = start_worker(**WINDOWS, **outbound_allow(am_port))
    installed = find_binary("alertmanager") is not None

    shown = show_alerts(settings, worker.metrics_port, cli_env=env, am_dir=tmp_path / "alertmanager", am_port=am_port)
    out = capsys.readouterr().out

    # the rule came from the CLI, and the demo printed each command it ran
    ran = [c[:3] if c[0] == "alerts" else c[:2] for c in shown.commands]
    assert ran == [["workspaces", "add"], *([["alerts", "channels", "add"]] if installed else []),
                   ["alerts", "rules", "add"]]
    assert "$ learnstream alerts rules add -w " in out and f"--name '{DEMO_RULE['name']}'" in out
    assert shown.latency is not None
    mine = {n["rule_name"] for n in shown.latency.notifications}
    assert mine == {DEMO_RULE["name"]}
    assert shown.latency.statuses().get("firing", 0) >= 1 and shown.latency.statuses().get("resolved", 0) >= 1
    assert shown.good, out

    if not installed:
        assert ALERTMANAGER_MISSING in out
        assert shown.alertmanager_url is None
        return
    assert ALERTMANAGER_MISSING not in out
    assert f"--kind alertmanager --url {shown.alertmanager_url}" in out
    # Alertmanager returned the rule's alerts, by its exact name, one per host and spike window, each resolved
    alerts = shown.alertmanager_alerts
    assert alerts, out
    assert {a["labels"]["alertname"] for a in alerts} == {"api latency high"}
    assert {a["labels"]["severity"] for a in alerts} == {"warning"}
    assert {a["labels"]["host"] for a in alerts} <= {"web-0", "web-1", "web-2", "web-3"}
    assert {a["status"]["state"] for a in alerts} <= {"active", "unprocessed"}
    firing = shown.latency.statuses()["firing"]
    assert len(alerts) == firing, (alerts, shown.latency.notifications)
    assert shown.alertmanager_resolved == {(a["labels"]["fingerprint"], a["startsAt"]) for a in alerts}
    assert "alertname='api latency high' severity=warning" in out
    assert "resolved (left the active alerts)" in out
    m = worker.metrics()
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="delivered") == \
        firing + shown.latency.statuses()["resolved"]
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="alertmanager", outcome="dead_lettered") == 0
    assert f"to channel {DEMO_CHANNEL} (kind alertmanager), 0 dead-lettered" in out
    # cleaned up with the CLI, and Alertmanager stopped
    from tests.integration.test_cli import run

    listed = run("alerts", "rules", "list", env=env)
    assert DEMO_RULE["name"] not in listed.stdout.decode()
    channels = run("alerts", "channels", "list", env=env)
    assert DEMO_CHANNEL not in channels.stdout.decode()
    assert "Alertmanager stopped" in out


def test_without_alertmanager_the_step_says_so_in_one_line_and_the_cli_rule_still_fires(
        stack, start_worker, tmp_path, monkeypatch, capsys):
    from streams.devkit.services import monitoring

    env = stack.env(**WINDOWS)
    for k, v in env.items():
        if k.startswith("LEARNSTREAM_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setattr(monitoring, "find_binary", lambda name: None)
    worker = start_worker(**WINDOWS)

    shown = show_alerts(Settings(), worker.metrics_port, cli_env=env, am_dir=tmp_path / "alertmanager")
    out = capsys.readouterr().out

    assert [line.strip() for line in out.splitlines() if "Alertmanager" in line] == [ALERTMANAGER_MISSING]
    assert shown.alertmanager_url is None and shown.alertmanager_alerts == []
    assert [c[:3] for c in shown.commands][1:] == [["alerts", "rules", "add"]]
    assert "--channel" not in out
    assert shown.latency is not None and {n["rule_name"] for n in shown.latency.notifications} == {DEMO_RULE["name"]}
    assert shown.good, out
    assert not (tmp_path / "alertmanager").exists()
