"""`learnstream services up` gives a REAL Kafka and PostgreSQL, idempotently.

Runs against the services of the current state dir (LEARNSTREAM_STATE_DIR, default
./.learnstream), starting them if needed; or, when LEARNSTREAM_KAFKA_BOOTSTRAP and
LEARNSTREAM_DATABASE_URL are both set, only checks those. Never calls down(): the test
session shares the services.
"""

from __future__ import annotations

import asyncio
import os
import time

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.config import services_env_file
from streams.devkit.services import postgres, status, up
from tests.support import kafka_kwargs

pytestmark = pytest.mark.services

KAFKA = "LEARNSTREAM_KAFKA_BOOTSTRAP"
DB = "LEARNSTREAM_DATABASE_URL"
ADMIN = "LEARNSTREAM_ADMIN_DATABASE_URL"


async def _kafka_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_kwargs(), request_timeout_ms=10_000)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _select_1(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def test_up_is_idempotent_and_services_are_ready() -> None:
    external = bool(os.environ.get(KAFKA) and os.environ.get(DB))

    first = up()
    assert {KAFKA, DB} <= set(first)
    assert first[DB].startswith("postgresql://")
    if not external:
        # the two DSNs, and the Kafka worker principal and each principal's kcat config
        assert set(first) == {KAFKA, DB, ADMIN, *(f"LEARNSTREAM_KAFKA_{k}" for k in (
            "SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD")), *(
            f"LEARNSTREAM_KCAT_{p}_CONFIG" for p in ("ADMIN", "WORKER", "PRODUCER", "ALERTS"))}
        assert (first["LEARNSTREAM_KAFKA_SECURITY_PROTOCOL"], first["LEARNSTREAM_KAFKA_SASL_USERNAME"]) == (
            "SASL_PLAINTEXT", "worker")
        assert first[DB].startswith("postgresql://learnstream_worker:")
        assert first[ADMIN].startswith("postgresql://learnstream_owner:")
    before = status()

    started = time.monotonic()
    second = up()
    elapsed = time.monotonic() - started
    after = status()

    # Same settings, nothing new started (same pids), and fast because nothing was started.
    assert second == first
    assert elapsed < 20, f"second up() took {elapsed:.1f} s: did it start something?"

    # Real readiness: a metadata request answered, and a query answered.
    assert isinstance(asyncio.run(_kafka_topics(first[KAFKA])), set)
    assert asyncio.run(_select_1(first[DB])) == 1

    if external:
        return  # services provided by the environment; the local ones are not used
    for name in ("kafka", "postgres"):
        assert after[name]["state"] == "running", after
        assert after[name]["pid"] and after[name]["pid"] == before[name]["pid"], (before, after)
    assert after["kafka"]["bootstrap"] == first[KAFKA]
    # shown without the passwords
    assert after["postgres"]["url"] == postgres.redact(first[DB]) == first[DB].replace(
        first[DB].split(":")[2].split("@")[0], "***")
    assert after["postgres"]["admin_url"] == postgres.redact(first[ADMIN])

    env_lines = services_env_file().read_text().splitlines()
    assert f"{KAFKA}={first[KAFKA]}" in env_lines
    assert f"{DB}={first[DB]}" in env_lines
    assert f"{ADMIN}={first[ADMIN]}" in env_lines
