"""The shared Alertmanager of deploy/ (a real one, with deploy/alertmanager/alertmanager.yml): a
workspace's alert, built by the worker's own payload code from a hostile rule, cannot inhibit the
operator's alert that Prometheus (with deploy/prometheus/prometheus.yml) sends."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from schemas.alerts import AlertNotification
from streams.alerts.delivery.payloads import alertmanager_body
from streams.devkit.services.monitoring import find_binary, start_alertmanager

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=10) as resp:
        return json.loads(resp.read())


def test_a_tenants_critical_alert_does_not_inhibit_the_operators_warning(tmp_path):
    if find_binary("alertmanager") is None:
        pytest.fail("Alertmanager is not installed: run `learnstream services monitoring` (make test does)")
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    [retries] = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "LearnstreamDatabaseRetries"]
    assert retries["labels"]["severity"] == "warning"
    # what Prometheus sends for that rule: the rule's labels, the series' and the external labels
    operator = {"alertname": "LearnstreamDatabaseRetries", **retries["labels"], "instance": "worker-1:9464",
                "table": "learning_events", **prometheus["global"].get("external_labels", {})}
    now = datetime.now(UTC)
    # a workspace's rule named like it, critical, whose series labels claim the operator's origin
    hostile = AlertNotification(
        fingerprint="0123456789abcdef", rule_id=uuid4(), rule_name="LearnstreamDatabaseRetries", workspace_id=uuid4(),
        severity="critical", status="firing", current_value=1.0, threshold=0.0, condition_op=">", window_s=10.0,
        labels={"instance": "worker-1:9464", "origin": "operator", "severity": "critical"}, message="m",
        triggered_at=now, sent_at=now)

    with start_alertmanager(DEPLOY / "alertmanager" / "alertmanager.yml", None, tmp_path / "am") as am:
        _post(am.url, json.dumps([{"labels": operator, "annotations": {"summary": "s"}}]).encode())
        _post(am.url, alertmanager_body([hostile], now, 300, ""))
        deadline = time.monotonic() + 10
        while len(got := _alerts(am.url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(got) == 2, got
        [theirs] = [a for a in got if "rule_id" in a["labels"]]
        [ours] = [a for a in got if "rule_id" not in a["labels"]]
        # the operator's warning is active, inhibited by nothing
        assert (ours["status"]["state"], ours["status"]["inhibitedBy"]) == ("active", [])
        assert (theirs["labels"]["origin"], theirs["labels"]["series_origin"]) == ("tenant", "operator")
