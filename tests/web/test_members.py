"""The member administrators' pages (web/views/members.py): the list with its filters and the
"new member" form, and a member's page with every action — status, contacts, licences,
entitlements, sync clients and tokens — through ``members.services``, for every role, with
bad input, someone else's objects and stale state. No input may produce a 500."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.policy import CHECKED_AT
from audit.models import AuditEvent
from distribution.models import Feed
from members import fleet, services, tokens
from members.models import ApiToken, Contact, Entitlement, Licence, Member, SyncClient
from tests.factories import member_with_token
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

NOT_MANAGERS = ("analyst", "reviewer", "auditor", "outsider")


def _confirmed(client: Client) -> Client:
    """The client's session as after a recent password check (sensitive actions need one)."""
    session = client.session
    session[CHECKED_AT] = timezone.now().timestamp()
    session.save()
    return client


@pytest.fixture
def admin(member_admin: Any) -> Client:
    return _confirmed(signed_in(Client(), member_admin))


@pytest.fixture
def feeds() -> dict[str, Feed]:
    return {
        "md5": Feed.objects.create(name="md5-all", algorithms=["md5"]),
        "photodna": Feed.objects.create(name="photodna-all", algorithms=["photodna"]),
    }


@pytest.fixture
def acme(member_admin: Any) -> Member:
    member, _ = member_with_token(member_admin, name="acme")
    return member


def _page(client: Client, member: Member) -> str:
    response = client.get(reverse("web-member", args=[member.name]))
    assert response.status_code == 200
    return response.content.decode()


def _url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def _field_error(html: str, field_id: str) -> str:
    """The error text shown next to the field ``field_id``."""
    found = re.search(rf'id="{field_id}-error">(.*?)</p>', html, re.S)
    assert found, f"no error next to {field_id}"
    return re.sub(r"<[^>]+>", "", found.group(1)).replace("&#x27;", "'").strip(" !\n")


# --- Reading ------------------------------------------------------------------------------------


def test_the_list_shows_status_licences_counts_and_last_seen(admin, member_admin, acme):
    services.licence_grant(actor=member_admin, member_name="acme", kind="photodna")
    ApiToken.objects.filter(client__member=acme).update(last_used_at=timezone.now())
    other = services.member_create(actor=member_admin, name="globex", display_name="Globex")
    services.client_create(actor=member_admin, member_name="globex", name="edge-9")
    services.member_suspend(actor=member_admin, name=other.name, reason="Unpaid fees")

    html = admin.get(_url("web-members")).content.decode()

    acme_row = re.search(r"<tr>\s*<td><a href=\"/members/acme/\">.*?</tr>", html, re.S).group(0)
    assert "Active" in acme_row and "PhotoDNA" in acme_row
    assert re.search(r'class="num">1</td>\s*<td class="num">1</td>', acme_row)
    assert "ago" in acme_row  # last seen
    globex_row = re.search(r"<tr>\s*<td><a href=\"/members/globex/\">.*?</tr>", html, re.S)
    assert "Suspended" in globex_row.group(0) and "never" in globex_row.group(0)
    assert "Create member" in html


def test_the_list_filters_by_status_and_name(admin, member_admin, acme):
    services.member_create(actor=member_admin, name="globex", display_name="Globex Corp")
    services.member_suspend(actor=member_admin, name="globex", reason="Audit")

    suspended = admin.get(_url("web-members"), {"status": "suspended"}).content.decode()
    assert "/members/globex/" in suspended and "/members/acme/" not in suspended
    by_name = admin.get(_url("web-members"), {"text": "CORP"}).content.decode()
    assert "/members/globex/" in by_name and "/members/acme/" not in by_name
    nothing = admin.get(_url("web-members"), {"text": "initech"}).content.decode()
    assert "No member matches these filters" in nothing


@pytest.mark.parametrize(
    "query",
    [{"status": "gone"}, {"text": "x" * 500}, {"after": "Not A Name\x00"}, {"after": "-"}],
)
def test_the_list_refuses_bad_filters_without_failing(admin, acme, query):
    response = admin.get(_url("web-members"), query)
    assert response.status_code == 400
    assert "There is a problem" in response.content.decode()


def test_the_list_pages_by_name(admin, member_admin, monkeypatch):
    monkeypatch.setattr("web.views.members.LIST_PAGE", 2)
    for name in ("a-one", "b-two", "c-three"):
        services.member_create(actor=member_admin, name=name, display_name=name)
    first = admin.get(_url("web-members")).content.decode()
    assert "/members/b-two/" in first and "/members/c-three/" not in first
    second = admin.get(_url("web-members"), {"after": "b-two"}).content.decode()
    assert "/members/c-three/" in second and "/members/a-one/" not in second


def test_a_new_install_says_what_to_do_first(admin, auditor):
    assert "Create the first one above" in admin.get(_url("web-members")).content.decode()
    reader = signed_in(Client(), auditor).get(_url("web-members")).content.decode()
    assert "A member administrator creates them" in reader and "Create member" not in reader


def test_an_auditor_reads_a_member_but_sees_no_action(auditor, acme):
    html = _page(signed_in(Client(), auditor), acme)
    assert "edge-1" in html and "hsk_" in html  # the client and its token's prefix
    assert '<form method="post"' not in html.split("<main", 1)[1].split("</main>")[0]


def test_an_unknown_member_is_a_404_for_pages_and_actions(admin):
    assert admin.get(_url("web-member", "nobody")).status_code == 404
    response = admin.post(_url("web-member-client-create", "nobody"), {"client-name": "x"})
    assert response.status_code == 404


def test_the_create_route_never_hides_a_members_page(admin):
    # "_new" is the create action's path segment: no member name may be it.
    response = admin.post(
        _url("web-member-create"), {"create-name": "_new", "create-display_name": "X"}
    )
    assert response.status_code == 400 and not Member.objects.exists()


def test_actions_are_post_only(admin, acme):
    assert admin.get(_url("web-member-suspend", "acme")).status_code == 405
    assert admin.get(_url("web-member-create")).status_code == 405


# --- Who may act --------------------------------------------------------------------------------

ACTIONS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("web-member-create", (), {"create-name": "newco", "create-display_name": "New Co"}),
    ("web-member-suspend", ("acme",), {"suspend-reason": "x"}),
    ("web-member-reinstate", ("acme",), {"reinstate-reason": "x"}),
    (
        "web-member-contact-add",
        ("acme",),
        {"contact-name": "A", "contact-email": "a@example.org", "contact-role": "legal"},
    ),
    ("web-member-licence-grant", ("acme",), {"licence-reference": "L-1"}),
    ("web-member-licence-revoke", ("acme", "photodna"), {}),
    ("web-member-entitlement-grant", ("acme",), {"entitlement-feed": "md5-all"}),
    ("web-member-entitlement-revoke", ("acme", "md5-all"), {}),
    ("web-member-client-create", ("acme",), {"client-name": "edge-2"}),
    ("web-member-token-create", ("acme",), {"token-client": "edge-1", "token-scopes": "sync"}),
    ("web-member-token-revoke", ("acme", 1), {}),
]


@pytest.mark.parametrize("role", NOT_MANAGERS)
@pytest.mark.parametrize(("name", "args", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_only_member_administrators_may_act(request, role, name, args, data, acme, feeds):
    client = _confirmed(signed_in(Client(), request.getfixturevalue(role)))
    events = AuditEvent.objects.count()
    response = client.post(_url(name, *args), data)
    assert response.status_code == 403
    assert AuditEvent.objects.count() == events


def test_anonymous_visitors_cannot_act(acme):
    response = Client().post(_url("web-member-suspend", "acme"), {"suspend-reason": "x"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Member.objects.get(name="acme").status == "active"


def test_a_sensitive_action_asks_for_the_password_again(member_admin, acme):
    client = signed_in(Client(), member_admin)  # signed in, but no recent password check
    response = client.post(_url("web-member-suspend", "acme"), {"suspend-reason": "Fraud"})
    assert response.status_code == 302
    assert response["Location"] == reverse("reauthenticate") + "?next=%2Fmembers%2Facme%2F"
    assert Member.objects.get(name="acme").status == "active"


# --- Creating a member --------------------------------------------------------------------------


def test_an_administrator_creates_a_member(admin):
    response = admin.post(
        _url("web-member-create"), {"create-name": "acme-cloud", "create-display_name": "Acme"}
    )
    assert response.status_code == 302 and response["Location"] == "/members/acme-cloud/"
    assert Member.objects.filter(name="acme-cloud", display_name="Acme").exists()
    assert AuditEvent.objects.filter(action="member.create").exists()
    assert "Member Acme created" in admin.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"create-name": "Acme Cloud", "create-display_name": "A"}, "name", "name must be"),
        ({"create-name": "-acme", "create-display_name": "A"}, "name", "lowercase"),
        ({"create-name": "acme", "create-display_name": "A"}, "name", "already exists"),
        ({"create-name": "", "create-display_name": "A"}, "name", "short name"),
        ({"create-name": "a" * 101, "create-display_name": "A"}, "name", "at most"),
        ({"create-name": "ok", "create-display_name": ""}, "display_name", "organisation"),
        ({"create-name": "ok", "create-display_name": "x" * 1000}, "display_name", "at most"),
        ({"create-name": "nul\x00", "create-display_name": "A"}, "name", ""),
    ],
)
def test_creating_a_member_refuses_bad_input_next_to_the_field(admin, acme, data, field, says):
    response = admin.post(_url("web-member-create"), data)
    assert response.status_code == 400
    error = _field_error(response.content.decode(), f"id_create-{field}")
    assert says in error
    assert Member.objects.count() == 1


# --- Status -------------------------------------------------------------------------------------


def test_suspend_and_reinstate_each_with_a_reason_in_the_history(admin, acme):
    response = admin.post(_url("web-member-suspend", "acme"), {"suspend-reason": "Unpaid fees"})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.status == "suspended" and acme.suspension_reason == "Unpaid fees"
    html = _page(admin, acme)
    assert "Reinstate" in html and "Suspend member" not in html

    response = admin.post(_url("web-member-reinstate", "acme"), {"reinstate-reason": "Paid"})
    assert response.status_code == 302
    html = _page(admin, acme)
    history = html.split('id="history-heading"', 1)[1]
    assert "Reinstated" in history and "Paid" in history
    assert "Suspended" in history and "Unpaid fees" in history


def test_a_reason_is_required(admin, acme):
    response = admin.post(_url("web-member-suspend", "acme"), {"suspend-reason": "  "})
    assert response.status_code == 400
    assert "Say why" in _field_error(response.content.decode(), "id_suspend-reason")
    assert Member.objects.get(name="acme").status == "active"


def test_suspending_a_suspended_member_is_refused_clearly(admin, member_admin, acme):
    services.member_suspend(actor=member_admin, name="acme", reason="first")
    response = admin.post(_url("web-member-suspend", "acme"), {"suspend-reason": "again"})
    assert response.status_code == 400
    assert "already suspended" in response.content.decode()
    assert Member.objects.get(name="acme").suspension_reason == "first"


def test_reinstating_an_active_member_is_refused_clearly(admin, acme):
    response = admin.post(_url("web-member-reinstate", "acme"), {"reinstate-reason": "why"})
    assert response.status_code == 400
    assert "not suspended" in response.content.decode()


# --- Contacts -----------------------------------------------------------------------------------


def test_contacts_are_added_and_removed(admin, acme):
    data = {"contact-name": "Ada", "contact-email": "ada@acme.example", "contact-role": "technical"}
    assert admin.post(_url("web-member-contact-add", "acme"), data).status_code == 302
    contact = Contact.objects.get(member=acme)
    assert "ada@acme.example" in _page(admin, acme)

    again = admin.post(_url("web-member-contact-add", "acme"), data)
    assert again.status_code == 400 and "already recorded" in again.content.decode()

    response = admin.post(_url("web-member-contact-remove", "acme", contact.pk))
    assert response.status_code == 302 and not Contact.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"contact-name": "A", "contact-email": "not-an-address", "contact-role": "legal"},
            "email",
        ),
        ({"contact-name": "A", "contact-email": "a@b.example", "contact-role": "boss"}, "role"),
        ({"contact-name": "", "contact-email": "a@b.example", "contact-role": "legal"}, "name"),
        (
            {"contact-name": "A", "contact-email": "a@b." + "x" * 300, "contact-role": "legal"},
            "email",
        ),
    ],
)
def test_a_bad_contact_is_refused_next_to_the_field(admin, acme, data, field):
    response = admin.post(_url("web-member-contact-add", "acme"), data)
    assert response.status_code == 400
    assert _field_error(response.content.decode(), f"id_contact-{field}")
    assert not Contact.objects.exists()


def test_removing_another_members_contact_is_refused(admin, member_admin, acme):
    services.member_create(actor=member_admin, name="globex", display_name="Globex")
    theirs = services.contact_add(
        actor=member_admin, member_name="globex", name="B", email="b@g.example", role="legal"
    )
    response = admin.post(_url("web-member-contact-remove", "acme", theirs.pk))
    assert response.status_code == 404
    assert "no such contact" in response.content.decode()
    assert Contact.objects.filter(pk=theirs.pk).exists()


# --- Licences -----------------------------------------------------------------------------------


def test_a_photodna_licence_is_granted_with_reference_and_expiry(admin, acme):
    day = (timezone.now() + dt.timedelta(days=30)).date()
    data = {"licence-reference": "MS-2026-17", "licence-valid_until": day.isoformat()}
    assert admin.post(_url("web-member-licence-grant", "acme"), data).status_code == 302
    licence = Licence.objects.get(member=acme)
    assert licence.reference == "MS-2026-17"
    assert licence.valid_until == dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
    html = _page(admin, acme)
    assert "MS-2026-17" in html and day.isoformat() in html and "Renew the PhotoDNA" in html


@pytest.mark.parametrize(
    ("value", "says"), [("2001-01-01", "in the past"), ("2030-13-45", "YYYY-MM-DD")]
)
def test_a_licence_date_must_be_a_future_date(admin, acme, value, says):
    response = admin.post(_url("web-member-licence-grant", "acme"), {"licence-valid_until": value})
    assert response.status_code == 400
    assert says in _field_error(response.content.decode(), "id_licence-valid_until")
    assert not Licence.objects.exists()


def test_an_expired_licence_is_shown_as_expired(admin, member_admin, acme):
    services.licence_grant(actor=member_admin, member_name="acme", kind="photodna")
    Licence.objects.update(valid_until=timezone.now() - dt.timedelta(days=1))
    html = _page(admin, acme)
    assert "Expired" in html
    assert "PhotoDNA expired" in admin.get(_url("web-members")).content.decode()


def test_revoking_a_licence_the_member_lacks_is_refused(admin, acme):
    response = admin.post(_url("web-member-licence-revoke", "acme", "photodna"))
    assert response.status_code == 404 and "no such licence" in response.content.decode()


def test_a_licence_is_revoked(admin, member_admin, acme):
    services.licence_grant(actor=member_admin, member_name="acme", kind="photodna")
    assert admin.post(_url("web-member-licence-revoke", "acme", "photodna")).status_code == 302
    assert not Licence.objects.exists()


# --- Entitlements -------------------------------------------------------------------------------


def test_a_photodna_feed_needs_the_licence_first(admin, member_admin, acme, feeds):
    url = _url("web-member-entitlement-grant", "acme")
    refused = admin.post(url, {"entitlement-feed": "photodna-all"})
    assert refused.status_code == 400
    assert "grant the member a PhotoDNA licence first" in _field_error(
        refused.content.decode(), "id_entitlement-feed"
    )
    assert not Entitlement.objects.exists()

    services.licence_grant(actor=member_admin, member_name="acme", kind="photodna")
    assert admin.post(url, {"entitlement-feed": "photodna-all"}).status_code == 302
    assert Entitlement.objects.filter(member=acme, feed=feeds["photodna"]).exists()


def test_the_feed_select_lists_the_feeds_not_yet_granted(admin, member_admin, acme, feeds):
    services.entitlement_grant(actor=member_admin, member_name="acme", feed="md5-all")
    html = _page(admin, acme)
    select = html.split('id="id_entitlement-feed"', 1)[1].split("</select>", 1)[0]
    assert "photodna-all" in select and "md5-all" not in select


@pytest.mark.parametrize("feed", ["no-such-feed", "", "Bad Name", "x" * 200, "nul\x00"])
def test_an_unknown_feed_is_refused_next_to_the_field(admin, acme, feeds, feed):
    response = admin.post(_url("web-member-entitlement-grant", "acme"), {"entitlement-feed": feed})
    assert response.status_code == 400
    assert _field_error(response.content.decode(), "id_entitlement-feed")


def test_an_entitlement_is_granted_twice_only_once(admin, member_admin, acme, feeds):
    services.entitlement_grant(actor=member_admin, member_name="acme", feed="md5-all")
    response = admin.post(
        _url("web-member-entitlement-grant", "acme"), {"entitlement-feed": "md5-all"}
    )
    assert response.status_code == 400 and "already entitled" in response.content.decode()


def test_an_entitlement_is_revoked_and_a_missing_one_refused(admin, member_admin, acme, feeds):
    services.entitlement_grant(actor=member_admin, member_name="acme", feed="md5-all")
    url = _url("web-member-entitlement-revoke", "acme", "md5-all")
    assert admin.post(url).status_code == 302
    assert not Entitlement.objects.exists()
    again = admin.post(url)
    assert again.status_code == 404 and "not entitled" in again.content.decode()


# --- Sync clients and tokens --------------------------------------------------------------------


def test_a_client_is_created(admin, acme):
    response = admin.post(_url("web-member-client-create", "acme"), {"client-name": "edge-2"})
    assert response.status_code == 302
    assert SyncClient.objects.filter(member=acme, name="edge-2").exists()


@pytest.mark.parametrize(
    ("name", "says"), [("edge-1", "already has"), ("Edge 2", "must be"), ("", "Give")]
)
def test_a_bad_client_name_is_refused_next_to_the_field(admin, acme, name, says):
    response = admin.post(_url("web-member-client-create", "acme"), {"client-name": name})
    assert response.status_code == 400
    assert says in _field_error(response.content.decode(), "id_client-name")


def _token_form_once(html: str) -> str:
    found = re.search(r'name="token-once" value="([^"]+)"', html)
    assert found, "the page offers no token form"
    return found.group(1)


def test_a_new_token_is_shown_once_and_never_stored(admin, acme, caplog):
    caplog.set_level(logging.DEBUG)
    once = _token_form_once(_page(admin, acme))
    response = admin.post(
        _url("web-member-token-create", "acme"),
        {
            "token-once": once,
            "token-client": "edge-1",
            "token-scopes": ["sync", "lookup"],
            "token-expires_in_days": "30",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = re.search(r'id="new-token" value="([^"]+)"', html).group(1)
    assert secret.startswith("hsk_") and "shown only this once" in html
    assert f'data-copy="{secret}"' in html
    token = ApiToken.objects.get(digest=tokens.digest(secret))
    assert token.scopes == ["sync", "lookup"] and token.client.name == "edge-1"
    assert token.expires_at is not None
    # Not stored or logged anywhere readable, and not shown again.
    assert not ApiToken.objects.filter(prefix=secret).exists()
    assert all(secret not in str(e.after) for e in AuditEvent.objects.all())
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert secret not in dict(admin.session).__repr__()
    assert secret not in _page(admin, acme)


def test_sending_the_token_form_again_issues_nothing(admin, acme):
    data = {
        "token-once": _token_form_once(_page(admin, acme)),
        "token-client": "edge-1",
        "token-scopes": "sync",
    }
    url = _url("web-member-token-create", "acme")
    assert admin.post(url, data).status_code == 200
    count = ApiToken.objects.count()

    again = admin.post(url, data)  # a reload of the page that showed it, or the back button
    assert again.status_code == 302 and again["Location"] == "/members/acme/"
    assert ApiToken.objects.count() == count
    page = admin.get(again["Location"]).content.decode()
    assert "already sent" in page and 'id="new-token"' not in page


def test_a_token_form_without_its_single_use_value_issues_nothing(admin, acme):
    count = ApiToken.objects.count()
    data = {"token-client": "edge-1", "token-scopes": "sync", "token-once": "forged"}
    response = admin.post(_url("web-member-token-create", "acme"), data)
    assert response.status_code == 302 and ApiToken.objects.count() == count


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"token-client": "edge-9", "token-scopes": "sync"}, "client", "no sync client"),
        ({"token-client": "", "token-scopes": "sync"}, "client", "Choose a client"),
        ({"token-client": "edge-1"}, "scopes", "at least one scope"),
        ({"token-client": "edge-1", "token-scopes": "admin"}, "scopes", "valid choice"),
        (
            {"token-client": "edge-1", "token-scopes": "sync", "token-expires_in_days": "0"},
            "expires_in_days",
            "greater than or equal to 1",
        ),
        (
            {"token-client": "edge-1", "token-scopes": "sync", "token-expires_in_days": "9999"},
            "expires_in_days",
            "less than or equal to 730",
        ),
        (
            {"token-client": "edge-1", "token-scopes": "sync", "token-expires_in_days": "soon"},
            "expires_in_days",
            "whole number",
        ),
    ],
)
def test_a_bad_token_request_is_refused_next_to_the_field(admin, acme, data, field, says):
    count = ApiToken.objects.count()
    once = _token_form_once(_page(admin, acme))
    response = admin.post(_url("web-member-token-create", "acme"), {**data, "token-once": once})
    assert response.status_code == 400
    assert says in _field_error(response.content.decode(), f"id_token-{field}")
    assert ApiToken.objects.count() == count
    # The refused form can be sent again, corrected: its single-use value still holds.
    fixed = {"token-once": once, "token-client": "edge-1", "token-scopes": "sync"}
    assert admin.post(_url("web-member-token-create", "acme"), fixed).status_code == 200


def test_a_token_is_revoked_and_shows_as_revoked(admin, acme):
    token = ApiToken.objects.get(client__member=acme)
    response = admin.post(_url("web-member-token-revoke", "acme", token.pk))
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    html = _page(admin, acme)
    assert "Revoked" in html
    history = html.split('id="history-heading"', 1)[1]
    assert "Token revoked" in history and f"{token.prefix}…" in history
    assert "Token created" in history and "Sync client created" in history
    again = admin.post(_url("web-member-token-revoke", "acme", token.pk))
    assert again.status_code == 409 and "already revoked" in again.content.decode()


def test_revoking_another_members_token_by_id_is_refused(admin, member_admin, acme):
    _, secret = member_with_token(member_admin, name="globex")
    theirs = ApiToken.objects.get(digest=tokens.digest(secret))
    response = admin.post(_url("web-member-token-revoke", "acme", theirs.pk))
    assert response.status_code == 404
    assert "no token with that id" in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_page_shows_last_use_and_a_never_used_token(admin, acme):
    html = _page(admin, acme)
    assert "never" in html.split('class="tokens"', 1)[1]
    ApiToken.objects.update(last_used_at=timezone.now() - dt.timedelta(hours=3))
    assert "3\xa0hours ago" in _page(admin, acme)


def test_the_clients_section_shows_each_clients_place_in_the_fleet(admin, acme):
    response = admin.get(reverse("web-member", args=[acme.name]))
    assert response.status_code == 200
    assert response.context["fleet_rows"] == fleet.member_fleet(acme.name)
    used = {template.name for template in response.templates}
    assert ("web/fleet/_table.html" in used) == bool(response.context["fleet_rows"])
