"""Alerts end to end: rules in PostgreSQL, samples through Kafka and the window stage, notifications
on the alert-notifications topic and in alert_notifications, commands through `learnstream alerts`."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from db.alerts import add_rule
from db.pool import connect
from schemas.alerts import AlertRule
from streams.publish import publish_messages
from tests.e2e.windows.test_windows import SMALL, _base, _msgs, sample
from tests.integration.test_cli import run
from tests.support import metric, read_topic

pytestmark = pytest.mark.services


def _rule(ws: uuid.UUID, name: str, metric_: str, op: str, threshold: float, **kw) -> AlertRule:
    return AlertRule(id=uuid.uuid4(), workspace_id=ws, alert_name=name, metric=metric_, condition_op=op,
                     threshold_value=threshold, window_s=10, **kw)


async def _wait_log(worker, text: str, timeout: float = 30) -> None:
    deadline = asyncio.get_event_loop().time() + timeout
    while text not in worker.log():
        assert asyncio.get_event_loop().time() < deadline, f"{text!r} not in the worker log"
        await asyncio.sleep(0.2)


async def test_alert_lifecycle_end_to_end(stack, start_worker):
    ws = uuid.uuid4()
    spike = _rule(ws, "latency spike", "api_latency.max", ">", 100)
    slow = _rule(ws, "latency sustained", "api_latency.max", ">", 100, for_duration_s=15)  # a blip never fires
    silent = _rule(ws, "heartbeat gone", "heartbeat.count", "<", 0, nodata_after_s=5)
    disk = _rule(ws, "disk full", "disk.max", ">", 90, severity="critical")
    conn = await connect(stack.dsn)
    try:
        for r in (spike, slow, silent, disk):
            await add_rule(conn, r)
    finally:
        await conn.close()
    worker = start_worker(**SMALL)
    await _wait_log(worker, "loaded 4 alert rules")

    # the disk rule is muted for 12 s through the CLI and the alert-commands topic
    out = run("alerts", "mute", "--workspace", str(ws), "--rule", str(disk.id), "--for", "12s", env=stack.env())
    assert out.returncode == 0, out.stderr
    mute_until = datetime.now(UTC).timestamp() + 12
    # the mute's exact end, as the command carried it ("sent mute for rule … until <iso> to <topic>")
    said = out.stdout.decode() if isinstance(out.stdout, bytes) else out.stdout
    muted_until = datetime.fromisoformat(said.split(" until ", 1)[1].split(" to ", 1)[0]).timestamp()
    assert mute_until - 30 < muted_until <= mute_until

    base = _base()
    w = str(ws)
    latency = {0: 50, 1: 500, 2: 50, 3: 50}  # one window's spike
    events = []
    for win in range(4):
        for j in range(5):
            t = base + win * 10 + j * 2
            events.append(sample(w, t, latency[win], "api_latency", host="a"))
            events.append(sample(w, t, 95 if win >= 1 else 50, "disk", host="a"))
            if win == 0:
                events.append(sample(w, t, 1, "heartbeat", host="a"))
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(events, per=10))

    # a rule added while the worker runs takes effect without a restart
    await asyncio.sleep(3)
    queue = _rule(ws, "queue backlog", "queue_depth.mean", ">=", 10)
    conn = await connect(stack.dsn)
    try:
        await add_rule(conn, queue)
    finally:
        await conn.close()
    await _wait_log(worker, "alert rules changed: 5 rules now")
    more = []
    for win, (depth, d) in {6: (50, 50), 7: (1, 50)}.items():  # well clear of what idle time closed
        for j in range(5):
            t = base + win * 10 + j * 2
            more += [sample(w, t, depth, "queue_depth", host="a"), sample(w, t, d, "disk", host="a")]
    # wait for the mute to expire before the disk alert resolves, so the owed firing is sent first
    await asyncio.sleep(max(0.0, mute_until + 2 - datetime.now(UTC).timestamp()))
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"], _msgs(more, per=10))

    notes = await read_topic(stack.bootstrap, stack.notifications, expect=7, timeout=90)
    by_rule = defaultdict(list)
    for n in notes:
        by_rule[n["rule_name"]].append(n)
    statuses = {name: [n["status"] for n in ns] for name, ns in by_rule.items()}
    assert statuses == {
        "latency spike": ["firing", "resolved"],
        "heartbeat gone": ["nodata"],
        "disk full": ["firing", "resolved"],
        "queue backlog": ["firing", "resolved"],
    }, statuses  # and nothing for "latency sustained": `for` suppressed the one-window blip
    fired = by_rule["latency spike"][0]
    assert (fired["current_value"], fired["threshold"], fired["labels"]) == (500.0, 100.0, {"host": "a"})
    assert datetime.fromisoformat(fired["triggered_at"]).timestamp() == base + 20  # the spike window's end
    # the disk alert fired while muted: sent when the mute expired, not when the window closed
    # (against the command's own `until`: the CLI's run time, a Kafka login included, is not the mute's)
    assert datetime.fromisoformat(by_rule["disk full"][0]["sent_at"]).timestamp() >= muted_until - 0.5

    conn = await connect(stack.dsn)
    try:
        rows = await conn.fetch("SELECT alert_id, status::text AS status FROM alert_notifications ORDER BY sent_at")
    finally:
        await conn.close()
    assert sorted((str(r["alert_id"]), r["status"]) for r in rows) == sorted(
        (n["rule_id"], {"firing": "active"}.get(n["status"], n["status"])) for n in notes)
    m = worker.metrics()
    assert metric(m, "learnstream_alert_notifications_total", status="firing") == 3
    assert metric(m, "learnstream_alert_notification_seconds_count", status="firing") >= 2
