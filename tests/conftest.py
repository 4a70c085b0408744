"""Session-wide real services, and per-test isolation (own database, topics, consumer group).

Services come from LEARNSTREAM_KAFKA_BOOTSTRAP + LEARNSTREAM_DATABASE_URL when both are set;
otherwise `learnstream services up` starts (or reuses) the local Kafka and PostgreSQL once per
session. Where a Docker engine exists, LEARNSTREAM_TEST_CONTAINERS=1 uses testcontainers instead.

Two logins (issue #24): the owner's (LEARNSTREAM_ADMIN_DATABASE_URL) makes the template and the
per-test databases (CREATEDB) and the tests' member roles (CREATEROLE); the workers' (the services'
LEARNSTREAM_DATABASE_URL, pointed at the test's database) is what every worker a test starts uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from db.databases import clone_migrated_database, drop_database, dsn_for
from streams.kafka_auth import from_kcat_config
from streams.topics import ensure_topics
from tests.support import DATABASE_ENV, Stack, Worker, admin_dsn, kafka_env, kafka_kwargs


def _containers() -> Iterator[dict[str, str]]:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer("apache/kafka:4.1.1") as kafka, PostgresContainer("postgres:15") as pg:
        dsn = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        yield {"LEARNSTREAM_KAFKA_BOOTSTRAP": kafka.get_bootstrap_server(), "LEARNSTREAM_DATABASE_URL": dsn}


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    if os.environ.get("LEARNSTREAM_TEST_CONTAINERS") == "1":
        yield from _containers()
        return
    import fcntl

    from streams.config import state_dir
    from streams.devkit.services import up

    # pytest-xdist workers each start this fixture: one at a time, so only the first may start
    # services (`make test` has started them already) and the others reuse them
    state_dir().mkdir(parents=True, exist_ok=True)
    with open(state_dir() / "services-up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            settings = up()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    # this process (the tests' own clients, in-process workers and consumers) is the operator:
    # the admin principal, with SCRAM. Workers started by tests run as the worker (Stack.env).
    if settings.get("LEARNSTREAM_KCAT_ADMIN_CONFIG"):
        admin = from_kcat_config(settings["LEARNSTREAM_KCAT_ADMIN_CONFIG"])[1]
        os.environ.update(kafka_env(dataclasses.replace(admin, sasl_mechanism="SCRAM-SHA-512")))
    yield settings


async def _delete_topics(bootstrap: str, tag: str) -> None:
    """Delete a test's topics: its own and its workers' internal ones, all named t<tag>. or t<tag>-.
    Without this a worktree that runs the suite again and again piles up partitions (the local
    broker's 512 MB heap ran out at ~13,000, four runs). Best effort: the broker may be gone."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_kwargs(), request_timeout_ms=15_000)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith((f"t{tag}.", f"t{tag}-"))]
        if mine:
            await admin.delete_topics(mine)
    except Exception:  # noqa: BLE001 - cleanup only
        pass
    finally:
        await admin.close()


@pytest.fixture
async def stack(services: dict[str, str]) -> AsyncIterator[Stack]:
    """A fresh migrated database and unique topic names for one test."""
    base = admin_dsn(services)
    configs = {p: services[f"LEARNSTREAM_KCAT_{p.upper()}_CONFIG"] for p in ("admin", "worker", "producer", "alerts")
               if services.get(f"LEARNSTREAM_KCAT_{p.upper()}_CONFIG")}
    st = Stack(bootstrap=services["LEARNSTREAM_KAFKA_BOOTSTRAP"], dsn="", kafka_configs=configs)
    dbname = f"t_{st.tag}"
    st.dsn = await clone_migrated_database(base, dbname)
    st.worker_dsn = dsn_for(services[DATABASE_ENV], dbname)
    await ensure_topics(st.bootstrap, [*st.topics.values(), *st.domain_topics.values(), st.dlq], 4)
    await st.grant()
    try:
        yield st
    finally:
        # connects afresh: a test may have restarted PostgreSQL meanwhile
        await drop_database(base, dbname)
        await _delete_topics(st.bootstrap, st.tag)
        with contextlib.suppress(Exception):  # cleanup only: the broker may be gone
            await st.revoke()
        shutil.rmtree(f"/tmp/learnstream-test-{st.tag}", ignore_errors=True)


#: the workers a test started, for its failure report
WORKERS = pytest.StashKey[list[Worker]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """A failed test that ran workers shows the end of each worker's log beside its traceback (a
    failure seen only in CI is then explained by what the worker said)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for w in item.stash.get(WORKERS, []):
        try:
            tail = w.log()[-6000:]
        except OSError as exc:
            tail = f"(log unreadable: {exc})"
        report.sections.append((f"log of {w.log_path.name} (last 6000 characters)", tail))


@pytest.fixture
def start_worker(stack: Stack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """start_worker(**env) -> a ready Worker; all are stopped at the end of the test (the end of
    each one's log is shown when the test fails)."""
    workers: list[Worker] = []
    request.node.stash[WORKERS] = workers

    def start(wait: bool = True, **env: str) -> Worker:
        w = Worker(stack, tmp_path, name=f"worker{len(workers)}", **env)
        workers.append(w)
        if wait:
            w.wait_ready()
        return w

    yield start
    for w in workers:
        w.stop()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
