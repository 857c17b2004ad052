"""A clock for writing the demo's history in the past (``seed_demo`` only; never in serving).

Everything that stamps a time asks ``django.utils.timezone.now()``: the services' own
timestamps, ``auto_now_add`` fields (Django calls ``timezone.now()`` through the module),
the audit trail's ``at``, the release cutter and the manifests' issued/expires times, token
``last_used_at`` and licence checks. So the history is written by the ordinary services, in
the order it happened, while this clock answers the simulated moment: every row, every
signature and every audit event then carries the time it would have had, and the audit chain
is appended to in time order as in real operation — nothing is back-dated afterwards, which the
append-only trail would refuse anyway.

The clock is an offset, not a frozen instant: time flows at the real rate between jumps, so
durations (a release cut, a review session) keep their real lengths. It only ever jumps
forward — a jump to an earlier moment stays where it is — so the trail's times never decrease.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone


class DemoClock:
    def __init__(self, start: dt.datetime, real_now: dt.datetime) -> None:
        self._real_now = timezone.now  # the real clock, whatever it was when entered
        self._offset = start - real_now

    def now(self) -> dt.datetime:
        return self._real_now() + self._offset

    def at(self, moment: dt.datetime) -> dt.datetime:
        """Move to ``moment`` (never backwards); returns the simulated now."""
        current = self.now()
        if moment > current:
            self._offset += moment - current
        return self.now()


@contextmanager
def demo_clock(start: dt.datetime) -> Iterator[DemoClock]:
    """Run the block with ``timezone.now()`` answering simulated times from ``start`` on;
    the real clock is back when the block ends, however it ends."""
    real = timezone.now
    real_now = real()
    if start > real_now:
        raise ValueError("The demo clock writes history: it cannot start in the future.")
    clock = DemoClock(start, real_now)
    timezone.now = clock.now
    try:
        yield clock
    finally:
        timezone.now = real
