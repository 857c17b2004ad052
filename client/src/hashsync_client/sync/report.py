"""What a sync reports: one result per feed, and the sync as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from hashsync_client.errors import ClientError


@dataclass
class FeedResult:
    feed: str
    status: str  # up_to_date | updated | unpublished | failed
    previous_version: int
    version: int
    state_digest: str | None = None
    steps: int = 0
    error: ClientError | None = None


@dataclass
class SyncReport:
    results: list[FeedResult] = field(default_factory=list)
    poll_interval: int | None = None
    error: ClientError | None = None  # the sync as a whole failed (e.g. the feed list)
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.error is None for r in self.results)

    def errors(self) -> list[ClientError]:
        found = [self.error] if self.error else []
        return found + [r.error for r in self.results if r.error is not None]
