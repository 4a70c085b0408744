"""The deployment files expose nothing beyond this host by default (issue #24): every port compose
publishes is bound to loopback, Prometheus has no lifecycle or admin API, Grafana's admin password
comes from a secret (no literal), Kubernetes publishes no Service on the nodes or a load balancer,
and no tenant alert can inhibit an operator alert in the shared Alertmanager."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
K8S = ROOT / "deploy" / "k8s"

LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}
#: the Prometheus flags that open HTTP endpoints able to stop, reload or wipe it
PROMETHEUS_DANGEROUS_FLAGS = ("--web.enable-lifecycle", "--web.enable-admin-api", "--web.enable-remote-write-receiver")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def host_ip(port) -> str | None:
    """The host address a compose port entry binds to (None: every interface)."""
    if isinstance(port, dict):  # long syntax
        return port.get("host_ip")
    text = str(port)
    if text.startswith("["):  # [::1]:9090:9090
        return text[: text.index("]") + 1]
    parts = text.split(":")
    return parts[0] if len(parts) == 3 else None  # HOST:CONTAINER or CONTAINER: all interfaces


def test_host_ip_reads_every_port_syntax():
    assert host_ip("9090:9090") is None and host_ip("9090") is None and host_ip(9090) is None
    assert host_ip("127.0.0.1:9090:9090") == "127.0.0.1" and host_ip("0.0.0.0:9090:9090") == "0.0.0.0"
    assert host_ip("[::1]:9090:9090") == "[::1]"
    assert host_ip({"target": 9090, "published": 9090}) is None
    assert host_ip({"target": 9090, "published": 9090, "host_ip": "127.0.0.1"}) == "127.0.0.1"


def test_compose_publishes_no_port_on_every_interface(services):
    published = {name: [host_ip(p) for p in svc.get("ports", [])] for name, svc in services.items()}
    assert {name: ips for name, ips in published.items() if any(ip not in LOOPBACK for ip in ips)} == {}
    # the monitoring ports are published (to this host) as the compose header says
    assert {n for n, ips in published.items() if ips} >= {"worker-1", "worker-2", "prometheus", "alertmanager", "grafana"}
    assert [n for n, svc in services.items() if svc.get("network_mode") == "host"] == []


def test_compose_prometheus_has_no_lifecycle_or_admin_api(services):
    for name, svc in services.items():
        command = svc.get("command") or []
        words = command.split() if isinstance(command, str) else [str(w) for w in command]
        assert [w for w in words if w.split("=")[0] in PROMETHEUS_DANGEROUS_FLAGS] == [], name


def test_compose_grafana_admin_password_is_a_secret_not_a_literal(services):
    g = services["grafana"]
    env = g["environment"] if isinstance(g["environment"], dict) else dict(e.split("=", 1) for e in g["environment"])
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "grafana_admin_password" in g["secrets"]
    top = yaml.safe_load(COMPOSE.read_text())["secrets"]
    assert top["grafana_admin_password"]["file"].startswith("deploy/compose/secrets/")
    assert "deploy/compose/secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "admin/admin" not in COMPOSE.read_text()


def test_k8s_publishes_nothing_on_the_nodes():
    docs = [d for p in sorted(K8S.glob("*.y*ml")) for d in yaml.safe_load_all(p.read_text()) if d]
    services = [d for d in docs if d["kind"] == "Service"]
    assert [s["metadata"]["name"] for s in services if s["spec"].get("type") in ("NodePort", "LoadBalancer")] == []
    for d in docs:
        pod = (d.get("spec", {}).get("template") or {}).get("spec", {})
        assert not pod.get("hostNetwork"), d["metadata"]["name"]
        ports = [p for c in pod.get("containers", []) for p in c.get("ports", [])]
        assert [p for p in ports if "hostPort" in p] == [], d["metadata"]["name"]


# ---------------------------------------------------------------------------------- Alertmanager

PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
OPERATOR = ("origin", "=", "operator")


def matcher(text: str) -> tuple[str, str, str]:
    """An Alertmanager matcher string (`name="value"`, `name=~"re"`, `name!="v"`) as (name, op, value)."""
    m = re.fullmatch(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*', text)
    assert m, text
    return m.group(1), m.group(2), m.group(3)


def test_only_operator_alerts_may_inhibit():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    rules = config.get("inhibit_rules") or []
    assert rules, "the shared Alertmanager has inhibit rules; each is checked below"
    for rule in rules:
        # the deprecated maps would bypass the matchers checked here
        assert not {"source_match", "source_match_re"} & set(rule), rule
        assert OPERATOR in [matcher(m) for m in rule["source_matchers"]], rule
    # Prometheus labels its alerts origin="operator"; a workspace's alerts say "tenant" (payloads.py)
    assert yaml.safe_load(PROMETHEUS.read_text())["global"]["external_labels"] == {"origin": "operator"}
    from streams.alerts.delivery.payloads import RESERVED_LABELS, TENANT_ORIGIN

    assert "origin" in RESERVED_LABELS and TENANT_ORIGIN != "operator"


def test_matcher_reads_alertmanagers_forms():
    assert matcher('origin="operator"') == OPERATOR
    assert matcher("severity=~critical|page") == ("severity", "=~", "critical|page")
    assert matcher('origin!="tenant"') == ("origin", "!=", "tenant")


def test_make_secrets_writes_every_kafka_password_compose_reads_privately(tmp_path):
    """The Kafka principals' passwords are generated with the others (0600 kafka.env in the 0700
    secrets dir, git-ignored), not typed into a world-readable `.env`; every KAFKA_*_PASSWORD the
    compose file interpolates is in it, and a second run keeps them."""
    import shutil
    import stat
    import subprocess

    script = tmp_path / "make-secrets.sh"
    shutil.copy(ROOT / "deploy" / "compose" / "make-secrets.sh", script)
    subprocess.run(["sh", str(script)], check=True, capture_output=True)
    env = tmp_path / "secrets" / "kafka.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert stat.S_IMODE(env.parent.stat().st_mode) == 0o700
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    wanted = set(re.findall(r"\$\{(KAFKA_[A-Z]+_PASSWORD)", COMPOSE.read_text()))
    assert wanted == {"KAFKA_ADMIN_PASSWORD", "KAFKA_CONTROLLER_PASSWORD", "KAFKA_WORKER_PASSWORD",
                      "KAFKA_PRODUCER_PASSWORD", "KAFKA_ALERTS_PASSWORD"}
    assert set(values) == wanted
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", v) for v in values.values()), values
    assert len(set(values.values())) == 5
    subprocess.run(["sh", str(script)], check=True, capture_output=True)
    assert dict(line.split("=", 1) for line in env.read_text().splitlines()) == values
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/compose/secrets/" in ignored and ".env" in ignored
