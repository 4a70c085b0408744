"""Issue #24, hostile clients against a worker on the real Kafka and PostgreSQL:

* a notification forged onto the notifications topic (by any client that can write it) used to be
  signed with the workspace's webhook secret and delivered: only what the alert engine recorded
  is delivered now, the rest is dead-lettered `unknown_notification`;
* a workspace admin's webhook at a loopback service (Prometheus' /-/quit, say) used to get the
  worker's POSTs: refused at delivery (the channel written by SQL) and when the CLI adds it;
* a receiver's 403 answer (a password in it) used to land in the worker's log and on the
  undelivered topic: only `HTTP 403 Forbidden` does now."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest

from db.pool import connect
from streams.publish import publish_messages
from tests.e2e.alerts.test_delivery import SECRET, Receiver, _add, _cli, _rule, _spike, _wait
from tests.integration.test_cli import run
from tests.support import SMALL, kafka_kwargs, metric, read_topic, window_base, workspace_messages

pytestmark = pytest.mark.services

PASSWORD = "pg-password-hunter2-0451"


def _allow(receiver: Receiver) -> dict[str, str]:
    """The operator allows the test's receiver, and only it (its address and port)."""
    return {"LEARNSTREAM_OUTBOUND_ALLOW": f"127.0.0.1:{receiver.port}"}


async def _firing(stack, receiver: Receiver, w: str, path: str) -> dict:
    base = window_base()
    await publish_messages(stack.bootstrap, stack.topics["performance_sample"],
                           workspace_messages(_spike(w, base, {0: 50, 1: 500}, last=base + 26)))
    got = await _wait(lambda: _got(receiver, path), 90, "the genuine firing notification")
    return orjson.loads(got[0][1])


async def _got(receiver: Receiver, path: str):
    return receiver.got.get(path)


async def test_a_forged_notification_is_not_delivered(stack, start_worker, receiver):
    ws = uuid.uuid4()
    w = str(ws)
    allow = _allow(receiver)
    _cli(stack, "add", "hook", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/hook",
         LEARNSTREAM_CHANNEL_SECRET=SECRET, **allow)
    rule = _rule(ws, "latency spike", ["hook"])
    await _add(stack, rule)
    worker = start_worker(**SMALL, **allow)

    genuine = await _firing(stack, receiver, w, "/hook")
    assert (genuine["workspace_id"], genuine["rule_id"], genuine["status"]) == (w, str(rule.id), "firing")

    # a hostile producer writes notifications of that workspace and rule: a new one, and the genuine
    # one with its message changed (same fingerprint, status, sent_at)
    forged = {**genuine, "fingerprint": "f0rged0000000000", "message": "[firing] call +1 555 0100 now"}
    altered = {**genuine, "message": "[firing] log in at https://evil.example to acknowledge"}
    await publish_messages(stack.bootstrap, stack.notifications,
                           [(n["fingerprint"].encode(), orjson.dumps(n)) for n in (forged, altered)])
    await asyncio.sleep(3)
    assert [orjson.loads(b)["message"] for _h, b in receiver.got["/hook"]] == [genuine["message"]]
    dead = await read_topic(stack.bootstrap, stack.undelivered, expect=2, timeout=30)
    assert sorted((d["reason"], d["notification"]["message"], d["workspace_id"]) for d in dead) == sorted([
        ("unknown_notification", forged["message"], w), ("unknown_notification", altered["message"], w)])
    assert {d["detail"] for d in dead} == {"not a notification the alert engine recorded (alert_notifications)"}
    m = worker.metrics()
    assert metric(m, "learnstream_alert_notifications_forged_total") == 2
    assert metric(m, "learnstream_alert_undelivered_total", reason="unknown_notification") == 2
    assert metric(m, "learnstream_alert_deliveries_total", channel_kind="webhook", outcome="delivered") == 1


async def test_a_loopback_target_is_refused_when_added_and_at_delivery(stack, start_worker, receiver):
    internal = Receiver()  # a loopback service nobody allowed (Prometheus with its lifecycle API, say)
    await internal.start()
    try:
        ws = uuid.uuid4()
        w = str(ws)
        allow = _allow(receiver)
        _cli(stack, "add", "hook", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/hook",
             LEARNSTREAM_CHANNEL_SECRET=SECRET, **allow)
        # an admin member writes channels at it with SQL (by address, and by a name for it): the CLI is
        # not the only way in
        conn = await connect(stack.dsn)
        try:
            await conn.executemany(
                "INSERT INTO alert_channels (workspace_id, name, kind, url, secret) VALUES ($1, $2, 'webhook', $3, $4)",
                [(ws, "quit", f"{internal.url}/-/quit", SECRET),
                 (ws, "quit-by-name", f"http://localhost:{internal.port}/-/quit", SECRET)])
        finally:
            await conn.close()
        await _add(stack, _rule(ws, "latency spike", ["hook", "quit", "quit-by-name"]))
        worker = start_worker(**SMALL, **allow)

        genuine = await _firing(stack, receiver, w, "/hook")
        await asyncio.sleep(2)
        assert internal.got == {}  # never connected to
        dead = await read_topic(stack.bootstrap, stack.undelivered, expect=2, timeout=30)
        assert sorted((d["reason"], d["channel"], d["detail"]) for d in dead) == [
            ("refused_target", "quit", "refused target: 127.0.0.1 resolves to 127.0.0.1 (loopback); not allowed "
                                       "unless listed in LEARNSTREAM_OUTBOUND_ALLOW"),
            ("refused_target", "quit-by-name", "refused target: localhost resolves to 127.0.0.1 (loopback); not "
                                               "allowed unless listed in LEARNSTREAM_OUTBOUND_ALLOW"),
        ]
        assert {d["notification"]["fingerprint"] for d in dead} == {genuine["fingerprint"]}
        m = worker.metrics()
        assert metric(m, "learnstream_outbound_refused_total", channel_kind="webhook", reason="loopback") == 2
        assert metric(m, "learnstream_alert_undelivered_total", reason="refused_target") == 2

        # adding a channel at it with the CLI is refused at once, with why
        out = run("alerts", "channels", "add", "quit2", "-w", w, "--kind", "webhook", "--url",
                  f"{internal.url}/-/quit", env=stack.env(LEARNSTREAM_CHANNEL_SECRET=SECRET, **allow))
        assert (out.returncode, out.stderr.decode().strip()) == (2, (
            "learnstream: error: channel quit2 refused: 127.0.0.1 resolves to 127.0.0.1 (loopback); not allowed "
            "unless listed in LEARNSTREAM_OUTBOUND_ALLOW (the workers' setting, which an operator sets)"))
    finally:
        await internal.stop()


async def test_a_403_body_reaches_neither_the_log_nor_the_dead_letters(stack, start_worker, receiver):
    ws = uuid.uuid4()
    w = str(ws)
    allow = _allow(receiver)
    _cli(stack, "add", "hook", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/hook",
         LEARNSTREAM_CHANNEL_SECRET=SECRET, **allow)
    _cli(stack, "add", "leaky", "-w", w, "--kind", "webhook", "--url", f"{receiver.url}/leaky",
         LEARNSTREAM_CHANNEL_SECRET=SECRET, **allow)
    receiver.status["/leaky"] = 403
    receiver.body["/leaky"] = f"<h1>Forbidden</h1><p>database password: {PASSWORD}</p>"
    await _add(stack, _rule(ws, "latency spike", ["hook", "leaky"]))
    worker = start_worker(**SMALL, **allow)

    await _firing(stack, receiver, w, "/hook")
    raw = await _raw_values(stack.bootstrap, stack.undelivered, expect=1)
    assert len(raw) == 1
    assert PASSWORD.encode() not in raw[0]
    assert PASSWORD not in worker.log()
    dead = orjson.loads(raw[0])
    assert (dead["reason"], dead["channel"], dead["detail"]) == ("rejected", "leaky", "HTTP 403 Forbidden")
    assert "HTTP 403 Forbidden" in worker.log()
    assert metric(worker.metrics(), "learnstream_alert_undelivered_total", reason="rejected") == 1


async def _raw_values(bootstrap: str, topic: str, expect: int) -> list[bytes]:
    """The values on `topic` as bytes (what a reader of the dead letters sees): `expect` of them,
    then 2 s more for any other (or 30 s)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, **kafka_kwargs())
    await consumer.start()
    try:
        out: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            out += [r.value for records in batch.values() for r in records]
            if len(out) >= expect:
                deadline = min(deadline, time.monotonic() + 2)
        return out
    finally:
        await consumer.stop()
