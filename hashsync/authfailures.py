"""Bad API tokens counted per client address, member and staff tokens alike.

After ``HASHSYNC_AUTH_FAILURE_LIMIT`` bad tokens from one address (``hashsync.clientip``) in
``HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS``, every token from it is refused with 429 for the rest
of the window: guessing either kind of token costs the same budget. The counters live in the
cache, shared by every web process (Redis in production).

While the cache is unreachable the limiter fails CLOSED for what it guards: a bad token is
answered 503 ``service_unavailable`` (``count_failure`` lets the cache's connection error
through to ``hashsync.outages``), never 401, because a verdict that cannot be counted would
give a guesser unlimited, uncounted tries for as long as the outage lasts (one an attacker may
be able to provoke or wait for). A per-process fallback, as the pacing and budget counters use
(``sync.limits``, ``sync.auth.pace``), would multiply the budget by the number of web
processes and reset with each restart. A good token still works: ``refuse_if_throttled``
cannot tell whether the address is over its budget and lets the request go on to the lookup,
so members keep syncing through a Redis restart; every wrong guess meanwhile gets a 503.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hashsync import metrics
from hashsync.errors import RateLimited


def failure_key(ip: str) -> str:
    """The cache key counting the address's bad tokens."""
    return f"hashsync:authfail:{ip}"


def is_throttled(failures: int | None) -> bool:
    """Whether an address with this many counted bad tokens (the value at ``failure_key``,
    None when absent) is refused."""
    return (failures or 0) >= settings.HASHSYNC_AUTH_FAILURE_LIMIT


def refuse_if_throttled(ip: str) -> None:
    try:
        failures = cache.get(failure_key(ip), 0)
    except (RedisConnectionError, RedisTimeoutError):
        return  # unknown: a bad token is refused with 503 by count_failure (module docstring)
    if is_throttled(failures):
        metrics.RATE_LIMITED.labels("too_many_failures").inc()
        raise RateLimited(
            "Too many requests with invalid tokens from your address; try again later.",
            code="too_many_failures",
            retry_after=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS,
        )


def count_failure(ip: str) -> None:
    """Count one bad token. Raises the cache's connection error while the cache is down, so
    the bad token is answered 503, not 401 (fails closed; module docstring)."""
    metrics.BAD_TOKENS.inc()
    key = failure_key(ip)
    cache.add(key, 0, timeout=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS)
