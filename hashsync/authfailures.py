"""Bad API tokens counted per client address, member and staff tokens alike.

After ``HASHSYNC_AUTH_FAILURE_LIMIT`` bad tokens from one address (``hashsync.clientip``) in
``HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS``, every token from it is refused with 429 for the rest
of the window: guessing either kind of token costs the same budget. The counters live in the
cache, shared by every web process (Redis in production).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from hashsync import metrics
from hashsync.errors import RateLimited


def _failure_key(ip: str) -> str:
    return f"hashsync:authfail:{ip}"


def refuse_if_throttled(ip: str) -> None:
    failures = cache.get(_failure_key(ip), 0)
    if failures >= settings.HASHSYNC_AUTH_FAILURE_LIMIT:
        metrics.RATE_LIMITED.labels("too_many_failures").inc()
        raise RateLimited(
            "Too many requests with invalid tokens from your address; try again later.",
            code="too_many_failures",
            retry_after=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS,
        )


def count_failure(ip: str) -> None:
    metrics.BAD_TOKENS.inc()
    key = _failure_key(ip)
    cache.add(key, 0, timeout=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS)
