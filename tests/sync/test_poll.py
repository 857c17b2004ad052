"""The lean up-to-date poll (``sync.poll``): it answers 304 exactly when the full path
(``SyncPlanApi`` behind DRF and every middleware) would, with the same headers but those that
only protect documents, counted in /metrics by route and stamped with a request id; and it
refuses nothing itself: every refusal, early poll and outage is answered by the full path.

Synthetic data only: every hash value is random bytes (``tests.conftest.synthetic``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, close_old_connections
from django.test import RequestFactory, override_settings
from prometheus_client import REGISTRY

import sync.auth
import sync.poll
from hashsync.authfailures import failure_key
from members import services as member_services
from sync.poll import LEFT_OUT_HEADERS, PollFront, up_to_date_poll
from tests.sync.helpers import World, _issue, _plan_path, _send, _token_row
from tests.sync.test_auth import FEED_KINDS, TOKEN_KINDS, _credential, _feed_asked
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

LEAN = "sync.poll.UpToDatePollMiddleware"


def _etag(path: str, token: str) -> str:
    """The ETag a client holds after its last unconditional poll (pacing reset after it)."""
    response = _send("get", path, token=token)
    assert response.status_code == 200, response.content[:300]
    cache.clear()
    return str(response["ETag"])


def _poll(path: str, token: str, etag: str, **extra: Any) -> Any:
    return _send("get", path, token=token, HTTP_IF_NONE_MATCH=etag, **extra)


def _lean(path: str, token: str, etag: str, **extra: Any) -> Any:
    """What the lean path alone answers (None: it leaves the request to the full path)."""
    request = RequestFactory().get(
        path, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IF_NONE_MATCH=etag, **extra
    )
    return up_to_date_poll(request)


def _new_token(w: World, client: str, scopes: Any = ("sync",)) -> str:
    """A token of a new sync client of alpha's."""
    member_services.client_create(actor=w.admin, member_name="alpha", name=client)
    return _issue(w.admin, "alpha", client=client, scopes=scopes)


def _full_path_only() -> Any:
    return override_settings(MIDDLEWARE=[m for m in django_settings.MIDDLEWARE if m != LEAN])


def _requests(status: str) -> float:
    labels = {"route": "sync-plan", "method": "GET", "status": status}
    return REGISTRY.get_sample_value("hashsync_http_requests_total", labels) or 0.0


@pytest.fixture
def paced(settings: Any) -> None:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 30


# --- what the lean path answers -----------------------------------------------------------


def test_an_up_to_date_poll_is_answered_before_the_view(world: World, paced, monkeypatch):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    before = _requests("3xx")
    monkeypatch.setattr(sync.apis.SyncPlanApi, "get", None)  # a TypeError if ever reached

    response = _poll(path, world.token_a, etag)

    assert response.status_code == 304
    assert response["ETag"] == etag
    assert response.content == b""
    assert len(response["X-Request-ID"]) >= 8
    assert _requests("3xx") == before + 1  # /metrics: by route and status class


def test_the_lean_304_has_the_full_paths_headers_but_those_left_out(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    lean = _poll(path, world.token_a, etag)
    cache.clear()
    with _full_path_only():
        full = _poll(path, world.token_a, etag)

    assert lean.status_code == full.status_code == 304
    ignored = {"X-Request-ID"}
    lean_headers = {k: v for k, v in lean.headers.items() if k not in ignored}
    full_headers = {k: v for k, v in full.headers.items() if k not in ignored}
    assert set(full_headers) - set(lean_headers) == LEFT_OUT_HEADERS
    assert lean_headers == {k: v for k, v in full_headers.items() if k in lean_headers}


def test_a_supplied_request_id_is_kept(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)

    response = _poll(path, world.token_a, etag, HTTP_X_REQUEST_ID="synthetic-poll-0001")

    assert response.status_code == 304
    assert response["X-Request-ID"] == "synthetic-poll-0001"


def test_the_lean_path_writes_last_used_at_once_a_minute(world: World, settings):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    row = _token_row(world.token_a)
    row.last_used_at = None
    row.save(update_fields=["last_used_at"])

    assert _poll(path, world.token_a, etag).status_code == 304
    first = _token_row(world.token_a).last_used_at
    assert first is not None
    assert _poll(path, world.token_a, etag).status_code == 304
    assert _token_row(world.token_a).last_used_at == first  # within the minute: not written


# --- the same verdict as the full path, for every token and feed --------------------------------


@pytest.mark.parametrize("feed_kind", list(FEED_KINDS))
@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_the_lean_path_answers_exactly_when_the_full_path_answers_304(
    token_kind, feed_kind, world, photodna, django_user_model, settings
):
    """The verdicts of ``test_the_polls_token_and_feed_head_row_is_what_the_orm_returns``
    (tests/sync/test_auth.py), as the lean path acts on them."""
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    valid = _new_token(world, "edge-etag")
    _, secret = _credential(token_kind, world, "sync", django_user_model)
    name = _feed_asked(feed_kind, world, photodna)
    path = _plan_path(name, 0)
    # The ETag a client would hold if it could read the plan at all.
    held = _send("get", path, token=valid)
    etag = held.get("ETag", '"0000000000000000000000000000000000000000"')

    lean = _lean(path, secret, etag)
    with _full_path_only():
        full = _poll(path, secret, etag)

    if full.status_code == 304:
        assert lean is not None and lean.status_code == 304 and lean["ETag"] == full["ETag"]
    else:
        assert lean is None, (token_kind, feed_kind, full.status_code)
        assert _poll(path, secret, etag).status_code == full.status_code
    assert (full.status_code == 304) == (token_kind == "valid" and FEED_KINDS[feed_kind])


# --- everything the full path refuses, the lean path leaves to it -------------------------------


def _refusal(kind: str, w: World) -> tuple[str, str]:
    """A token of alpha's in the state ``kind`` names (feed_a's plan at version 1)."""
    secret = _new_token(w, f"edge-{kind}")
    row = _token_row(secret)
    if kind == "revoked":
        member_services.token_revoke(actor=w.admin, member_name="alpha", token_id=row.pk)
    elif kind == "expired":
        row.expires_at = row.created_at
        row.save(update_fields=["expires_at"])
    elif kind == "suspended":
        member_services.member_suspend(actor=w.admin, name="alpha", reason="synthetic test")
    elif kind == "no-entitlement":
        member_services.entitlement_revoke(actor=w.admin, member_name="alpha", feed=w.feed_a.name)
    elif kind == "wrong-scope":
        secret = _new_token(w, "edge-lookup-only", scopes=["lookup"])
    return secret, kind


REFUSALS = {
    "revoked": (401, "token_revoked"),
    "expired": (401, "token_expired"),
    "suspended": (403, "member_suspended"),
    "no-entitlement": (404, "not_found"),
    "wrong-scope": (403, "scope_missing"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_refused_token_is_refused_by_the_full_path(kind, world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    secret, _ = _refusal(kind, world)

    assert _lean(path, secret, etag) is None
    response = _poll(path, secret, etag)

    assert_error(response, *REFUSALS[kind])
    assert cache.get(f"hashsync:pace:{_token_row(secret).client_id}:plan:{world.feed_a.pk}") is None


def test_an_early_poll_gets_429_with_retry_after(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    assert _poll(path, world.token_a, etag).status_code == 304

    assert _lean(path, world.token_a, etag) is None
    response = _poll(path, world.token_a, etag)

    assert_error(response, 429, "poll_too_soon")
    assert 1 <= int(response["Retry-After"]) <= 30


def test_an_address_over_its_bad_token_budget_is_refused_and_not_paced(
    world: World, paced, settings
):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    cache.set(failure_key("127.0.0.1"), settings.HASHSYNC_AUTH_FAILURE_LIMIT, timeout=60)

    assert _lean(path, world.token_a, etag) is None
    response = _poll(path, world.token_a, etag)

    assert_error(response, 429, "too_many_failures")
    client_id = _token_row(world.token_a).client_id
    assert cache.get(f"hashsync:pace:{client_id}:plan:{world.feed_a.pk}") is None


@pytest.mark.parametrize(
    ("query", "etag", "status"),
    [
        ("from_version=0", None, 200),  # another version held: a different plan
        ("from_version=-1", None, 400),
        ("from_version=1e3", None, 400),
        ("", None, 400),
        ("from_version=1", '"a-stale-etag"', 200),
    ],
)
def test_anything_but_an_up_to_date_poll_goes_to_the_full_path(
    query, etag, status, world: World, paced
):
    path = _plan_path(world.feed_a.name, 1)
    held = _etag(path, world.token_a)
    asked = path.split("?")[0] + (f"?{query}" if query else "")

    assert _lean(asked, world.token_a, etag or held) is None
    assert _poll(asked, world.token_a, etag or held).status_code == status


@pytest.mark.parametrize(
    "authorization",
    ["", "Token {t}", "Bearer {t}x", "Bearer hsk_short", "Basic {t}", "bearer"],
)
def test_a_request_without_a_usable_bearer_token_goes_to_the_full_path(
    authorization, world: World, paced
):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    header = authorization.format(t=world.token_a)
    request = RequestFactory().get(path, HTTP_AUTHORIZATION=header, HTTP_IF_NONE_MATCH=etag)

    assert up_to_date_poll(request) is None
    response = _send("get", path, HTTP_AUTHORIZATION=header, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 401


def test_other_routes_and_methods_go_on_down_the_stack(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    factory = RequestFactory()
    auth: dict[str, Any] = {
        "HTTP_AUTHORIZATION": f"Bearer {world.token_a}",
        "HTTP_IF_NONE_MATCH": etag,
    }

    assert up_to_date_poll(factory.head(path, **auth)) is None
    assert up_to_date_poll(factory.post(path, **auth)) is None
    assert up_to_date_poll(factory.get("/api/v1/sync/feeds/", **auth)) is None
    assert up_to_date_poll(factory.get(path.replace("/plan/", "/ack/"), **auth)) is None
    assert up_to_date_poll(factory.get("/api/v1/sync/feeds/a%2Fb/plan/", **auth)) is None


# --- outages ------------------------------------------------------------------------------


def test_a_database_outage_is_answered_503_by_the_full_path(world: World, paced, monkeypatch):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    closed: list[bool] = []

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("synthetic: the database is unreachable")

    monkeypatch.setattr(sync.poll, "_token_by_digest", down)
    monkeypatch.setattr(sync.auth, "_token_by_digest", down)
    # (The test's own connection holds its transaction: record the close instead.)
    monkeypatch.setattr(sync.poll.connections["default"], "close", lambda: closed.append(True))

    response = _poll(path, world.token_a, etag)

    error = assert_error(response, 503, "service_unavailable")
    assert error["details"] == {"service": "database"}
    assert int(response["Retry-After"]) >= 1
    assert closed == [True]  # a dropped connection is replaced, not reused


def test_members_keep_polling_while_the_cache_is_down(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    with cache_down_settings():
        assert _lean(path, world.token_a, etag) is None
        first = _poll(path, world.token_a, etag)
        again = _poll(path, world.token_a, etag)

    assert first.status_code == 304  # pacing fails open, counted in this process
    assert_error(again, 429, "poll_too_soon")


def cache_down_settings() -> Any:
    return override_settings(
        CACHES={
            "default": {
                "BACKEND": "hashsync.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
    )


# --- with Redis: the one round trip --------------------------------------------------------


@pytest.fixture
def redis_cache() -> Iterator[None]:
    url = os.environ.get("HASHSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    caches = {"default": {"BACKEND": "hashsync.cache.RedisCache", "LOCATION": url}}
    with override_settings(CACHES=caches):
        cache.clear()
        yield
        cache.clear()


@pytest.mark.services
def test_with_redis_a_poll_is_paced_and_a_throttled_address_refused(
    world: World, paced, redis_cache, settings
):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)

    assert _poll(path, world.token_a, etag).status_code == 304
    assert _lean(path, world.token_a, etag) is None
    early = _poll(path, world.token_a, etag)
    assert_error(early, 429, "poll_too_soon")
    assert 1 <= int(early["Retry-After"]) <= 30

    other = _new_token(world, "edge-2")
    cache.set(failure_key("127.0.0.1"), settings.HASHSYNC_AUTH_FAILURE_LIMIT, timeout=60)
    assert _lean(path, other, etag) is None
    assert_error(_poll(path, other, etag), 429, "too_many_failures")
    client_id = _token_row(other).client_id
    assert cache.get(f"hashsync:pace:{client_id}:plan:{world.feed_a.pk}") is None


# --- the WSGI front (hashsync.wsgi: what gunicorn serves) ----------------------------------


class _Answer:
    """A WSGI answer, read like a test client's response."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split(" ", 1)[0])
        self.reason = status
        self.headers = dict(headers)
        self.content = body

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def json(self) -> Any:
        return json.loads(self.content)


def _front(path: str, token: str | None, etag: str | None, **extra: Any) -> _Answer:
    """``GET path`` through ``PollFront`` before Django's WSGI handler, as gunicorn calls
    ``hashsync.wsgi.application``. The request signals' database receiver is held off, as
    Django's test client does, so the test's transaction survives."""
    headers: dict[str, Any] = dict(extra)
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if etag is not None:
        headers["HTTP_IF_NONE_MATCH"] = etag
    environ = dict(RequestFactory().get(path, **headers).environ)
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return lambda data: None

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = PollFront(WSGIHandler())(environ, start_response)
        try:
            content = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    ((status, headers_sent),) = seen
    return _Answer(status, headers_sent, content)


def test_the_front_answers_an_up_to_date_poll_without_django(world: World, paced, monkeypatch):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    before = _requests("3xx")
    monkeypatch.setattr(sync.apis.SyncPlanApi, "get", None)  # a TypeError if ever reached
    monkeypatch.setattr(WSGIHandler, "get_response", None)  # and Django's handler too

    answer = _front(path, world.token_a, etag)

    assert answer.reason == "304 Not Modified"
    assert answer["ETag"] == etag and answer.content == b""
    assert len(answer["X-Request-ID"]) >= 8
    assert _requests("3xx") == before + 1  # /metrics: by route and status class


def test_the_fronts_304_has_the_middlewares_headers(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    front = _front(path, world.token_a, etag, HTTP_X_REQUEST_ID="synthetic-poll-0002")
    cache.clear()
    lean = _poll(path, world.token_a, etag, HTTP_X_REQUEST_ID="synthetic-poll-0002")

    assert front.status_code == lean.status_code == 304
    assert front.headers == dict(lean.headers.items())


def test_the_front_writes_last_used_at_once_a_minute(world: World, settings):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    row = _token_row(world.token_a)
    row.last_used_at = None
    row.save(update_fields=["last_used_at"])

    assert _front(path, world.token_a, etag).status_code == 304
    first = _token_row(world.token_a).last_used_at
    assert first is not None
    assert _front(path, world.token_a, etag).status_code == 304
    assert _token_row(world.token_a).last_used_at == first


@pytest.mark.parametrize("feed_kind", list(FEED_KINDS))
@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_the_front_answers_as_the_full_path_for_every_token_and_feed(
    token_kind, feed_kind, world, photodna, django_user_model, settings
):
    """The verdicts of ``test_the_polls_token_and_feed_head_row_is_what_the_orm_returns``
    (tests/sync/test_auth.py), through the front: the same status, and the same JSON error."""
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    valid = _new_token(world, "edge-etag")
    _, secret = _credential(token_kind, world, "sync", django_user_model)
    name = _feed_asked(feed_kind, world, photodna)
    path = _plan_path(name, 0)
    held = _send("get", path, token=valid)
    etag = held.get("ETag", '"0000000000000000000000000000000000000000"')

    front = _front(path, secret, etag)
    with _full_path_only():
        full = _poll(path, secret, etag)

    assert front.status_code == full.status_code
    if full.status_code == 304:
        assert front["ETag"] == full["ETag"]
    else:
        assert front.json()["error"]["code"] == full.json()["error"]["code"]
    assert (front.status_code == 304) == (token_kind == "valid" and FEED_KINDS[feed_kind])


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_the_front_leaves_a_refusal_to_the_full_path(kind, world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    secret, _ = _refusal(kind, world)

    assert_error(_front(path, secret, etag), *REFUSALS[kind])
    assert cache.get(f"hashsync:pace:{_token_row(secret).client_id}:plan:{world.feed_a.pk}") is None


def test_the_front_answers_an_early_poll_429_with_retry_after(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)
    assert _front(path, world.token_a, etag).status_code == 304

    early = _front(path, world.token_a, etag)

    assert_error(early, 429, "poll_too_soon")
    assert 1 <= int(early["Retry-After"]) <= 30


@pytest.mark.parametrize(
    ("header", "etag", "status"),
    [
        ("Bearer {t}x", None, 401),  # a token that fails its checksum
        ("Bearer hsk_" + "A" * 40, None, 401),
        ("Bearer " + "x" * 9000, None, 401),  # huge
        ("Bearer {t}", "W/", 200),  # malformed If-None-Match: the plan
        ("Bearer {t}", '"' + "0" * 9000, 200),
        ("Bearer {t}", "\x00\x01", 200),
    ],
)
def test_bad_input_through_the_front_is_a_json_answer_never_a_500(
    header, etag, status, world: World, paced
):
    path = _plan_path(world.feed_a.name, 1)
    held = _etag(path, world.token_a)
    answer = _front(
        path,
        None,
        held if etag is None else etag,
        HTTP_AUTHORIZATION=header.format(t=world.token_a),
    )

    assert answer.status_code == status, answer.content[:300]
    if status >= 400:
        assert_error(answer, status)
    elif status == 200:
        assert answer.json()["status"] == "up_to_date"


def test_the_front_hands_other_requests_to_django_unchanged(world: World, paced):
    path = _plan_path(world.feed_a.name, 1)
    etag = _etag(path, world.token_a)

    assert _front(path, world.token_a, None).status_code == 200  # no If-None-Match
    assert _front("/api/v1/sync/feeds/", world.token_a, etag).status_code == 200
    assert (
        _front(
            "/api/v1/sync/feeds/nonexistent/plan/?from_version=1", world.token_a, etag
        ).status_code
        == 404
    )
