"""/healthz and /readyz on the metrics port: the answer to each failing check, through the real HTTP
server, with the checks run on an event loop in another thread (as in the worker).

The ingest consumer's state is a stand-in here (tests/e2e/test_monitoring.py has a real worker);
the database checks talk to real sockets: a closed port, and a listener that never answers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from streams import health, metrics
from streams.devkit.services import free_port
from streams.health import Check, DatabaseProbe, Probes, Readiness


class FakeIngest:
    """What IngestConsumer.status() and .lags() report."""

    def __init__(self, running=True, assigned=True, partitions=4, last_fetch_age_s=0.1, lags=None) -> None:
        self.state = {"running": running, "assigned": assigned, "partitions": partitions,
                      "last_fetch_age_s": last_fetch_age_s}
        self.lag = lags or {}

    def status(self) -> dict:
        return self.state

    def lags(self) -> dict:
        return self.lag


class FixedDatabase(DatabaseProbe):
    """A probe whose answer is given (for the checks that are not about the database)."""

    def __init__(self, answer: Check) -> None:
        super().__init__("postgresql://unused", timeout_s=1)
        self.answer = answer

    async def _query(self) -> Check:
        return self.answer


DB_OK = Check(True, "SELECT 1 answered")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, like the worker's next to the HTTP thread."""
    lp = asyncio.new_event_loop()
    thread = threading.Thread(target=lp.run_forever, daemon=True)
    thread.start()
    yield lp
    if lp.is_running():
        lp.call_soon_threadsafe(lp.stop)
    thread.join(5)
    lp.close()


def serve(probes: Probes | None):
    server = metrics.start_server("127.0.0.1", 0, probes)
    return server, f"http://127.0.0.1:{server.server_port}"


def get(url: str) -> tuple[int, str, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            status, ctype, body = resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        status, ctype, body = err.code, err.headers["Content-Type"], err.read().decode()
    return status, ctype, (json.loads(body) if ctype == "application/json" else body)


LOOPS_OK = (True, "every timer and task's last round succeeded")


def ready_body(ingest: tuple[bool, str], database: tuple[bool, str], lag: tuple[bool, str],
               loops: tuple[bool, str] = LOOPS_OK) -> dict:
    checks = {"ingest": ingest, "database": database, "lag": lag, "loops": loops}
    return {"status": "ok" if all(ok for ok, _ in checks.values()) else "failing",
            "failed": [name for name, (ok, _) in checks.items() if not ok],
            "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}}


def probe_ready(loop, ingest: FakeIngest, db: DatabaseProbe, max_lag: int = 1000) -> tuple[int, str, dict]:
    server, url = serve(Probes(loop, Readiness(ingest, db, max_lag), timeout_s=1.0))
    try:
        return get(url + "/readyz")
    finally:
        server.shutdown()


# ------------------------------------------------------------------------------------ /healthz


def test_healthz_is_200_while_the_loop_answers(loop):
    server, url = serve(Probes(loop, None, timeout_s=1.0))
    try:
        assert get(url + "/healthz") == (200, "application/json", {
            "status": "ok", "failed": [], "checks": {"loop": {"ok": True, "detail": "the event loop answered"}}})
    finally:
        server.shutdown()


def test_healthz_is_503_when_the_loop_is_blocked(loop):
    server, url = serve(Probes(loop, None, timeout_s=0.3))
    loop.call_soon_threadsafe(time.sleep, 2.0)  # a blocking call on the loop
    try:
        assert get(url + "/healthz") == (503, "application/json", {
            "status": "failing", "failed": ["loop"],
            "checks": {"loop": {"ok": False, "detail": "the event loop did not answer within 0.3 s"}}})
    finally:
        server.shutdown()


def test_healthz_is_503_when_the_loop_is_closed():
    lp = asyncio.new_event_loop()
    lp.close()
    server, url = serve(Probes(lp, None, timeout_s=0.3))
    try:
        status, _, body = get(url + "/healthz")
    finally:
        server.shutdown()
    assert (status, body["failed"], body["checks"]["loop"]["ok"]) == (503, ["loop"], False)
    assert body["checks"]["loop"]["detail"] == "the event loop is not running (Event loop is closed)"


def test_without_a_worker_both_say_not_started():
    server, url = serve(None)
    body = {"status": "failing", "failed": ["loop"],
            "checks": {"loop": {"ok": False, "detail": "the worker is not started yet"}}}
    try:
        assert get(url + "/healthz") == (503, "application/json", body)
        assert get(url + "/readyz") == (503, "application/json", body)
    finally:
        server.shutdown()


# ------------------------------------------------------------------------------------ /readyz


def test_readyz_is_200_when_every_check_passes(loop):
    ingest = FakeIngest(lags={("t", 0): 400, ("t", 1): 600})
    assert probe_ready(loop, ingest, FixedDatabase(DB_OK), max_lag=1000) == (200, "application/json", ready_body(
        (True, "consuming 4 partitions"), (True, "SELECT 1 answered"), (True, "ingest lag 1000 messages (at most 1000)")))


@pytest.mark.parametrize(("ingest", "detail"), [
    (FakeIngest(running=False), "the ingest consumer is not running"),
    (FakeIngest(assigned=False), "the ingest consumer has no assignment yet (joining the group or rebalancing)"),
    (FakeIngest(last_fetch_age_s=None), "the ingest consumer has not fetched yet"),
    (FakeIngest(last_fetch_age_s=31.0), "the ingest consumer's last fetch answered 31 s ago (more than 30 s)"),
], ids=["not-running", "no-assignment", "no-fetch-yet", "fetch-stale"])
def test_readyz_is_503_when_the_ingest_consumer_is_not_consuming(loop, ingest, detail):
    assert probe_ready(loop, ingest, FixedDatabase(DB_OK)) == (503, "application/json", ready_body(
        (False, detail), (True, "SELECT 1 answered"), (True, "ingest lag 0 messages (at most 1000)")))


def test_readyz_is_503_when_the_lag_is_above_ready_max_lag(loop):
    ingest = FakeIngest(lags={("t", 0): 700, ("t", 1): 301})
    assert probe_ready(loop, ingest, FixedDatabase(DB_OK), max_lag=1000) == (503, "application/json", ready_body(
        (True, "consuming 4 partitions"), (True, "SELECT 1 answered"),
        (False, "ingest lag 1001 messages is above ready_max_lag 1000")))


def test_readyz_is_503_when_the_database_refuses(loop):
    port = free_port()  # nothing listens there
    db = DatabaseProbe(f"postgresql://u:p@127.0.0.1:{port}/db", timeout_s=2.0)
    status, _, body = probe_ready(loop, FakeIngest(), db)
    assert (status, body["failed"], body["checks"]["ingest"]["ok"], body["checks"]["lag"]["ok"]) == (
        503, ["database"], True, True)
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": f"SELECT 1 failed: ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', {port})"}


def test_readyz_is_503_when_the_database_does_not_answer(loop):
    with socket.socket() as silent:  # accepts connections (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        db = DatabaseProbe(f"postgresql://u:p@127.0.0.1:{silent.getsockname()[1]}/db", timeout_s=0.5)
        assert probe_ready(loop, FakeIngest(), db) == (503, "application/json", ready_body(
            (True, "consuming 4 partitions"), (False, "SELECT 1 did not answer within 0.5 s"),
            (True, "ingest lag 0 messages (at most 1000)")))


def test_readyz_is_503_when_the_loop_does_not_answer(loop):
    server, url = serve(Probes(loop, Readiness(FakeIngest(), FixedDatabase(DB_OK), 10), timeout_s=0.2))
    loop.call_soon_threadsafe(time.sleep, 2.0)
    try:
        assert get(url + "/readyz") == (503, "application/json", {
            "status": "failing", "failed": ["loop"],
            "checks": {"loop": {"ok": False, "detail": "the event loop did not answer within 0.4 s"}}})
    finally:
        server.shutdown()


async def test_the_database_answer_is_kept_for_cache_s():
    port = free_port()
    db = DatabaseProbe(f"postgresql://u:p@127.0.0.1:{port}/db", timeout_s=1.0, cache_s=60)
    first = await db.check()
    assert not first.ok
    db.dsn = "postgresql://changed"  # not asked again within cache_s
    assert await db.check() is first
    db.cache_s = 0
    assert (await db.check()).detail.startswith("SELECT 1 failed: ")
    assert (await db.check()) is not first


# ------------------------------------------------------------------------------------ /metrics


def test_metrics_and_unknown_paths(loop):
    metrics.ROWS_INSERTED.labels("health_test_table").inc(3)
    server, url = serve(Probes(loop, None, timeout_s=1.0))
    try:
        status, ctype, body = get(url + "/metrics")
        assert (status, ctype.split(";")[0]) == (200, "text/plain")
        assert 'learnstream_rows_inserted_total{table="health_test_table"} 3.0' in body.splitlines()
        assert get(url + "/nope") == (404, "application/json",
                                      {"error": "not found: /nope; try /metrics, /healthz, /readyz"})
    finally:
        server.shutdown()


def test_check_helpers_directly():
    assert health.ingest_check(None) == Check(False, "the ingest consumer is not running")
    assert health.lag_check({}, 0) == Check(True, "ingest lag 0 messages (at most 0)")
    assert health.report({"a": Check(True, "x")}) == (
        200, {"status": "ok", "failed": [], "checks": {"a": {"ok": True, "detail": "x"}}})


def test_readyz_is_503_while_a_loop_fails_and_names_it():
    from streams.health import loops_check

    assert loops_check({}) == Check(True, "every timer and task's last round succeeded")
    failing = loops_check({"flush_windows": (0.0, "ItemTooLarge: 2212088 bytes"), "alert_tick": (0.0, "OverflowError: x")})
    assert failing == Check(False, "alert_tick: OverflowError: x; flush_windows: ItemTooLarge: 2212088 bytes")
