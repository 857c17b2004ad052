"""The up-to-date poll answered lean: ``GET …/sync/feeds/<name>/plan/`` with ``If-None-Match``
that gets ``304 Not Modified`` (P4: nearly every request a fleet of member clients makes).

``UpToDatePollMiddleware`` sits right after the request-id, metrics and security middleware.
For a request that could be such a poll, ``up_to_date_poll`` makes every check the full path
(``sync.apis.SyncPlanApi`` behind DRF and the rest of the middleware) makes, through the same
functions: the token looked up by digest with the feed's entitlement and newest manifest in
one query (``sync.auth._token_by_digest``), revocation, expiry and suspension
(``token_refusal``), the ``sync`` scope, the ETag (``plans.plan_etag``), ``last_used_at``
(``token_touch``), the bad-token throttle (``authfailures.is_throttled``) and pacing
(``pace_entry``). It answers only when every check passes and the answer is 304; anything
else — a refusal, an early poll, a changed plan, bad input, Redis unreachable — returns None
and the full path answers the request from the start, so every refusal, error body and
fail-open rule stays written once, there. (A request that falls back costs one extra token
query; refusals and early polls are rare in a fleet.)

What the skipped middleware would have done to a 304 of this route: nothing the poll uses
(no session, CSRF, staff user, messages, HTMX, lockouts); the outage middleware only handles
page views. ``LEFT_OUT_HEADERS`` lists the headers the full path adds that the lean 304
leaves out, and why.

Measured (P4, docs/benchmarks.md): ~2.1 ms of Python CPU per poll on the full path, of
which middleware and URL resolution ~0.7 ms, DRF ~0.3 ms, two Redis round trips ~0.3 ms.
"""

from __future__ import annotations

import functools
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIRequest
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve, reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from distribution import plans
from hashsync import authfailures
from hashsync.cache import get_and_add
from hashsync.clientip import client_ip
from hashsync.errors import InvalidInput
from members import tokens
from members.models import TokenScope
from sync import apis
from sync.auth import (
    MemberPrincipal,
    _token_by_digest,
    pace_entry,
    token_refusal,
    token_touch,
)

log = logging.getLogger(__name__)

# Headers the full path's 304 carries that the lean one leaves out (tests/sync/test_poll.py
# compares the two answers header by header): Content-Security-Policy and X-Frame-Options
# protect documents a browser renders, and a 304 has no body; Allow is DRF's list of the
# view's methods, which no client of a 304 reads; CommonMiddleware's "Content-Length: 0"
# would misstate the length of the plan a 304 stands for (RFC 9110, 8.6).
LEFT_OUT_HEADERS = frozenset(
    {"Content-Security-Policy", "X-Frame-Options", "Allow", "Content-Length"}
)


@functools.cache
def _plan_path_shape() -> tuple[str, str]:
    """The plan URL's text before and after the feed name, from urls.py."""
    marker = "feedname0marker"
    before, after = reverse("sync-plan", kwargs={"name": marker}).split(marker)
    return before, after


def _could_be_a_plan(path: str) -> bool:
    before, after = _plan_path_shape()
    return path.startswith(before) and path.endswith(after)


@functools.lru_cache(maxsize=256)
def _plan_route(path: str) -> ResolverMatch | None:
    """The plan view's URL match for ``path``, or None. URL resolution costs ~0.15 ms on
    this project's URL list, and a fleet polls few distinct paths (one per feed)."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match if getattr(match.func, "view_class", None) is apis.SyncPlanApi else None


def up_to_date_poll(request: HttpRequest) -> HttpResponse | None:
    """The 304 answer to this request when it is an up-to-date poll that passes every check
    of the full path, else None (the full path answers it)."""
    meta = request.META
    if request.method != "GET" or not meta.get("HTTP_IF_NONE_MATCH"):
        return None
    path = request.path_info
    if not _could_be_a_plan(path):
        return None
    match = _plan_route(path)
    if match is None:
        return None
    scheme, _, presented = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not tokens.is_well_formed(presented):
        return None
    try:
        from_version = apis.from_version_of(request.GET)
    except InvalidInput:
        return None
    name = match.kwargs["name"]
    digest = tokens.digest(presented)
    db = connections[DEFAULT_DB_ALIAS]
    reused = db.connection is not None
    if reused:
        # The token query itself tells whether a persistent connection still works, so this
        # request skips the "SELECT 1" of CONN_HEALTH_CHECKS (a round trip, ~0.1 ms of CPU).
        # If it fails, the connection is closed and the full path reconnects, health check
        # and all: a restarted database still fails no request.
        db.health_check_done = True  # type: ignore[attr-defined]
    try:
        token, head = _token_by_digest(digest, feed=name)
        if token is None or not hmac.compare_digest(token.digest, digest):
            return None
        now = timezone.now()
        principal = MemberPrincipal(token)
        if token_refusal(token, now) is not None or not principal.has_scope(TokenScope.SYNC):
            return None
        if head is None:
            return None
        etag = plans.plan_etag(head.manifest_sha256, from_version)
        if not apis.etag_matches(meta.get("HTTP_IF_NONE_MATCH", ""), etag):
            return None
        token_touch(token, now)
    except (DatabaseOperationalError, DatabaseInterfaceError):
        # A dropped persistent connection, or PostgreSQL down: the full path reconnects and
        # answers (or meets the outage: 503 with Retry-After, hashsync.outages).
        db.close()
        return None
    if not _paced(request, principal.client.pk, f"plan:{head.feed.pk}"):
        return None
    request.resolver_match = match  # the route of this request in /metrics
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    # A 304 repeats the Vary of the 200 it stands for: the full path's is the session
    # middleware's (tests/sync/test_poll.py compares the two answers).
    response["Vary"] = "Cookie"
    return response


def _paced(request: HttpRequest, client_id: int, what: str) -> bool:
    """The address is not over its bad-token budget and this poll is not too soon, checked
    in one round trip to the cache, which also starts the next pacing interval. False: let
    the full path decide (429, a poll inside the tolerance, Redis down: fail-open)."""
    interval = settings.HASHSYNC_POLL_INTERVAL_SECONDS
    failure_key = authfailures.failure_key(client_ip(request))
    if interval <= 0:  # pacing off
        try:
            return not authfailures.is_throttled(cache.get(failure_key))
        except (RedisConnectionError, RedisTimeoutError):
            return False
    key, next_allowed_after, timeout = pace_entry(client_id, what, time.time())
    try:
        failures, added = get_and_add(failure_key, key, next_allowed_after, timeout=timeout)
        if added and authfailures.is_throttled(failures):
            cache.delete(key)  # refused below, by the full path: this was not a poll
    except (RedisConnectionError, RedisTimeoutError):
        return False
    return added and not authfailures.is_throttled(failures)


# Set in the WSGI environ of a request that ``PollFront`` offered to ``up_to_date_poll`` and
# handed on to Django: the middleware then knows the answer is None and does not ask again.
DECLINED = "hashsync.poll_declined"


class UpToDatePollMiddleware:
    """Answers up-to-date polls (``up_to_date_poll``) before the middleware they do not
    need; every other request goes on down the stack. Under gunicorn ``PollFront`` has
    already answered them; this serves the test client, ``runserver`` and ASGI."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if DECLINED in request.META:
            return self.get_response(request)
        return up_to_date_poll(request) or self.get_response(request)


class _Declined(Exception):
    """``up_to_date_poll`` returned None: Django answers the request from the start."""


def _answer_or_decline(request: HttpRequest) -> HttpResponse:
    response = up_to_date_poll(request)
    if response is None:
        raise _Declined
    return response


_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PollFront:
    """A WSGI application in front of Django's (``hashsync.wsgi``): an up-to-date poll is
    answered by ``up_to_date_poll`` inside the middleware listed before
    ``UpToDatePollMiddleware`` (request id, metrics, security headers: the same instances'
    classes, so the same headers and counters), without Django's handler around it; any other
    request, and any the poll function declines, goes to Django unchanged."""

    def __init__(self, django: _WSGIApp) -> None:
        self.django = django
        names = list(settings.MIDDLEWARE)
        lean = f"{UpToDatePollMiddleware.__module__}.{UpToDatePollMiddleware.__qualname__}"
        self.enabled = lean in names
        chain: Callable[[HttpRequest], HttpResponse] = _answer_or_decline
        for name in reversed(names[: names.index(lean)] if self.enabled else []):
            chain = import_string(name)(chain)
        self.chain = chain

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not (
            self.enabled
            and environ.get("REQUEST_METHOD") == "GET"
            and environ.get("HTTP_IF_NONE_MATCH")
            and _could_be_a_plan(environ.get("PATH_INFO", ""))
        ):
            return self.django(environ, start_response)
        # Django's request signals, as its handler sends them: their receivers reset the
        # queries log and close a connection that is past DB_CONN_MAX_AGE or broken (before
        # it is used, and after).
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            response = self.chain(WSGIRequest(environ))
        except _Declined:
            environ[DECLINED] = True
            return self.django(environ, start_response)
        except Exception:
            # Nothing here should raise; if something does, Django answers the request (its
            # error handling turns a failure into the JSON error), rather than the server's
            # bare 500.
            log.exception("up-to-date poll front failed; the request goes to Django")
            environ[DECLINED] = True
            return self.django(environ, start_response)
        signals.request_finished.send(sender=self.__class__)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return ()
