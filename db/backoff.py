"""Capped exponential backoff with full jitter: the one policy of every retry loop, the worker's
(streams/retry.py) and retention's lock waits (db/retention.py) alike."""

from __future__ import annotations

import random


class Backoff:
    """Delays of successive failed attempts: uniform in [0, min(maximum, initial * 2^n)]."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0
        self._rng = rng or random

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return self._rng.uniform(0, cap)
