"""Helpers for tests against the real services: worker subprocesses, waiting, DLQ reading, and
the window tests' samples, messages and rollup reads."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from db.pool import connect
from streams.config import Settings
from streams.devkit.services import free_port
from streams.kafka_acls import acl_plan, apply_acls, revoke_acls
from streams.kafka_auth import KafkaAuth, default_auth, from_kcat_config
from streams.metrics import scrape

ROOT = Path(__file__).resolve().parent.parent


ADMIN_ENV = "LEARNSTREAM_ADMIN_DATABASE_URL"
DATABASE_ENV = "LEARNSTREAM_DATABASE_URL"


def admin_dsn(services: dict[str, str]) -> str:
    """The owner's DSN of the session's services (it may create databases and roles): the
    services' LEARNSTREAM_ADMIN_DATABASE_URL, else their only DSN."""
    return services.get(ADMIN_ENV) or services[DATABASE_ENV]


@dataclass
class Stack:
    """One test's isolated slice of the services: its own database, topics and consumer group.

    `dsn` logs in as the database's owner (the tests' own setup and checks, member roles made in a
    transaction); `worker_dsn` as the workers' login (learnstream_worker: a member of
    learnstream_service that owns nothing), which every worker a test starts uses."""

    bootstrap: str
    dsn: str
    worker_dsn: str = ""
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    #: kcat config files of the local broker's principals (admin, worker, producer, alerts): the
    #: test and the CLI commands it runs are the operator (admin); its workers run as the worker
    kafka_configs: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> dict[str, str]:
        """The three log topics (time-partitioned tables, windows)."""
        return {
            "learning_event": f"t{self.tag}.learning-events",
            "performance_sample": f"t{self.tag}.performance-samples",
            "engagement_update": f"t{self.tag}.engagement-updates",
        }

    @property
    def domain_topics(self) -> dict[str, str]:
        """The entity topics (applied to the domain tables, not logged)."""
        return {
            "content_item": f"t{self.tag}.content-items",
            "account_snapshot": f"t{self.tag}.account-snapshots",
        }

    @property
    def dlq(self) -> str:
        return f"t{self.tag}.dlq"

    @property
    def unrouted(self) -> str:
        return f"t{self.tag}.unrouted"

    @property
    def rollups(self) -> str:
        return f"t{self.tag}.rollups"

    @property
    def late_events(self) -> str:
        return f"t{self.tag}.late-events"

    @property
    def notifications(self) -> str:
        return f"t{self.tag}.alert-notifications"

    @property
    def commands(self) -> str:
        return f"t{self.tag}.alert-commands"

    @property
    def undelivered(self) -> str:
        return f"t{self.tag}.undelivered"

    def auth(self, principal: str, mechanism: str = "SCRAM-SHA-512") -> KafkaAuth | None:
        """A principal of the local broker (from its kcat config), with SCRAM unless told."""
        if principal not in self.kafka_configs:
            return None  # a broker without authentication (LEARNSTREAM_TEST_CONTAINERS)
        return dataclasses.replace(from_kcat_config(self.kafka_configs[principal])[1], sasl_mechanism=mechanism)

    def env(self, principal: str = "admin", **extra: str) -> dict[str, str]:
        """The environment of a learnstream process on this stack, as `principal` (the CLI
        commands a test runs: the operator, admin; its workers: worker)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNSTREAM_")}
        env.update(
            LEARNSTREAM_KAFKA_BOOTSTRAP=self.bootstrap,
            LEARNSTREAM_DATABASE_URL=self.worker_dsn or self.dsn,
            LEARNSTREAM_ADMIN_DATABASE_URL=self.dsn,
            LEARNSTREAM_APP_ID=f"t{self.tag}",
            LEARNSTREAM_LEARNING_TOPIC=self.topics["learning_event"],
            LEARNSTREAM_PERFORMANCE_TOPIC=self.topics["performance_sample"],
            LEARNSTREAM_ENGAGEMENT_TOPIC=self.topics["engagement_update"],
            LEARNSTREAM_CONTENT_TOPIC=self.domain_topics["content_item"],
            LEARNSTREAM_ACCOUNTS_TOPIC=self.domain_topics["account_snapshot"],
            LEARNSTREAM_DLQ_TOPIC=self.dlq,
            LEARNSTREAM_UNROUTED_TOPIC=self.unrouted,
            LEARNSTREAM_ROLLUPS_TOPIC=self.rollups,
            LEARNSTREAM_LATE_EVENTS_TOPIC=self.late_events,
            LEARNSTREAM_ALERT_NOTIFICATIONS_TOPIC=self.notifications,
            LEARNSTREAM_ALERT_COMMANDS_TOPIC=self.commands,
            LEARNSTREAM_ALERT_UNDELIVERED_TOPIC=self.undelivered,
            LEARNSTREAM_TOPIC_PARTITIONS="4",
            LEARNSTREAM_STATE_DIR=f"/tmp/learnstream-test-{self.tag}",
            LEARNSTREAM_DATA_DIR=f"/tmp/learnstream-test-{self.tag}/faust",
            LEARNSTREAM_DB_RETRY_MAX_S="1.0",
            PYTHONUNBUFFERED="1",
        )
        env.update(kafka_env(self.auth(principal)))
        env.update(extra)
        return env

    def settings(self) -> Settings:
        """This stack's names as Settings (for the principals' ACLs)."""
        names = {k.removeprefix("LEARNSTREAM_").lower(): v for k, v in self.env().items()
                 if k.startswith("LEARNSTREAM_") and k.endswith(("_TOPIC", "_APP_ID", "_BOOTSTRAP"))}
        return Settings(**names)

    async def grant(self) -> None:
        """Give the producer, worker and alerts principals their ACLs on this stack's topics and
        app id (as production's are on the configured names): streams.kafka_acls."""
        admin = self.auth("admin")
        if admin is None:
            return  # a broker without authorization (LEARNSTREAM_TEST_CONTAINERS)
        await apply_acls(self.bootstrap, admin, acl_plan(self.settings()))
        # the broker applies ACLs as its metadata catches up: wait until the producer sees its topic
        from aiokafka.admin import AIOKafkaAdminClient

        producer = self.auth("producer")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **producer.client_kwargs())
        await admin.start()
        try:
            deadline = time.monotonic() + 15
            while self.topics["learning_event"] not in await admin.list_topics() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await admin.close()

    async def revoke(self) -> None:
        """Delete the ACLs of `grant` (at the end of the test, with its topics)."""
        admin = self.auth("admin")
        if admin is not None:
            await revoke_acls(self.bootstrap, admin, acl_plan(self.settings()))


def kafka_env(auth: KafkaAuth | None) -> dict[str, str]:
    """The LEARNSTREAM_KAFKA_* settings naming a principal (none for None)."""
    if auth is None:
        return {}
    return {"LEARNSTREAM_KAFKA_SECURITY_PROTOCOL": auth.security_protocol,
            "LEARNSTREAM_KAFKA_SASL_MECHANISM": auth.sasl_mechanism,
            "LEARNSTREAM_KAFKA_SASL_USERNAME": auth.username, "LEARNSTREAM_KAFKA_SASL_PASSWORD": auth.password}


def kafka_kwargs() -> dict:
    """aiokafka keyword arguments for the test's own clients: the operator (admin) principal that
    the `services` fixture puts in this process's environment."""
    return default_auth().client_kwargs()


class Worker:
    """`learnstream worker` in a subprocess, with its log in a file."""

    def __init__(self, stack: Stack, log_dir: Path, name: str = "worker", **env: str) -> None:
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--log-level", "info"],
            cwd=ROOT,
            env=stack.env("worker", LEARNSTREAM_METRICS_PORT=str(self.metrics_port), **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Worker]: Ready" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()[-4000:]}")

    def metrics(self) -> dict[tuple[str, tuple], float]:
        return scrape(self.metrics_port)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def metric(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for_rows(dsn: str, expected: dict[str, int], timeout: float = 120) -> dict[str, int]:
    """Poll until each table has at least its expected row count; return the last counts."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in expected}
            if all(counts[t] >= n for t, n in expected.items()) or time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def publish_markers(bootstrap: str, topics: dict[str, str], gen, partitions: int = 4) -> dict[str, dict[str, dict]]:
    """One marker event on every partition of each of `topics` ({kind: topic}), published after the
    events under test: once a partition's marker is stored, everything before it in that partition
    was consumed. Returns {kind: {id: event}} of the markers (each a valid event of its kind)."""
    from aiokafka import AIOKafkaProducer

    out: dict[str, dict[str, dict]] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_kwargs())
    await producer.start()
    try:
        for kind, topic in topics.items():
            w = gen.workload(kind, partitions, invalid_share=0, duplicate_share=0)
            assert len(w.messages) == len(w.expected) == partitions
            for p, (_key, value) in enumerate(w.messages):
                await producer.send_and_wait(topic, value, partition=p)
            out[kind] = dict(w.expected)
    finally:
        await producer.stop()
    return out


async def wait_for_ids(dsn: str, ids: dict[str, list[str]], timeout: float = 120) -> None:
    """Poll until each table ({table: ids}) holds every one of its ids."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            missing = {t: len(want) - await conn.fetchval(f"SELECT count(*) FROM {t} WHERE id::text = ANY($1::text[])", want)
                       for t, want in ids.items()}
            if not any(missing.values()):
                return
            assert time.monotonic() < deadline, f"not stored after {timeout} s: {missing}"
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def send_to_partition(bootstrap: str, topic: str, values: list[bytes], partition: int) -> None:
    """Produce `values` to one partition of `topic`, in order, each acknowledged before the next."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, **kafka_kwargs(), acks="all")
    await p.start()
    try:
        for v in values:
            await p.send_and_wait(topic, v, partition=partition)
    finally:
        await p.stop()


async def committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    """The offset `group` has committed for `tp` (None: none)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kafka_kwargs(), group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return await c.committed(tp)
    finally:
        await c.stop()


async def read_partition(bootstrap: str, topic: str, partition: int) -> list[tuple[bytes | None, bytes | None]]:
    """Every record (key, value) of one partition, from the beginning to its end now, in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **kafka_kwargs(), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes | None, bytes | None]] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> list[dict]:
    """Read JSON values from the start of `topic` until `expect` arrived (or timeout)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, **kafka_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(orjson.loads(r.value) for r in records)
        # anything beyond `expect` that is already there counts too
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            out.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


# -- windows ------------------------------------------------------------------------------------

#: small windows for the window tests (worker env)
SMALL = dict(
    LEARNSTREAM_WINDOW_TUMBLING_S="10", LEARNSTREAM_WINDOW_HOPPING_S="20", LEARNSTREAM_WINDOW_HOP_STEP_S="10",
    LEARNSTREAM_WINDOW_GRACE_S="5", LEARNSTREAM_WINDOW_IDLE_S="2",
)
#: windows that only event time closes (the rebalance tests keep them open on purpose)
NO_IDLE = {**SMALL, "LEARNSTREAM_WINDOW_IDLE_S": "3600"}
#: for tests that SIGKILL a worker and start the next in the same group: the group drops the dead
#: member after 10 s (Faust's default broker_session_timeout is 60 s, and the next worker is not
#: ready until that rebalance is done)
QUICK_GROUP = dict(BROKER_SESSION_TIMEOUT="10", BROKER_HEARTBEAT_INTERVAL="1")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def sample(ws: str, t: float, value: float, metric_name: str = "api_latency", **tags: str) -> dict:
    return {"sample_id": str(uuid.uuid4()), "workspace_id": ws, "metric_name": metric_name,
            "timestamp": iso(t), "value": value, "unit": "ms", "tags": tags}


def workspace_messages(events: list[dict], per: int = 50) -> list[tuple[bytes | None, bytes]]:
    """Arrays of `per` events, keyed by the first event's workspace: one source partition per
    workspace keeps them in event-time order (unkeyed, they would interleave across partitions
    and be late for windows that other partitions' events closed)."""
    return [(events[i]["workspace_id"].encode(), orjson.dumps(events[i:i + per])) for i in range(0, len(events), per)]


async def fetch_rollups(dsn: str, table: str, expect: int, timeout: float = 90) -> list[asyncpg.Record]:
    """The rows of a rollup table once there are at least `expect` (or after `timeout`)."""
    conn = await connect(dsn)
    try:
        deadline = asyncio.get_event_loop().time() + timeout
        while True:
            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY window_start, series_key, window_s")
            if len(rows) >= expect or asyncio.get_event_loop().time() > deadline:
                return rows
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def window_base() -> float:
    """15 minutes ago, on a 20 s boundary: every window is in the past, closed by event time, and
    recent enough for the alert rules (alert_max_age_s: 1 hour)."""
    return math.floor((datetime.now(UTC).timestamp() - 900) / 20) * 20


async def become_member(conn: asyncpg.Connection, workspace: uuid.UUID, role: str = "viewer") -> str:
    """Inside a transaction of the owner: a new role that is a `role` of `workspace` (made, registered
    and mapped in the transaction, so its rollback removes all of it), taken with SET LOCAL ROLE: from
    then on the connection reads as that member, under the tables' row-level security (migration 0013)."""
    name = f"member_{uuid.uuid4().hex[:10]}"
    await conn.execute(f"CREATE ROLE {name} NOLOGIN IN ROLE learnstream_member")
    await conn.execute(f"GRANT {name} TO CURRENT_USER")
    await conn.execute("INSERT INTO workspaces (id, name) VALUES ($1::uuid, $1::uuid::text) ON CONFLICT (id) DO NOTHING",
                       workspace)
    await conn.execute("INSERT INTO workspace_members (workspace_id, role_name, role) VALUES ($1, $2, $3)",
                       workspace, name, role)
    await conn.execute(f"SET LOCAL ROLE {name}")
    return name


def login_dsn(dsn: str, role: str, password: str) -> str:
    """`dsn` with another role and password (a member's own login)."""
    from db.databases import dsn_as

    return dsn_as(dsn, role, password)
