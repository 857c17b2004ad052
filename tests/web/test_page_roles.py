"""Every page and form action, for every role: allowed, refused, or sent to sign in.

``PAGES`` has one row per route of the staff pages (``web.urls``) and the account pages
(``accounts.urls``); ``test_every_route_has_a_row`` fails when a route is added without one,
as the API's role matrix does (tests/role_matrix.py). What each row checks:

- a page (GET): each allowed role gets it (200, or the row's ``allowed_status``); every other
  signed-in role gets the "not for your role" page (403); an anonymous visitor is sent to sign
  in and brought back;
- a form action (POST): the refusals only — a refused role gets the 403 page, an anonymous one
  the sign-in page — since what an allowed POST does is its feature's test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from accounts import urls as account_urls
from distribution.models import Feed
from distribution.releases import release_cut
from hashsync.roles import MEMBER_ADMIN
from tests.factories import (
    approved_entry,
    invalid_import_batch,
    member_with_token,
    propose_entry,
    staff_user,
)
from tests.web.conftest import signed_in
from web import urls as web_urls

SIGNED_IN_ROLES = ("analyst", "reviewer", "member_admin", "auditor", "outsider")
EVERYONE = frozenset(SIGNED_IN_ROLES)
CURATORS = frozenset({"analyst", "reviewer"})
READERS = frozenset({"analyst", "reviewer", "auditor"})  # read entries, proposals, imports
MEMBER_READERS = frozenset({"member_admin", "auditor"})  # members.view_member
MEMBER_ADMINS = frozenset({"member_admin"})  # members.manage_member
AUDITORS = frozenset({"auditor"})
STAFF = EVERYONE - {"outsider"}  # every role


@dataclass(frozen=True)
class Row:
    allowed: frozenset[str]
    method: str = "get"
    # The URL's arguments, from the objects the ``things`` fixture made.
    args: Callable[[dict[str, Any]], tuple[Any, ...]] = lambda things: ()
    allowed_status: int = 200
    # Open to anyone (the sign-in pages): not checked for refusals.
    public: bool = False


def _entry(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["entry"].pk,)


def _proposal(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["proposal"].pk,)


def _batch(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["batch"].pk,)


def _dispute(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["dispute"].pk,)


def _event(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["event"].seq,)


def _check(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["check"].pk,)


def _release(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["release"].version,)


def _feed(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["feed"].name,)


def _token(things: dict[str, Any]) -> tuple[Any, ...]:
    return (12345,)  # a revoke is refused by role before the token is looked up


def _member(things: dict[str, Any]) -> tuple[Any, ...]:
    return (things["member"].name,)


def _member_and(value: Any) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda things: (things["member"].name, value)


PAGES: dict[str, Row] = {
    # Signing in and out (tests/accounts/ test each flow; these are open to everyone).
    # Someone already signed in is taken on to the dashboard.
    "login": Row(EVERYONE, public=True, allowed_status=302),
    # The second step, after the password (tests/accounts/test_signin.py); without a password
    # step it is the sign-in page, and with both done, the dashboard.
    "login-verify": Row(EVERYONE, allowed_status=302),
    "logout": Row(EVERYONE, method="post", public=True),
    # Every signed-in person has an account.
    "account": Row(EVERYONE),
    "reauthenticate": Row(EVERYONE),
    # Managing the second factor, its recovery codes and API tokens asks for the password
    # again first (accounts/sudo.py): the allowed answer is the way to that prompt.
    "second-factor": Row(EVERYONE, allowed_status=302),
    "second-factor-recovery-codes": Row(EVERYONE, allowed_status=302),
    "second-factor-remove": Row(EVERYONE, method="post"),
    "password-change": Row(EVERYONE),
    "api-tokens": Row(EVERYONE, allowed_status=302),
    "api-token-revoke": Row(EVERYONE, method="post", args=_token),
    # The analysts' and reviewers' workspace.
    # The front page: the dashboard for the signed-in, the way in for everyone else.
    "front": Row(EVERYONE, public=True),
    "web-dashboard-imports": Row(READERS),
    "web-search": Row(READERS),
    "web-entry": Row(READERS, args=_entry),
    "web-propose": Row(CURATORS),
    "web-propose-regrade": Row(CURATORS, args=_entry),
    "web-propose-add-hash": Row(CURATORS, args=_entry),
    "web-propose-remove-hash": Row(CURATORS, args=_entry),
    "web-propose-retract": Row(CURATORS, args=_entry),
    "web-proposal": Row(READERS, args=_proposal),
    "web-proposal-approve": Row(frozenset({"reviewer"}), method="post", args=_proposal),
    "web-proposal-reject": Row(frozenset({"reviewer"}), method="post", args=_proposal),
    "web-proposal-withdraw": Row(CURATORS, method="post", args=_proposal),
    "web-review-queue": Row(frozenset({"reviewer"})),
    "web-imports": Row(READERS),
    "web-import-upload": Row(CURATORS, method="post"),
    "web-import": Row(READERS, args=_batch),
    "web-import-progress": Row(READERS, args=_batch),
    "web-import-errors-csv": Row(READERS, args=_batch),
    "web-import-approve": Row(frozenset({"reviewer"}), method="post", args=_batch),
    "web-import-reject": Row(frozenset({"reviewer"}), method="post", args=_batch),
    "web-import-withdraw": Row(CURATORS, method="post", args=_batch),
    # Member administrators (web/views/members.py); auditors read.
    "web-members": Row(MEMBER_READERS),
    "web-member-create": Row(MEMBER_ADMINS, method="post"),
    "web-member": Row(MEMBER_READERS, args=_member),
    "web-member-suspend": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-reinstate": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-contact-add": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-contact-remove": Row(MEMBER_ADMINS, method="post", args=_member_and(12345)),
    "web-member-licence-grant": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-licence-revoke": Row(MEMBER_ADMINS, method="post", args=_member_and("photodna")),
    "web-member-entitlement-grant": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-entitlement-revoke": Row(
        MEMBER_ADMINS, method="post", args=_member_and("no-such-feed")
    ),
    "web-member-client-create": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-token-create": Row(MEMBER_ADMINS, method="post", args=_member),
    "web-member-token-revoke": Row(MEMBER_ADMINS, method="post", args=_member_and(12345)),
    # Member administrators and auditors see the fleet; disputes are the analysts' to
    # resolve and the auditors' to read.
    "web-fleet": Row(frozenset({"member_admin", "auditor"})),
    "web-fleet-csv": Row(frozenset({"member_admin", "auditor"})),
    "web-disputes": Row(READERS),
    "web-dispute": Row(READERS, args=_dispute),
    "web-dispute-resolve": Row(CURATORS, method="post", args=_dispute),
    # The auditors' pages (read-only; starting a chain check is the one action).
    "web-audit": Row(AUDITORS),
    "web-audit-event": Row(AUDITORS, args=_event),
    "web-audit-export": Row(AUDITORS),
    "web-audit-checks": Row(AUDITORS),
    "web-audit-check": Row(AUDITORS, args=_check),
    "web-audit-verify": Row(AUDITORS, method="post"),
    "web-hash-holders": Row(AUDITORS),
    # The transparency log (transparency.view_log); its inclusion check is a POST to the same
    # page (tests/web/test_transparency_page.py).
    "web-transparency": Row(AUDITORS),
    # Grading frameworks: readers of entries see rules, versions and unassessed entries;
    # analysts and reviewers propose rule changes.
    "web-frameworks": Row(READERS),
    "web-framework": Row(READERS, args=lambda things: ("uk",)),
    "web-framework-propose": Row(CURATORS, args=lambda things: ("uk",)),
    "web-unassessed": Row(READERS),
    "web-unassessed-list": Row(READERS, args=lambda things: ("industry",)),
    # What is published: every staff role reads it (distribution.view_release / view_feed).
    "web-releases": Row(STAFF),
    "web-release": Row(STAFF, args=_release),
    "web-keyring": Row(STAFF),
    "web-feeds": Row(STAFF),
    "web-feed": Row(STAFF, args=_feed),
    # Reports: each chart has the permission of its data (web/reports.py); the index shows a
    # role the charts it may see. Per-chart CSV refusals: tests/web/test_charts.py.
    "web-reports": Row(STAFF),
    "web-report-feed-sizes": Row(STAFF),
    "web-report-changes": Row(READERS),
    "web-report-review-turnaround": Row(READERS),
    "web-report-member-lag": Row(frozenset({"member_admin", "auditor"})),
    "web-report-releases": Row(STAFF),
    "web-report-csv": Row(STAFF, args=lambda things: ("bundle-bytes",)),
}


def _route_names(patterns: list[Any]) -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names |= _route_names(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            assert pattern.name, f"every page route is named: {pattern.pattern}"
            names.add(pattern.name)
    return names


def test_every_route_has_a_row() -> None:
    routes = _route_names(web_urls.urlpatterns) | _route_names(account_urls.urlpatterns)
    missing = sorted(routes - set(PAGES))
    assert not missing, f"pages without a role row in PAGES: {missing}"
    stale = sorted(set(PAGES) - routes)
    assert not stale, f"rows for routes that no longer exist: {stale}"


@pytest.fixture
def things(analyst2: Any, reviewer2: Any) -> dict[str, Any]:
    """One of each object a page is about, made by people outside the roles under test."""
    from audit.models import AuditEvent, ChainCheck

    feed = Feed.objects.create(name="things")
    entry = approved_entry(analyst2, reviewer2)
    return {
        "entry": entry,
        "dispute": _a_dispute(entry),
        "proposal": propose_entry(analyst2),
        "batch": invalid_import_batch(analyst2),
        "member": member_with_token(staff_user(MEMBER_ADMIN), name="things-member")[0],
        "feed": feed,
        "release": release_cut(),  # publishes the feed with the entry
        "event": AuditEvent.objects.order_by("-seq").first(),
        "check": ChainCheck.objects.create(
            started_at=timezone.now(), started_by_name=reviewer2.get_username()
        ),
    }


def _a_dispute(entry: Any) -> Any:
    """An open dispute of ``entry`` by a member (rows written directly: the page only needs
    one to exist; tests/web/test_disputes.py builds them through the services)."""
    from members.models import Feedback, Member, SyncClient

    member = Member.objects.create(name="roles-member", display_name="Roles member")
    client = SyncClient.objects.create(member=member, name="edge-1")
    listed = entry.hashes.first()
    return Feedback.objects.create(
        member=member,
        client=client,
        entry=entry,
        algorithm=listed.algorithm,
        value=listed.value,
        kind="false_positive",
        reason="synthetic: a page-roles dispute",
    )


def _call(client: Client, name: str, row: Row, things: dict[str, Any]) -> Any:
    url = reverse(name, args=row.args(things))
    return url, getattr(client, row.method)(url)


CHECKED = sorted(PAGES)


@pytest.mark.parametrize("role", SIGNED_IN_ROLES)
@pytest.mark.parametrize("name", CHECKED)
def test_each_role_is_allowed_or_refused(
    name: str, role: str, request: pytest.FixtureRequest, things: dict[str, Any]
) -> None:
    row = PAGES[name]
    user = request.getfixturevalue(role)
    _url, response = _call(signed_in(Client(), user), name, row, things)
    if role not in row.allowed:
        assert response.status_code == 403, (name, role, response.status_code)
        assert b"does not allow this page" in response.content, response.content[:400]
    elif row.method == "get":
        assert response.status_code == row.allowed_status, (name, role, response.status_code)
        if row.allowed_status == 302:
            location = response["Location"]
            if name.startswith("login"):
                assert location == reverse("front"), location
            else:
                assert location.startswith(reverse("reauthenticate") + "?next="), location

    else:
        # An allowed action may refuse its input (400, 404) or go on (302); never the role.
        assert response.status_code not in (401, 403, 405, 500), (name, role, response)


@pytest.mark.parametrize("name", [name for name in CHECKED if not PAGES[name].public])
def test_anonymous_is_sent_to_sign_in_and_back(name: str, things: dict[str, Any]) -> None:
    row = PAGES[name]
    url, response = _call(Client(), name, row, things)
    assert response.status_code == 302, (name, response.status_code)
    assert response["Location"] == f"{reverse('login')}?next={quote(url)}"


@pytest.mark.parametrize("name", sorted(name for name, row in PAGES.items() if row.public))
def test_the_sign_in_pages_are_open(name: str, things: dict[str, Any]) -> None:
    row = PAGES[name]
    _url, response = _call(Client(), name, row, things)
    assert response.status_code in (200, 302), (name, response.status_code)
    assert response.status_code != 302 or "next=" not in response["Location"]


FORM_ACTIONS = sorted(name for name, row in PAGES.items() if row.method == "post")


@pytest.mark.parametrize("name", FORM_ACTIONS)
def test_every_form_action_needs_the_csrf_token(
    name: str, request: pytest.FixtureRequest, things: dict[str, Any]
) -> None:
    """Posted without the form's CSRF token, by someone the action is for, nothing happens and
    the page says what to do."""
    row = PAGES[name]
    role = sorted(row.allowed)[0]
    client = signed_in(Client(enforce_csrf_checks=True), request.getfixturevalue(role))
    _url, response = _call(client, name, row, things)
    assert response.status_code == 403, (name, response.status_code)
    assert b"This form has expired" in response.content
    assert b"Nothing was changed" in response.content
