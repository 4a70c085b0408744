"""`learnstream alerts tail|ack|mute` against a real Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.alerts import AlertCommand, AlertRule
from streams.alerts.engine import AlertEngine
from streams.publish import publish_messages
from streams.topics import ensure_topics
from tests.integration.test_cli import run
from tests.support import read_topic

pytestmark = pytest.mark.services
WS = uuid.UUID(int=5)


async def test_tail_prints_the_workspace_notifications(stack):
    topic = f"t{stack.tag}.alert-notifications"
    await ensure_topics(stack.bootstrap, [topic], 1)
    rule = AlertRule(id=uuid.UUID(int=9), workspace_id=WS, alert_name="latency high", metric="api_latency.p95",
                     condition_op=">", threshold_value=500, severity="critical")
    other = rule.model_copy(update={"workspace_id": uuid.UUID(int=6), "id": uuid.UUID(int=10)})
    t = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    notes = (AlertEngine([other]).observe(other.workspace_id, "api_latency.p95", {"host": "b"}, 999, t)
             + AlertEngine([rule]).observe(WS, "api_latency.p95", {"host": "a"}, 900, t))
    await publish_messages(stack.bootstrap, topic, [(None, n.model_dump_json().encode()) for n in notes])
    env = stack.env(LEARNSTREAM_ALERT_NOTIFICATIONS_TOPIC=topic)
    out = run("alerts", "tail", "--from-beginning", "--max", "1", "--workspace", str(WS), env=env)
    assert out.returncode == 0, out.stderr
    line = out.stdout.decode().strip()
    assert line == (f"2026-11-23 12:00:00Z CRITICAL firing       latency high: 900 > 500 host=a "
                    f"[{notes[1].fingerprint}]")
    js = run("alerts", "tail", "--from-beginning", "--max", "2", "--json", env=env)
    assert [orjson.loads(x)["workspace_id"] for x in js.stdout.decode().splitlines()] == [str(other.workspace_id), str(WS)]


async def test_ack_and_mute_publish_commands(stack):
    topic = f"t{stack.tag}.alert-commands"
    env = stack.env(LEARNSTREAM_ALERT_COMMANDS_TOPIC=topic)
    out = run("alerts", "ack", "--workspace", str(WS), "--fingerprint", "abc123", "--by", "ana", env=env)
    assert out.returncode == 0, out.stderr
    assert f"sent ack for alert abc123 to {topic}" in out.stdout.decode()
    before = datetime.now(UTC)
    out = run("alerts", "mute", "--workspace", str(WS), "--rule", str(uuid.UUID(int=9)), "--for", "2h", env=env)
    assert out.returncode == 0, out.stderr
    got = [AlertCommand.model_validate(c) for c in await read_topic(stack.bootstrap, topic, expect=2)]
    assert [(c.command, c.fingerprint, c.by) for c in got] == [("ack", "abc123", "ana"), ("mute", None, None)]
    assert got[1].rule_id == uuid.UUID(int=9)
    assert before + timedelta(hours=2) <= got[1].until <= datetime.now(UTC) + timedelta(hours=2)

    bad = run("alerts", "ack", "--workspace", str(WS), "--rule", str(uuid.UUID(int=9)), env=env)
    assert bad.returncode == 2 and b"ack names a fingerprint" in bad.stderr
    bad = run("alerts", "mute", "--workspace", str(WS), "--fingerprint", "x", "--for", "soon", env=env)
    assert bad.returncode == 2 and b"use a number and s, m, h or d" in bad.stderr


async def test_ack_as_a_principal_that_may_not_write_the_commands_is_one_clear_line(stack):
    """The local default principal (services.env) is the worker, which reads alert commands but may
    not write them: one line naming it and how to send as another (exit 2), no traceback."""
    if "worker" not in stack.kafka_configs:
        pytest.skip("a broker without authorization")
    env = stack.env("worker")
    out = run("alerts", "ack", "--workspace", str(WS), "--fingerprint", "abc123", env=env)
    assert out.returncode == 2, out.stderr
    err = [line for line in out.stderr.decode().splitlines() if not line.startswith("Topic ")]
    assert err == [f"learnstream: error: Kafka at {stack.bootstrap} refused the messages for {stack.commands}: the "
                   "principal 'worker' may not write it (TopicAuthorizationFailedError); run as another principal "
                   "with --kafka-config FILE or LEARNSTREAM_KAFKA_CONFIG_FILE=FILE (locally: $LEARNSTREAM_KCAT_ADMIN_CONFIG)"]
    ok = run("alerts", "ack", "--workspace", str(WS), "--fingerprint", "abc123", "--by", "ana",
             "--kafka-config", stack.kafka_configs["admin"], env=env)
    assert ok.returncode == 0, ok.stderr
    assert f"sent ack for alert abc123 to {stack.commands}" in ok.stdout.decode()
    got = [AlertCommand.model_validate(c) for c in await read_topic(stack.bootstrap, stack.commands, expect=1)]
    assert [(c.command, c.fingerprint, c.by) for c in got] == [("ack", "abc123", "ana")]
