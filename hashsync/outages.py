"""Outages of the services hashsync depends on, told apart from bugs.

When PostgreSQL, Redis (the cache) or the Celery broker cannot be reached, a request cannot be
answered, but nothing is wrong with it: the right answer is ``503`` with ``Retry-After``, so a
member client backs off and tries again and a person knows to wait, rather than ``500``, which
says the server is broken and nobody can tell whether the action happened. This module is the
one place that decides whether an exception is such an outage and which service it was;
``hashsync.api.exception_handler`` (API views), ``OutageMiddleware`` (pages) and
``hashsync.views.error_500`` (anything raised outside a view, in a middleware) all ask it.

It also holds ``FailOpenCache``: the cache for counters whose loss is harmless (pacing,
budgets), which keeps members syncing on a per-process fallback while Redis is down.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

Service = Literal["database", "cache", "broker"]

_MESSAGES: dict[Service, str] = {
    "database": "The database is unavailable; nothing was changed by this request. "
    "Try again shortly.",
    "cache": "The cache is unavailable; try again shortly.",
    "broker": "The task queue is unavailable; try again shortly.",
}


def outage_of(exc: BaseException | None) -> Service | None:
    """Which service ``exc`` says is unreachable, or None when it is not an outage.

    Follows ``__cause__``/``__context__`` a few steps: libraries re-raise connection errors
    as their own (Django wraps psycopg's, kombu wraps the transport's). The broker is checked
    before the cache, since in production both are Redis and kombu's error wraps redis-py's.

    Every ``OperationalError`` of the database counts, not only a refused connection: a
    dropped connection, a server shutting down, a failover and a lock or statement timeout all
    mean "try again", which is what 503 says."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, BrokerOperationalError):
            return "broker"
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
            return "cache"
        if isinstance(exc, (DatabaseOperationalError, DatabaseInterfaceError)):
            return "database"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def retry_after() -> int:
    return int(settings.HASHSYNC_OUTAGE_RETRY_AFTER_SECONDS)


def log_outage(service: Service, exc: BaseException, where: str) -> None:
    # One line, no traceback and no request data: an outage is not a bug, and during one
    # every request would otherwise log a page of stack.
    logger.warning("%s unavailable during %s: %s", service, where, type(exc).__name__)


def error_details(service: Service) -> tuple[str, str, dict[str, Any]]:
    """``(code, message, details)`` of the API error for an outage of ``service``."""
    return "service_unavailable", _MESSAGES[service], {"service": service}


def page_response(service: Service) -> HttpResponse:
    """The plain 503 page. Rendered without context processors or the session: the database
    or the cache they need may be what is down."""
    from django.template import loader

    body = loader.get_template("error_503.html").render({"service": service})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(retry_after())
    return response


def json_response(service: Service) -> JsonResponse:
    from hashsync.api import error_body

    response = JsonResponse(error_body(*error_details(service)), status=503)
    response["Retry-After"] = str(retry_after())
    return response


def response_for(request: HttpRequest, service: Service) -> HttpResponse:
    """JSON under /api/ (and for the sync API's other prefixes), a page elsewhere."""
    if request.path.startswith("/api/"):
        return json_response(service)
    return page_response(service)


def current_outage() -> tuple[Service, BaseException] | None:
    """The outage being handled right now (inside an ``except`` block), if any: Django calls
    ``handler500`` from the ``except`` that caught the exception."""
    exc = sys.exc_info()[1]
    service = outage_of(exc)
    return (service, exc) if service and exc else None


class OutageMiddleware:
    """Turns an outage raised by a page view into the 503 page (API views answer JSON through
    ``hashsync.api.exception_handler`` before this sees anything). Exceptions raised by other
    middleware reach ``hashsync.views.error_500``, which asks this module too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = outage_of(exception)
        if service is None:
            return None
        log_outage(service, exception, request.path)
        return response_for(request, service)


# --- Fail-open counters ------------------------------------------------------------------------

# Shared by every thread of this process, like the default cache it stands in for.
_fallback = LocMemCache("hashsync-outage-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
_last_warned = 0.0


class FailOpenCache:
    """The default cache, or this process's own memory while the default one is unreachable.

    For counters whose loss costs little: poll pacing and per-client budgets. While Redis is
    down each web process counts on its own, so a client may get a few more requests through
    (one budget per process instead of one in all), and members keep syncing instead of
    getting 503 for every poll. Counters that protect secrets (bad tokens,
    ``hashsync.authfailures``) must not use this: they fail closed.

    Each call tries Redis first (with the short socket timeout of ``HASHSYNC_CACHE_TIMEOUT_
    SECONDS``), so the shared counters are used again as soon as Redis is back."""

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        global _last_warned
        try:
            return getattr(cache, name)(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            now = time.monotonic()
            if now - _last_warned > 10:  # one warning per process every 10 s, not per call
                _last_warned = now
                logger.warning(
                    "cache unavailable (%s); counting in this process until it is back",
                    type(exc).__name__,
                )
            return getattr(_fallback, name)(*args, **kwargs)

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return bool(self._call("add", key, value, timeout=timeout))

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default)

    def set(self, key: str, value: Any, timeout: int | None = None) -> None:
        self._call("set", key, value, timeout=timeout)

    def incr(self, key: str, delta: int = 1) -> int:
        return int(self._call("incr", key, delta))

    def delete(self, key: str) -> None:
        self._call("delete", key)


fail_open_cache = FailOpenCache()
