"""Retrying infrastructure, and only infrastructure.

`classify` tells a failure of the broker or the database (TRANSIENT: retried with backoff for as
long as it lasts, the offsets held meanwhile) from one caused by what a message carries (CONTENT:
never retried, the message is dead-lettered) and from the rest (UNKNOWN: retried
`UNKNOWN_ATTEMPTS` times, then handled like CONTENT, so that no input can hold a partition for
ever). `Retrier` applies that; it raises `PermanentFailure` when it gives up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import errors as kafka_errors

from db.backoff import Backoff
from db.errors import CONTENT, TRANSIENT, UNKNOWN, classify_db

log = logging.getLogger("learnstream.retry")

#: attempts for a failure that is neither clearly transient nor clearly the data's
UNKNOWN_ATTEMPTS = 3

_KAFKA_TRANSIENT = (
    kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError, kafka_errors.NoBrokersAvailable,
    kafka_errors.NodeNotReadyError, kafka_errors.RequestTimedOutError, kafka_errors.BrokerNotAvailableError,
    kafka_errors.KafkaUnavailableError, kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
)
_KAFKA_CONTENT = (
    kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError, kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidMessageError, kafka_errors.CorruptRecordException,
)


def classify(exc: BaseException) -> str:
    """CONTENT, TRANSIENT or UNKNOWN (see the module docstring). A wrapper (Faust's
    ProducerSendError around the aiokafka error) is judged by what it wraps."""
    kind = _classify(exc)
    if kind == UNKNOWN and exc.__cause__ is not None:
        return classify(exc.__cause__)
    return kind


def _classify(exc: BaseException) -> str:
    db = classify_db(exc)
    if db is not None:
        return db
    if isinstance(exc, _KAFKA_CONTENT):
        return CONTENT
    if isinstance(exc, _KAFKA_TRANSIENT) or (isinstance(exc, kafka_errors.KafkaError) and exc.retriable):
        return TRANSIENT
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)):  # ConnectionError is an OSError
        return TRANSIENT
    if isinstance(exc, (ValueError, TypeError, OverflowError, UnicodeError, KeyError, IndexError)):
        return CONTENT
    return UNKNOWN


class PermanentFailure(Exception):
    """An operation failed for a reason retrying will not cure; `__cause__` is the last error."""

    def __init__(self, what: str, exc: BaseException) -> None:
        super().__init__(f"{what}: {exc.__class__.__name__}: {exc}")
        self.what, self.error = what, exc


class Retrier:
    """Runs an operation until it succeeds or is shown not to be infrastructure's: TRANSIENT
    failures are retried with capped exponential backoff and full jitter for as long as they last
    (cancellable: a shutdown is never held up by a retry); CONTENT failures raise
    PermanentFailure at once; UNKNOWN ones after UNKNOWN_ATTEMPTS. An outage is logged when it
    starts and when it ends, not per attempt; `failed` / `succeeded` hooks see every attempt."""

    def __init__(
        self, initial: float, maximum: float, *,
        failed: Callable[[], None] | None = None, succeeded: Callable[[], None] | None = None,
    ) -> None:
        self._backoff = (initial, maximum)
        self._failed, self._succeeded = failed, succeeded
        self._outage_since: float | None = None

    async def __call__(self, what: str, op: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff(*self._backoff)
        unknown = 0
        while True:
            try:
                result = await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified below
                kind = classify(exc)
                if kind == CONTENT:
                    raise PermanentFailure(what, exc) from exc
                if kind == UNKNOWN:
                    unknown += 1
                    if unknown >= UNKNOWN_ATTEMPTS:
                        log.error("%s failed %d times (%s: %s); giving up on it", what, unknown,
                                  exc.__class__.__name__, exc)
                        raise PermanentFailure(what, exc) from exc
                if self._failed:
                    self._failed()
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    log.warning(
                        "%s failed (%s: %s); retrying with backoff, offsets held until it succeeds",
                        what, exc.__class__.__name__, exc,
                    )
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._outage_since is not None:
                log.warning(
                    "%s succeeded again after %.1f s and %d retries",
                    what, time.monotonic() - self._outage_since, backoff.attempt,
                )
                self._outage_since = None
            if self._succeeded:
                self._succeeded()
            return result


__all__ = ["CONTENT", "TRANSIENT", "UNKNOWN", "Backoff", "PermanentFailure", "Retrier", "classify"]
