"""The staff API of members (``members/urls.py``): which role may call which endpoint; members,
contacts, licences, entitlements, sync clients and tokens (shown once, stored as a digest, never
on the audit trail); suspension; the analysts' dispute queue; the auditors' hash holders; and
bad input of every shape.

Every error must be ``{"error": {"code", "message", ...}}`` with a 4xx status; nothing may
answer 500. Hashes are synthetic random values.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from distribution import releases
from distribution import services as feed_services
from members import services, tokens, urls
from members.models import (
    ApiToken,
    Contact,
    Entitlement,
    Feedback,
    Licence,
    Member,
    SyncClient,
)
from sync import services as sync_services
from sync.auth import MemberPrincipal
from tests.conftest import synthetic
from tests.factories import approved_entry
from tests.role_matrix import ROLES, assert_role_refused, served
from tests.utils import assert_error, audit_events_since, last_audit_event, last_audit_seq

pytestmark = pytest.mark.django_db

MEMBER_VIEWERS = frozenset({"member_admin", "auditor"})
MANAGERS = frozenset({"member_admin"})
DISPUTE_VIEWERS = frozenset({"analyst", "reviewer", "auditor"})
DISPUTE_RESOLVERS = frozenset({"analyst", "reviewer"})
HOLDER_READERS = frozenset({"auditor"})
REASON = "synthetic test: what the member saw"


# --- helpers ------------------------------------------------------------------------------------


def _state() -> tuple[Any, ...]:
    """Everything the members API could change."""
    return (
        last_audit_seq(),
        sorted(Member.objects.values_list("name", "status")),
        Contact.objects.count(),
        sorted(Licence.objects.values_list("member__name", "kind")),
        sorted(Entitlement.objects.values_list("member__name", "feed__name")),
        SyncClient.objects.count(),
        sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        sorted(Feedback.objects.values_list("pk", "status")),
    )


def _text(response: Any) -> str:
    return response.content.decode()


@dataclass(frozen=True)
class World:
    """Published feeds, an active member ``acme`` with one of everything, a suspended member
    ``dormant`` and a bare member ``plain``."""

    admin: Any
    contact_id: int
    token_id: int
    token: str
    feedback_id: int
    listed_md5: str


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any) -> World:
    admin = member_admin
    feed_services.feed_create(actor=admin, name="md5-all", algorithms=["md5"])
    feed_services.feed_create(actor=admin, name="photodna-all", algorithms=["photodna"])
    feed_services.feed_create(actor=admin, name="everything")  # no filter: can carry PhotoDNA
    listed = synthetic("md5")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": listed}])
    assert releases.release_cut() is not None

    for name in ("acme", "dormant", "plain"):
        services.member_create(actor=admin, name=name, display_name=name.title())
    contact = services.contact_add(
        actor=admin, member_name="acme", name="Ada", email="ada@example.org", role="technical"
    )
    services.licence_grant(actor=admin, member_name="acme", kind="photodna")
    services.entitlement_grant(actor=admin, member_name="acme", feed="md5-all")
    services.client_create(actor=admin, member_name="acme", name="edge-1")
    token, secret = services.token_create(
        actor=admin, member_name="acme", client_name="edge-1", scopes=["sync", "feedback"]
    )
    feedback = sync_services.feedback_create(
        principal=MemberPrincipal(token),
        algorithm="md5",
        value=listed,
        kind="false_positive",
        reason=REASON,
    )
    services.member_suspend(actor=admin, name="dormant", reason="synthetic test")
    return World(admin, contact.pk, token.pk, secret, feedback.pk, listed)


# --- the role matrix ----------------------------------------------------------------------------

Call = tuple[str, Any]  # path, body


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    allowed: frozenset[str]
    status: int  # what an allowed role gets for the request ``build`` makes
    build: Callable[[World, str], Call]


def _member_url(url_name: str, **kwargs: Any) -> str:
    return reverse(url_name, kwargs=kwargs)


ENDPOINTS: dict[str, Endpoint] = {
    "member-list": Endpoint(
        "member-list", "get", MEMBER_VIEWERS, 200, lambda w, r: (reverse("member-list"), None)
    ),
    "member-create": Endpoint(
        "member-list",
        "post",
        MANAGERS,
        201,
        lambda w, r: (
            reverse("member-list"),
            {"name": f"made-by-{r.replace('_', '-')}", "display_name": "Synthetic Org"},
        ),
    ),
    "member-detail": Endpoint(
        "member-detail",
        "get",
        MEMBER_VIEWERS,
        200,
        lambda w, r: (_member_url("member-detail", name="acme"), None),
    ),
    "member-suspend": Endpoint(
        "member-suspend",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("member-suspend", name="acme"), {"reason": REASON}),
    ),
    "member-reinstate": Endpoint(
        "member-reinstate",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("member-reinstate", name="dormant"), {"reason": REASON}),
    ),
    "contact-add": Endpoint(
        "contact-add",
        "post",
        MANAGERS,
        201,
        lambda w, r: (
            _member_url("contact-add", name="acme"),
            {"name": "Grace", "email": "grace@example.org", "role": "legal"},
        ),
    ),
    "contact-remove": Endpoint(
        "contact-remove",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("contact-remove", name="acme", contact_id=w.contact_id), {}),
    ),
    "licence-grant": Endpoint(
        "licence-grant",
        "post",
        MANAGERS,
        201,
        lambda w, r: (_member_url("licence-grant", name="plain"), {"kind": "photodna"}),
    ),
    "licence-revoke": Endpoint(
        "licence-revoke",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("licence-revoke", name="acme", kind="photodna"), {}),
    ),
    "entitlement-grant": Endpoint(
        "entitlement-grant",
        "post",
        MANAGERS,
        201,
        lambda w, r: (_member_url("entitlement-grant", name="plain"), {"feed": "md5-all"}),
    ),
    "entitlement-revoke": Endpoint(
        "entitlement-revoke",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("entitlement-revoke", name="acme", feed="md5-all"), {}),
    ),
    "client-create": Endpoint(
        "client-create",
        "post",
        MANAGERS,
        201,
        lambda w, r: (_member_url("client-create", name="acme"), {"name": "edge-2"}),
    ),
    "token-create": Endpoint(
        "token-create",
        "post",
        MANAGERS,
        201,
        lambda w, r: (
            _member_url("token-create", name="acme", client="edge-1"),
            {"scopes": ["lookup"]},
        ),
    ),
    "token-revoke": Endpoint(
        "token-revoke",
        "post",
        MANAGERS,
        200,
        lambda w, r: (_member_url("token-revoke", name="acme", token_id=w.token_id), {}),
    ),
    "dispute-list": Endpoint(
        "dispute-list", "get", DISPUTE_VIEWERS, 200, lambda w, r: (reverse("dispute-list"), None)
    ),
    "dispute-resolve": Endpoint(
        "dispute-resolve",
        "post",
        DISPUTE_RESOLVERS,
        200,
        lambda w, r: (
            _member_url("dispute-resolve", feedback_id=w.feedback_id),
            {"status": "dismissed", "resolution": "synthetic test: the entry is right"},
        ),
    ),
    "hash-holders": Endpoint(
        "hash-holders",
        "post",
        HOLDER_READERS,
        200,
        lambda w, r: (reverse("hash-holders"), {"algorithm": "md5", "value": w.listed_md5}),
    ),
}


def test_role_matrix_covers_every_endpoint_and_method():
    assert served(urls.urlpatterns) == {(e.url_name, e.method) for e in ENDPOINTS.values()}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_role_gets_exactly_the_endpoints_it_is_entitled_to(name, role, request, api, world):
    endpoint = ENDPOINTS[name]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    path, body = endpoint.build(world, role)
    before = _state()

    response = getattr(api(user), endpoint.method)(path, body, format="json")

    if role in endpoint.allowed:
        assert response.status_code == endpoint.status, response.content[:500]
        assert "error" not in response.json()
        if endpoint.method == "post" and name != "hash-holders":
            assert _state() != before  # the write happened
        return
    assert_role_refused(response, role)
    assert _state() == before  # a refused request changes nothing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/members/"),
        ("delete", "/api/v1/members/acme/"),
        ("patch", "/api/v1/members/acme/"),
        ("post", "/api/v1/members/acme/"),
        ("get", "/api/v1/members/acme/suspend/"),
        ("get", "/api/v1/members/acme/clients/edge-1/tokens/"),
        ("delete", "/api/v1/members/acme/tokens/1/revoke/"),
        ("post", "/api/v1/disputes/"),
        ("get", "/api/v1/audit/hash-holders/"),
    ],
)
def test_wrong_method_is_refused_with_method_not_allowed(
    api, member_admin, auditor, world, method, path
):
    before = _state()
    refused = []
    for user in (member_admin, auditor):
        response = getattr(api(user), method)(path, {"reason": REASON}, format="json")
        if response.status_code == 403:  # refused before the method is even looked at
            continue
        refused.append(assert_error(response, 405, "method_not_allowed"))
    assert refused
    assert _state() == before


# --- members ------------------------------------------------------------------------------------


def test_member_admin_creates_a_member_and_it_is_audited(api, member_admin):
    before = last_audit_seq()

    response = api(member_admin).post(
        "/api/v1/members/", {"name": "acme-cloud", "display_name": "  Acme Cloud  "}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["display_name"], body["status"]) == (
        "acme-cloud",
        "Acme Cloud",
        "active",
    )
    assert body["contacts"] == body["licences"] == body["clients"] == body["tokens"] == []
    [event] = audit_events_since(before)
    assert (event.action, event.actor) == ("member.create", "member-admin")
    listed = api(member_admin).get("/api/v1/members/").json()["results"]
    assert [m["name"] for m in listed] == ["acme-cloud"]


def test_a_duplicate_member_name_conflicts(api, member_admin, world):
    response = api(member_admin).post(
        "/api/v1/members/", {"name": "acme", "display_name": "Again"}, format="json"
    )
    assert_error(response, 409, "member_exists")


@pytest.mark.parametrize("name", ["no-such", "a" * 64, "a" * 300, "Upper", "under_score"])
def test_an_unknown_member_is_not_found(api, member_admin, world, name):
    before = _state()
    for method, template, body in [
        ("get", "/api/v1/members/{}/", None),
        ("post", "/api/v1/members/{}/suspend/", {"reason": REASON}),
        (
            "post",
            "/api/v1/members/{}/contacts/",
            {"name": "A", "email": "a@example.org", "role": "legal"},
        ),
        ("post", "/api/v1/members/{}/licences/", {"kind": "photodna"}),
        ("post", "/api/v1/members/{}/entitlements/", {"feed": "md5-all"}),
        ("post", "/api/v1/members/{}/clients/", {"name": "edge-1"}),
        ("post", "/api/v1/members/{}/clients/edge-1/tokens/", {"scopes": ["sync"]}),
        ("post", "/api/v1/members/{}/tokens/" + str(world.token_id) + "/revoke/", {}),
    ]:
        response = getattr(api(member_admin), method)(template.format(name), body, format="json")
        assert_error(response, 404, "not_found")
    assert _state() == before


def test_suspend_and_reinstate(api, member_admin, world):
    client = api(member_admin)

    suspended = client.post("/api/v1/members/acme/suspend/", {"reason": "unpaid"}, format="json")

    assert suspended.status_code == 200
    assert (suspended.json()["status"], suspended.json()["suspension_reason"]) == (
        "suspended",
        "unpaid",
    )
    assert suspended.json()["suspended_at"] is not None
    again = client.post("/api/v1/members/acme/suspend/", {"reason": "unpaid"}, format="json")
    assert_error(again, 409, "member_suspended")

    reinstated = client.post("/api/v1/members/acme/reinstate/", {"reason": "paid"}, format="json")

    assert reinstated.status_code == 200
    assert (reinstated.json()["status"], reinstated.json()["suspended_at"]) == ("active", None)
    again = client.post("/api/v1/members/acme/reinstate/", {"reason": "paid"}, format="json")
    assert_error(again, 409, "member_active")
    actions = list(
        AuditEvent.objects.filter(action__startswith="member.s").values_list("action", flat=True)
    )
    assert actions.count("member.suspend") == 2  # dormant's and acme's


# --- contacts, licences, entitlements, clients ----------------------------------------------


def test_contacts_are_added_validated_and_removed(api, member_admin, world):
    client = api(member_admin)
    path = "/api/v1/members/plain/contacts/"
    body = {"name": "Grace", "email": "grace@example.org", "role": "trust_safety"}

    added = client.post(path, body, format="json")

    assert added.status_code == 201
    [contact] = added.json()["contacts"]
    assert {k: contact[k] for k in ("name", "email", "role")} == body
    assert_error(client.post(path, body, format="json"), 409, "contact_exists")
    for email in (
        "not-an-email",
        "grace@",
        "@example.org",
        "a" * 250 + "@example.org",
    ):
        error = assert_error(
            client.post(path, {**body, "email": email}, format="json"), 400, "invalid_input"
        )
        assert "email" in error["message"]
    assert_error(client.post(path, {**body, "role": "ceo"}, format="json"), 400, "invalid_input")

    removed = client.post(f"{path}{contact['id']}/remove/", {}, format="json")

    assert removed.status_code == 200
    assert removed.json()["contacts"] == []
    assert_error(client.post(f"{path}{contact['id']}/remove/", {}, format="json"), 404, "not_found")
    # Another member's contact cannot be removed through this one.
    other = client.post(f"{path}{world.contact_id}/remove/", {}, format="json")
    assert_error(other, 404, "not_found")
    assert Contact.objects.filter(pk=world.contact_id).exists()


def test_licences_are_granted_renewed_and_revoked(api, member_admin, world):
    client = api(member_admin)
    path = "/api/v1/members/plain/licences/"

    granted = client.post(path, {"kind": "photodna", "reference": "MS-123"}, format="json")
    renewed = client.post(
        path, {"kind": "photodna", "valid_until": "2999-01-01T00:00:00Z"}, format="json"
    )

    assert granted.status_code == renewed.status_code == 201
    [licence] = renewed.json()["licences"]
    assert (licence["kind"], licence["reference"]) == ("photodna", "")
    assert licence["valid_until"].startswith("2999-01-01")
    past = client.post(
        path, {"kind": "photodna", "valid_until": "2020-01-01T00:00:00Z"}, format="json"
    )
    assert_error(past, 400, "invalid_input")
    assert_error(client.post(path, {"kind": "adobe"}, format="json"), 400, "invalid_input")

    revoked = client.post(f"{path}photodna/revoke/", {}, format="json")

    assert revoked.status_code == 200
    assert revoked.json()["licences"] == []
    assert_error(client.post(f"{path}photodna/revoke/", {}, format="json"), 404, "not_found")
    assert_error(client.post(f"{path}adobe/revoke/", {}, format="json"), 404, "not_found")


@pytest.mark.parametrize("feed", ["photodna-all", "everything"])
def test_a_photodna_capable_feed_needs_the_licence_first(api, member_admin, world, feed):
    client = api(member_admin)
    path = "/api/v1/members/plain/entitlements/"
    before = _state()

    refused = client.post(path, {"feed": feed}, format="json")

    error = assert_error(refused, 409, "licence_required")
    assert "PhotoDNA" in error["message"]
    assert _state() == before
    client.post("/api/v1/members/plain/licences/", {"kind": "photodna"}, format="json")

    granted = client.post(path, {"feed": feed}, format="json")

    assert granted.status_code == 201
    assert [(e["feed"], e["receivable"]) for e in granted.json()["entitlements"]] == [(feed, True)]
    # Revoking the licence keeps the entitlement but stops it being receivable.
    client.post("/api/v1/members/plain/licences/photodna/revoke/", {}, format="json")
    detail = client.get("/api/v1/members/plain/").json()
    assert [(e["feed"], e["receivable"]) for e in detail["entitlements"]] == [(feed, False)]


def test_entitlements_are_granted_and_revoked(api, member_admin, world):
    client = api(member_admin)
    path = "/api/v1/members/plain/entitlements/"

    granted = client.post(path, {"feed": "md5-all"}, format="json")

    assert granted.status_code == 201  # an md5 feed needs no licence
    assert_error(client.post(path, {"feed": "md5-all"}, format="json"), 409, "entitled")
    assert_error(client.post(path, {"feed": "no-such-feed"}, format="json"), 404, "not_found")
    feed_services.feed_retire(actor=member_admin, name="everything")
    assert_error(client.post(path, {"feed": "everything"}, format="json"), 404, "not_found")

    revoked = client.post(f"{path}md5-all/revoke/", {}, format="json")

    assert revoked.status_code == 200
    assert revoked.json()["entitlements"] == []
    assert_error(client.post(f"{path}md5-all/revoke/", {}, format="json"), 404, "not_found")


def test_sync_clients_are_created_once_per_name(api, member_admin, world):
    client = api(member_admin)
    path = "/api/v1/members/plain/clients/"

    created = client.post(path, {"name": "edge-1"}, format="json")

    assert created.status_code == 201
    assert [c["name"] for c in created.json()["clients"]] == ["edge-1"]
    assert_error(client.post(path, {"name": "edge-1"}, format="json"), 409, "client_exists")
    assert_error(client.post(path, {"name": "Edge 1"}, format="json"), 400, "invalid_input")


# --- tokens -------------------------------------------------------------------------------------


def _everything_stored(token: ApiToken) -> str:
    return json.dumps(
        {f.attname: getattr(token, f.attname) for f in ApiToken._meta.concrete_fields},
        default=str,
    )


def test_a_token_is_shown_once_and_only_its_digest_is_kept(api, member_admin, world, caplog):
    caplog.set_level(logging.DEBUG)
    client = api(member_admin)
    before = last_audit_seq()

    response = client.post(
        "/api/v1/members/acme/clients/edge-1/tokens/",
        {"scopes": ["lookup", "sync"], "expires_in_days": 30},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    secret = response.json()["token"]
    details = response.json()["details"]
    assert tokens.is_well_formed(secret)
    assert (details["prefix"], details["scopes"], details["status"]) == (
        secret[: tokens.DISPLAY_LENGTH],
        ["sync", "lookup"],
        "active",
    )
    assert details["expires_at"] is not None
    row = ApiToken.objects.get(pk=details["id"])
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in _everything_stored(row)
    # Never shown again: not in the member's detail or list, not on the audit trail, not logged.
    detail = client.get("/api/v1/members/acme/")
    assert details["prefix"] in _text(detail)
    for shown in (detail, client.get("/api/v1/members/")):
        assert secret not in _text(shown)
        assert row.digest not in _text(shown)
    events = audit_events_since(before)
    assert [e.action for e in events] == ["member.token_create"]
    for event in AuditEvent.objects.all():
        recorded = json.dumps(
            [event.actor, event.object_id, event.before, event.after, event.reason], default=str
        )
        assert secret not in recorded
        assert row.digest not in recorded
    assert secret not in caplog.text


def test_a_token_is_revoked_once_and_only_through_its_member(api, member_admin, world):
    client = api(member_admin)
    services.client_create(actor=member_admin, member_name="plain", name="edge-1")
    path = f"/api/v1/members/acme/tokens/{world.token_id}/revoke/"

    through_other = client.post(
        f"/api/v1/members/plain/tokens/{world.token_id}/revoke/", {}, format="json"
    )
    assert_error(through_other, 404, "not_found")

    revoked = client.post(path, {}, format="json")

    assert revoked.status_code == 200
    assert (revoked.json()["status"], revoked.json()["id"]) == ("revoked", world.token_id)
    assert revoked.json()["revoked_at"] is not None
    assert world.token not in _text(revoked)
    assert_error(client.post(path, {}, format="json"), 409, "token_revoked")
    # An id that could exist is not found; one that cannot (not a positive 63-bit integer) is
    # invalid input.
    for token_id, status, code in IDS:
        response = client.post(f"/api/v1/members/acme/tokens/{token_id}/revoke/", {}, format="json")
        assert_error(response, status, code)


IDS = [(999_999, 404, "not_found"), (0, 400, "invalid_input"), (2**63, 400, "invalid_input")]


# --- bad input ----------------------------------------------------------------------------------

# Routes that read a JSON body, with a valid body for each.
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "member-create": ("/api/v1/members/", {"name": "new-org", "display_name": "New Org"}),
    "member-suspend": ("/api/v1/members/acme/suspend/", {"reason": REASON}),
    "member-reinstate": ("/api/v1/members/dormant/reinstate/", {"reason": REASON}),
    "contact-add": (
        "/api/v1/members/acme/contacts/",
        {"name": "Grace", "email": "grace@example.org", "role": "legal"},
    ),
    "licence-grant": ("/api/v1/members/plain/licences/", {"kind": "photodna"}),
    "entitlement-grant": ("/api/v1/members/plain/entitlements/", {"feed": "md5-all"}),
    "client-create": ("/api/v1/members/acme/clients/", {"name": "edge-2"}),
    "token-create": ("/api/v1/members/acme/clients/edge-1/tokens/", {"scopes": ["sync"]}),
    "dispute-resolve": (
        "/api/v1/disputes/{feedback}/resolve/",
        {"status": "upheld", "resolution": REASON},
    ),
    "hash-holders": ("/api/v1/audit/hash-holders/", {"algorithm": "md5", "value": "{listed}"}),
}
HUGE = "x" * 100_000


def _caller(route: str, request: Any) -> Any:
    role = {"dispute-resolve": "analyst", "hash-holders": "auditor"}.get(route, "member_admin")
    return request.getfixturevalue(role)


def _valid(route: str, world: World) -> tuple[str, dict[str, Any]]:
    path, body = BODIES[route]
    body = {
        k: v.format(listed=world.listed_md5) if isinstance(v, str) else v for k, v in body.items()
    }
    return path.format(feedback=world.feedback_id), body


@pytest.mark.parametrize("route", list(BODIES))
def test_the_valid_bodies_of_the_bad_input_tests_are_accepted(route, request, api, world):
    path, body = _valid(route, world)
    response = api(_caller(route, request)).post(path, body, format="json")
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize(
    "raw",
    ["[]", '[{"name": "x"}]', '"text"', "5", "null", "true", "{", '{"name": ', "\x00", "[" * 5000],
)
@pytest.mark.parametrize("route", list(BODIES))
def test_a_body_that_is_not_a_json_object_is_refused(route, raw, request, api, world):
    path, _ = _valid(route, world)
    before = _state()

    response = api(_caller(route, request)).generic(
        "POST", path, raw, content_type="application/json"
    )

    assert_error(response, 400, "invalid_input", "malformed_request")
    assert _state() == before


BadField = tuple[str, str, Any, int, str]  # route, field, value, status, code


def _bad(
    route: str, field: str, *values: Any, status: int = 400, code: str = "invalid_input"
) -> list[BadField]:
    return [(route, field, value, status, code) for value in values]


# One bad field in an otherwise valid body.
BAD_FIELDS: list[BadField] = [
    *_bad("member-create", "name", 123, True, None, [], ["acme"], {}, "", "Upper", "a" * 65),
    *_bad("member-create", "name", HUGE, "a\x00b", "new-org\n"),
    *_bad("member-create", "display_name", 5, None, [], "", "   ", "x" * 201, HUGE, "Org\x00"),
    *_bad("member-suspend", "reason", None, 5, "", [], "x" * 4001, HUGE, "because\x00"),
    *_bad("member-reinstate", "reason", {}, "paid\x00"),
    *_bad("contact-add", "name", None, 5, "", "x" * 201, HUGE, "Gr\x00ace"),
    *_bad("contact-add", "email", None, 5, "grace", HUGE, "gr\x00ace@example.org", ["a@b.org"]),
    *_bad("contact-add", "role", None, 5, "ceo", "LEGAL", ["legal"], HUGE),
    *_bad("licence-grant", "kind", None, 5, "adobe", "PHOTODNA", ["photodna"], HUGE),
    *_bad("licence-grant", "valid_until", 5, "tomorrow", "2020-01-01T00:00:00Z", HUGE),
    *_bad("licence-grant", "valid_until", "9999-12-31T23:59:59-12:00", "2999-13-01T00:00:00Z"),
    *_bad("licence-grant", "reference", True, [], "x" * 201, "ref\x00"),
    # An unknown feed, or something that cannot even be a feed's name, is not found.
    *_bad(
        "entitlement-grant",
        "feed",
        "no-such-feed",
        "MD5-ALL",
        "md5-all\n",
        "md5\x00all",
        status=404,
        code="not_found",
    ),
    *_bad(
        "entitlement-grant",
        "feed",
        HUGE,
        None,
        5,
        ["md5-all"],
        {"name": "md5-all"},
        status=404,
        code="not_found",
    ),
    *_bad("client-create", "name", None, 5, "", "Edge", "edge_1", "a" * 65, HUGE, "edge\x00"),
    *_bad("token-create", "scopes", None, "sync", [], ["admin"], ["sync", 5], {"sync": True}),
    *_bad("token-create", "scopes", [HUGE], ["sync\x00"]),
    *_bad("token-create", "expires_in_days", 0, -1, 731, 10**30, "5", True, 1.5, [], "x"),
    *_bad("dispute-resolve", "status", None, 5, "open", "closed", ["upheld"], HUGE),
    *_bad("dispute-resolve", "resolution", None, 5, "", "x" * 4001, HUGE, "fine\x00"),
    *_bad("hash-holders", "algorithm", None, HUGE),
    *_bad("hash-holders", "algorithm", 5, "nope", code="unknown_algorithm"),
    *_bad("hash-holders", "value", None, "x" * 5000, "ab\x00"),
    *_bad("hash-holders", "value", "zz", code="invalid_hash"),
    *_bad("hash-holders", "at", 5, "yesterday", "9999-12-31T23:59:59-12:00", HUGE),
]


def _case_id(case: BadField) -> str:
    route, field, value, _, _ = case
    shown = repr(value)
    return f"{route}-{field}-{shown[:24]}{'…' if len(shown) > 24 else ''}"


@pytest.mark.parametrize("case", BAD_FIELDS, ids=_case_id)
def test_a_bad_field_is_a_json_4xx_with_a_stable_code(case, request, api, world):
    route, field, value, status, code = case
    path, body = _valid(route, world)
    before = _state()

    response = api(_caller(route, request)).post(path, {**body, field: value}, format="json")

    error = assert_error(response, status, code)
    if status == 400 and code == "invalid_input":
        assert field in error["message"]
    assert _state() == before


@pytest.mark.parametrize("route", ["member-create", "contact-add", "client-create", "token-create"])
def test_a_missing_field_is_named(route, request, api, world):
    path, body = _valid(route, world)
    for field in body:
        response = api(_caller(route, request)).post(
            path, {k: v for k, v in body.items() if k != field}, format="json"
        )
        error = assert_error(response, 400, "invalid_input")
        assert field in error["message"]


# --- disputes -----------------------------------------------------------------------------------


def test_the_dispute_queue_lists_and_filters_without_hash_values(api, analyst, world):
    client = api(analyst)

    listed = client.get("/api/v1/disputes/")

    assert listed.status_code == 200
    [dispute] = listed.json()["results"]
    assert {k: dispute[k] for k in ("id", "member", "client", "kind", "status", "reason")} == {
        "id": world.feedback_id,
        "member": "acme",
        "client": "edge-1",
        "kind": "false_positive",
        "status": "open",
        "reason": REASON,
    }
    assert world.listed_md5 not in _text(listed)
    assert client.get("/api/v1/disputes/?status=open").json()["results"] == [dispute]
    assert client.get("/api/v1/disputes/?status=upheld").json()["results"] == []
    error = assert_error(client.get("/api/v1/disputes/?status=bogus"), 400, "invalid_input")
    assert "status" in error["message"]


def test_an_analyst_resolves_a_dispute_once(api, analyst, reviewer, world):
    path = f"/api/v1/disputes/{world.feedback_id}/resolve/"
    body = {"status": "upheld", "resolution": "regrade proposed"}

    resolved = api(analyst).post(path, body, format="json")

    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["resolved_by"]) == ("upheld", "analyst")
    event = last_audit_event()
    assert event is not None
    assert (event.action, event.after) == ("feedback.resolve", {"status": "upheld"})
    again = api(reviewer).post(path, {**body, "status": "dismissed"}, format="json")
    assert_error(again, 409, "feedback_resolved")
    for feedback_id, status, code in IDS:
        missing = api(reviewer).post(
            f"/api/v1/disputes/{feedback_id}/resolve/", body, format="json"
        )
        assert_error(missing, status, code)


# --- hash holders -------------------------------------------------------------------------------


def test_an_auditor_learns_who_claims_a_hash(api, auditor, world):
    # Evidence (bundles served) and its absence: tests/members/test_holders.py.
    token = ApiToken.objects.get(pk=world.token_id)
    feed = Entitlement.objects.get(member__name="acme").feed
    version = feed.versions.get(version=feed.version)
    sync_services.ack_record(
        principal=MemberPrincipal(token),
        feed=feed,
        version=version.version,
        state_digest=version.state_digest,
    )

    held = api(auditor).post(
        "/api/v1/audit/hash-holders/",
        {"algorithm": "md5", "value": world.listed_md5.upper()},
        format="json",
    )
    unlisted = api(auditor).post(
        "/api/v1/audit/hash-holders/",
        {"algorithm": "md5", "value": synthetic("md5")},
        format="json",
    )

    assert held.status_code == 200
    assert held.json()["hash_state"] == "active"
    assert [
        (h["member"], h["client"], h["feed"], h["state_at_time"], h["held_at_time"])
        for h in held.json()["holders"]
    ] == [("acme", "edge-1", "md5-all", "claimed_unverified", False)]  # it downloaded nothing
    assert unlisted.json() | {"at": None} == {"hash_state": "unknown", "at": None, "holders": []}
