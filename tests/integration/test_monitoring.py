"""`learnstream services monitoring` and its helpers: Debian's Prometheus and Alertmanager started on
free loopback ports, and the deploy/ configs checked by promtool and amtool themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from streams.devkit.services import ServicesError, port_is_free
from streams.devkit.services.monitoring import BINARIES, find_binary, start_alertmanager, start_prometheus

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

AM_CONFIG = "route:\n  receiver: keep\nreceivers:\n  - name: keep\n"


def get_json(url: str, data: bytes | None = None):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def tool(name: str) -> str:
    path = find_binary(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `learnstream services monitoring` (make test does)")
    return str(path)


def test_services_monitoring_is_idempotent():
    out = subprocess.run([sys.executable, "-m", "streams.cli", "services", "monitoring"], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "prometheus: /usr/bin/prometheus (already installed)",
        "promtool: /usr/bin/promtool (already installed)",
        "alertmanager: /usr/bin/prometheus-alertmanager (already installed)",
        "amtool: /usr/bin/amtool (already installed)",
    ]


def test_find_binary_knows_debians_names():
    assert {name: str(find_binary(name)) for name in BINARIES} == {
        "prometheus": "/usr/bin/prometheus", "promtool": "/usr/bin/promtool",
        "alertmanager": "/usr/bin/prometheus-alertmanager", "amtool": "/usr/bin/amtool"}
    with pytest.raises(ValueError, match="unknown monitoring binary 'grafana'"):
        find_binary("grafana")


def test_two_alertmanagers_side_by_side_keep_alerts_and_stop(tmp_path):
    config = tmp_path / "am.yml"
    config.write_text(AM_CONFIG)
    with start_alertmanager(config, None, tmp_path / "a") as one, start_alertmanager(config, None, tmp_path / "b") as two:
        assert one.port != two.port
        assert get_json(f"{one.url}/api/v2/status")["cluster"]["status"] == "disabled"
        alert = [{"labels": {"alertname": "Probe", "severity": "warning"}, "annotations": {"summary": "s"}}]
        get_json(f"{one.url}/api/v2/alerts", json.dumps(alert).encode())
        got = get_json(f"{one.url}/api/v2/alerts")
        assert [(a["labels"], a["annotations"], a["status"]["state"]) for a in got] == [
            ({"alertname": "Probe", "severity": "warning"}, {"summary": "s"}, "active")]
        assert get_json(f"{two.url}/api/v2/alerts") == []  # no gossip between them
    assert one.proc.returncode is not None and two.proc.returncode is not None
    assert port_is_free(one.port) and port_is_free(two.port)


def test_prometheus_starts_with_the_given_config_and_stops(tmp_path):
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs: []\n")
    prom = start_prometheus(config, None, tmp_path / "p")
    try:
        loaded = yaml.safe_load(get_json(f"{prom.url}/api/v1/status/config")["data"]["yaml"])
        assert loaded["global"]["scrape_interval"] == "1s"
        assert (tmp_path / "p" / "tsdb").is_dir()
    finally:
        prom.stop()
    assert prom.proc.returncode == 0
    with pytest.raises(urllib.error.URLError):
        get_json(f"{prom.url}/-/ready")


def test_a_bad_config_is_one_clear_error_with_the_log(tmp_path):
    config = tmp_path / "am.yml"
    config.write_text("route: [not, a, route]\n")
    with pytest.raises(ServicesError) as err:
        start_alertmanager(config, None, tmp_path / "a")
    first, *rest = str(err.value).splitlines()
    assert first == "alertmanager exited with status 1 before it was ready"
    assert rest[0] == f"--- last lines of {tmp_path / 'a' / 'alertmanager.log'} ---"


def test_promtool_accepts_the_alert_rules_and_the_prometheus_config():
    rules = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
    out = subprocess.run([tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.splitlines()) == (0, [f"Checking {ALERTS}", f"  SUCCESS: {rules} rules found", ""])
    out = subprocess.run([tool("promtool"), "check", "config", "deploy/prometheus/prometheus.yml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " SUCCESS: deploy/prometheus/prometheus.yml is valid prometheus config file syntax" in out.stdout.splitlines()


def test_amtool_accepts_the_alertmanager_config():
    out = subprocess.run([tool("amtool"), "check-config", "deploy/alertmanager/alertmanager.yml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.splitlines()[0]) == (0, "Checking 'deploy/alertmanager/alertmanager.yml'  SUCCESS")
