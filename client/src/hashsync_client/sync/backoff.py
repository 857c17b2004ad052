"""Exponential backoff with jitter, for retries inside a sync and between ``watch`` cycles."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random, so clients
    that failed together do not come back together, and none comes back at once."""

    def __init__(
        self, *, base: float = 2.0, cap: float = 900.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        step = min(self.cap, self.base * (2 ** min(attempt, 30)))
        return step / 2 + self._rng.uniform(0, step / 2)

    def jitter(self, seconds: float, fraction: float = 0.2) -> float:
        return seconds * (1 + self._rng.uniform(0, fraction))
