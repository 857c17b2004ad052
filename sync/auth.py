"""Member API token authentication, scopes and pacing for the sync API.

Staff authenticate elsewhere (personal ``hsp_`` tokens, the session, HTTP Basic where enabled:
``accounts.authentication``); member endpoints use only ``MemberTokenAuthentication``, so no
staff credential opens the sync API and a member token never opens a staff endpoint. The token
is looked up by its SHA-256 digest on every request (no caching), so revocation and suspension
take effect on the next request.
"""

from __future__ import annotations

import functools
import hmac
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import CharField, DateTimeField
from django.db.models.expressions import RawSQL
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from distribution.models import Feed
from hashsync import metrics
from hashsync.authentication import (
    STAFF_API,
    SYNC_API,
    presented_scheme,
    refuse_staff_token_on_sync_api,
)
from hashsync.authfailures import count_failure, refuse_if_throttled
from hashsync.clientip import client_ip
from hashsync.errors import DomainError, NotAuthenticated, PermissionDenied, RateLimited
from hashsync.outages import fail_open_cache
from members import selectors, tokens
from members.models import ApiToken, Member, MemberStatus, SyncClient

# last_used_at is a hint for administrators, not an audit record: writing it on every poll
# would turn each cheap up-to-date check into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class MemberPrincipal:
    """``request.user`` on member endpoints: a sync client acting through one token. It holds
    no staff permission, so staff endpoints refuse it whatever they check."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(
        self,
        token: ApiToken,
        *,
        feed_head: tuple[str, selectors.FeedHead | None] | None = None,
    ) -> None:
        self.token = token
        self.client: SyncClient = token.client
        self.member: Member = token.client.member
        self._feed_head = feed_head  # (feed name, head) read with the token, if asked

    def entitled_feed_head(self, name: str) -> selectors.FeedHead | None:
        """``selectors.entitled_feed_head(member, name)``: taken from the token's query when
        the view asked for it (``MemberTokenAuthentication``), else read now."""
        if self._feed_head is not None and self._feed_head[0] == name:
            return self._feed_head[1]
        return selectors.entitled_feed_head(self.member, name)

    @property
    def label(self) -> str:
        """How audit events name this actor (never the token)."""
        return self.client.audit_label

    def get_username(self) -> str:
        return self.label

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        return False

    def has_scope(self, scope: str) -> bool:
        return scope in (self.token.scopes or ())


_TOKEN_MODELS = (ApiToken, SyncClient, Member)
_Converter = Callable[[Any, Any, Any], Any]


class _Slot:
    """A parameter of the compiled feed-head statement that changes per request: compiled in
    its place as a parameter, then replaced by the request's value (``_token_by_digest``)."""


_NOW, _FEED = _Slot(), _Slot()


def _feed_head_statement() -> tuple[str, list[Any]]:
    """``members.selectors.feed_heads`` for one feed name, compiled by Django for this
    database: the entitlement rule is written once, as that queryset, and the poll's SQL is
    derived from it. Its parameters hold ``_NOW`` and ``_FEED`` where the request's time and
    feed name go."""
    heads = selectors.feed_heads(now=RawSQL("%s", (_NOW,), output_field=DateTimeField()))
    heads = heads.filter(feed__name=RawSQL("%s", (_FEED,), output_field=CharField()))
    sql, params = heads.query.sql_with_params()
    return sql, list(params)


@functools.cache
def _token_query(
    vendor: str, with_feed_head: bool
) -> tuple[str, list[Any], list[list[tuple[Any, list[_Converter]]]], list[_Converter]]:
    """The SQL of ``ApiToken.objects.select_related("client__member").filter(digest=…)``
    (every column of the three models, in field order), and, per model and field, the
    converters the ORM applies to its value on this database (built once per vendor).

    With ``with_feed_head``, the statement of ``_feed_head_statement`` is LEFT JOINed on the
    token's member, and its feed id, name, algorithms and newest manifest SHA-256 follow the
    token's columns; its parameters come before the digest's, and the last item holds the
    converters of the algorithms column (what the ORM applies to ``feed_algorithms``)."""
    db = connections[DEFAULT_DB_ALIAS]
    columns, converters = [], []
    for alias, model in zip("tcm", _TOKEN_MODELS, strict=True):
        fields = []
        for field in model._meta.concrete_fields:
            columns.append(f"{alias}.{db.ops.quote_name(field.column)}")
            col = field.cached_col
            fields.append((col, db.ops.get_db_converters(col) + col.get_db_converters(db)))
        converters.append(fields)
    head_join = ""
    head_params: list[Any] = []
    algorithms_converters: list[_Converter] = []
    if with_feed_head:
        head_sql, head_params = _feed_head_statement()
        member_id, *head_columns = (db.ops.quote_name(c) for c in selectors.FEED_HEAD_COLUMNS)
        columns.extend(f"h.{column}" for column in head_columns)
        head_join = f" LEFT JOIN ({head_sql}) h ON h.{member_id} = m.id"
        col = Feed._meta.get_field("algorithms").cached_col
        algorithms_converters = db.ops.get_db_converters(col) + col.get_db_converters(db)
    sql = (
        f"SELECT {', '.join(columns)} FROM {ApiToken._meta.db_table} t"  # noqa: S608 - ours
        f" JOIN {SyncClient._meta.db_table} c ON c.id = t.client_id"
        f" JOIN {Member._meta.db_table} m ON m.id = c.member_id{head_join}"
        " WHERE t.digest = %s"
    )
    return sql, head_params, converters, algorithms_converters


def _preparable_cursor(db: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor for the poll's query. On PostgreSQL, one that binds parameters server-side, so
    psycopg prepares its statements (DATABASES OPTIONS ``prepare_threshold``, set in
    hashsync/settings.py; Django's own cursors bind client-side and never prepare) and
    PostgreSQL plans the query once per connection instead of on every poll: with the feed's
    part, the query cost ~0.30 ms of PostgreSQL CPU per poll unprepared (nearly all planning),
    ~0.05 ms prepared (P4). Otherwise, and elsewhere, an ordinary cursor."""
    if db.vendor != "postgresql":
        return db.cursor()
    import psycopg

    # What db.cursor() does (health check, connection, thread check, query logging), with
    # psycopg's server-side binding cursor instead of Django's client-side one.
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw: Any = psycopg.Cursor(db.connection)  # (django-stubs type the argument wrongly)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


def _token_by_digest(
    digest: str, *, feed: str | None = None
) -> tuple[ApiToken | None, selectors.FeedHead | None]:
    """The token with this digest, its client and member loaded: what
    ``ApiToken.objects.select_related("client__member").filter(digest=digest).first()``
    returns, with the SQL written once instead of compiled by the ORM on every request (P4,
    the up-to-date poll: ~0.5 ms of CPU per request for the ORM's query, ~0.1 ms for this).
    Values go through the converters the ORM applies (JSON, and SQLite's dates and booleans).

    With ``feed``, the same query also reads ``selectors.entitled_feed_head(member, feed)``
    (second item; None without ``feed``): the up-to-date poll then makes one query instead of
    two: ~0.12 ms less CPU per poll (Python and PostgreSQL) and one round trip less.
    """
    db = connections[DEFAULT_DB_ALIAS]
    sql, head_params, converters, algorithms_converters = _token_query(db.vendor, feed is not None)
    params: list[Any] = [digest]
    if feed is not None:
        now = db.ops.adapt_datetimefield_value(timezone.now())
        slots = {_NOW: now, _FEED: feed}
        params = [*(slots[p] if isinstance(p, _Slot) else p for p in head_params), digest]
    with _preparable_cursor(db) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, None
    values = iter(row)
    instances = []
    for model, fields in zip(_TOKEN_MODELS, converters, strict=True):
        converted = []
        for (col, field_converters), value in zip(fields, values, strict=False):
            for convert in field_converters:
                value = convert(value, col, db)
            converted.append(value)
        attnames = [f.attname for f in model._meta.concrete_fields]
        instances.append(model.from_db(db.alias, attnames, converted))
    token, client, member = instances
    assert isinstance(token, ApiToken) and isinstance(client, SyncClient)
    assert isinstance(member, Member)
    client.member = member
    token.client = client
    if feed is None:
        return token, None
    feed_id, name, algorithms, manifest_sha256 = values
    if feed_id is None:  # no feed of that name, or not one the member may receive now
        return token, None
    col = Feed._meta.get_field("algorithms").cached_col
    for convert in algorithms_converters:
        algorithms = convert(algorithms, col, db)
    return token, selectors.feed_head_of(feed_id, name, algorithms, manifest_sha256)


def token_refusal(token: ApiToken, now: datetime) -> DomainError | None:
    """Why a token found by its digest may not be used now (revoked, expired, its member
    suspended), or None: checked on every request, so each takes effect on the next one."""
    if token.revoked_at is not None:
        return NotAuthenticated("This token has been revoked.", code="token_revoked")
    if token.expires_at is not None and token.expires_at <= now:
        return NotAuthenticated("This token has expired.", code="token_expired")
    if token.client.member.status != MemberStatus.ACTIVE:
        return PermissionDenied(
            "Your organisation's access is suspended; contact the hotline.",
            code="member_suspended",
        )
    return None


def token_touch(token: ApiToken, now: datetime) -> None:
    """Record that the token was used, at most once per ``LAST_USED_RESOLUTION``."""
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


def token_authenticate(
    request: Request, presented: str, *, malformed: str, feed: str | None = None
) -> tuple[MemberPrincipal, ApiToken]:
    """Check a presented member token: the one check behind every way a member token reaches
    the server (``Authorization: Bearer`` here, the StopNCII key headers in
    ``sync.stopncii``). Bad-token throttling, shape and checksum, lookup by digest,
    revocation, expiry and suspension, in that order. ``malformed`` is the message for a token
    that is not even well formed (it names where the token was expected). With ``feed``, the
    principal also holds that feed's ``entitled_feed_head``, read in the same query."""
    ip = client_ip(request)
    refuse_if_throttled(ip)
    presented = presented.strip()
    if not tokens.is_well_formed(presented):
        # A staff personal token is a mistake, not a guess: told plainly, and not counted.
        refuse_staff_token_on_sync_api(presented)
        count_failure(ip)
        raise NotAuthenticated(malformed)
    digest = tokens.digest(presented)
    token, feed_head = _token_by_digest(digest, feed=feed)
    # The lookup is by digest, so timing reveals nothing about the token; the comparison
    # is constant-time all the same, in case the lookup ever changes.
    if token is None or not hmac.compare_digest(token.digest, digest):
        count_failure(ip)
        raise NotAuthenticated("This token is not valid.")
    now = timezone.now()
    refusal = token_refusal(token, now)
    if refusal is not None:
        raise refusal
    token_touch(token, now)
    prefetched = (feed, feed_head) if feed is not None else None
    return MemberPrincipal(token, feed_head=prefetched), token


class MemberTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="hashsync"'

    def authenticate(self, request: Request) -> tuple[MemberPrincipal, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            if settings.SESSION_COOKIE_NAME in request.COOKIES:
                raise exceptions.NotAuthenticated(
                    f"A staff session was sent to {SYNC_API}, which takes a member API token: "
                    "'Authorization: Bearer hsk_…'."
                )
            return None  # DRF answers 401 not_authenticated with our challenge
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            # Another scheme (a staff password, "Token …"): not a token guess, so not counted
            # by the bad-token throttle, but told plainly what this API takes.
            raise exceptions.NotAuthenticated(
                f"{presented_scheme(request)} credentials were sent to {SYNC_API}, which takes "
                "a member API token: 'Authorization: Bearer hsk_…'. Staff sign-ins work only "
                f"on {STAFF_API}."
            )
        # A view that reads one feed on every request names the URL argument that holds it
        # (``feed_head_kwarg``, the plan: P4's poll); the token query then reads that feed's
        # entitlement and newest manifest as well. The view still decides what to answer.
        context = request.parser_context or {}
        kwarg = getattr(context.get("view"), "feed_head_kwarg", None)
        feed = context.get("kwargs", {}).get(kwarg) if kwarg else None
        return token_authenticate(
            request,
            presented,
            malformed="The Authorization header must be 'Bearer hsk_…' with a valid member token.",
            feed=feed if isinstance(feed, str) else None,
        )


def principal_of(request: Request) -> MemberPrincipal:
    user = request.user
    if not isinstance(user, MemberPrincipal):  # pragma: no cover - guarded by permissions
        raise PermissionDenied("This endpoint is for member API tokens.")
    return user


def require_scope(scope: str) -> type[BasePermission]:
    class _RequireScope(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            if not isinstance(user, MemberPrincipal):
                return False  # DRF: 401 if unauthenticated
            if not user.has_scope(scope):
                raise PermissionDenied(
                    f"This token does not have the '{scope}' scope.",
                    code="scope_missing",
                )
            return True

    _RequireScope.__name__ = f"RequireScope[{scope}]"
    return _RequireScope


def pace_entry(client_id: int, what: str, now: float) -> tuple[str, float, int]:
    """The pacing key of a sync client's polls of ``what``, the value a poll at ``now`` sets
    (when the next one is allowed) and its lifetime in seconds. Pacing on
    (``HASHSYNC_POLL_INTERVAL_SECONDS`` > 0) only."""
    interval = settings.HASHSYNC_POLL_INTERVAL_SECONDS
    # 10% tolerance: clients add jitter on top of the interval, timers are coarse. The key
    # stores when the next poll is allowed; it lives a whole interval (cache timeouts are whole
    # seconds, so its expiry alone cannot express the tolerance).
    window = interval * 0.9
    return f"hashsync:pace:{client_id}:{what}", now + window, math.ceil(interval)


def pace(principal: MemberPrincipal, what: str) -> None:
    """Refuse a poll that comes sooner than the announced interval after the previous one.

    Fails open: while Redis is down each web process paces on its own
    (``hashsync.outages.FailOpenCache``), so members keep syncing."""
    interval = settings.HASHSYNC_POLL_INTERVAL_SECONDS
    if interval <= 0:
        return
    now = time.time()
    key, next_allowed_after, timeout = pace_entry(principal.client.pk, what, now)
    if fail_open_cache.add(key, next_allowed_after, timeout=timeout):
        return
    next_allowed = fail_open_cache.get(key)
    if not isinstance(next_allowed, float) or now >= next_allowed:
        fail_open_cache.set(key, next_allowed_after, timeout=timeout)
        return
    wait = next_allowed - now
    metrics.RATE_LIMITED.labels("poll_too_soon").inc()
    raise RateLimited(
        f"Poll at most once every {interval} seconds.",
        code="poll_too_soon",
        retry_after=math.ceil(max(wait, 1)),
    )
