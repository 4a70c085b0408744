"""Every message the worker produces fits: split by encoded size, or (a dead letter's raw value)
truncated with its length and SHA-256.

The budget of a topic is the smaller of the producer's `max_request_size` and the topic's
`max.message.bytes` (both read when the worker starts: streams.topics.message_limits), less
`OVERHEAD` bytes for the record batch and record headers and the key.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from schemas.events import DeadLetter

#: bytes kept free for Kafka's record batch header (61), the record's own framing and headers
OVERHEAD = 512
#: the smallest budget the worker runs with (one window-input item, rollup or notification is at
#: most ~140 KB: 64 tags of 100 + 255 characters, each escaped to 6 bytes at worst): below this,
#: `learnstream worker` refuses to start
MIN_BUDGET = 256 * 1024
#: errors kept in a dead letter at most (a member with 10,000 unknown fields has 10,000 errors)
MAX_ERRORS = 100

T = TypeVar("T")


class ItemTooLarge(Exception):
    """One item alone encodes to more than the budget (the caller dead-letters it)."""

    def __init__(self, size: int, budget: int) -> None:
        super().__init__(f"one item encodes to {size} bytes, more than the {budget} a message may carry")
        self.size, self.budget = size, budget


@dataclass
class MessageLimits:
    """Budgets (bytes of key + value) per topic."""

    max_request_size: int = 1_000_000
    topic_max: dict[str, int] = field(default_factory=dict)
    #: for a topic not described (Faust's changelogs, created later): the broker's message.max.bytes
    default_topic_max: int = 1_048_588

    def budget(self, topic: str) -> int:
        return min(self.max_request_size, self.topic_max.get(topic, self.default_topic_max)) - OVERHEAD

    def smallest(self) -> int:
        return min([self.budget(t) for t in self.topic_max] or [self.budget("")])


def pack(items: Sequence[T], encode: Callable[[Sequence[T]], bytes], budget: int) -> list[tuple[Sequence[T], bytes]]:
    """Split `items` into consecutive runs whose encoding fits `budget`, in order: one encode in the
    common case (everything fits), else parts sized from the overshoot, split again as needed.
    Raises ItemTooLarge when one item alone does not fit."""
    out: list[tuple[Sequence[T], bytes]] = []
    stack: list[Sequence[T]] = [items]
    while stack:
        part = stack.pop()
        data = encode(part)
        if len(data) <= budget:
            out.append((part, data))
            continue
        if len(part) <= 1:
            raise ItemTooLarge(len(data), budget)
        k = min(len(part), max(2, math.ceil(len(data) * 1.1 / budget)))
        size = math.ceil(len(part) / k)
        stack.extend(reversed([part[i:i + size] for i in range(0, len(part), size)]))
    return out


def encode_dead_letter(letter: DeadLetter, budget: int) -> bytes:
    """The envelope as JSON within `budget` bytes: errors beyond MAX_ERRORS (or beyond what fits)
    are counted in `errors_omitted`; a value that still does not fit is cut to a prefix, flagged
    `value_truncated` with the original's length and SHA-256."""
    data = orjson.dumps(letter.model_dump(mode="json"))
    if len(data) <= budget and len(letter.errors) <= MAX_ERRORS:
        return data
    errors = letter.errors[:MAX_ERRORS]
    letter = letter.model_copy(update={"errors": errors, "errors_omitted": letter.errors_omitted + len(letter.errors) - len(errors)})
    data = orjson.dumps(letter.model_dump(mode="json"))
    if len(data) <= budget:
        return data
    raw = base64.b64decode(letter.value) if letter.value_encoding == "base64" else letter.value.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    keep = len(raw)
    while True:
        # JSON escaping can make one byte six: shrink until the whole envelope fits
        head = raw[:keep]
        value = (base64.b64encode(head).decode() if letter.value_encoding == "base64"
                 else head.decode("utf-8", errors="ignore"))
        cut = letter.model_copy(update={"value": value, "value_truncated": True, "value_length": len(raw),
                                        "value_sha256": digest})
        data = orjson.dumps(cut.model_dump(mode="json"))
        if len(data) <= budget:
            return data
        if keep == 0:
            if len(cut.errors) > 1:  # the errors alone are too large: keep fewer
                half = cut.errors[: len(cut.errors) // 2]
                letter = cut.model_copy(update={"errors": half,
                                                "errors_omitted": cut.errors_omitted + len(cut.errors) - len(half)})
                keep = 0
                continue
            raise ItemTooLarge(len(data), budget)  # pragma: no cover - the budget is >= MIN_BUDGET
        # the value's share of the envelope, encoded; scale the prefix to the room left for it
        fixed = len(data) - len(orjson.dumps(value))
        room = budget - fixed
        keep = 0 if room <= 2 else min(keep - 1, int(keep * (room - 2) / max(1, len(data) - fixed)))
        keep = max(0, keep)


def fits(value: Any, budget: int) -> bytes:
    """`value` as JSON, or ItemTooLarge (for the messages that carry one item: a rollup, a notification)."""
    data = orjson.dumps(value)
    if len(data) > budget:
        raise ItemTooLarge(len(data), budget)
    return data
