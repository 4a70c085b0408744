"""/healthz and /readyz of the worker, served with /metrics on the metrics port (streams/metrics.py).

* **/healthz** (alive): the process answers and its event loop runs a callback within
  `health_timeout_s`. An orchestrator restarts a worker that fails it (a loop stuck in a
  blocking call, a worker wedged at shutdown).
* **/readyz** (ready): every check below passes.
  - `ingest`: the ingest consumer (streams/ingest/consumer.py) runs, the group gave it its
    assignment (not in a rebalance), no batch of it is held (one that could be neither stored nor
    set aside, retried with its offsets uncommitted: named with its topic, partitions, first
    offsets and error) and its fetch loop got an answer from Kafka in the last `FETCH_STALE_S` seconds;
  - `database`: `SELECT 1` answers within `health_timeout_s` on a connection of the probe's own
    (not the writer pool's: a pool busy writing is no outage), the answer kept `DB_CACHE_S`
    seconds so frequent probes cost one query;
  - `lag`: the ingest consumer's total lag (messages between each assigned partition's end and
    the group's committed offset) is at most `ready_max_lag`;
  - `loops`: no timer or task's last round failed for a reason that is not infrastructure's
    (streams/loops.py: such a failure is logged with its traceback and counted, and the loop goes on).

Both answer JSON, 200 when every check passes, 503 otherwise:
``{"status": "ok" | "failing", "failed": [names], "checks": {name: {"ok": bool, "detail": str}}}``.
The HTTP server runs in a thread; the checks run on the worker's event loop (the state they read
belongs to it), handed over with `loop.call_soon_threadsafe` and waited for with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

FETCH_STALE_S = 30.0
DB_CACHE_S = 2.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def report(checks: dict[str, Check]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for a set of checks."""
    failed = [name for name, c in checks.items() if not c.ok]
    body = {"status": "failing" if failed else "ok", "failed": failed,
            "checks": {name: c.as_json() for name, c in checks.items()}}
    return (503 if failed else 200), body


class IngestStatus(Protocol):
    def status(self) -> dict: ...
    def lags(self) -> dict: ...


def ingest_check(status: dict | None) -> Check:
    """`status`: IngestConsumer.status() (None: there is no ingest consumer yet)."""
    if status is None or not status["running"]:
        return Check(False, "the ingest consumer is not running")
    if not status["assigned"]:
        return Check(False, "the ingest consumer has no assignment yet (joining the group or rebalancing)")
    if status.get("held"):
        return Check(False, "; ".join(status["held"]))
    age = status["last_fetch_age_s"]
    if age is None:
        return Check(False, "the ingest consumer has not fetched yet")
    if age > FETCH_STALE_S:
        return Check(False, f"the ingest consumer's last fetch answered {age:.0f} s ago (more than {FETCH_STALE_S:.0f} s)")
    return Check(True, f"consuming {status['partitions']} partitions")


def lag_check(lags: dict, max_lag: int) -> Check:
    """`lags`: IngestConsumer.lags() ({partition: messages behind})."""
    total = sum(lags.values())
    if total > max_lag:
        return Check(False, f"ingest lag {total} messages is above ready_max_lag {max_lag}")
    return Check(True, f"ingest lag {total} messages (at most {max_lag})")


def loops_check(failing: dict[str, tuple[float, str]]) -> Check:
    """Fails while a timer or task's last round failed for a reason that is not infrastructure's
    (streams/loops.py), naming each with its error."""
    if not failing:
        return Check(True, "every timer and task's last round succeeded")
    return Check(False, "; ".join(f"{name}: {why}" for name, (_, why) in sorted(failing.items())))


class DatabaseProbe:
    """`SELECT 1` within `timeout_s` on a connection of its own, reconnected after a failure; an
    answer is reused for `cache_s` seconds, and concurrent callers share one query."""

    def __init__(self, dsn: str, timeout_s: float, cache_s: float = DB_CACHE_S) -> None:
        self.dsn, self.timeout_s, self.cache_s = dsn, timeout_s, cache_s
        self._conn: asyncpg.Connection | None = None
        self._last: tuple[float, Check] | None = None
        self._lock: asyncio.Lock | None = None

    async def check(self) -> Check:
        if self._lock is None:
            self._lock = asyncio.Lock()  # made on the loop that uses it
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < self.cache_s:
                return self._last[1]
            result = await self._query()
            self._last = (time.monotonic(), result)
            return result

    async def _query(self) -> Check:
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn)
                await self._conn.fetchval("SELECT 1")
            return Check(True, "SELECT 1 answered")
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            failure = f"SELECT 1 did not answer within {self.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - whatever it is, the database is not usable
            failure = f"SELECT 1 failed: {exc.__class__.__name__}: {exc}"
        await self.close()
        return Check(False, failure)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


class Readiness:
    """The /readyz checks of one worker: its ingest consumer, the database, the lag."""

    def __init__(self, ingest: IngestStatus, db: DatabaseProbe, max_lag: int,
                 failing: dict[str, tuple[float, str]] | None = None) -> None:
        self.ingest, self.db, self.max_lag = ingest, db, max_lag
        self.failing = failing if failing is not None else {}

    async def __call__(self) -> dict[str, Check]:
        status = self.ingest.status()
        return {
            "ingest": ingest_check(status),
            "database": await self.db.check(),
            "lag": lag_check(self.ingest.lags(), self.max_lag),
            "loops": loops_check(self.failing),
        }


class Probes:
    """What the HTTP thread calls: each answer is computed on `loop` and waited for here."""

    def __init__(self, loop: asyncio.AbstractEventLoop, readiness: Callable[[], Awaitable[dict[str, Check]]] | None,
                 timeout_s: float) -> None:
        self.loop, self.readiness, self.timeout_s = loop, readiness, timeout_s

    def _on_loop(self, make: Callable[[], Awaitable] | None, timeout: float) -> tuple[Any, Check]:
        """Run `make()` (nothing: only a callback) on the loop; its result and whether the loop
        answered within `timeout`. The coroutine is made on the loop, so one the loop never got to
        leaves nothing behind."""
        answer: Future = Future()

        def settle(task: asyncio.Future) -> None:
            with contextlib.suppress(InvalidStateError):  # the caller gave up waiting meanwhile
                if task.cancelled():
                    answer.cancel()
                elif task.exception() is not None:
                    answer.set_exception(task.exception())  # type: ignore[arg-type]
                else:
                    answer.set_result(task.result())

        def start() -> None:
            if answer.done():  # the caller gave up waiting
                return
            if make is None:
                with contextlib.suppress(InvalidStateError):
                    answer.set_result(None)
            else:
                asyncio.ensure_future(make()).add_done_callback(settle)

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError as exc:  # the loop is closed
            return None, Check(False, f"the event loop is not running ({exc})")
        try:
            return answer.result(timeout), Check(True, "the event loop answered")
        except FutureTimeout:
            answer.cancel()
            return None, Check(False, f"the event loop did not answer within {timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - a check that broke is a failed check, not a dead server
            return None, Check(False, f"the check failed: {exc.__class__.__name__}: {exc}")

    def healthz(self) -> tuple[int, dict[str, Any]]:
        _, loop = self._on_loop(None, self.timeout_s)
        return report({"loop": loop})

    def readyz(self) -> tuple[int, dict[str, Any]]:
        if self.readiness is None:
            return report({"loop": Check(False, "the worker is not started yet")})
        # the database check has its own timeout_s: the loop gets that long on top
        checks, loop = self._on_loop(self.readiness, 2 * self.timeout_s)
        return report(checks if loop.ok else {"loop": loop})
