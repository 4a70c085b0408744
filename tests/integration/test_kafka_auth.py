"""Kafka is authenticated and authorized (issue #24, item 3), proven with hostile clients on the
real local broker: an anonymous client, a wrong password, and the producer principal trying what
only the worker and the operator may do (forge an alert notification, send an alert command, read
the dead letters). On a broker without SASL/ACLs (main before #24) every one of these succeeded.
"""

from __future__ import annotations

import asyncio
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from streams.devkit.services import kafka as kafka_service
from streams.kafka_auth import KafkaAuth
from streams.publish import Publisher
from streams.topics import KafkaUnavailable, ensure_topics
from tests.support import Stack

pytestmark = pytest.mark.services


def _auth(stack: Stack, principal: str) -> KafkaAuth:
    auth = stack.auth(principal)  # SCRAM-SHA-512, as learnstream's clients
    if auth is None:
        pytest.fail("the local broker names no Kafka principals (LEARNSTREAM_KCAT_*_CONFIG missing)")
    return auth


async def _metadata(bootstrap: str, **kwargs) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **kwargs)
    try:
        await asyncio.wait_for(admin.start(), 10)
        return await asyncio.wait_for(admin.list_topics(), 10)
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, auth: KafkaAuth, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, acks="all",
                                **auth.client_kwargs())
    await asyncio.wait_for(producer.start(), 10)
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), 15)
    finally:
        await producer.stop()


async def _count(bootstrap: str, topic: str, auth: KafkaAuth, value: bytes) -> int:
    """How many records of `topic` (partitions 0..3) carry `value` (read as `auth`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                **auth.client_kwargs())
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        found = 0
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found += sum(r.value == value for r in records)
        return found
    finally:
        await consumer.stop()


async def _read(bootstrap: str, topic: str, auth: KafkaAuth, group: str | None = None) -> bytes:
    """The first record of `topic` read as `auth` (a subscription, as a consumer would)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False, **auth.client_kwargs())
    await consumer.start()
    try:
        return (await asyncio.wait_for(consumer.getone(), 15)).value
    finally:
        await consumer.stop()


async def test_an_anonymous_client_is_refused(stack: Stack) -> None:
    await ensure_topics(stack.bootstrap, [stack.notifications], 4, auth=_auth(stack, "admin"))
    # PLAINTEXT, no credentials: the SASL listener drops the connection before any request
    with pytest.raises((KafkaConnectionError, KafkaError)):
        await _metadata(stack.bootstrap)
    value = f"anonymous-{uuid.uuid4()}".encode()
    with pytest.raises((KafkaConnectionError, KafkaError, TimeoutError)):
        await _produce(stack.bootstrap, stack.notifications, KafkaAuth(), value)
    assert await _count(stack.bootstrap, stack.notifications, _auth(stack, "admin"), value) == 0


async def test_a_wrong_password_is_refused(stack: Stack) -> None:
    real = _auth(stack, "producer")
    wrong = KafkaAuth(real.security_protocol, real.sasl_mechanism, real.username, real.password + "x")
    with pytest.raises(KafkaError):
        await _metadata(stack.bootstrap, **wrong.client_kwargs())
    nobody = KafkaAuth(real.security_protocol, real.sasl_mechanism, "nobody", real.password)
    with pytest.raises(KafkaError):
        await _metadata(stack.bootstrap, **nobody.client_kwargs())
    # PLAIN (which the kcat configs use) checks the password too
    plain_wrong = KafkaAuth(real.security_protocol, "PLAIN", real.username, real.password + "x")
    with pytest.raises(KafkaError):
        await _metadata(stack.bootstrap, **plain_wrong.client_kwargs())
    plain = KafkaAuth(real.security_protocol, "PLAIN", real.username, real.password)
    assert await _metadata(stack.bootstrap, **plain.client_kwargs()) is not None
    assert await _metadata(stack.bootstrap, **real.client_kwargs()) is not None  # the right one works


async def test_the_producer_writes_the_ingest_topics_and_nothing_else(stack: Stack) -> None:
    producer, admin = _auth(stack, "producer"), _auth(stack, "admin")
    await ensure_topics(stack.bootstrap, [stack.notifications, stack.commands], 4, auth=admin)
    # it may write its ingest topics (all five)
    for topic in [*stack.topics.values(), *stack.domain_topics.values()]:
        value = f"ok-{uuid.uuid4()}".encode()
        await _produce(stack.bootstrap, topic, producer, value)
        assert await _count(stack.bootstrap, topic, admin, value) == 1, topic
    # it may not forge an alert notification (the worker would sign and deliver it) or an alert
    # command (ack/mute any tenant's alerts)
    for topic in (stack.notifications, stack.commands):
        value = f"forged-{uuid.uuid4()}".encode()
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(stack.bootstrap, topic, producer, value)
        assert await _count(stack.bootstrap, topic, admin, value) == 0, topic
    # nor publish there through learnstream's own publisher (the CLI's error, one clear line)
    with pytest.raises(KafkaUnavailable, match="TopicAuthorizationFailedError"):
        async with Publisher(stack.bootstrap, auth=producer) as pub:
            await pub.send_all(stack.notifications, [(b"k", b"forged")])
    # nor create topics
    with pytest.raises(KafkaUnavailable):
        await ensure_topics(stack.bootstrap, [f"t{stack.tag}.made-by-producer"], 1, auth=producer)


async def test_the_producer_cannot_read_the_dlq_or_join_the_workers_group(stack: Stack) -> None:
    producer, admin = _auth(stack, "producer"), _auth(stack, "admin")
    letter = b"a dead letter with another tenant's event"
    await _produce(stack.bootstrap, stack.dlq, admin, letter)
    assert await _read(stack.bootstrap, stack.dlq, admin) == letter  # it is there to be read
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(stack.bootstrap, stack.dlq, producer)
    # nor read its own topics through the worker's group
    with pytest.raises((GroupAuthorizationFailedError, TopicAuthorizationFailedError)):
        await _read(stack.bootstrap, stack.topics["learning_event"], producer, group=f"t{stack.tag}-ingest")


async def test_the_alerts_principal_reads_notifications_only(stack: Stack) -> None:
    alerts, admin = _auth(stack, "alerts"), _auth(stack, "admin")
    await ensure_topics(stack.bootstrap, [stack.notifications], 4, auth=admin)
    value = f"note-{uuid.uuid4()}".encode()
    await _produce(stack.bootstrap, stack.notifications, admin, value)
    assert await _read(stack.bootstrap, stack.notifications, alerts) == value
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(stack.bootstrap, stack.dlq, alerts)
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(stack.bootstrap, stack.notifications, alerts, b"forged")


@pytest.mark.skipif(not shutil.which("kcat"), reason="kcat is not installed")
async def test_the_kcat_configs_work_and_carry_their_principals_rights(stack: Stack) -> None:
    admin = _auth(stack, "admin")
    await ensure_topics(stack.bootstrap, [stack.notifications], 4, auth=admin)
    value = f"kcat-{uuid.uuid4()}"

    def kcat(principal: str, topic: str) -> subprocess.CompletedProcess:
        return subprocess.run(["kcat", "-F", stack.kafka_configs[principal], "-P", "-t", topic, "-m", "15",
                               "-X", f"bootstrap.servers={stack.bootstrap}"],
                              input=value + "\n", capture_output=True, text=True, timeout=60)

    done = await asyncio.to_thread(kcat, "producer", stack.topics["learning_event"])
    assert done.returncode == 0, done.stderr
    assert await _count(stack.bootstrap, stack.topics["learning_event"], admin, value.encode()) == 1
    refused = await asyncio.to_thread(kcat, "producer", stack.notifications)
    assert refused.returncode != 0 and "authoriz" in refused.stderr.lower(), refused.stderr
    assert await _count(stack.bootstrap, stack.notifications, admin, value.encode()) == 0


def test_the_kafka_tools_get_their_passwords_from_an_argument_file_not_the_command_line(tmp_path) -> None:
    """StorageTool's `--add-scram …password=…` and ConfigCommand's `--add-config …[password=…]` go
    through a launcher argument file (0600, deleted after): /proc/<pid>/cmdline is world-readable."""
    lay = kafka_service.Layout(tmp_path)
    secret = f"pw-{uuid.uuid4().hex}"
    scram = f"SCRAM-SHA-512=[name=admin,password={secret}]"
    with kafka_service.tool_cmd(Path("/lib"), lay, "kafka.tools.StorageTool", "format", "--add-scram", scram) as cmd:
        assert not [a for a in cmd if secret in a], cmd
        assert cmd[-1].startswith("@")
        argfile = Path(cmd[-1][1:])
        assert argfile.parent == tmp_path
        assert stat.S_IMODE(argfile.stat().st_mode) == 0o600
        assert argfile.read_text().splitlines() == ['"kafka.tools.StorageTool"', '"format"', '"--add-scram"', f'"{scram}"']
    assert not argfile.exists()


def test_the_java_launcher_expands_the_argument_file_into_the_main_class_and_its_arguments(tmp_path) -> None:
    """What the tools rely on: `java -cp … @file` reads the main class and its arguments from the file."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java")
    (tmp_path / "Echo.java").write_text(
        "public class Echo { public static void main(String[] a) { for (String s : a) System.out.println(s); } }")
    subprocess.run(["javac", "-d", str(tmp_path), str(tmp_path / "Echo.java")], check=True)
    lay = kafka_service.Layout(tmp_path)
    args = ["--add-config", 'SCRAM-SHA-512=[password=a "quoted" \\ pass word]']
    with kafka_service.tool_cmd(tmp_path, lay, "Echo", *args) as cmd:
        cmd = [c.replace(f"{tmp_path}/*", str(tmp_path)) for c in cmd]  # the class dir, not jars
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == args


def test_the_broker_runs_without_the_callers_learnstream_environment(stack: Stack, monkeypatch) -> None:
    """No SASL password on the running broker's command line, and it is started without LEARNSTREAM_*."""
    root = Path(stack.kafka_configs["admin"]).parent
    pid = int((root / "broker.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    for principal in ("admin", "worker", "producer", "alerts"):
        assert _auth(stack, principal).password.encode() not in cmdline, principal
    assert b"\0LEARNSTREAM_" not in b"\0" + Path(f"/proc/{pid}/environ").read_bytes()
    monkeypatch.setenv("LEARNSTREAM_KAFKA_SASL_PASSWORD", "secret")
    monkeypatch.setenv("LEARNSTREAM_DATABASE_URL", "postgresql://u:secret@h/db")
    monkeypatch.setenv("JAVA_HOME_FOR_TEST", "kept")
    env = kafka_service.broker_env()
    assert not [k for k in env if k.startswith("LEARNSTREAM_")]
    assert env["JAVA_HOME_FOR_TEST"] == "kept"
