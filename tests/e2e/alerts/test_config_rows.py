"""Issue #23 item 3 end to end: a worker whose database holds an alert rule with an empty name and a
NaN threshold, and webhook channels with a 12-character secret and an ftp:// url (rows written
before migration 0019's CHECKs: dropped here), starts, skips those rows (logged once, counted in
learnstream_config_rows_invalid{table}), and another workspace's rule still fires and its signed
webhook is delivered. Before, every worker crashed on start (`validation errors for AlertRule`)."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest

from db.alerts import add_rule
from db.pool import connect
from schemas.alerts import AlertRule
from streams.alerts.delivery.payloads import verify_signature
from streams.publish import publish_messages
from tests.e2e.alerts.test_delivery import LOCAL
from tests.integration.alerts.test_config_rows import drop_checks
from tests.integration.test_cli import run
from tests.support import SMALL, metric, sample, window_base, workspace_messages

pytestmark = pytest.mark.services
SECRET = "test-secret-0123456789"


async def test_invalid_rule_and_channel_rows_are_skipped_and_another_workspaces_alert_is_delivered(
        stack, start_worker, receiver):
    bad_ws, good_ws = uuid.uuid4(), uuid.uuid4()
    out = run("alerts", "channels", "add", "hook", "-w", str(good_ws), "--kind", "webhook", "--url",
              f"{receiver.url}/hook", env=stack.env(LEARNSTREAM_CHANNEL_SECRET=SECRET, **LOCAL))
    assert out.returncode == 0, out.stderr.decode()
    conn = await connect(stack.dsn)
    try:
        await drop_checks(conn)
        await conn.execute(
            "INSERT INTO performance_alerts (workspace_id, alert_name, metric, condition_op, threshold_value, window_s, "
            "notification_channels) VALUES ($1, '', 'api_latency.max', '>', 'NaN', 10, '{short}')", bad_ws)
        await conn.execute(
            "INSERT INTO alert_channels (workspace_id, name, kind, url, secret) VALUES "
            "($1, 'short', 'webhook', $2, 'twelve-chars'), ($1, 'ftp', 'webhook', 'ftp://example.com/x', $3)",
            bad_ws, f"{receiver.url}/short", SECRET)
        await add_rule(conn, AlertRule(
            id=uuid.uuid4(), workspace_id=good_ws, alert_name="latency spike", metric="api_latency.max",
            condition_op=">", threshold_value=100, window_s=10, severity="critical", notification_channels=["hook"]))
    finally:
        await conn.close()

    worker = start_worker(**SMALL, **LOCAL)  # the receiver is on 127.0.0.1
    base = window_base()
    events = [sample(str(good_ws), base + win * 10 + j * 2, v, "api_latency", host="a")
              for win, v in {0: 50, 1: 500, 2: 50, 3: 50}.items() for j in range(5)]
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], workspace_messages(events))

    deadline = time.monotonic() + 90
    while not any(orjson.loads(b)["status"] == "firing" for _h, b in receiver.got.get("/hook", [])):
        assert worker.proc.poll() is None, worker.log()[-3000:]
        assert time.monotonic() < deadline, "the other workspace's webhook was not delivered"
        await asyncio.sleep(0.5)
    headers, body = receiver.got["/hook"][0]
    assert verify_signature(SECRET, headers, body, now=time.time())
    assert orjson.loads(body)["workspace_id"] == str(good_ws)

    m = worker.metrics()
    assert metric(m, "learnstream_config_rows_invalid", table="performance_alerts") == 1
    assert metric(m, "learnstream_config_rows_invalid", table="alert_channels") == 2
    log = worker.log()
    assert log.count("invalid performance_alerts row skipped: workspace " + str(bad_ws)) == 1
    assert "invalid alert_channels row skipped: workspace " + str(bad_ws) + ", short: " in log
    assert "invalid alert_channels row skipped: workspace " + str(bad_ws) + ", ftp: " in log
    assert "twelve-chars" not in log and SECRET not in log
    assert "/short" not in receiver.got

    listed = run("alerts", "channels", "list", env=stack.env())
    assert listed.returncode == 0, listed.stderr.decode()
    lines = {line.split()[1]: line for line in listed.stdout.decode().splitlines()[1:]}
    assert "invalid:" in lines["short"] and "invalid:" in lines["ftp"] and "invalid" not in lines["hook"]
