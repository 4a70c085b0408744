"""No exception leaves a timer, task or loop of the worker (issue #23, item 2).

`guarded(name)` wraps the body of a Faust timer (run again every interval) and `supervised(name)`
a long-running task (restarted with backoff when it ends by an exception). What they catch is
classified like the ingest path does (streams.retry.classify): an infrastructure failure (the
database or Kafka away) is logged as a warning and tried again next round; anything else is logged
with its traceback and counted (`learnstream_loop_failures_total{loop,kind}`), and /readyz reports
the loop as failing (check `loops`) until its next round succeeds. Nothing stops the worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from db.backoff import Backoff
from streams import metrics
from streams.retry import TRANSIENT, classify

log = logging.getLogger("learnstream.loops")

#: loop name -> (when it last failed for a reason that is not infrastructure's, why); cleared by
#: the loop's next successful round
FAILING: dict[str, tuple[float, str]] = {}


def failed(name: str, exc: BaseException) -> None:
    """Classify, log and count a failed round of loop `name` (see the module docstring)."""
    if classify(exc) == TRANSIENT:
        metrics.LOOP_FAILURES.labels(name, "infrastructure").inc()
        log.warning("%s: %s: %s; trying again next round", name, exc.__class__.__name__, exc)
        return
    metrics.LOOP_FAILURES.labels(name, "unexpected").inc()
    FAILING[name] = (time.time(), f"{exc.__class__.__name__}: {exc}"[:500])
    log.error("%s failed (%s: %s); it goes on next round", name, exc.__class__.__name__, exc, exc_info=exc)


def succeeded(name: str) -> None:
    """Loop `name` completed a round: it is no longer failing."""
    FAILING.pop(name, None)


def guarded(name: str) -> Callable[[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[None]]]:
    """Decorate a timer's body: one round's exception is classified, logged, counted; never raised."""

    def wrap(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(fn)
        async def run() -> None:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified in failed(), the point of this module
                failed(name, exc)
            else:
                succeeded(name)

        return run

    return wrap


def supervised(name: str, backoff: Backoff | None = None
               ) -> Callable[[Callable[[], Awaitable[Any]]], Callable[[], Awaitable[None]]]:
    """Decorate a long-running task: an exception that ends it is classified, logged and counted,
    and the task is started again after a backoff (reset once it has run a minute)."""

    def wrap(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(fn)
        async def run() -> None:
            delays = backoff or Backoff(1.0, 60.0)
            while True:
                started = time.monotonic()
                try:
                    await fn()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified in failed()
                    failed(name, exc)
                if time.monotonic() - started > 60:
                    delays.attempt = 0
                await asyncio.sleep(delays.next_delay())

        return run

    return wrap
