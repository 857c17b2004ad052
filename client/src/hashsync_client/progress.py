"""Progress bars on stderr for long downloads and applies, without extra dependencies.

Drawn only on a terminal (or when forced); as a service (``watch`` under systemd) the log
lines say what happened instead, so the journal is not filled with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class ProgressSink(Protocol):
    def update(self, amount: int) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    def update(self, amount: int) -> None:
        pass

    def close(self) -> None:
        pass


def _human(amount: float, unit: str) -> str:
    if unit != "B":
        return f"{amount:,.0f}"
    for suffix in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or suffix == "GiB":
            return f"{amount:.0f} {suffix}" if suffix == "B" else f"{amount:.1f} {suffix}"
        amount /= 1024
    raise AssertionError("unreachable")


class Progress:
    """``label [#####-----]  45%  1.2/2.6 MiB`` redrawn at most ten times a second."""

    WIDTH = 24

    def __init__(self, label: str, total: int, *, unit: str = "B", stream: TextIO | None = None):
        self._label = label
        self._total = max(total, 0)
        self._unit = unit
        self._stream = stream or sys.stderr
        self._done = 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._closed = False

    def update(self, amount: int) -> None:
        self._done += amount
        now = time.monotonic()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        fraction = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        elapsed = max(now - self._started, 1e-6)
        rate = _human(self._done / elapsed, self._unit) + ("/s" if self._unit == "B" else " /s")
        done = _human(self._done, self._unit)
        total = _human(self._total, self._unit)
        self._stream.write(f"\r{self._label} [{bar}] {fraction:4.0%}  {done}/{total}  {rate}\x1b[K")
        self._stream.flush()


class ProgressFactory:
    """Makes a bar per download or apply when enabled, else a no-op."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled

    def __call__(self, label: str, total: int, *, unit: str = "B") -> ProgressSink:
        if not self.enabled:
            return NullProgress()
        return Progress(label, total, unit=unit, stream=self._stream)
