"""Every message the worker produces fits: split by encoded size (`pack`), or refused as one item too
large (`fits`); a dead letter's raw value is cut to fit by streams/dead_letters.py. What they return
is `compact`: held in no more memory than its length.

The budget of a topic is the smaller of the producer's `max_request_size` and the topic's
`max.message.bytes` (both read when the worker starts: streams.topics.message_limits), less
`OVERHEAD` bytes for the record batch and record headers and the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

#: bytes kept free for Kafka's record batch header (61), the record's own framing and headers
OVERHEAD = 512
#: the smallest budget the worker runs with (one window-input item, rollup or notification is at
#: most ~140 KB: 64 tags of 100 + 255 characters, each escaped to 6 bytes at worst): below this,
#: `learnstream worker` refuses to start
MIN_BUDGET = 256 * 1024

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


def compact(data: bytes) -> bytes:
    """`data` in an allocation of its own length. orjson (3.13) returns its output in the buffer it
    encoded into, at least 4 KB whatever the length (a 2 KB changelog record held ~16-32 KB): kept
    for long (a table's record, a message waiting in the producer), each such value cost several
    times its size; the worker's RSS with 100,000 tenants' windows open was mostly that (issue #23
    item 12). A copy costs one memcpy."""
    return bytes(memoryview(data))


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
            out.append((part, compact(data)))
            continue
        if len(part) <= 1:
            raise ItemTooLarge(len(data), budget)
        k = min(len(part), max(2, math.ceil(len(data) * 1.1 / budget)))
        size = math.ceil(len(part) / k)
        stack.extend(reversed([part[i:i + size] for i in range(0, len(part), size)]))
    return out


def fits(value: Any, budget: int) -> bytes:
    """`value` as JSON, or ItemTooLarge (for the messages that carry one item: a rollup, a notification)."""
    data = orjson.dumps(value)
    if len(data) > budget:
        raise ItemTooLarge(len(data), budget)
    return compact(data)
