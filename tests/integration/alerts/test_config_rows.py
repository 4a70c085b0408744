"""Issue #23 item 3 on a real PostgreSQL: configuration rows the contract refuses. Migration 0019's
CHECKs refuse them; a row stored anyway (before 0019, or here with its CHECKs dropped) is skipped by
the loaders, shown `invalid` by the list commands, and the other rows still load; `rules apply`
refuses an unbounded duration in one line per problem, exit 2."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from db.alerts import add_rule, load_rules_checked
from db.channels import list_channels_checked, put_channel
from db.pool import connect
from db.workspaces import add_workspace
from schemas.alerts import AlertRule
from schemas.channels import AlertChannel
from tests.integration.test_cli import run

pytestmark = pytest.mark.services
WS = uuid.UUID("3f0c0000-0000-4000-8000-000000000011")
OTHER = uuid.UUID("3f0c0000-0000-4000-8000-000000000012")

#: the CHECKs of 0019 a test drops to store what a row written before the migration could hold
CHECKS = {"performance_alerts": ["performance_alerts_names_not_blank", "performance_alerts_threshold_finite",
                                 "performance_alerts_durations_bounded"],
          "alert_channels": ["alert_channels_url_http", "alert_channels_secret_length"]}
_RULE = ("INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value, window_s, "
         "repeat_interval_s) VALUES ($1, $2, 'disk.max', '>', $3, $4, $5) RETURNING id")
_CHANNEL = "INSERT INTO alert_channels (workspace_id, name, kind, url, secret) VALUES ($1, $2, 'webhook', $3, $4)"


async def drop_checks(conn: asyncpg.Connection) -> None:
    for table, names in CHECKS.items():
        for name in names:
            await conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


async def test_the_checks_refuse_what_the_contracts_refuse(stack):
    conn = await connect(stack.dsn)
    try:
        for name, threshold, window, repeat in [("", 1, 60, 3600), ("  ", 1, 60, 3600), ("x", float("nan"), 60, 3600),
                                                ("x", float("inf"), 60, 3600), ("x", 1, float("inf"), 3600),
                                                ("x", 1, 60, float("nan")), ("x", 1, 366 * 86400, 3600)]:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(_RULE, WS, name, threshold, window, repeat)
        await conn.execute(_RULE, WS, "fine", 1, 60, 365 * 86400)
        for url, secret in [("ftp://example.com/x", "s" * 16), ("http://example.com/x", "s" * 12),
                            ("http:///nohost", "s" * 16)]:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(_CHANNEL, WS, "hook", url, secret)
        await conn.execute(_CHANNEL, WS, "hook", "HTTPS://user@example.com/x", "s" * 16)
    finally:
        await conn.close()


async def test_loaders_skip_an_invalid_row_and_the_lists_mark_it(stack):
    conn = await connect(stack.dsn)
    try:
        await add_workspace(conn, "ws", WS)
        await add_workspace(conn, "other", OTHER)
        await drop_checks(conn)
        empty = await conn.fetchval(_RULE, WS, "", 1, 60, 3600)
        nan = await conn.fetchval(_RULE, WS, "nan threshold", float("nan"), 60, 3600)
        forever = await conn.fetchval(_RULE, WS, "forever", 1, 60, float("inf"))
        good = AlertRule(id=uuid.uuid4(), workspace_id=OTHER, alert_name="fine", metric="disk.max", condition_op=">",
                         threshold_value=1)
        await add_rule(conn, good)
        await conn.execute(_CHANNEL, WS, "short", "http://example.com/x", "s" * 12)
        await conn.execute(_CHANNEL, WS, "ftp", "ftp://example.com/x", "s" * 16)
        hook = AlertChannel(workspace_id=OTHER, name="hook", kind="webhook", url="http://127.0.0.1:9/h", secret="s" * 16)
        await put_channel(conn, hook)

        rules, invalid = await load_rules_checked(conn)
        assert rules == [good]
        assert sorted(r.key for r in invalid) == sorted([f"{empty} ''", f"{nan} 'nan threshold'",
                                                         f"{forever} 'forever'"])
        assert {r.table for r in invalid} == {"performance_alerts"}
        channels, bad = await list_channels_checked(conn)
        assert channels == [hook]
        assert {(r.workspace_id, r.key) for r in bad} == {(WS, "short"), (WS, "ftp")}
        assert all("s" * 12 not in r.reason for r in bad)
    finally:
        await conn.close()

    env = stack.env()
    out = run("alerts", "rules", "list", env=env)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "1 rule, 3 invalid (skipped by the workers)" in text
    assert "invalid: threshold_value: Input should be a finite number" in text
    assert "invalid: alert_name: String should have at least 1 character" in text
    out = run("alerts", "channels", "list", env=env)
    assert out.returncode == 0, out.stderr.decode()
    lines = {line.split()[1]: line for line in out.stdout.decode().splitlines()[1:]}
    assert "invalid:" in lines["short"] and "a webhook secret has 16 to 512 characters" in lines["short"]
    assert "invalid:" in lines["ftp"] and "http:// or https://" in lines["ftp"]
    assert "invalid" not in lines["hook"]
    assert "s" * 12 not in out.stdout.decode()


async def test_rules_apply_refuses_an_unbounded_duration(stack, tmp_path):
    conn = await connect(stack.dsn)
    try:
        await add_workspace(conn, "ws", WS)
    finally:
        await conn.close()
    path = tmp_path / "rules.yaml"
    path.write_text(f"""
workspace: {WS}
rules:
  - {{name: a, metric: disk.max, op: '>', threshold: 1, nodata_after: .inf}}
  - {{name: b, metric: disk.max, op: '>', threshold: 1, repeat_interval: .inf}}
  - {{name: c, metric: disk.max, op: '>', threshold: 1, window: 400d}}
  - {{name: '  ', metric: disk.max, op: '>', threshold: 1}}
""")
    out = run("alerts", "rules", "apply", str(path), "--yes", env=stack.env())
    assert out.returncode == 2
    assert out.stderr.decode().splitlines() == [
        f"learnstream: error: {path}: rule 1 (a): nodata_after: inf: a duration must be finite",
        f"learnstream: error: {path}: rule 2 (b): repeat_interval: inf: a duration must be finite",
        f"learnstream: error: {path}: rule 3 (c): window: '400d': at most 365d",
        f"learnstream: error: {path}: rule 4 (  ): name: must not be empty or blank",
    ]
    out = run("alerts", "rules", "add", "-w", str(WS), "--name", "x", "--metric", "disk.max", "--op", ">",
              "--threshold", "1", "--repeat-interval", "inf", env=stack.env())
    assert out.returncode == 2 and out.stderr.decode().startswith("learnstream: error:"), out.stderr.decode()
    conn = await connect(stack.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM performance_alerts") == 0
    finally:
        await conn.close()
