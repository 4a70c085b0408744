"""Dead letters, for every stage of the worker: the envelope of a message that could not be
stored, its encoding within the DLQ's message budget, and the publisher that retries until the
broker has them all.

A dead letter never grows past its topic's budget (streams/sizing.py): errors beyond MAX_ERRORS
are counted, not kept, and a raw value that still does not fit is cut to a prefix flagged with the
original's length and SHA-256 (`fit_value`, also used by alert delivery's undelivered topic).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import orjson

from schemas.events import DeadLetter, DeadLetterError, safe_dumps
from streams import metrics
from streams.retry import PermanentFailure, Retrier
from streams.sizing import ItemTooLarge

log = logging.getLogger("learnstream.sink")

#: errors kept in a dead letter at most (a member with 10,000 unknown fields has 10,000 errors)
MAX_ERRORS = 100


class Message(Protocol):
    """What a stage reads of a Kafka message (faust's Message and aiokafka's records fit)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


#: publish one dead letter: (key, value) -> awaitable that completes when the broker has it
DeadLetterPublisher = Callable[[bytes | None, bytes], Awaitable[Any]]


def value_text(raw: bytes | None) -> tuple[str | None, str | None]:
    """Raw bytes as JSON-safe text and its encoding: UTF-8 as it is, anything else base64."""
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def fit_value(raw: bytes, encoding: str, build: Callable[[str], bytes], budget: int) -> bytes | None:
    """The envelope `build(text)` for the longest prefix of `raw` whose envelope fits `budget`
    (`encoding` "base64" or "utf-8": how the prefix is written as text); None when even the empty
    prefix does not fit. JSON escaping can make one byte six: the prefix shrinks until it fits."""
    keep = len(raw)
    while True:
        head = raw[:keep]
        text = base64.b64encode(head).decode() if encoding == "base64" else head.decode("utf-8", errors="ignore")
        data = build(text)
        if len(data) <= budget:
            return data
        if keep == 0:
            return None
        # the value's share of the envelope, encoded; scale the prefix to the room left for it
        fixed = len(data) - len(orjson.dumps(text))
        room = budget - fixed
        keep = 0 if room <= 2 else max(0, min(keep - 1, int(keep * (room - 2) / max(1, len(data) - fixed))))


def envelope(
    msg: Message,
    errors: list[DeadLetterError],
    received_at: datetime,
    members: list[tuple[int, Any]] | None = None,
    stage: str = "ingest",
) -> DeadLetter:
    """The dead letter of `msg`. With `members` (an array whose valid members were stored), the
    value is only the rejected members, so the DLQ holds what was not stored and no more."""
    key, key_enc = value_text(msg.key)
    rejected = safe_dumps([m for _, m in members]) if members is not None else None
    if rejected is not None:
        value: str | None = rejected.decode("utf-8", "replace")
        value_enc: str | None = "utf-8"
    else:  # the whole value (also when the rejected members are too deep to write again)
        members = None
        value, value_enc = value_text(msg.value)
    return DeadLetter(
        source_topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=key,
        key_encoding=key_enc,
        value=value if value is not None else "",
        value_encoding=value_enc or "utf-8",
        members=[i for i, _ in members] if members is not None else None,
        errors=errors,
        received_at=received_at,
        stage=stage,
    )


def encode_dead_letter(letter: DeadLetter, budget: int) -> bytes:
    """The envelope as JSON within `budget` bytes: errors beyond MAX_ERRORS (or beyond what fits)
    are counted in `errors_omitted`; a value that still does not fit is cut to a prefix, flagged
    `value_truncated` with the original's length and SHA-256."""
    data = orjson.dumps(letter.model_dump(mode="json"))
    if len(data) <= budget and len(letter.errors) <= MAX_ERRORS:
        return data
    errors = letter.errors[:MAX_ERRORS]
    omitted = letter.errors_omitted + len(letter.errors) - len(errors)
    letter = letter.model_copy(update={"errors": errors, "errors_omitted": omitted})
    data = orjson.dumps(letter.model_dump(mode="json"))
    if len(data) <= budget:
        return data
    raw = base64.b64decode(letter.value) if letter.value_encoding == "base64" else letter.value.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    while True:
        cut = letter.model_copy(update={"value_truncated": True, "value_length": len(raw), "value_sha256": digest})
        fitted = fit_value(raw, letter.value_encoding,
                           lambda text, cut=cut: orjson.dumps(cut.model_copy(update={"value": text}).model_dump(mode="json")),
                           budget)
        if fitted is not None:
            return fitted
        if len(cut.errors) <= 1:
            raise ItemTooLarge(len(orjson.dumps(cut.model_dump(mode="json"))), budget)  # pragma: no cover - budget >= MIN_BUDGET
        # the errors alone are too large: keep fewer
        half = cut.errors[: len(cut.errors) // 2]
        letter = letter.model_copy(update={"errors": half, "errors_omitted": cut.errors_omitted + len(cut.errors) - len(half)})


class DeadLetterRefused(PermanentFailure):
    """The DLQ refused dead letters for good (even within the smallest budget, or for a reason no
    retry cures: the topic's limit lowered below them, no authorization): the DLQ's failure, not the
    message's, so its batch is held and retried (streams/ingest/consumer.py), never set aside."""


class DeadLetters:
    """Publishes dead letters (keyed topic:partition:offset) to the DLQ, each within the topic's
    message budget, retrying until the broker has them all. Shared by every stage."""

    def __init__(self, publish: DeadLetterPublisher, retrying: Retrier, budget: int) -> None:
        self._publish, self._retrying, self.budget = publish, retrying, budget

    async def __call__(self, letters: list[DeadLetter]) -> None:
        await publish_dead_letters(self._publish, self._retrying, letters, self.budget)


async def publish_dead_letters(
    publish: DeadLetterPublisher, retrying: Retrier, letters: list[DeadLetter], budget: int = 1_000_000 - 512,
) -> None:
    """Publish dead letters (keyed topic:partition:offset), retrying until the broker has them all.
    Should the broker still refuse one as too large (its topic's limit lowered since the start),
    they are encoded again within half the budget, down to 16 KiB; then DeadLetterRefused."""
    while True:
        encoded = [
            (f"{d.source_topic}:{d.partition}:{d.offset}".encode(), encode_dead_letter(d, budget - 64)) for d in letters
        ]

        async def attempt(encoded: list[tuple[bytes, bytes]] = encoded) -> None:
            futures = [await publish(key, value) for key, value in encoded]
            for fut in futures:
                if isinstance(fut, Awaitable):
                    await fut

        try:
            await retrying(f"publishing {len(letters)} dead letters", attempt)
            break
        except PermanentFailure as exc:
            if budget <= 16_384:
                raise DeadLetterRefused(exc.what, exc.error) from exc.error
            log.error("the DLQ refused a dead letter (%s); encoding them within %d bytes", exc.error, budget // 2)
            budget //= 2
    metrics.DLQ_PUBLISHED.labels(letters[0].source_topic).inc(len(letters))
