"""What a sync reports: one result per feed, and the sync as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hashsync_client.errors import ClientError


@dataclass
class FeedResult:
    feed: str
    status: str  # up_to_date | updated | unpublished | withdrawn | failed
    previous_version: int
    version: int
    state_digest: str | None = None
    steps: int = 0
    error: ClientError | None = None
    note: str | None = None  # e.g. why a feed was withdrawn, and what happened to its rows

    def as_json(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "status": self.status,
            "previous_version": self.previous_version,
            "version": self.version,
            "state_digest": self.state_digest,
            "steps": self.steps,
            "note": self.note,
            "error": _error_json(self.error),
        }


@dataclass
class SyncReport:
    results: list[FeedResult] = field(default_factory=list)
    poll_interval: int | None = None
    error: ClientError | None = None  # the sync as a whole failed (e.g. the feed list)
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.error is None for r in self.results)

    @property
    def withdrawn(self) -> list[FeedResult]:
        """Feeds this sync found the server no longer offers (their data stopped answering)."""
        return [r for r in self.results if r.status == "withdrawn"]

    def errors(self) -> list[ClientError]:
        found = [self.error] if self.error else []
        return found + [r.error for r in self.results if r.error is not None]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "feeds": [r.as_json() for r in self.results],
            "withdrawn": [r.feed for r in self.withdrawn],
            "error": _error_json(self.error),
            "poll_interval_seconds": self.poll_interval,
            "retry_after_seconds": self.retry_after,
        }


def _error_json(error: ClientError | None) -> dict[str, str] | None:
    return None if error is None else {"code": error.code, "message": str(error)}
