"""`learnstream alerts rules add|list|show|enable|disable|rm|apply` and `alerts metrics` against a
real PostgreSQL (each test its own migrated database), through the command as a user runs it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from db.alerts import load_rules, record_notifications
from db.channels import put_channel
from db.pool import connect
from db.rollups import write_rollups
from db.workspaces import add_workspace
from schemas.channels import AlertChannel
from schemas.rollups import Rollup, series_key
from streams.alerts.engine import AlertEngine
from tests.integration.test_cli import run

pytestmark = pytest.mark.services
WS = uuid.UUID("3f0c0000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("3f0c0000-0000-4000-8000-000000000002")
UNKNOWN = uuid.UUID("3f0c0000-0000-4000-8000-0000000000ff")


async def _registered(stack, *ids: uuid.UUID) -> None:
    """Register the workspaces, each with channels `alertmanager` and `ops-hook`."""
    conn = await connect(stack.dsn)
    try:
        for i, ws in enumerate(ids):
            await add_workspace(conn, f"ws{i}", ws)
            await put_channel(conn, AlertChannel(workspace_id=ws, name="alertmanager", kind="alertmanager",
                                                 url="http://127.0.0.1:9093"))
            await put_channel(conn, AlertChannel(workspace_id=ws, name="ops-hook", kind="webhook",
                                                 url="http://127.0.0.1:9/hook", secret="s" * 16))
    finally:
        await conn.close()


async def _rows(stack) -> list[tuple]:
    conn = await connect(stack.dsn)
    try:
        return [tuple(r) for r in await conn.fetch(
            "SELECT workspace_id, alert_name, metric, condition_op, threshold_value, window_s, severity::text, "
            "notification_channels, is_active, for_duration_s, keep_firing_for_s, repeat_interval_s, nodata_after_s, "
            "created_by FROM performance_alerts ORDER BY workspace_id, alert_name")]
    finally:
        await conn.close()


def _ok(*args: str, env: dict) -> str:
    out = run("alerts", *args, env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stderr == b""
    return out.stdout.decode()


async def test_add_list_show_disable_enable_rm(stack):
    await _registered(stack, WS, OTHER)
    env = stack.env()
    rule_id = uuid.UUID(_ok("rules", "add", "--workspace", str(WS), "--name", "latency high", "--metric",
                            "api_latency.p95", "--op", ">", "--threshold", "500", "--window", "5m", "--severity",
                            "critical", "--channel", "alertmanager", "--channel", "ops-hook", "--for", "2m",
                            "--keep-firing-for", "1m", "--repeat-interval", "30m", "--nodata-after", "10m",
                            "--created-by", "dana", env=env).strip())
    other_id = uuid.UUID(_ok("rules", "add", "-w", str(OTHER), "--name", "errors", "--metric", "learning.error_rate",
                             "--op", ">=", "--threshold", "0.25", env=env).strip())
    assert await _rows(stack) == [
        (WS, "latency high", "api_latency.p95", ">", 500.0, 300.0, "critical", ["alertmanager", "ops-hook"], True,
         120.0, 60.0, 1800.0, 600.0, "dana"),
        (OTHER, "errors", "learning.error_rate", ">=", 0.25, 60.0, "warning", [], True, 0.0, 0.0, 3600.0, None, None),
    ]

    assert _ok("rules", "list", env=env).splitlines() == [
        "id                                    workspace                             name          metric"
        "               condition  window  severity  active  channels",
        f"{rule_id}  {WS}  latency high  api_latency.p95      > 500      5m      critical  yes     alertmanager,ops-hook",
        f"{other_id}  {OTHER}  errors        learning.error_rate  >= 0.25    1m      warning   yes     -",
        "2 rules",
    ]
    as_json = orjson.loads(_ok("rules", "list", "--workspace", str(OTHER), "--json", env=env))
    assert as_json == [{
        "id": str(other_id), "workspace_id": str(OTHER), "alert_name": "errors", "alert_type": "threshold",
        "metric": "learning.error_rate", "condition_op": ">=", "threshold_value": 0.25, "window_s": 60.0,
        "severity": "warning", "notification_channels": [], "is_active": True, "for_duration_s": 0.0,
        "keep_firing_for_s": 0.0, "repeat_interval_s": 3600.0, "nodata_after_s": None,
    }]

    # two notifications of the rule: shown, and kept when the rule is removed
    conn = await connect(stack.dsn)
    try:
        rule = next(r for r in await load_rules(conn) if r.id == rule_id)
        engine = AlertEngine([rule.model_copy(update={"for_duration_s": 0.0, "keep_firing_for_s": 0.0})])
        t = datetime(2026, 11, 23, 12, tzinfo=UTC)
        notes = engine.observe(WS, "api_latency.p95", {"host": "a"}, 900, t, 300.0, t)
        notes += engine.observe(WS, "api_latency.p95", {"host": "b"}, 900, t, 300.0, t)
        assert await record_notifications(conn, notes) == 2
        created, updated = await conn.fetchrow("SELECT created_at, updated_at FROM performance_alerts WHERE id = $1",
                                               rule_id)
    finally:
        await conn.close()
    assert _ok("rules", "show", "latency high", env=env).splitlines() == [
        f"rule        latency high ({rule_id})",
        f"workspace   {WS}",
        "metric      api_latency.p95",
        "condition   > 500 over 5m windows",
        "severity    critical",
        "channels    alertmanager,ops-hook",
        "active      yes",
        "for         2m",
        "keep firing 1m",
        "repeat      30m",
        "no data     10m",
        f"created     {created.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z by dana",
        f"updated     {updated.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z",
        "notified    2 notifications; last 2026-11-23 12:00:00Z (firing); 2 open",
    ]
    assert _ok("rules", "show", str(other_id), env=env).splitlines()[0] == f"rule        errors ({other_id})"

    assert _ok("rules", "disable", "latency high", "-w", str(WS), env=env) == \
        f"disabled: rule 'latency high' ({rule_id}) of workspace {WS}\n"
    assert [r[8] for r in await _rows(stack)] == [False, True]
    assert _ok("rules", "disable", str(rule_id), env=env) == \
        f"already disabled: rule 'latency high' ({rule_id}) of workspace {WS}\n"
    assert _ok("rules", "enable", str(rule_id), env=env) == \
        f"enabled: rule 'latency high' ({rule_id}) of workspace {WS}\n"
    assert [r[8] for r in await _rows(stack)] == [True, True]

    assert _ok("rules", "rm", "latency high", env=env) == f"removed rule 'latency high' ({rule_id}) of workspace {WS}\n"
    assert [r[1] for r in await _rows(stack)] == ["errors"]
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM alert_notifications WHERE alert_id = $1", rule_id) == 2
    finally:
        await conn.close()
    missing = run("alerts", "rules", "show", "latency high", env=env)
    assert (missing.returncode, missing.stderr.decode()) == (2, "learnstream: error: no alert rule 'latency high'\n")
    assert _ok("rules", "list", "-w", str(WS), env=env) == \
        f"no alert rules in workspace {WS}; add one with `alerts rules add` or `alerts rules apply`\n"


async def test_add_refuses_what_the_contract_refuses(stack):
    await _registered(stack, WS)
    env = stack.env()
    base = ["alerts", "rules", "add", "-w", str(WS), "--name", "n", "--metric", "api_latency.p95", "--op", ">",
            "--threshold", "1"]

    def refused(*args: str, replace: dict | None = None) -> str:
        argv = list(base)
        for flag, value in (replace or {}).items():
            argv[argv.index(flag) + 1] = value
        out = run(*argv, *args, env=env)
        assert out.returncode == 2, out
        assert b"Traceback" not in out.stderr and out.stdout == b""
        return out.stderr.decode()

    assert "Invalid value for '--op': 'gt' is not one of '>', '>=', '<', '<=', '=', '!=', 'pct_change'." in \
        refused(replace={"--op": "gt"})
    assert refused(replace={"--metric": "api_latency"}) == (
        "learnstream: error: --metric: 'api_latency' is not a metric the windows produce: use engagement.<stat>, "
        "learning.<stat> or <metric_name>.<stat> with a stat of count, sum, min, max, mean, p50, p95, p99 "
        "(`learnstream alerts metrics` lists them)\n")
    assert refused(replace={"--metric": "learning.p95"}).startswith("learnstream: error: --metric: 'learning.p95' is not")
    assert refused(replace={"--threshold": "nan"}) == "learnstream: error: --threshold: Input should be a finite number\n"
    assert refused(replace={"--threshold": "inf"}) == "learnstream: error: --threshold: Input should be a finite number\n"
    assert refused("--window", "0s", "--for", "soon") == (
        "learnstream: error: --for: 'soon': use a number and s, m, h or d (e.g. 30m, 2h)\n")
    assert refused("--window", "0s") == "learnstream: error: --window: Input should be greater than 0\n"
    assert refused(replace={"--name": "x" * 101}) == \
        "learnstream: error: --name: String should have at most 100 characters\n"
    assert refused("--channel", "topic", "--channel", "pager") == (
        f"learnstream: error: --channel: workspace {WS} has no channel 'pager' (`learnstream alerts channels add` adds "
        "one; 'topic' is built in)\n")
    assert refused(replace={"-w": str(UNKNOWN)}) == (
        f"learnstream: error: no workspace {UNKNOWN} (`learnstream workspaces add NAME --id {UNKNOWN}` registers one)\n")
    assert await _rows(stack) == []

    _ok("rules", "add", *base[3:], env=env)
    assert refused() == f"learnstream: error: workspace {WS} already has a rule named 'n'\n"
    assert len(await _rows(stack)) == 1


def _file(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


async def test_apply_plans_then_creates_updates_and_deletes_in_one_go(stack, tmp_path):
    await _registered(stack, WS, OTHER)
    env = stack.env()
    disk = _ok("rules", "add", "-w", str(WS), "--name", "disk full", "--metric", "disk.max", "--op", ">",
               "--threshold", "90", "--channel", "ops-hook", env=env).strip()
    old = _ok("rules", "add", "-w", str(WS), "--name", "old rule", "--metric", "heartbeat.count", "--op", "<",
              "--threshold", "1", env=env).strip()
    _ok("rules", "add", "-w", str(WS), "--name", "queue", "--metric", "queue_depth.mean", "--op", ">=",
        "--threshold", "10", env=env)
    untouched = _ok("rules", "add", "-w", str(OTHER), "--name", "other", "--metric", "disk.max", "--op", ">",
                    "--threshold", "1", env=env).strip()
    before = await _rows(stack)
    path = _file(tmp_path, f"""
workspace: {WS}
rules:
  - name: api latency high
    metric: api_latency.p95
    op: ">"
    threshold: 500
    window: 5m
    severity: critical
    channels: [alertmanager]
    for: 2m
    nodata_after: 10m
  - name: disk full
    metric: disk.max
    op: ">"
    threshold: 95
    severity: critical
  - name: queue
    metric: queue_depth.mean
    op: ">="
    threshold: 10
""")
    dry = run("alerts", "rules", "apply", str(path), env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.decode().splitlines() == [
        f"+ create {WS} 'api latency high': api_latency.p95 > 500 over 5m, critical, channels alertmanager, for 2m, "
        "nodata_after 10m",
        f"~ update {WS} 'disk full': threshold 90 -> 95, severity warning -> critical, channels ops-hook -> -",
        f"- delete {WS} 'old rule' ({old})",
        "plan: 1 to create, 1 to update, 1 to delete, 1 unchanged (1 workspace)",
        "dry run: nothing changed; `--yes` applies this plan",
    ]
    assert await _rows(stack) == before

    done = run("alerts", "rules", "apply", str(path), "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines()[-2:] == [
        "plan: 1 to create, 1 to update, 1 to delete, 1 unchanged (1 workspace)",
        "applied: 1 created, 1 updated, 1 deleted",
    ]
    assert await _rows(stack) == [
        (WS, "api latency high", "api_latency.p95", ">", 500.0, 300.0, "critical", ["alertmanager"], True, 120.0, 0.0,
         3600.0, 600.0, "alerts rules apply rules.yaml"),
        (WS, "disk full", "disk.max", ">", 95.0, 60.0, "critical", [], True, 0.0, 0.0, 3600.0, None, None),
        (WS, "queue", "queue_depth.mean", ">=", 10.0, 60.0, "warning", [], True, 0.0, 0.0, 3600.0, None, None),
        (OTHER, "other", "disk.max", ">", 1.0, 60.0, "warning", [], True, 0.0, 0.0, 3600.0, None, None),
    ]
    conn = await connect(stack.dsn)
    try:
        ids = {r.alert_name: str(r.id) for r in await load_rules(conn)}
    finally:
        await conn.close()
    assert (ids["disk full"], ids["other"]) == (disk, untouched)  # updated in place: same rule, same history

    again = run("alerts", "rules", "apply", str(path), "--yes", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode() == f"no changes: the 3 rules of 1 workspace match {path}\n"

    # the file as templates: --workspace names the workspace; an empty list deletes them all
    path.write_text("rules: []\n")
    empty = run("alerts", "rules", "apply", str(path), "-w", str(OTHER), env=env)
    assert empty.stdout.decode().splitlines() == [
        f"- delete {OTHER} 'other' ({untouched})",
        "plan: 0 to create, 0 to update, 1 to delete, 0 unchanged (1 workspace)",
        "dry run: nothing changed; `--yes` applies this plan",
    ]


async def test_apply_checks_the_whole_file_first(stack, tmp_path):
    await _registered(stack, WS)
    env = stack.env()
    path = _file(tmp_path, f"""
workspace: {WS}
rules:
  - name: fine
    metric: api_latency.p95
    op: ">"
    threshold: 500
  - name: bad op
    metric: api_latency.p95
    op: gt
    threshold: .nan
  - name: fine
    metric: cpu
    op: "<"
    threshold: 1
    window: 5x
  - metric: learning.count
    op: "="
    threshold: 0
    colour: red
  - name: fine
    metric: learning.count
    op: "="
    threshold: 0
""")
    out = run("alerts", "rules", "apply", str(path), "--yes", env=env)
    assert out.returncode == 2
    assert out.stdout == b""
    assert out.stderr.decode().splitlines() == [
        f"learnstream: error: {path}: rule 2 (bad op): op: Input should be '>', '>=', '<', '<=', '=', '!=' or 'pct_change'",
        f"learnstream: error: {path}: rule 2 (bad op): threshold: Input should be a finite number",
        f"learnstream: error: {path}: rule 3 (fine): window: '5x': use a number and s, m, h or d (e.g. 30m, 2h)",
        f"learnstream: error: {path}: rule 4: colour: Extra inputs are not permitted",
        f"learnstream: error: {path}: rule 5 (fine): name: rule 1 has the same name in workspace {WS}",
    ]
    assert await _rows(stack) == []

    for text, message in [
        ("rules:\n  - name: x\n    metric: a.max\n    op: '>'\n    threshold: 1\n",
         "rule 1 (x): workspace: none given: name one at the top of the file, in the rule or with --workspace"),
        # (the position pydantic-core names after "at" changed between its releases)
        ("workspace: x\nrules: []\n", "workspace: Input should be a valid UUID, invalid character: found `x` at "),
        ("rules: [\n", "not valid YAML: expected the node content, but found '<stream end>' (line 2, column 1)"),
        ("- name: x\n", "expected a mapping with `rules:` (a list of rules) and optionally `workspace:`"),
    ]:
        path.write_text(text)
        out = run("alerts", "rules", "apply", str(path), env=env)
        first = out.stderr.decode().splitlines()[0]
        assert out.returncode == 2 and first.startswith(f"learnstream: error: {path}: {message}"), first
        assert first == f"learnstream: error: {path}: {message}" or message.endswith(" at ")
    path.write_text(f"workspace: {WS}\nrules:\n  - {{name: a, metric: disk.max, op: '>', threshold: 1, "
                    "channels: [topic, ops-hook]}\n  - {name: b, metric: disk.max, op: '>', threshold: 1, channels: [pager]}\n")
    out = run("alerts", "rules", "apply", str(path), env=env)
    assert (out.returncode, out.stderr.decode()) == (
        2, f"learnstream: error: {path}: rule 2 (b): channels: workspace {WS} has no channel 'pager' "
           "(`learnstream alerts channels add` adds one; 'topic' is built in)\n")
    path.write_text(f"workspace: {UNKNOWN}\nrules: []\n")
    out = run("alerts", "rules", "apply", str(path), env=env)
    assert (out.returncode, out.stderr.decode()) == (
        2, f"learnstream: error: no workspace {UNKNOWN} (`learnstream workspaces add NAME --id {UNKNOWN}` registers one)\n")


async def test_metrics_lists_what_the_windows_produce(stack):
    t = datetime(2026, 11, 23, 12, tzinfo=UTC)

    def window(ws: uuid.UUID, name: str) -> Rollup:
        series = {"metric_name": name, "tags": {"host": "a"}}
        return Rollup(kind="performance_sample", workspace_id=ws, series_key=series_key(series), series=series,
                      window_s=60, step_s=60, window_start=t, window_end=t.replace(minute=1), closed_at=t,
                      stats={"count": 1, "sum": 1.0, "min": 1.0, "max": 1.0, "mean": 1.0, "p50": 1.0, "p95": 1.0,
                             "p99": 1.0})

    conn = await connect(stack.dsn)
    try:
        await write_rollups(conn, [window(WS, "api_latency"), window(WS, "queue_depth"), window(OTHER, "api_latency"),
                                   window(OTHER, "disk")])
    finally:
        await conn.close()
    lines = _ok("metrics", env=stack.env()).splitlines()
    learning = [f"learning.{s}" for s in ("count", "errors", "error_rate", "processing_ms_mean", "processing_ms_p50",
                                          "processing_ms_p95", "processing_ms_p99", "processing_ms_max")]
    engagement = [f"engagement.{s}" for s in ("updates", "views_gained", "likes_gained", "shares_gained",
                                              "comments_gained", "saves_gained", "resets", "velocity_per_min",
                                              "engagement_rate")]
    perf = [f"{n}.{s}" for n in ("api_latency", "disk", "queue_depth")
            for s in ("count", "sum", "min", "max", "mean", "p50", "p95", "p99")]
    assert [line.split()[0] for line in lines[:-1]] == learning + engagement + perf
    assert lines[0] == "learning.count               event_type, source_system"
    assert lines[8] == "engagement.updates           content_id, platform, connector_id"
    assert lines[17] == "api_latency.count            the samples' tags"
    assert lines[-1] == ("3 performance metric names with closed windows; any other's samples give "
                         "<metric_name>.{count,sum,min,max,mean,p50,p95,p99}")

    mine = orjson.loads(_ok("metrics", "--workspace", str(WS), "--json", env=stack.env()))
    assert [m["metric"] for m in mine] == learning + engagement + [
        f"{n}.{s}" for n in ("api_latency", "queue_depth") for s in ("count", "sum", "min", "max", "mean", "p50", "p95", "p99")]
    assert mine[0] == {"metric": "learning.count", "kind": "learning_event", "labels": ["event_type", "source_system"]}
    assert mine[-1] == {"metric": "queue_depth.p99", "kind": "performance_sample", "labels": None}


@pytest.mark.parametrize("command", [["rules"], ["rules", "add"], ["rules", "list"], ["rules", "show"], ["rules", "enable"],
                                     ["rules", "disable"], ["rules", "rm"], ["rules", "apply"], ["metrics"]])
def test_every_rules_command_has_help(command):
    out = run("alerts", *command, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().startswith(f"Usage: learnstream alerts {' '.join(command)} [OPTIONS]")


async def test_a_rule_over_windows_the_workers_do_not_close_is_added_with_a_note(stack):
    await _registered(stack, WS)
    out = run("alerts", "rules", "add", "-w", str(WS), "--name", "n", "--metric", "disk.max", "--op", ">",
              "--threshold", "1", "--window", "2m", env=stack.env(LEARNSTREAM_WINDOW_HOPPING_S="600"))
    assert out.returncode == 0, out.stderr
    assert uuid.UUID(out.stdout.decode().strip())
    assert out.stderr.decode() == (
        "note: rule 'n' watches 2m windows; the workers close 1m and 10m windows (LEARNSTREAM_WINDOW_TUMBLING_S, "
        "LEARNSTREAM_WINDOW_HOPPING_S), so it fires only where they are configured so\n")
