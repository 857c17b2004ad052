"""Per-client request budgets for the member endpoints that are not paced polls (acks,
lookups, feedback, bundle downloads, StopNCII pages). Each of those writes to the audit chain,
which every staff write shares; without a budget one member could flood it (and the analysts'
queue).

The counters fail open (``hashsync.outages.fail_open_cache``): while Redis is down each web
process counts on its own, and members keep syncing."""

from __future__ import annotations

import time

from hashsync import metrics
from hashsync.errors import RateLimited
from hashsync.outages import fail_open_cache as cache
from sync.auth import MemberPrincipal

# The budget of requests that hand out the list itself: bundle downloads and StopNCII pages
# (HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE).
DOWNLOADS = "download"


def spend(principal: MemberPrincipal, what: str, *, per_minute: int) -> None:
    """Count one request against the client's budget for ``what`` in the current minute;
    429 ``rate_limited`` with Retry-After once it is spent. ``per_minute`` 0: no limit."""
    if per_minute <= 0:
        return
    now = time.time()
    minute = int(now // 60)
    key = f"hashsync:budget:{principal.client.pk}:{what}:{minute}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, timeout=120)
        used = 1
    if used > per_minute:
        metrics.RATE_LIMITED.labels("rate_limited").inc()
        raise RateLimited(
            f"At most {per_minute} {what} requests a minute per sync client; wait for the next.",
            code="rate_limited",
            retry_after=60 - int(now % 60),
        )
