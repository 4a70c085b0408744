"""The deployment files (Dockerfile, docker-compose.yml, deploy/) agree with the code.

Nothing here needs Docker, Kafka or PostgreSQL: the files are parsed and checked against the
CLI, the LEARNSTREAM_* settings and the metric names that streams/metrics.py really exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from streams import metrics
from streams.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "learnstream-dashboard.json"
K8S = ROOT / "deploy" / "k8s"

#: the env files deploy/compose/make-secrets.sh writes (no password in docker-compose.yml)
OWNER_ENV_FILE = "deploy/compose/secrets/owner.env"
WORKER_ENV_FILE = "deploy/compose/secrets/worker.env"
METRICS_PORT = 9464
WORKERS = {"worker-1": 9464, "worker-2": 9465}  # compose service -> host port of its metrics port

# the metrics each consumer of them must show (names as exposed, i.e. with sample suffixes)
DASHBOARD_MUST_SHOW = {
    "learnstream_events_consumed_total",
    "learnstream_rows_inserted_total",
    "learnstream_duplicates_skipped_total",
    "learnstream_invalid_events_total",
    "learnstream_copy_duration_seconds_bucket",
    "learnstream_event_to_row_seconds_bucket",
    "learnstream_consumer_lag_messages",
    "learnstream_db_up",
    "learnstream_windows_closed_total",
    "learnstream_window_open_panes",
    "learnstream_alert_notifications_total",
}
ALERTS_MUST_USE = {
    "learnstream_db_up",
    "learnstream_invalid_events_total",
    "learnstream_consumer_lag_messages",
    "learnstream_db_retries_total",
}

METRIC_NAME = re.compile(r"\blearnstream_[a-zA-Z0-9_:]*")


def exported_metric_names() -> set[str]:
    """Every sample name the worker's /metrics can carry: the collectors in streams.metrics (the
    alert delivery's among them)."""
    names: set[str] = set()
    for obj in vars(metrics).values():
        if isinstance(obj, Counter):
            # prometheus_client keeps a Counter's name without `_total`
            names |= {obj._name + "_total", obj._name + "_created"}
        elif isinstance(obj, Histogram):
            names |= {obj._name + s for s in ("_bucket", "_count", "_sum", "_created")}
        elif isinstance(obj, Gauge):
            names.add(obj._name)
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def env_as_dict(env) -> dict[str, str]:
    """A compose `environment:` in either form (mapping or list of KEY=VALUE) as a dict of strings."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {k: ("" if v is None else str(v)) for k, v in env.items()}
    return dict(item.split("=", 1) for item in env)


def learnstream_settings_known(env_names) -> list[str]:
    """The LEARNSTREAM_* names that no setting reads (LEARNSTREAM_STATE_DIR is read by config.state_dir)."""
    fields = set(Settings.model_fields)
    return sorted(
        n for n in env_names
        if n.startswith("LEARNSTREAM_") and n != "LEARNSTREAM_STATE_DIR"
        and n.removeprefix("LEARNSTREAM_").lower() not in fields
    )


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus_config() -> dict:
    return yaml.safe_load(PROMETHEUS.read_text())


@pytest.fixture(scope="module")
def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def k8s_docs() -> dict[str, list[dict]]:
    return {
        p.name: [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        for p in sorted(K8S.glob("*.y*ml"))
    }


def _one(k8s_docs, kind: str) -> dict:
    found = [d for docs in k8s_docs.values() for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


# ---------------------------------------------------------------------------------- metrics


def test_metric_name_collection_sees_every_collector():
    names = exported_metric_names()
    assert {
        "learnstream_messages_consumed_total",
        "learnstream_dlq_published_total",
        "learnstream_batch_size_events_bucket",
        "learnstream_copy_duration_seconds_sum",
        "learnstream_event_to_row_seconds_count",
        "learnstream_db_up",
        "learnstream_consumer_lag_messages",
    } <= names
    # a Counter is never exposed without `_total`, a Gauge never with it
    assert "learnstream_rows_inserted" not in names
    assert "learnstream_db_up_total" not in names


# ---------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_learnstream_as_non_root():
    text = DOCKERFILE.read_text()
    instructions = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln.split()[1] for ln in instructions if ln.startswith("FROM ")]
    args = dict(
        ln.removeprefix("ARG ").split("=", 1) for ln in instructions if ln.startswith("ARG ") and "=" in ln
    )
    resolved = [args.get(f.strip("${}"), f) if f.startswith("$") else f for f in froms]
    assert resolved and all(img == "python:3.11-slim" for img in resolved)
    assert any(re.search(r"\bpip install \.(\s|$)", ln) for ln in instructions)
    assert 'ENTRYPOINT ["learnstream"]' in instructions
    assert 'CMD ["worker"]' in instructions
    assert f"EXPOSE {METRICS_PORT}" in instructions
    users = [ln.split()[1] for ln in instructions if ln.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    # /metrics must listen on all interfaces inside a container (the setting defaults to 127.0.0.1)
    assert "LEARNSTREAM_METRICS_HOST=0.0.0.0" in text


# ---------------------------------------------------------------------------------- compose


def test_compose_has_exactly_the_stack_services(services):
    assert set(services) == {"kafka", "kafka-users", "kafka-acls", "postgres", "migrate", "worker-1", "worker-2",
                             "prometheus", "alertmanager", "grafana"}


def test_compose_kafka_is_single_node_kraft(services):
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    env = env_as_dict(kafka["environment"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    listeners = dict(listener.split("://", 1) for listener in env["KAFKA_LISTENERS"].split(","))
    assert listeners["SASL_PLAINTEXT"].endswith(":9092") and listeners["CONTROLLER"].endswith(":9093")
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "SASL_PLAINTEXT://kafka:9092"
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols)
    # authenticated everywhere, authorized by ACLs (issue #24)
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin;User:controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the worker declares its topics
    test = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in test and "9092" in test


def test_compose_postgres_superuser_and_roles_come_from_secrets(compose, services):
    pg = services["postgres"]
    assert pg["image"] == "postgres:15"
    env = env_as_dict(pg["environment"])
    # the superuser is postgres, its password a secret; no learnstream process logs in as it
    assert env["POSTGRES_USER"] == "postgres"
    assert "POSTGRES_PASSWORD" not in env and env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert pg["secrets"] == ["postgres_password", "learnstream_owner_password", "learnstream_worker_password"]
    assert {name: s["file"] for name, s in compose["secrets"].items()} == {
        name: f"deploy/compose/secrets/{name}" for name in [*pg["secrets"], "grafana_admin_password", "grafana_db_password"]}
    assert "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro" in pg["volumes"]
    init = (ROOT / "deploy" / "postgres" / "init" / "10-learnstream-roles.sh").read_text()
    for line in ("CREATE ROLE learnstream_owner LOGIN CREATEROLE NOCREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD :'owner_password';",
                 "CREATE ROLE learnstream_worker LOGIN NOCREATEROLE NOCREATEDB NOSUPERUSER NOBYPASSRLS "
                 "PASSWORD :'worker_password';",
                 "GRANT learnstream_service TO learnstream_worker;",
                 "CREATE DATABASE learnstream OWNER learnstream_owner;"):
        assert line in init.splitlines(), line
    assert "/run/secrets/learnstream_owner_password" in init and "/run/secrets/learnstream_worker_password" in init
    # no password literal anywhere in the compose file
    assert "learnstream:learnstream@" not in COMPOSE.read_text()
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume_names = {v.split(":", 1)[0] for v in pg["volumes"]}
    assert volume_names & set(compose.get("volumes") or {}), "postgres data must be on a named volume"


def test_compose_migrate_runs_once_after_postgres(services):
    m = services["migrate"]
    assert m["build"] == "."
    assert m["command"] == ["migrate"]
    assert m["restart"] == "no"
    assert m["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert m["env_file"] == OWNER_ENV_FILE and "environment" not in m


@pytest.mark.parametrize("name", WORKERS)
def test_compose_worker_waits_for_kafka_and_migration(services, name):
    w = services[name]
    assert w["build"] == "."
    assert w["command"] == ["worker"]
    deps = w["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["kafka-acls"]["condition"] == "service_completed_successfully"
    env = env_as_dict(w["environment"])
    assert env["LEARNSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert (env["LEARNSTREAM_KAFKA_SECURITY_PROTOCOL"], env["LEARNSTREAM_KAFKA_SASL_USERNAME"]) == ("SASL_PLAINTEXT", "worker")
    assert w["env_file"] == WORKER_ENV_FILE and "LEARNSTREAM_DATABASE_URL" not in env
    assert env["LEARNSTREAM_METRICS_HOST"] == "0.0.0.0"
    assert env["LEARNSTREAM_METRICS_PORT"] == str(METRICS_PORT)
    assert [str(p) for p in w["ports"]] == [f"127.0.0.1:{WORKERS[name]}:{METRICS_PORT}"]
    # one consumer group: neither overrides the app id
    assert "LEARNSTREAM_APP_ID" not in env
    # healthy = ready: the check fails on a 503 of /readyz (urlopen raises)
    check = w["healthcheck"]
    assert check["test"] == ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen("
                             f"'http://127.0.0.1:{METRICS_PORT}/readyz', timeout=8)"]
    assert (check["timeout"], check["start_period"]) == ("10s", "60s")
    # the workers' alertmanager channel: the stack's Alertmanager
    assert env["LEARNSTREAM_ALERTMANAGER_URL"] == "http://alertmanager:9093"


def test_compose_two_workers_differ_only_in_their_host_port(services):
    one, two = ({k: v for k, v in services[n].items() if k != "ports"} for n in WORKERS)
    assert one == two


def test_compose_env_names_are_real_settings(services):
    for name in WORKERS:
        assert learnstream_settings_known(env_as_dict(services[name]["environment"])) == [], name


def test_compose_prometheus_mounts_the_repo_config(services):
    p = services["prometheus"]
    assert p["image"].startswith("prom/prometheus")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in p["volumes"] if v.startswith("./")}
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    # rule_files in prometheus.yml are relative to the config file's directory
    assert mounts["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    for src in mounts:
        assert (ROOT / src).is_file(), src
    assert "127.0.0.1:9090:9090" in [str(x) for x in p["ports"]]


def test_compose_alertmanager_mounts_the_repo_config(services):
    a = services["alertmanager"]
    assert a["image"].startswith("prom/alertmanager:")
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in a["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in a["command"]
    assert a["ports"] == ["127.0.0.1:9093:9093"]
    assert "http://127.0.0.1:9093/-/ready" in a["healthcheck"]["test"]


def test_compose_grafana_provisions_the_datasource_and_the_dashboard(services):
    g = services["grafana"]
    assert g["image"].startswith("grafana/grafana:")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in g["volumes"] if v.startswith("./")}
    assert mounts == {"./deploy/grafana/provisioning": "/etc/grafana/provisioning",
                      "./deploy/grafana/learnstream-dashboard.json": "/etc/grafana/dashboards/learnstream-dashboard.json",
                      "./deploy/grafana/dashboards": "/etc/grafana/analytics-dashboards"}
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "learnstream.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/etc/grafana/dashboards"]
    # the analytics dashboards: a provider of their own, outside the first one's folder (no uid read twice)
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "analytics.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/etc/grafana/analytics-dashboards"]
    assert "grafana_db_password" in g["secrets"]
    sources = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "learnstream.yml").read_text())["datasources"]
    assert [(d["type"], d["url"], d.get("isDefault", False)) for d in sources] == [
        ("prometheus", "http://prometheus:9090", True), ("alertmanager", "http://alertmanager:9093", False)]
    assert env_as_dict(g["environment"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == mounts[
        "./deploy/grafana/learnstream-dashboard.json"]


# ---------------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_the_worker(prometheus_config):
    jobs = {j["job_name"]: j for j in prometheus_config["scrape_configs"]}
    job = jobs["learnstream"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"{name}:{METRICS_PORT}" for name in WORKERS]
    assert job.get("scrape_interval", prometheus_config["global"]["scrape_interval"]) == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_loads_the_alert_rules(prometheus_config):
    assert [ALERTS.name] == prometheus_config["rule_files"]


def test_prometheus_sends_alerts_to_the_alertmanager(prometheus_config, services):
    (am,) = prometheus_config["alerting"]["alertmanagers"]
    assert [t for sc in am["static_configs"] for t in sc["targets"]] == ["alertmanager:9093"]
    assert "alertmanager" in services


def test_alertmanager_config_routes_everything_to_a_receiver():
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    assert {r["receiver"] for r in config["route"].get("routes", [])} <= receivers


def test_alert_rules_are_well_formed(alert_rules):
    names = [r["alert"] for r in alert_rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alert_rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_alert_rules_cover_the_key_conditions(alert_rules):
    by_metric: dict[str, list[dict]] = {}
    for rule in alert_rules:
        for name in metric_names_in(rule["expr"]):
            by_metric.setdefault(name, []).append(rule)
    assert ALERTS_MUST_USE <= set(by_metric)

    db_down = [r for r in by_metric["learnstream_db_up"] if re.search(r"learnstream_db_up\s*==\s*0", r["expr"])]
    assert db_down and db_down[0]["for"] == "1m"
    lag = [r for r in by_metric["learnstream_consumer_lag_messages"] if "100000" in r["expr"]]
    assert lag and lag[0]["for"] == "10m"
    assert any("rate(learnstream_db_retries_total[5m])" in r["expr"] for r in by_metric["learnstream_db_retries_total"])
    assert any("rate(learnstream_invalid_events_total[5m])" in r["expr"]
               for r in by_metric["learnstream_invalid_events_total"])


def test_alert_expressions_use_only_exported_metrics(alert_rules):
    exported = exported_metric_names()
    unknown = {
        (rule["alert"], name)
        for rule in alert_rules
        for name in metric_names_in(rule["expr"])
        if name not in exported
    }
    assert unknown == set()


# ---------------------------------------------------------------------------------- Grafana


def _dashboard_exprs(dashboard) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard.get("templating", {}).get("list", []):
        q = var.get("query")
        exprs.append(q.get("query", "") if isinstance(q, dict) else str(q or ""))
    return exprs


def test_dashboard_is_an_importable_model(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # the panels' ${DS_PROMETHEUS}: replaced at import, a datasource variable when provisioned
    assert (variables["DS_PROMETHEUS"]["type"], variables["DS_PROMETHEUS"]["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert t["expr"].strip()
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_dashboard_shows_the_required_metrics(dashboard):
    used = set().union(*(metric_names_in(e) for e in _dashboard_exprs(dashboard)))
    assert DASHBOARD_MUST_SHOW <= used
    exprs = "\n".join(_dashboard_exprs(dashboard))
    for hist in ("learnstream_copy_duration_seconds_bucket", "learnstream_event_to_row_seconds_bucket"):
        assert re.search(rf"histogram_quantile\(0\.95,[^\n]*\b{hist}\b", exprs), hist
    # the tables' growth, and the alerts Prometheus fires
    assert 'sum by (table) (increase(learnstream_rows_inserted_total{instance=~"$instance"}[1h]))' in exprs
    assert 'ALERTS{alertstate="firing"' in exprs


def test_dashboard_uses_only_exported_metrics(dashboard):
    exported = exported_metric_names()
    used = set().union(*(metric_names_in(e) for e in _dashboard_exprs(dashboard)))
    assert used - exported == set()


# ---------------------------------------------------------------------------------- Kubernetes


def test_k8s_manifests_have_the_expected_kinds(k8s_docs):
    kinds = {name: [(d["apiVersion"], d["kind"]) for d in docs] for name, docs in k8s_docs.items()}
    assert kinds == {
        "configmap.yaml": [("v1", "ConfigMap")],
        "migrate-job.yaml": [("batch/v1", "Job")],
        "worker-deployment.yaml": [("apps/v1", "Deployment")],
        "worker-pdb.yaml": [("policy/v1", "PodDisruptionBudget")],
        "worker-scaledobject.yaml": [("keda.sh/v1alpha1", "TriggerAuthentication"), ("keda.sh/v1alpha1", "ScaledObject")],
    }
    for docs in k8s_docs.values():
        for d in docs:
            assert d["metadata"]["name"]
    assert (K8S / "README.md").is_file()


def test_k8s_configmap_holds_valid_settings(k8s_docs):
    cm = _one(k8s_docs, "ConfigMap")
    data = cm["data"]
    assert data["LEARNSTREAM_KAFKA_BOOTSTRAP"]
    assert data.get("LEARNSTREAM_METRICS_HOST") == "0.0.0.0"
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    assert learnstream_settings_known(data) == []
    assert "LEARNSTREAM_DATABASE_URL" not in data, "the DSN belongs in the Secret"


def _db_url_from_secret(container, setting: str, secret: str) -> None:
    """`setting` comes from Secret `secret`, and no other DSN is given to the container."""
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env[setting]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (secret, "url")
    dsns = {"LEARNSTREAM_DATABASE_URL", "LEARNSTREAM_ADMIN_DATABASE_URL"}
    assert dsns & set(env) == {setting}


def test_k8s_worker_deployment(k8s_docs):
    dep = _one(k8s_docs, "Deployment")
    cm_name = _one(k8s_docs, "ConfigMap")["metadata"]["name"]
    spec = dep["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())

    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(METRICS_PORT)
    assert ann.get("prometheus.io/path", "/metrics") == "/metrics"

    pspec = pod["spec"]
    assert pspec["terminationGracePeriodSeconds"] == 60
    (c,) = pspec["containers"]
    assert c.get("args", ["worker"]) == ["worker"]
    _db_url_from_secret(c, "LEARNSTREAM_DATABASE_URL", "learnstream-db-worker")
    assert [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e] == [cm_name]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == METRICS_PORT
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"]["path"] == path
        assert c[probe]["httpGet"]["port"] in (METRICS_PORT, "metrics")
    # /readyz may wait health_timeout_s for the loop and as long for SELECT 1 (5 s each by default)
    assert c["readinessProbe"]["timeoutSeconds"] > 2 * Settings().health_timeout_s
    assert c["livenessProbe"]["timeoutSeconds"] > Settings().health_timeout_s
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    # the image's user is 10001; the pod must not be able to run as root
    sc = {**pspec.get("securityContext", {}), **c.get("securityContext", {})}
    assert sc.get("runAsNonRoot") is True


def test_k8s_scaledobject_scales_the_worker_on_the_ingest_groups_lag(k8s_docs):
    """KEDA's Kafka scaler watches every ingest topic in the group the worker commits to, with the
    worker's Kafka credentials and security settings (docs/scaling.md)."""
    so = _one(k8s_docs, "ScaledObject")
    dep = _one(k8s_docs, "Deployment")
    cm = _one(k8s_docs, "ConfigMap")["data"]
    auth = _one(k8s_docs, "TriggerAuthentication")
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    settings = Settings(app_id=cm["LEARNSTREAM_APP_ID"])
    triggers = spec["triggers"]
    assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(settings.source_topics.values())
    for t in triggers:
        meta = t["metadata"]
        assert t["type"] == "kafka"
        assert meta["consumerGroup"] == f"{settings.app_id}-ingest"  # streams/ingest/consumer.py
        assert meta["bootstrapServers"] == cm["LEARNSTREAM_KAFKA_BOOTSTRAP"]
        # KEDA's names: scram_sha256, scram_sha512, plaintext
        assert meta["sasl"] == cm["LEARNSTREAM_KAFKA_SASL_MECHANISM"].lower().replace("-", "_").replace("sha_", "sha")
        assert meta["tls"] == ("enable" if cm["LEARNSTREAM_KAFKA_SECURITY_PROTOCOL"].endswith("SSL") else "disable")
        assert int(meta["lagThreshold"]) < Settings().ready_max_lag  # scale out before workers go unready
        assert t["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {"username": ("learnstream-kafka-worker", "username"),
                    "password": ("learnstream-kafka-worker", "password")}


def test_k8s_pdb_covers_the_workers(k8s_docs):
    pdb = _one(k8s_docs, "PodDisruptionBudget")
    labels = _one(k8s_docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_k8s_migrate_job(k8s_docs):
    job = _one(k8s_docs, "Job")
    pspec = job["spec"]["template"]["spec"]
    assert pspec["restartPolicy"] in ("Never", "OnFailure")
    (c,) = pspec["containers"]
    assert c["args"] == ["migrate"]
    assert "command" not in c, "keep the image's ENTRYPOINT (learnstream)"
    _db_url_from_secret(c, "LEARNSTREAM_ADMIN_DATABASE_URL", "learnstream-db-owner")
    dep_image = _one(k8s_docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert c["image"] == dep_image, "migrate and worker must run the same image"
