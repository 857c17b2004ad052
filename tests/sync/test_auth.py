"""Token authentication of the member sync API (``sync.auth``) from a hostile angle: every route
with every kind of credential, staff routes closed to member tokens, throttling of bad tokens,
revocation and suspension on the very next request, pacing, what reaches the logs, and the
poll's hand-built token query against the ORM.

Synthetic data only: every hash value is random bytes (``tests.conftest.synthetic``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import URLPattern, reverse
from django.urls.converters import IntConverter
from django.utils import timezone
from rest_framework.test import APIClient

import sync.auth
from distribution import services as feed_services
from distribution import urls as distribution_urls
from distribution.models import Manifest
from hashlist import urls as hashlist_urls
from members import selectors as member_selectors
from members import services as member_services
from members import tokens
from members import urls as member_urls
from members.models import ApiToken, Member
from sync import urls
from sync.auth import _token_by_digest, client_ip
from tests.conftest import synthetic
from tests.role_matrix import HTTP_METHODS, served
from tests.sync.helpers import (
    ALL_SCOPES,
    REASON,
    STAFF_PASSWORD,
    Call,
    World,
    _ack_call,
    _content,
    _feedback_call,
    _issue,
    _last_used,
    _lookup_call,
    _match_call,
    _plan_path,
    _send,
    _state,
    _token_row,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


# --- the credential matrix ----------------------------------------------------------------------


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
    "sync-match": SyncEndpoint("sync-match", "post", "lookup", 200, _match_call),
    "sync-log-checkpoint": SyncEndpoint(
        "sync-log-checkpoint", "get", "sync", 200, lambda w: (reverse("sync-log-checkpoint"), None)
    ),
    "sync-log-inclusion": SyncEndpoint(
        "sync-log-inclusion",
        "get",
        "sync",
        200,
        lambda w: (reverse("sync-log-inclusion") + "?index=0", None),
    ),
    "sync-log-consistency": SyncEndpoint(
        "sync-log-consistency",
        "get",
        "sync",
        200,
        lambda w: (reverse("sync-log-consistency") + "?from_size=1", None),
    ),
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


def test_credential_matrix_covers_every_sync_route_and_method():
    assert served(urls.urlpatterns) == {(e.url_name, e.method) for e in SYNC_ENDPOINTS.values()}


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
    patterns = [
        *hashlist_urls.urlpatterns,
        *distribution_urls.urlpatterns,
        *member_urls.urlpatterns,
    ]
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
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


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("not an address", "not an address"),
    ],
)
def test_bad_tokens_from_ipv6_are_counted_per_64(address, counted_as, settings, rf):
    settings.HASHSYNC_CLIENT_IP_HEADER = None
    assert client_ip(rf.get("/", REMOTE_ADDR=address)) == counted_as


def test_a_poll_within_the_tolerance_of_the_interval_is_allowed(world, settings, monkeypatch):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 5
    clock = [1_000_000.0]
    monkeypatch.setattr(sync.auth.time, "time", lambda: clock[0])
    url = _plan_path(world.feed_a.name, 0)
    assert _send("get", url, token=world.token_a).status_code == 200

    clock[0] += 4.0  # too soon: 429 with the time left
    early = _send("get", url, token=world.token_a)
    assert_error(early, 429, "poll_too_soon")
    assert early["Retry-After"] == "1"

    clock[0] += 0.6  # 4.6 s after the first: within 10% of the 5 s interval
    assert _send("get", url, token=world.token_a).status_code == 200


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


# --- the poll's hand-built query reads what the ORM reads -----------------------------------

TOKEN_KINDS = ("valid", "wrong-scope", "revoked", "expired", "suspended-member", "unknown")
# The feeds a poll can ask for, and whether alpha may receive each (the rule of
# members.selectors.entitlements_in_force, stated here from the outside).
FEED_KINDS = {
    "entitled": True,
    "photodna-licensed": True,
    "photodna-without-licence": False,
    "photodna-expired-licence": False,
    "retired": False,
    "not-entitled": False,
    "unknown": False,
    "unpublished": True,
}


def _feed_asked(kind: str, w: World, photodna: dict[str, Any]) -> str:
    """Alpha's situation towards the feed of this kind, and its name."""
    alpha = Member.objects.get(name="alpha")
    if kind == "photodna-without-licence":
        member_services.licence_revoke(actor=w.admin, member_name="alpha", kind="photodna")
    if kind == "photodna-expired-licence":
        alpha.licences.update(valid_until=timezone.now() - dt.timedelta(seconds=1))
    if kind.startswith("photodna"):
        return str(photodna["feed"].name)
    if kind == "retired":
        feed_services.feed_retire(actor=w.admin, name=w.feed_a.name)
    if kind == "not-entitled":
        return w.feed_b.name
    if kind == "unknown":
        return "no-such-feed"
    if kind == "unpublished":
        feed_services.feed_create(actor=w.admin, name="md5-later", algorithms=["md5"])
        member_services.entitlement_grant(actor=w.admin, member_name="alpha", feed="md5-later")
        return "md5-later"
    return w.feed_a.name


def _columns(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.parametrize("feed_kind", list(FEED_KINDS))
@pytest.mark.parametrize("token_kind", TOKEN_KINDS)
def test_the_polls_token_and_feed_head_row_is_what_the_orm_returns(
    token_kind, feed_kind, world, photodna, django_user_model
):
    _, secret = _credential(token_kind, world, "sync", django_user_model)
    name = _feed_asked(feed_kind, world, photodna)
    digest = tokens.digest(secret)

    token, head = _token_by_digest(digest, feed=name)

    expected = ApiToken.objects.select_related("client__member").filter(digest=digest).first()
    if expected is None:
        assert token_kind == "unknown" and (token, head) == (None, None)
        return
    assert token is not None
    assert _columns(token) == _columns(expected)
    assert _columns(token.client) == _columns(expected.client)
    assert _columns(token.client.member) == _columns(expected.client.member)
    member = expected.client.member
    orm_head = member_selectors.entitled_feed_head(member, name)
    feed = next((f for f in member_selectors.entitled_feeds(member) if f.name == name), None)
    assert (feed is not None) == FEED_KINDS[feed_kind]
    if feed is None:
        assert head is None and orm_head is None
        return
    assert head is not None and orm_head is not None
    newest = Manifest.objects.filter(feed=feed).order_by("-id").first()
    assert (
        (head.feed.pk, head.feed.name, head.feed.algorithms, head.manifest_sha256)
        == (
            orm_head.feed.pk,
            orm_head.feed.name,
            orm_head.feed.algorithms,
            orm_head.manifest_sha256,
        )
        == (feed.pk, feed.name, feed.algorithms, newest.sha256 if newest else None)
    )
    assert (newest is None) == (feed_kind == "unpublished")


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (_basic("analyst", "synthetic-password"), "HTTP Basic credentials"),
        ("Token hsk_synthetic", "Token credentials"),
    ],
)
def test_other_credentials_on_the_sync_api_say_it_takes_a_bearer_member_token(world, header, named):
    response = APIClient().get(reverse("sync-feeds"), HTTP_AUTHORIZATION=header)

    error = assert_error(response, 401, "not_authenticated")
    assert error["message"].startswith(named)
    assert "Bearer hsk_" in error["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_staff_session_on_the_sync_api_is_told_it_needs_a_member_token(world, analyst):
    client = APIClient()
    client.force_login(analyst)

    error = assert_error(client.get(reverse("sync-feeds")), 401, "not_authenticated")
    assert "staff session" in error["message"] and "Bearer hsk_" in error["message"]
