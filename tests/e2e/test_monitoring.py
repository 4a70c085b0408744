"""A live worker as its operators see it: /metrics that pass `promtool check metrics`, /healthz and
/readyz, and a real Prometheus (Debian's, started by the test) scraping it and answering with the
number of rows the table has."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import asyncpg
import orjson
import pytest

from streams.devkit.services import free_port
from streams.devkit.services.monitoring import find_binary, log_tail, start_prometheus
from streams.devkit.synthetic import Generator
from streams.publish import publish_messages
from tests.support import wait_for_rows

pytestmark = pytest.mark.services

PARTITIONS = 5 * 4  # the stack's five source topics, 4 partitions each


def http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, b""


def wait_for_status(url: str, status: int, timeout: float = 60) -> dict:
    """Poll `url` until it answers `status`; its JSON body then (AssertionError with the last one)."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = http(url)
        if code == status or time.monotonic() > deadline:
            assert code == status, f"{url}: {code} {body.decode()}"
            return json.loads(body)
        time.sleep(0.5)


async def publish_learning_events(bootstrap: str, topic: str, n: int, seed: int) -> int:
    """`n` distinct learning events, 10 of them sent twice (duplicates: not rows); the distinct count."""
    gen = Generator(seed=seed)
    events = [gen.learning_event() for _ in range(n)]
    messages = [(None, orjson.dumps(e)) for e in events] + [(None, orjson.dumps(e)) for e in events[:10]]
    await publish_messages(bootstrap, topic, messages)
    return n


def prometheus_value(url: str, query: str) -> float | None:
    """The single value of an instant query through Prometheus' HTTP API (None: no series yet)."""
    code, body = http(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert code == 200, body.decode()
    data = json.loads(body)
    assert data["status"] == "success", data
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def promtool() -> str:
    path = find_binary("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `learnstream services monitoring` (make test does)")
    return str(path)


async def test_live_metrics_pass_promtool_check_metrics(stack, start_worker, promtool):
    worker = start_worker()
    n = await publish_learning_events(stack.bootstrap, stack.topics["learning_event"], 200, seed=31)
    assert (await wait_for_rows(stack.dsn, {"learning_events": n}))["learning_events"] == n
    code, body = http(f"http://127.0.0.1:{worker.metrics_port}/metrics")
    assert code == 200
    assert b'learnstream_rows_inserted_total{table="learning_events"}' in body
    lint = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert (lint.returncode, lint.stdout.decode(), lint.stderr.decode()) == (0, "", "")


async def test_readyz_turns_200_once_the_worker_consumes(stack, start_worker):
    worker = start_worker(wait=False)
    base = f"http://127.0.0.1:{worker.metrics_port}"
    n = await publish_learning_events(stack.bootstrap, stack.topics["learning_event"], 50, seed=32)
    body = wait_for_status(f"{base}/readyz", 200, timeout=90)
    assert (await wait_for_rows(stack.dsn, {"learning_events": n}))["learning_events"] == n
    # all stored and committed: lag 0 (the lag is computed from committed offsets)
    deadline = time.monotonic() + 30
    while body["checks"]["lag"]["detail"] != "ingest lag 0 messages (at most 100000)" and time.monotonic() < deadline:
        time.sleep(0.5)
        body = wait_for_status(f"{base}/readyz", 200)
    assert body == {"status": "ok", "failed": [], "checks": {
        "ingest": {"ok": True, "detail": f"consuming {PARTITIONS} partitions"},
        "database": {"ok": True, "detail": "SELECT 1 answered"},
        "lag": {"ok": True, "detail": "ingest lag 0 messages (at most 100000)"},
        "loops": {"ok": True, "detail": "every timer and task's last round succeeded"}}}
    assert wait_for_status(f"{base}/healthz", 200) == {
        "status": "ok", "failed": [], "checks": {"loop": {"ok": True, "detail": "the event loop answered"}}}


async def test_readyz_is_503_while_the_database_is_unreachable(stack, start_worker):
    """A worker whose PostgreSQL does not answer starts (the sinks retry) and consumes, but is not ready."""
    port = free_port()
    worker = start_worker(wait=False, LEARNSTREAM_DATABASE_URL=f"postgresql://learnstream@127.0.0.1:{port}/none",
                          LEARNSTREAM_WINDOWS_ENABLED="false", LEARNSTREAM_JOBS_ENABLED="false",
                          LEARNSTREAM_EVENT_LOOP="uvloop")  # (asyncio's words for a refusal differ)
    base = f"http://127.0.0.1:{worker.metrics_port}"
    deadline = time.monotonic() + 90
    while True:  # until the ingest consumer has its partitions: then only the database fails
        code, raw = http(f"{base}/readyz")
        body = json.loads(raw) if raw else {"checks": {}}
        if body["checks"].get("ingest", {}).get("ok") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 503
    assert body["failed"] == ["database"]
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "SELECT 1 failed: ConnectionRefusedError: [Errno 111] Connection refused"}
    assert http(f"{base}/healthz")[0] == 200


async def test_prometheus_scrapes_the_rows_the_table_has(stack, start_worker, tmp_path):
    worker = start_worker()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: learnstream\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{worker.metrics_port}']\n")
    n = await publish_learning_events(stack.bootstrap, stack.topics["learning_event"], 300, seed=33)
    assert (await wait_for_rows(stack.dsn, {"learning_events": n}))["learning_events"] == n
    conn = await asyncpg.connect(stack.dsn)
    try:
        in_table = await conn.fetchval("SELECT count(*) FROM learning_events")
    finally:
        await conn.close()
    assert in_table == n

    with start_prometheus(config, None, tmp_path / "prometheus") as prom:
        query = 'sum(learnstream_rows_inserted_total{table="learning_events"})'
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline:
            seen = prometheus_value(prom.url, query)
            if seen == in_table:
                break
            await asyncio.sleep(0.5)
        assert seen == in_table, f"Prometheus says {seen}, the table has {in_table}\n{log_tail(prom)}"
        assert prometheus_value(prom.url, 'up{job="learnstream"}') == 1.0
        duplicates = prometheus_value(prom.url, 'sum(learnstream_duplicates_skipped_total{table="learning_events"})')
        assert duplicates == 10.0
