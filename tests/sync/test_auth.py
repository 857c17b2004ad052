"""The member sync API (``/api/v1/sync/…``, docs/sync-api.md) from a hostile angle: every route
with every kind of credential, members kept apart (even when they guess content addresses),
PhotoDNA licences, revocation on the very next request, throttling of bad tokens, pacing and
conditional requests, plans from every kind of starting version, acks, lookups, and what
reaches the logs.

Synthetic data only: every hash value is random bytes (``tests.conftest.synthetic``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import URLPattern, reverse
from django.urls.converters import IntConverter
from django.utils import timezone
from rest_framework.test import APIClient

from distribution import keys, releases, urls
from distribution import services as feed_services
from distribution.models import Feed, FeedVersion
from hashlist import urls as hashlist_urls
from hashlist.models import AuditEvent
from hashsync_client.format import read_bundle
from hashsync_client.signing import verify_keyring_chain, verify_manifest
from members import services as member_services
from members import tokens
from members import urls as member_urls
from members.models import Ack, ApiToken, Feedback, Holding, SyncClient
from sync.apis import MemberApi
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

ALL_SCOPES = ("sync", "lookup", "feedback")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
STAFF_PASSWORD = "synthetic-staff-password"
REASON = "synthetic test: this image is a landscape photo"


@pytest.fixture(autouse=True)
def _no_pacing(settings: Any) -> None:
    """Tests poll repeatedly; the pacing tests set their own interval."""
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0


# --- helpers ------------------------------------------------------------------------------------


def _send(
    method: str, path: str, body: Any = None, *, token: str | None = None, **extra: Any
) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return getattr(APIClient(), method)(path, body, format="json", **headers, **extra)


def _content(response: Any) -> bytes:
    """The body of a plain or a streamed response. Reading a stream to its end closes it (the
    test client's wrapper does, as a WSGI server would); closing it again would send Django's
    request_finished with the handler that closes the test's database connection attached."""
    if not response.streaming:
        return bytes(response.content)
    return b"".join(response.streaming_content)


def _same_refusal(response: Any) -> tuple[int, str, str, Any]:
    """What a caller can learn from an error (the request id aside)."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"], error.get("details")


def _last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def _state() -> tuple[Any, ...]:
    """Everything a sync request could write, except a token's last use (``_last_used``)."""
    return (
        _last_seq(),
        Ack.objects.count(),
        Holding.objects.count(),
        Feedback.objects.count(),
        sorted(SyncClient.objects.values_list("pk", "digest_mismatch_at")),
    )


def _last_used() -> list[tuple[int, Any]]:
    return sorted(ApiToken.objects.values_list("pk", "last_used_at"))


def _listed(analyst: Any, reviewer: Any, algorithm: str) -> tuple[str, str]:
    """An approved entry with one synthetic hash: (algorithm, canonical value)."""
    value = synthetic(algorithm)
    approved_entry(analyst, reviewer, hashes=[{"algorithm": algorithm, "value": value}])
    return algorithm, value


def _issue(admin: Any, member: str, *, client: str = "edge-1", scopes: Any = ALL_SCOPES) -> str:
    _, secret = member_services.token_create(
        actor=admin, member_name=member, client_name=client, scopes=list(scopes)
    )
    return secret


def _token_row(secret: str) -> ApiToken:
    return ApiToken.objects.get(digest=tokens.digest(secret))


def _plan_path(feed: str, from_version: Any) -> str:
    return f"{reverse('sync-plan', kwargs={'name': feed})}?from_version={from_version}"


def _current(feed: Feed) -> FeedVersion:
    feed.refresh_from_db()
    return FeedVersion.objects.get(feed=feed, version=feed.version)


@dataclass(frozen=True)
class World:
    """Two members, alpha (md5 feed) and beta (sha1 feed), each with a client and a token with
    every scope, and three hashes listed only in each one's feed."""

    admin: Any
    feed_a: Feed
    feed_b: Feed
    token_a: str
    token_b: str
    a_hashes: list[tuple[str, str]]
    b_hashes: list[tuple[str, str]]
    bundle_a: str
    bundle_b: str


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any) -> World:
    feed_a = feed_services.feed_create(actor=member_admin, name="md5-alpha", algorithms=["md5"])
    feed_b = feed_services.feed_create(actor=member_admin, name="sha1-beta", algorithms=["sha1"])
    a_hashes = [_listed(analyst, reviewer, "md5") for _ in range(3)]
    b_hashes = [_listed(analyst, reviewer, "sha1") for _ in range(3)]
    assert releases.release_cut() is not None
    _, token_a = member_with_token(member_admin, name="alpha", feeds=(feed_a.name,))
    _, token_b = member_with_token(member_admin, name="beta", feeds=(feed_b.name,))
    return World(
        admin=member_admin,
        feed_a=feed_a,
        feed_b=feed_b,
        token_a=token_a,
        token_b=token_b,
        a_hashes=a_hashes,
        b_hashes=b_hashes,
        bundle_a=_current(feed_a).snapshot_sha256,
        bundle_b=_current(feed_b).snapshot_sha256,
    )


# --- the credential matrix ----------------------------------------------------------------------

Call = tuple[str, Any]  # path, body


@dataclass(frozen=True)
class SyncEndpoint:
    url_name: str
    method: str
    scope: str
    status: int  # what a valid token with the scope gets for the request ``build`` makes
    build: Callable[[World], Call]
    # How the token travels: "bearer" (Authorization), or "stopncii" (the two key headers
    # that StopNCII clients send; docs/sync-api.md, "StopNCII compatibility").
    via: str = "bearer"


def _ack_call(w: World) -> Call:
    current = _current(w.feed_a)
    body = {"version": current.version, "state_digest": current.state_digest}
    return reverse("sync-ack", kwargs={"name": w.feed_a.name}), body


def _lookup_call(w: World) -> Call:
    algorithm, value = w.a_hashes[0]
    return reverse("sync-lookup"), {"hashes": [{"algorithm": algorithm, "value": value}]}


def _feedback_call(w: World) -> Call:
    algorithm, value = w.a_hashes[0]
    body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
    return reverse("sync-feedback"), body


SYNC_ENDPOINTS: dict[str, SyncEndpoint] = {
    "sync-feeds": SyncEndpoint(
        "sync-feeds", "get", "sync", 200, lambda w: (reverse("sync-feeds"), None)
    ),
    "sync-plan": SyncEndpoint(
        "sync-plan", "get", "sync", 200, lambda w: (_plan_path(w.feed_a.name, 0), None)
    ),
    "sync-ack": SyncEndpoint("sync-ack", "post", "sync", 200, _ack_call),
    "sync-bundle": SyncEndpoint(
        "sync-bundle",
        "get",
        "sync",
        200,
        lambda w: (reverse("sync-bundle", kwargs={"sha256": w.bundle_a}), None),
    ),
    "sync-lookup": SyncEndpoint("sync-lookup", "post", "lookup", 200, _lookup_call),
    "sync-feedback-list": SyncEndpoint(
        "sync-feedback", "get", "feedback", 200, lambda w: (reverse("sync-feedback"), None)
    ),
    "sync-feedback-create": SyncEndpoint("sync-feedback", "post", "feedback", 201, _feedback_call),
    "stopncii-fetch-hashes": SyncEndpoint(
        "stopncii-fetch-hashes",
        "get",
        "sync",
        200,
        lambda w: (reverse("stopncii-fetch-hashes", kwargs={"name": w.feed_a.name}), None),
        via="stopncii",
    ),
}
CHALLENGES = {"bearer": "Bearer", "stopncii": "x-functions-key"}

# What each kind of credential gets from every sync route (status, code); None: the route's own.
CREDENTIALS: dict[str, tuple[int, str] | None] = {
    "valid": None,
    "wrong-scope": (403, "scope_missing"),
    "revoked": (401, "token_revoked"),
    "expired": (401, "token_expired"),
    "suspended-member": (403, "member_suspended"),
    "malformed": (401, "authentication_failed"),
    "unknown": (401, "authentication_failed"),
    "none": (401, "not_authenticated"),
    "staff-basic": (401, "not_authenticated"),
}


def _member_routes() -> set[tuple[str, str]]:
    return {
        (pattern.name or "", method)
        for pattern in urls.urlpatterns
        if isinstance(pattern, URLPattern)
        and (
            issubclass(pattern.callback.view_class, MemberApi)  # type: ignore[attr-defined]
            or (pattern.name or "").startswith("sync-")
        )
        for method in HTTP_METHODS
        if hasattr(pattern.callback.view_class, method)  # type: ignore[attr-defined]
    }


def test_credential_matrix_covers_every_sync_route_and_method():
    assert _member_routes() == {(e.url_name, e.method) for e in SYNC_ENDPOINTS.values()}


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _credential(kind: str, w: World, scope: str, django_user_model: Any) -> tuple[str, str]:
    """What one kind of caller presents: ("token", a member token in any state), ("basic", an
    Authorization header with staff credentials) or ("none", "")."""
    if kind == "valid":
        return "token", _issue(w.admin, "alpha", scopes=[scope])
    if kind == "wrong-scope":
        return "token", _issue(w.admin, "alpha", scopes=[s for s in ALL_SCOPES if s != scope])
    if kind == "revoked":
        secret = _issue(w.admin, "alpha")
        member_services.token_revoke(
            actor=w.admin, member_name="alpha", token_id=_token_row(secret).pk
        )
        return "token", secret
    if kind == "expired":
        secret = _issue(w.admin, "alpha")
        past = timezone.now() - dt.timedelta(seconds=1)
        ApiToken.objects.filter(digest=tokens.digest(secret)).update(expires_at=past)
        return "token", secret
    if kind == "suspended-member":
        secret = _issue(w.admin, "alpha")
        member_services.member_suspend(actor=w.admin, name="alpha", reason="synthetic test")
        return "token", secret
    if kind == "malformed":
        return "token", _issue(w.admin, "alpha")[:-1]  # one short: refused before any lookup
    if kind == "unknown":
        return "token", tokens.generate()  # well-formed, checksum and all; never issued
    if kind == "staff-basic":
        django_user_model.objects.create_superuser("root-staff", password=STAFF_PASSWORD)
        basic = _basic("root-staff", STAFF_PASSWORD)
        # The credentials are good: they open the staff API.
        assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=basic).status_code == 200
        return "basic", basic
    assert kind == "none"
    return "none", ""


def _headers(presented: tuple[str, str], via: str) -> dict[str, str]:
    what, value = presented
    if what == "basic":
        return {"HTTP_AUTHORIZATION": value}
    if what == "none":
        return {}
    if via == "stopncii":
        return {"HTTP_X_FUNCTIONS_KEY": value, "HTTP_OCP_APIM_SUBSCRIPTION_KEY": value}
    return {"HTTP_AUTHORIZATION": f"Bearer {value}"}


@pytest.mark.parametrize("kind", list(CREDENTIALS))
@pytest.mark.parametrize("name", list(SYNC_ENDPOINTS))
def test_sync_route_answers_each_kind_of_credential(name, kind, world, django_user_model):
    endpoint = SYNC_ENDPOINTS[name]
    presented = _credential(kind, world, endpoint.scope, django_user_model)
    headers = _headers(presented, endpoint.via)
    path, body = endpoint.build(world)
    before = (_state(), _last_used())

    response = getattr(APIClient(), endpoint.method)(path, body, format="json", **headers)

    expected = CREDENTIALS[kind]
    if expected is None:
        assert response.status_code == endpoint.status, _content(response)[:500]
        if response["Content-Type"].startswith("application/json"):
            assert "error" not in response.json()
        else:  # a bundle, streamed
            assert hashlib.sha256(_content(response)).hexdigest() == world.bundle_a
        return
    status, code = expected
    assert_error(response, status, code)
    if status == 401:
        assert response["WWW-Authenticate"].startswith(CHALLENGES[endpoint.via])
    # A refused request writes nothing: no audit event, ack, holding or feedback, and only a
    # token that authenticated (it merely lacks the scope) counts as used.
    assert _state() == before[0]
    if kind != "wrong-scope":
        assert _last_used() == before[1]


def _staff_routes() -> list[tuple[str, str, str]]:
    """(url name, method, path) of every staff route, path ids filled with placeholders."""
    found = []
    patterns = [*hashlist_urls.urlpatterns, *urls.urlpatterns, *member_urls.urlpatterns]
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        if issubclass(view, MemberApi) or (pattern.name or "").startswith("sync-"):
            continue
        kwargs = {
            key: 1 if isinstance(converter, IntConverter) else "x"
            for key, converter in pattern.pattern.converters.items()
        }
        path = reverse(pattern.name or "", kwargs=kwargs)
        found += [(pattern.name or "", m, path) for m in HTTP_METHODS if hasattr(view, m)]
    return found


def test_staff_routes_are_found():
    names = {name for name, _, _ in _staff_routes()}
    assert {"me", "feed-list", "member-list", "hash-holders", "dispute-resolve"} <= names


@pytest.mark.parametrize(("name", "method", "path"), _staff_routes())
def test_a_member_token_never_opens_a_staff_endpoint(world, name, method, path):
    before = (_state(), _last_used())

    response = _send(method, path, {}, token=world.token_a)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Basic")
    assert (_state(), _last_used()) == before


# --- bad tokens ---------------------------------------------------------------------------------


def _swap(text: str, index: int) -> str:
    """``text`` with the base62 character at ``index`` replaced by another base62 character."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


MALFORMED: dict[str, Callable[[str], str]] = {
    "empty": lambda t: "",
    "prefix only": lambda t: "hsk_",
    "one short": lambda t: t[:-1],
    "one long": lambda t: t + "0",
    "typo in the body (checksum)": lambda t: _swap(t, 10),
    "typo in the checksum": lambda t: _swap(t, len(t) - 1),
    "other prefix": lambda t: "ghp_" + t[4:],
    "upper-case prefix": lambda t: "HSK_" + t[4:],
    "non-base62 character": lambda t: t[:10] + "-" + t[11:],
    "non-ASCII character": lambda t: t[:10] + "é" + t[11:],
    "NUL": lambda t: t[:10] + "\x00" + t[11:],
    "two tokens": lambda t: f"{t} {t}",
    "the digest instead": lambda t: tokens.digest(t),
    "a huge value": lambda t: t * 1000,
}


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_malformed_token_is_refused_without_a_database_lookup(
    world, shape, django_assert_num_queries
):
    presented = MALFORMED[shape](world.token_a)
    assert presented != world.token_a

    with django_assert_num_queries(0):
        response = _send("get", reverse("sync-feeds"), token=presented)

    error = assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")
    if len(presented) > len(tokens.PREFIX):
        assert presented not in json.dumps(error)


@pytest.mark.parametrize("header", ["Bearer", "Token {t}", "Basic {t}", "{t}", "Bearer\t{t}"])
def test_an_authorization_header_that_is_not_a_bearer_token_is_not_authenticated(world, header):
    response = APIClient().get(
        reverse("sync-feeds"), HTTP_AUTHORIZATION=header.format(t=world.token_a)
    )
    assert_error(response, 401, "not_authenticated", "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_bearer_scheme_is_case_insensitive(world):
    response = APIClient().get(reverse("sync-feeds"), HTTP_AUTHORIZATION=f"bearer {world.token_a}")
    assert response.status_code == 200


def test_repeated_bad_tokens_from_one_address_are_throttled(world, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 3
    settings.HASHSYNC_AUTH_FAILURE_WINDOW_SECONDS = 120
    path = reverse("sync-feeds")
    attacker = {"REMOTE_ADDR": "192.0.2.7"}
    bad = [tokens.generate(), "hsk_guess", tokens.generate()]  # unknown, malformed, unknown
    for guess in bad:
        assert_error(_send("get", path, token=guess, **attacker), 401, "authentication_failed")

    refused = _send("get", path, token=tokens.generate(), **attacker)

    error = assert_error(refused, 429, "too_many_failures")
    assert refused["Retry-After"] == "120"
    assert error["details"] == {"retry_after": 120}
    # Even a valid token is refused from that address for the rest of the window ...
    assert_error(_send("get", path, token=world.token_a, **attacker), 429, "too_many_failures")
    # ... while other addresses are unaffected, the same token included.
    assert _send("get", path, token=world.token_a, REMOTE_ADDR="192.0.2.8").status_code == 200
    # When the window has passed (the counter expired), the address may try again.
    cache.clear()
    assert _send("get", path, token=world.token_a, **attacker).status_code == 200


def test_requests_without_a_token_do_not_count_as_bad_tokens(world, settings, django_user_model):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 1
    django_user_model.objects.create_user("someone", password=STAFF_PASSWORD)
    path = reverse("sync-feeds")
    for _ in range(3):
        assert_error(APIClient().get(path), 401, "not_authenticated")
        basic = _basic("someone", "wrong-password")
        assert_error(APIClient().get(path, HTTP_AUTHORIZATION=basic), 401, "not_authenticated")

    assert _send("get", path, token=world.token_a).status_code == 200


def test_the_address_comes_from_the_configured_proxy_header(world, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 1
    settings.HASHSYNC_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    path = reverse("sync-feeds")
    proxy = {"REMOTE_ADDR": "10.0.0.1"}  # every request arrives from the proxy
    _send("get", path, token=tokens.generate(), HTTP_X_REAL_IP="198.51.100.1", **proxy)

    blocked = _send("get", path, token=world.token_a, HTTP_X_REAL_IP="198.51.100.1", **proxy)
    other = _send("get", path, token=world.token_a, HTTP_X_REAL_IP="198.51.100.2", **proxy)

    assert_error(blocked, 429, "too_many_failures")
    assert other.status_code == 200


# --- revocation and suspension take effect on the very next request --------------------------


def test_revoking_a_token_takes_effect_on_the_next_request(world):
    path = _plan_path(world.feed_a.name, 0)
    assert _send("get", path, token=world.token_a).status_code == 200

    member_services.token_revoke(
        actor=world.admin, member_name="alpha", token_id=_token_row(world.token_a).pk
    )

    assert_error(_send("get", path, token=world.token_a), 401, "token_revoked")
    # The member's other tokens keep working.
    assert _send("get", path, token=_issue(world.admin, "alpha")).status_code == 200


def test_a_token_expires_on_time(world):
    path = reverse("sync-feeds")
    assert _send("get", path, token=world.token_a).status_code == 200

    soon = timezone.now() - dt.timedelta(microseconds=1)
    ApiToken.objects.filter(digest=tokens.digest(world.token_a)).update(expires_at=soon)

    assert_error(_send("get", path, token=world.token_a), 401, "token_expired")


def test_suspending_a_member_takes_effect_on_the_next_request_and_reinstating_restores(world):
    path = _plan_path(world.feed_a.name, 0)
    assert _send("get", path, token=world.token_a).status_code == 200

    member_services.member_suspend(actor=world.admin, name="alpha", reason="synthetic test")

    assert_error(_send("get", path, token=world.token_a), 403, "member_suspended")
    assert _send("get", path, token=world.token_b).status_code == 404  # beta: not its feed
    assert _send("get", reverse("sync-feeds"), token=world.token_b).status_code == 200

    member_services.member_reinstate(actor=world.admin, name="alpha", reason="synthetic test")

    assert _send("get", path, token=world.token_a).status_code == 200


def test_revoking_an_entitlement_takes_effect_on_the_next_request(world):
    plan = _plan_path(world.feed_a.name, 0)
    bundle = reverse("sync-bundle", kwargs={"sha256": world.bundle_a})
    assert _send("get", plan, token=world.token_a).status_code == 200

    member_services.entitlement_revoke(actor=world.admin, member_name="alpha", feed="md5-alpha")

    assert_error(_send("get", plan, token=world.token_a), 404, "not_found")
    assert_error(_send("get", bundle, token=world.token_a), 404, "not_found")
    assert _send("get", reverse("sync-feeds"), token=world.token_a).json()["feeds"] == []


def test_a_retired_feed_is_no_longer_served(world):
    feed_services.feed_retire(actor=world.admin, name=world.feed_a.name)

    assert_error(_send("get", _plan_path("md5-alpha", 0), token=world.token_a), 404, "not_found")
    bundle = reverse("sync-bundle", kwargs={"sha256": world.bundle_a})
    assert_error(_send("get", bundle, token=world.token_a), 404, "not_found")


# --- isolation: member A never sees member B's data ---------------------------------------------


def test_the_feed_list_names_only_the_members_own_feeds(world):
    response = _send("get", reverse("sync-feeds"), token=world.token_a)

    assert response.status_code == 200
    feeds = response.json()["feeds"]
    assert [f["name"] for f in feeds] == ["md5-alpha"]
    assert "sha1-beta" not in response.content.decode()
    current = _current(world.feed_a)
    assert feeds[0] == {
        "name": "md5-alpha",
        "description": "",
        "algorithms": ["md5"],
        "version": current.version,
        "entry_count": 3,
        "state_digest": current.state_digest,
        "manifest_sha256": feeds[0]["manifest_sha256"],
        "published": True,
    }
    assert len(feeds[0]["manifest_sha256"]) == 64


def test_another_members_feed_is_indistinguishable_from_a_missing_one(world):
    routes = [
        ("get", lambda name: _plan_path(name, 0), None),
        ("post", lambda name: reverse("sync-ack", kwargs={"name": name}), _ack_call(world)[1]),
    ]
    for method, path_of, body in routes:
        before = _state()

        theirs = _send(method, path_of("sha1-beta"), body, token=world.token_a)
        missing = _send(method, path_of("no-such-feed"), body, token=world.token_a)

        assert_error(theirs, 404, "not_found")
        assert _same_refusal(theirs) == _same_refusal(missing)
        assert "sha1-beta" not in theirs.content.decode()
        assert _state() == before


@pytest.mark.parametrize(
    "address",
    ["random", "0" * 64, "A" * 64, "a" * 63, "a" * 65, "not-hex", "..%2e%2e", "a" * 300],
)
def test_another_members_bundle_is_indistinguishable_from_a_missing_or_malformed_address(
    world, address
):
    if address == "random":
        address = secrets.token_hex(32)
    before = _state()

    theirs = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": world.bundle_b}), token=world.token_a
    )
    other = _send("get", f"/api/v1/sync/bundles/{address}/", token=world.token_a)

    assert_error(theirs, 404, "not_found")
    assert _same_refusal(theirs) == _same_refusal(other)
    assert _state() == before  # no download on the audit trail
    # Beta itself gets it.
    own = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": world.bundle_b}), token=world.token_b
    )
    assert hashlib.sha256(_content(own)).hexdigest() == world.bundle_b


def test_a_lookup_never_matches_another_members_hashes(world):
    hashes = [{"algorithm": a, "value": v} for a, v in world.a_hashes + world.b_hashes]

    response = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["matched"] for r in results] == [True] * 3 + [False] * 3
    assert [r["feeds"] for r in results] == [["md5-alpha"]] * 3 + [[]] * 3
    assert {r["category"] for r in results[3:]} == {None}
    assert "sha1-beta" not in response.content.decode()
    # Beta's view of the same request is the mirror image.
    mirror = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_b)
    assert [r["matched"] for r in mirror.json()["results"]] == [False] * 3 + [True] * 3


def test_feedback_on_another_members_hash_is_refused_like_an_unlisted_hash(world):
    def dispute(algorithm: str, value: str) -> Any:
        body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
        return _send("post", reverse("sync-feedback"), body, token=world.token_a)

    before = _state()
    theirs = dispute(*world.b_hashes[0])
    unlisted = dispute("sha1", synthetic("sha1"))

    assert_error(theirs, 404, "not_found")
    assert _same_refusal(theirs) == _same_refusal(unlisted)
    assert _state() == before


def test_the_feedback_list_shows_only_the_members_own(world):
    for token, (algorithm, value) in (
        (world.token_a, world.a_hashes[0]),
        (world.token_b, world.b_hashes[0]),
    ):
        body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
        assert _send("post", reverse("sync-feedback"), body, token=token).status_code == 201
    own = Feedback.objects.get(member__name="alpha")

    listed = _send("get", reverse("sync-feedback"), token=world.token_a)

    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()] == [own.pk]
    assert listed.json()[0]["status"] == "open"


def test_acks_are_recorded_per_client(world):
    member_services.client_create(actor=world.admin, member_name="alpha", name="edge-2")
    second = _issue(world.admin, "alpha", client="edge-2")
    path, body = _ack_call(world)

    assert _send("post", path, body, token=world.token_a).json()["status"] == "ok"

    holdings = Holding.objects.filter(feed=world.feed_a)
    assert [(h.client.name, h.version) for h in holdings] == [("edge-1", body["version"])]
    wrong = {**body, "state_digest": "0" * 64}
    assert _send("post", path, wrong, token=second).json()["status"] == "mismatch"
    flagged = SyncClient.objects.filter(digest_mismatch_at__isnull=False)
    assert [c.name for c in flagged] == ["edge-2"]
    assert sorted(holdings.values_list("client__name", "digest_matches")) == [
        ("edge-1", True),
        ("edge-2", False),
    ]
    # Beta cannot ack alpha's feed, even with alpha's correct digest.
    assert_error(_send("post", path, body, token=world.token_b), 404, "not_found")


# --- PhotoDNA licences --------------------------------------------------------------------------


@pytest.fixture
def photodna(world: World, analyst: Any, reviewer: Any) -> dict[str, Any]:
    """Alpha is also entitled to ``photodna-all`` (granted while it held a licence)."""
    feed = feed_services.feed_create(
        actor=world.admin, name="photodna-all", algorithms=["photodna"]
    )
    listed = _listed(analyst, reviewer, "photodna")
    assert releases.release_cut() is not None
    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")
    member_services.entitlement_grant(actor=world.admin, member_name="alpha", feed=feed.name)
    return {"feed": feed, "hash": listed, "bundle": _current(feed).snapshot_sha256}


def _photodna_view(world: World, pdna: dict[str, Any]) -> dict[str, Any]:
    """What alpha can reach of the PhotoDNA feed, by every route."""
    algorithm, value = pdna["hash"]
    feeds = _send("get", reverse("sync-feeds"), token=world.token_a).json()["feeds"]
    lookup = _send(
        "post",
        reverse("sync-lookup"),
        {"hashes": [{"algorithm": algorithm, "value": value}]},
        token=world.token_a,
    )
    bundle = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": pdna["bundle"]}), token=world.token_a
    )
    _content(bundle)  # read to the end, which closes the file it streams from
    return {
        "listed": "photodna-all" in [f["name"] for f in feeds],
        "plan": _send("get", _plan_path("photodna-all", 0), token=world.token_a).status_code,
        "bundle": bundle.status_code,
        "lookup": lookup.json()["results"][0]["matched"],
    }


SERVED = {"listed": True, "plan": 200, "bundle": 200, "lookup": True}
WITHHELD = {"listed": False, "plan": 404, "bundle": 404, "lookup": False}


def test_a_photodna_feed_is_withheld_from_an_entitled_member_without_a_licence(world, photodna):
    assert _photodna_view(world, photodna) == SERVED

    member_services.licence_revoke(actor=world.admin, member_name="alpha", kind="photodna")

    assert _photodna_view(world, photodna) == WITHHELD
    # Its other feeds are unaffected.
    assert _send("get", _plan_path("md5-alpha", 0), token=world.token_a).status_code == 200

    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")

    assert _photodna_view(world, photodna) == SERVED


def test_an_expired_photodna_licence_withholds_the_feed(world, photodna):
    alpha = member_services.member_get("alpha")
    alpha.licences.update(valid_until=timezone.now() - dt.timedelta(seconds=1))

    assert _photodna_view(world, photodna) == WITHHELD


def test_feedback_on_a_photodna_hash_needs_the_licence(world, photodna):
    algorithm, value = photodna["hash"]
    body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
    member_services.licence_revoke(actor=world.admin, member_name="alpha", kind="photodna")

    assert_error(_send("post", reverse("sync-feedback"), body, token=world.token_a), 404)

    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")
    assert _send("post", reverse("sync-feedback"), body, token=world.token_a).status_code == 201


# --- pacing and conditional requests ------------------------------------------------------------


def _retry_after(response: Any, interval: int) -> int:
    error = assert_error(response, 429, "poll_too_soon")
    seconds = int(response["Retry-After"])
    assert 1 <= seconds <= interval
    assert error["details"] == {"retry_after": seconds}
    return seconds


def test_a_second_plan_poll_within_the_interval_is_too_soon(world, settings):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 30
    path = _plan_path(world.feed_a.name, 0)
    first = _send("get", path, token=world.token_a)
    assert first.status_code == 200
    assert first.json()["poll_interval_seconds"] == 30

    _retry_after(_send("get", path, token=world.token_a), 30)
    # Conditional or not, a poll is a poll.
    etag = {"HTTP_IF_NONE_MATCH": first["ETag"]}
    _retry_after(_send("get", path, token=world.token_a, **etag), 30)
    # Pacing is per client and feed: another client of the member, and another member, may poll.
    member_services.client_create(actor=world.admin, member_name="alpha", name="edge-2")
    assert (
        _send("get", path, token=_issue(world.admin, "alpha", client="edge-2")).status_code == 200
    )
    beta_plan = _plan_path(world.feed_b.name, 0)
    assert _send("get", beta_plan, token=world.token_b).status_code == 200

    cache.clear()  # the interval has passed

    assert _send("get", path, token=world.token_a, **etag).status_code == 304


def test_a_second_feed_list_poll_within_the_interval_is_too_soon(world, settings):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 30
    path = reverse("sync-feeds")
    first = _send("get", path, token=world.token_a)
    assert first.status_code == 200
    assert first.json()["poll_interval_seconds"] == 30

    _retry_after(_send("get", path, token=world.token_a), 30)
    assert _send("get", path, token=world.token_b).status_code == 200

    cache.clear()

    assert _send("get", path, token=world.token_a).status_code == 200


def test_an_unchanged_plan_answers_304_and_a_new_release_changes_the_etag(world, analyst, reviewer):
    version = world.feed_a.version
    path = _plan_path(world.feed_a.name, version)
    first = _send("get", path, token=world.token_a)
    assert first.json()["status"] == "up_to_date"
    etag = first["ETag"]
    assert first["Cache-Control"] == "private, no-cache"

    for tag in (etag, f"W/{etag}", f'"other", {etag}'):
        again = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=tag)
        assert again.status_code == 304
        assert again.content == b""
        assert again["ETag"] == etag
    assert _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH='"stale"').status_code == 200
    # Another starting version is another answer.
    other = _send("get", _plan_path(world.feed_a.name, 0), token=world.token_a)
    assert other["ETag"] != etag

    _listed(analyst, reviewer, "sha1")  # only beta's feed changes
    assert releases.release_cut() is not None
    unchanged = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304

    _listed(analyst, reviewer, "md5")
    assert releases.release_cut() is not None
    changed = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["status"] == "deltas"
    assert changed.json()["version"] > version


# --- plans from every kind of starting version --------------------------------------------------


@dataclass(frozen=True)
class History:
    """Feed ``md5-history`` at versions ``populated`` (snapshot), ``second`` and ``fourth``
    (deltas); release ``third`` changed only another feed."""

    token: str
    populated: int
    second: int
    third: int
    fourth: int
    pinned: frozenset[str]


@pytest.fixture
def history(analyst: Any, reviewer: Any, member_admin: Any) -> History:
    feed_services.feed_create(actor=member_admin, name="md5-history", algorithms=["md5"])
    feed_services.feed_create(actor=member_admin, name="sha1-other", algorithms=["sha1"])
    for _ in range(24):  # a snapshot well over the size of two one-record deltas
        _listed(analyst, reviewer, "md5")
    cuts = []
    for algorithm in (None, "md5", "sha1", "md5"):
        if algorithm:
            _listed(analyst, reviewer, algorithm)
        release = releases.release_cut()
        assert release is not None
        cuts.append(release.version)
    _, token = member_with_token(member_admin, name="gamma", feeds=("md5-history",))
    keyring = keys.current_keyring()
    assert keyring is not None
    populated, second, third, fourth = cuts
    return History(token, populated, second, third, fourth, frozenset(keyring.root_keyids))


def _plan(h: History, from_version: Any) -> Any:
    return _send("get", _plan_path("md5-history", from_version), token=h.token)


def _shape(plan: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(s["kind"], s["from_version"], s["to_version"]) for s in plan["steps"]]


def test_plans_from_each_kind_of_starting_version(history):
    h = history
    full = [
        ("snapshot", 0, h.populated),
        ("delta", h.populated, h.second),
        ("delta", h.second, h.fourth),
    ]
    expected = {
        0: ("snapshot", full),
        h.populated: ("deltas", full[1:]),
        h.second: ("deltas", full[2:]),
        h.third: ("snapshot", full),  # a release number, but not a version of this feed
        h.fourth: ("up_to_date", []),
    }
    for start, (status, steps) in expected.items():
        response = _plan(h, start)
        assert response.status_code == 200, response.content
        plan = response.json()
        assert (plan["status"], _shape(plan)) == (status, steps), start
        assert (plan["feed"], plan["from_version"], plan["version"]) == (
            "md5-history",
            start,
            h.fourth,
        )
        assert plan["manifest"] is not None  # even up to date: the client checks its expiry
        assert plan["keyrings"]


@pytest.mark.parametrize("ahead", [1, 1000, 2**63 - 1 - 4])
def test_a_plan_from_a_version_ahead_of_the_feed_is_version_unknown(history, ahead):
    assert_error(_plan(history, history.fourth + ahead), 409, "version_unknown")


@pytest.mark.parametrize(
    "garbage",
    ["-1", "1e3", "", "1.0", "+1", " 1", "0x1", "١", "٣", "²", "1" * 20, str(2**63), "%00", "abc"],
)
def test_a_garbage_starting_version_is_invalid_input(history, garbage):
    error = assert_error(_plan(history, garbage), 400, "invalid_input")
    assert "from_version" in error["message"]


def test_a_plan_without_a_starting_version_is_invalid_input(history):
    path = reverse("sync-plan", kwargs={"name": "md5-history"})
    assert_error(_send("get", path, token=history.token), 400, "invalid_input")


def test_every_step_of_a_plan_verifies_from_the_pinned_root_and_its_bundle_matches(history):
    h = history
    for start in (0, h.populated, h.second, h.third):
        plan = _plan(h, start).json()
        now = timezone.now()
        keyring = verify_keyring_chain(
            [json.dumps(k).encode() for k in plan["keyrings"]],
            pinned_root_keyids=h.pinned,
            now=now,
        )
        top = verify_manifest(
            json.dumps(plan["manifest"]).encode(), keyring=keyring, now=now, feed="md5-history"
        )
        assert top["version"] == plan["version"]
        for step in plan["steps"]:
            signed = verify_manifest(
                json.dumps(step["manifest"]).encode(), keyring=keyring, now=now, feed="md5-history"
            )
            assert signed["version"] == step["to_version"]
            where = (step["sha256"], step["size"])
            if step["kind"] == "snapshot":
                assert top["snapshot"] == {
                    "version": step["to_version"],
                    "sha256": where[0],
                    "size": where[1],
                }
            else:
                delta = signed["delta"]
                assert (delta["from_version"], delta["sha256"], delta["size"]) == (
                    step["from_version"],
                    *where,
                )
                assert delta["records"] == step["records"] == 1
            assert step["url"] == f"/api/v1/sync/bundles/{step['sha256']}/"
            response = _send("get", step["url"], token=h.token)
            assert response.status_code == 200
            assert response["ETag"] == f'"{step["sha256"]}"'
            body = _content(response)
            assert (hashlib.sha256(body).hexdigest(), len(body)) == where
            header, _ = read_bundle(io.BytesIO(body))
            assert (header.feed, header.from_version, header.to_version) == (
                "md5-history",
                step["from_version"],
                step["to_version"],
            )


def test_a_plan_of_a_feed_not_yet_published(world):
    feed_services.feed_create(actor=world.admin, name="md5-later", algorithms=["md5"])
    member_services.entitlement_grant(actor=world.admin, member_name="alpha", feed="md5-later")

    plan = _send("get", _plan_path("md5-later", 0), token=world.token_a)
    listed = _send("get", reverse("sync-feeds"), token=world.token_a).json()["feeds"]

    assert plan.status_code == 200
    assert {k: plan.json()[k] for k in ("status", "version", "manifest", "steps")} == {
        "status": "up_to_date",
        "version": 0,
        "manifest": None,
        "steps": [],
    }
    later = next(f for f in listed if f["name"] == "md5-later")
    assert (later["published"], later["version"], later["state_digest"]) == (False, 0, None)
    # A client claiming to hold a version of it holds something this server never published.
    assert_error(
        _send("get", _plan_path("md5-later", 3), token=world.token_a), 409, "version_unknown"
    )


# --- acks ---------------------------------------------------------------------------------------


def test_an_ack_with_the_servers_digest_is_ok_and_recorded(world):
    path, body = _ack_call(world)

    response = _send("post", path, body, token=world.token_a)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": body["version"]}
    holding = Holding.objects.get()
    assert (holding.version, holding.state_digest, holding.digest_matches) == (
        body["version"],
        body["state_digest"],
        True,
    )
    assert SyncClient.objects.get(member__name="alpha").digest_mismatch_at is None
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    assert (event.action, event.actor) == ("sync.ack", "member:alpha/edge-1")


def test_an_ack_with_another_digest_flags_the_client_and_says_take_the_snapshot(world):
    path, body = _ack_call(world)
    wrong = secrets.token_hex(32)

    response = _send("post", path, {**body, "state_digest": wrong}, token=world.token_a)

    assert response.status_code == 200
    assert response.json()["status"] == "mismatch"
    assert "snapshot" in response.json()["message"]
    client = SyncClient.objects.get(member__name="alpha")
    assert client.digest_mismatch_at is not None
    assert Holding.objects.get().digest_matches is False


def test_an_ack_of_a_version_the_feed_never_had_is_refused(world, analyst, reviewer):
    _listed(analyst, reviewer, "sha1")  # a release that does not change md5-alpha
    release = releases.release_cut()
    assert release is not None
    path, body = _ack_call(world)
    before = _state()

    for version in (release.version, release.version + 1, 2**63 - 1):
        response = _send("post", path, {**body, "version": version}, token=world.token_a)
        assert_error(response, 400, "invalid_input")
    assert _state() == before


@pytest.mark.parametrize(
    "change",
    [
        {"state_digest": "A" * 64},
        {"state_digest": "a" * 63},
        {"state_digest": "a" * 65},
        {"state_digest": "g" * 64},
        {"state_digest": 5},
        {"state_digest": None},
        {"state_digest": ["a" * 64]},
        {"version": 0},
        {"version": -1},
        {"version": 2**64},
        {"version": "one"},
        {"version": 1.5},
        {"version": True},
        {"version": None},
        {"version": [1]},
    ],
)
def test_an_ack_with_a_bad_field_is_invalid_input(world, change):
    path, body = _ack_call(world)
    before = _state()

    response = _send("post", path, {**body, **change}, token=world.token_a)

    error = assert_error(response, 400, "invalid_input")
    assert next(iter(change)) in error["message"]
    assert _state() == before


@pytest.mark.parametrize("body", [[], ["version"], "ok", 5, None, {}])
def test_an_ack_that_is_not_an_object_with_both_fields_is_invalid_input(world, body):
    path, _ = _ack_call(world)
    response = _send("post", path, body, token=world.token_a)
    assert_error(response, 400, "invalid_input")


# --- lookup -------------------------------------------------------------------------------------


def test_a_lookup_answers_in_request_order_in_canonical_form(world):
    algorithm, value = world.a_hashes[1]
    unlisted = synthetic("md5")
    hashes = [
        {"algorithm": "md5", "value": unlisted},
        {"algorithm": algorithm, "value": value.upper()},
        {"algorithm": "md5", "value": base64.b64encode(bytes.fromhex(value)).decode()},
    ]

    response = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["value"], r["matched"]) for r in results] == [
        (unlisted, False),
        (value, True),
        (value, True),
    ]
    assert {k: results[1][k] for k in ("category", "age_group", "content_type")} == {
        "category": "A",
        "age_group": "7-10",
        "content_type": "image",
    }


def test_a_lookup_of_more_than_the_limit_is_refused(world, settings):
    assert settings.HASHSYNC_LOOKUP_MAX_HASHES == 1000
    hashes = [{"algorithm": "md5", "value": synthetic("md5")} for _ in range(1001)]

    too_many = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)
    at_limit = _send("post", reverse("sync-lookup"), {"hashes": hashes[:1000]}, token=world.token_a)

    error = assert_error(too_many, 400, "invalid_input")
    assert "1000" in error["message"]
    assert at_limit.status_code == 200
    assert len(at_limit.json()["results"]) == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"hashes": []},
        {"hashes": "md5"},
        {"hashes": None},
        {"hashes": [["md5", "00"]]},
        {"hashes": [{"algorithm": "md5"}]},
        {"hashes": [{"algorithm": 5, "value": "00"}]},
        {"hashes": [{"algorithm": "nope", "value": "00" * 16}]},
        {},
        [],
        "hashes",
    ],
)
def test_a_malformed_lookup_is_a_4xx_json_error(world, body):
    response = _send("post", reverse("sync-lookup"), body, token=world.token_a)
    assert_error(response, 400, "invalid_input", "unknown_algorithm")


@pytest.mark.parametrize("route", ["sync-lookup", "sync-feedback", "hash-holders"])
def test_a_bad_hash_value_is_never_echoed(world, route, auditor, api):
    secret_part = secrets.token_hex(15)
    value = f"zz{secret_part}"  # 32 characters, not hex: refused
    item = {"algorithm": "md5", "value": value}
    if route == "sync-lookup":
        response = _send("post", reverse(route), {"hashes": [item]}, token=world.token_a)
    elif route == "sync-feedback":
        body = {**item, "kind": "false_positive", "reason": REASON}
        response = _send("post", reverse(route), body, token=world.token_a)
    else:
        response = api(auditor).post(reverse(route), item, format="json")

    assert_error(response, 400, "invalid_input", "invalid_hash")
    assert secret_part not in response.content.decode()


# --- feedback -----------------------------------------------------------------------------------


def test_feedback_on_an_own_hash_lands_in_the_queue(world):
    _, body = _feedback_call(world)

    response = _send("post", reverse("sync-feedback"), body, token=world.token_a)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "open"
    feedback = Feedback.objects.get()
    assert (feedback.member.name, feedback.client.name, feedback.kind) == (
        "alpha",
        "edge-1",
        "false_positive",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "true_positive"},
        {"kind": None},
        {"reason": "too short"},
        {"reason": "x" * 2001},
        {"reason": 5},
        {"algorithm": "nope"},
        {"value": None},
        {"value": "a" * 5000},
    ],
)
def test_bad_feedback_is_invalid_input(world, change):
    _, body = _feedback_call(world)
    before = _state()

    response = _send("post", reverse("sync-feedback"), {**body, **change}, token=world.token_a)

    assert_error(response, 400, "invalid_input", "unknown_algorithm")
    assert _state() == before


# --- nothing secret reaches the logs ------------------------------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG (including django.request, which settings keep at ERROR)."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def test_tokens_and_hash_values_never_reach_the_logs(world, all_logs, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 3
    token = world.token_a
    unlisted = [("md5", synthetic("md5")), ("sha256", synthetic("sha256"))]
    everything = world.a_hashes + world.b_hashes + unlisted
    bad_tokens = [tokens.generate(), token[:-1], _swap(token, 12)]

    # A whole session: feeds, plan, bundles, ack, lookup, feedback, and things going wrong.
    assert _send("get", reverse("sync-feeds"), token=token).status_code == 200
    plan = _send("get", _plan_path("md5-alpha", 0), token=token).json()
    for step in plan["steps"]:
        assert _content(_send("get", step["url"], token=token))
    path, body = _ack_call(world)
    _send("post", path, body, token=token)
    _send("post", path, {**body, "state_digest": "0" * 64}, token=token)
    hashes = [{"algorithm": a, "value": v} for a, v in everything]
    assert _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=token).status_code == 200
    for algorithm, value in everything:
        feedback = {
            "algorithm": algorithm,
            "value": value,
            "kind": "false_positive",
            "reason": REASON,
        }
        _send("post", reverse("sync-feedback"), feedback, token=token)
    _send(
        "post",
        reverse("sync-lookup"),
        {"hashes": [{"algorithm": "md5", "value": "zz" + "0" * 30}]},
        token=token,
    )
    _send("get", _plan_path("sha1-beta", 0), token=token)
    _send("get", f"/api/v1/sync/bundles/{world.bundle_b}/", token=token)
    for bad in bad_tokens:
        _send("get", reverse("sync-feeds"), token=bad)
    _send("get", reverse("sync-feeds"), token=token)  # throttled by now
    member_services.token_revoke(
        actor=world.admin, member_name="alpha", token_id=_token_row(token).pk
    )
    _send("get", reverse("sync-feeds"), token=token, REMOTE_ADDR="192.0.2.99")

    records = all_logs.records
    assert records, "nothing was logged: the capture is not working"
    text = all_logs.text + "\n".join(r.getMessage() for r in records)
    for secret in (token, tokens.digest(token), *bad_tokens):
        assert secret not in text
    for _, value in everything:
        for form in (value, value.upper()):
            assert form not in text
