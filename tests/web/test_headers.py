"""The response headers of the pages: a strict Content-Security-Policy, no framing, and nothing
a signed-in person sees kept by a cache; and no rendered page holding what the CSP would
block."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.helpers import sign_in, verified_session, with_password
from tests.web.csp import inline_problems

pytestmark = pytest.mark.django_db

ROLES = ["analyst", "reviewer", "member_admin", "auditor", "outsider"]
SIGNED_IN_PAGES = [
    "front",
    "account",
    "second-factor",
    "password-change",
    "reauthenticate",
    "logout",
]


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def _assert_strict_csp(response) -> None:
    directives = _directives(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    header = response["Content-Security-Policy"]
    for loose in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "*"):
        assert loose not in header.replace("'self'", ""), loose


def _assert_not_cached(response) -> None:
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives, response["Cache-Control"]


def _assert_page(response) -> None:
    assert response["Content-Type"].startswith("text/html")
    _assert_strict_csp(response)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert inline_problems(response.content.decode()) == []


def _session(request, role: str) -> Client:
    user = with_password(request.getfixturevalue(role))
    if role in ("reviewer", "member_admin", "auditor"):
        TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
    client = Client()
    verified_session(client, user)
    return client


@pytest.mark.parametrize("name", ["login", "front"])
def test_the_pages_for_anonymous_visitors_carry_the_headers(name):
    response = Client().get(reverse(name))

    assert response.status_code == 200
    _assert_page(response)


def test_the_sign_in_page_is_not_cached():
    _assert_not_cached(Client().get(reverse("login")))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", SIGNED_IN_PAGES)
def test_every_signed_in_page_is_strict_and_never_cached(request, role, name):
    client = _session(request, role)

    response = client.get(reverse(name))

    assert response.status_code == 200, (role, name, response.status_code)
    _assert_page(response)
    _assert_not_cached(response)


def test_the_enrolment_page_with_its_qr_code_is_strict_and_never_cached(reviewer):
    client = Client()
    sign_in(client, with_password(reviewer).username)

    response = client.get(reverse("second-factor"))

    assert b"<svg" in response.content
    _assert_page(response)
    _assert_not_cached(response)


def test_the_second_step_is_strict_and_never_cached(reviewer):
    TOTPDevice.objects.create(user=with_password(reviewer), name="app", confirmed=True)
    client = Client()
    sign_in(client, reviewer.username)

    response = client.get(reverse("login-verify"))

    _assert_page(response)
    _assert_not_cached(response)


@pytest.mark.parametrize("path", ["/no-such-page/", "/api/v1/no-such-thing/"])
def test_error_answers_to_a_signed_in_person_are_never_cached(analyst, path):
    client = Client()
    verified_session(client, analyst)

    response = client.get(path)

    assert response.status_code == 404
    _assert_not_cached(response)


def test_the_staff_api_to_a_session_is_never_cached(analyst):
    client = Client()
    verified_session(client, analyst)

    response = client.get(reverse("me"))

    assert response.status_code == 200
    _assert_not_cached(response)


def test_a_redirect_of_a_signed_in_person_is_never_cached(reviewer):
    client = Client()
    sign_in(client, with_password(reviewer).username)

    response = client.get(reverse("account"))

    assert response.status_code == 302
    _assert_not_cached(response)
