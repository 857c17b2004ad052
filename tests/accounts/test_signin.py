"""Signing in: the password, then the second factor for the roles that need one, and nothing
reachable in between but the next step."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import PASSWORD, sign_in, verified_session, with_password
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

SECOND_FACTOR_ROLES = ["reviewer", "member_admin", "auditor"]
# Pages and API paths a half-signed-in session must not reach (an unknown URL is judged like
# any page; the admin too).
GUARDED = ["/", "/account/", "/account/password/", "/admin/", "/no-such-page/"]
GUARDED_API = ["/api/v1/me/", "/api/v1/entries/", "/api/v1/no-such-thing/"]


def _target(response) -> tuple[str, dict[str, list[str]]]:
    """Where a redirect goes: (path, query)."""
    assert response.status_code == 302, response.status_code
    parts = urlsplit(response["Location"])
    assert not parts.netloc, response["Location"]
    return parts.path, parse_qs(parts.query)


def _me(client: Client):
    return client.get(reverse("me"), HTTP_ACCEPT="application/json")


def test_the_sign_in_page_renders_its_form():
    response = Client().get(reverse("login"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Sign in · hashsync</title>" in html
    assert 'name="username"' in html and 'name="password"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'autocomplete="current-password"' in html


def test_an_analyst_without_a_second_factor_reaches_the_dashboard_with_the_right_password(
    analyst,
):
    client = Client()
    response = sign_in(client, with_password(analyst).username)

    assert _target(response) == (reverse("front"), {})
    dashboard = client.get(reverse("front"))
    assert dashboard.status_code == 200
    assert dashboard.templates[0].name == "web/dashboard.html"
    assert _me(client).status_code == 200


def test_a_wrong_password_is_refused_with_a_message_and_no_session(analyst):
    client = Client()
    response = sign_in(client, with_password(analyst).username, "not the password")

    assert response.status_code == 400
    assert "The username or password is not right" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("role", SECOND_FACTOR_ROLES)
def test_a_role_that_needs_a_second_factor_is_sent_to_set_one_up(request, role):
    user = with_password(request.getfixturevalue(role))
    client = Client()

    response = sign_in(client, user.username)

    assert _target(response)[0] == reverse("second-factor")
    page = client.get(reverse("second-factor"))
    assert page.status_code == 200
    assert "Your role needs a second factor" in page.content.decode()


@pytest.mark.parametrize("role", SECOND_FACTOR_ROLES)
@pytest.mark.parametrize("path", GUARDED)
def test_every_page_sends_an_unenrolled_second_factor_role_to_enrolment(request, role, path):
    client = Client()
    sign_in(client, with_password(request.getfixturevalue(role)).username)

    response = client.get(path)

    assert _target(response) == (reverse("second-factor"), {"next": [path]})


@pytest.mark.parametrize("role", SECOND_FACTOR_ROLES)
@pytest.mark.parametrize("path", GUARDED_API)
def test_the_api_refuses_an_unenrolled_second_factor_role_in_json(request, role, path):
    client = Client()
    sign_in(client, with_password(request.getfixturevalue(role)).username)

    error = assert_error(client.get(path), 403, "second_factor_enrolment_required")

    assert "second factor" in error["message"]


def test_a_post_elsewhere_is_refused_before_enrolment_too(reviewer):
    client = Client()
    sign_in(client, with_password(reviewer).username)

    page = client.post(reverse("password-change"), {"old_password": PASSWORD})
    api = client.post(reverse("entry-list"), {}, content_type="application/json")

    assert _target(page)[0] == reverse("second-factor")
    assert_error(api, 403, "second_factor_enrolment_required")


@pytest.mark.parametrize("role", ["analyst", *SECOND_FACTOR_ROLES])
def test_a_user_with_a_second_factor_is_asked_for_a_code(request, role, authenticator):
    user = with_password(request.getfixturevalue(role))
    authenticator.enrol(user)
    client = Client()

    response = sign_in(client, user.username)

    assert _target(response) == (reverse("login-verify"), {})
    page = client.get(reverse("login-verify"))
    assert page.status_code == 200
    assert 'name="otp_token"' in page.content.decode()


@pytest.mark.parametrize("path", [*GUARDED, reverse("second-factor"), reverse("reauthenticate")])
def test_nothing_but_the_second_step_is_reachable_before_the_code(analyst, authenticator, path):
    authenticator.enrol(with_password(analyst))
    client = Client()
    sign_in(client, analyst.username)

    response = client.get(path)

    assert _target(response) == (reverse("login-verify"), {"next": [path]})


@pytest.mark.parametrize("path", GUARDED_API)
def test_the_api_refuses_a_session_before_its_code_in_json(reviewer, authenticator, path):
    authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    assert_error(client.get(path), 401, "second_factor_required")


def test_the_admin_login_page_is_no_way_round_the_second_step(reviewer, authenticator):
    reviewer.is_staff = True
    reviewer.save(update_fields=["is_staff"])
    authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    page = client.get("/admin/login/")
    posted = client.post("/admin/login/", {"username": reviewer.username, "password": PASSWORD})

    assert _target(page) == (reverse("login-verify"), {"next": ["/admin/login/"]})
    assert _target(posted)[0] == reverse("login-verify")
    assert _me(client).status_code == 401


def test_the_code_from_the_app_finishes_signing_in(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    response = client.post(reverse("login-verify"), {"otp_token": authenticator.code(device)})

    assert _target(response) == (reverse("front"), {})
    assert client.get(reverse("front")).status_code == 200
    assert _me(client).status_code == 200


def test_a_code_typed_with_spaces_is_accepted(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)
    code = authenticator.code(device)

    response = client.post(reverse("login-verify"), {"otp_token": f" {code[:3]} {code[3:]} "})

    assert _target(response) == (reverse("front"), {})


def test_a_wrong_code_is_refused_next_to_the_field(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)
    wrong = f"{(int(authenticator.code(device)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("login-verify"), {"otp_token": wrong})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(
        r'<p class="error" id="id_otp_token-error">[^<]*<span[^>]*>!</span>\s*'
        r"That code does not match",
        html,
    )
    assert client.get(reverse("front")).status_code == 302


@pytest.mark.parametrize("token", ["", "   ", "x" * 40])
def test_an_empty_or_overlong_code_is_a_field_error_not_a_500(reviewer, authenticator, token):
    authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    response = client.post(reverse("login-verify"), {"otp_token": token})

    assert response.status_code == 400
    assert 'id="id_otp_token-error"' in response.content.decode()


def test_repeated_wrong_codes_make_the_next_try_wait_and_say_how_long(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)
    # Five wrong codes in a row (django-otp's ThrottlingMixin): the sixth try must wait
    # 2**4 = 16 seconds after the last failure, even with the right code.
    device.throttling_failure_count = 5
    device.throttling_failure_timestamp = timezone.now()
    device.save()

    response = client.post(reverse("login-verify"), {"otp_token": authenticator.code(device)})

    assert response.status_code == 429
    wait = re.search(
        r"Too many wrong codes in a row: wait (\d+) seconds?,", response.content.decode()
    )
    assert wait and 1 <= int(wait.group(1)) <= 17
    assert client.get(reverse("front")).status_code == 302


def test_a_wrong_code_counts_towards_the_wait(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    client.post(reverse("login-verify"), {"otp_token": "000000"})

    device.refresh_from_db()
    # The code 000000 could by chance be the right one (1 in a million): then nothing counts.
    assert device.throttling_failure_count == (0 if authenticator.code(device) == "000000" else 1)


def test_a_recovery_code_signs_in_once_only(reviewer, authenticator):
    _, codes = authenticator.enrol(with_password(reviewer))
    first = Client()
    sign_in(first, reviewer.username)

    accepted = first.post(reverse("login-verify"), {"otp_token": codes[0].upper()})

    assert _target(accepted) == (reverse("front"), {})
    assert first.get(reverse("front")).status_code == 200
    second = Client()
    sign_in(second, reviewer.username)
    refused = second.post(reverse("login-verify"), {"otp_token": codes[0]})
    assert refused.status_code == 400
    assert "That code does not match" in refused.content.decode()
    assert second.get(reverse("front")).status_code == 302


@pytest.mark.parametrize("target", ["/account/", "/account/password/?tab=a&b=c"])
def test_next_is_honoured_for_a_same_site_address(analyst, target):
    client = Client()
    response = sign_in(client, with_password(analyst).username, next=target)

    assert response.status_code == 302 and response["Location"] == target


@pytest.mark.parametrize("target", ["/account/", "/account/password/?tab=a&b=c"])
def test_next_survives_the_second_step(reviewer, authenticator, target):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()

    to_verify = sign_in(client, reviewer.username, next=target)
    path, query = _target(to_verify)
    assert (path, query) == (reverse("login-verify"), {"next": [target]})
    page = client.get(to_verify["Location"])
    assert f'name="next" value="{target.replace("&", "&amp;")}"' in page.content.decode()
    done = client.post(
        reverse("login-verify"), {"otp_token": authenticator.code(device), "next": target}
    )

    assert done.status_code == 302 and done["Location"] == target


def test_a_guarded_page_brings_the_person_back_after_signing_in(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()

    to_login = client.get("/account/password/")
    assert _target(to_login) == (reverse("login"), {"next": ["/account/password/"]})
    sign_in(client, reviewer.username, next="/account/password/")
    to_verify = client.get("/account/password/")
    done = client.post(to_verify["Location"], {"otp_token": authenticator.code(device)})

    assert done["Location"] == "/account/password/"


OPEN_REDIRECTS = [
    "//evil.example",
    "//evil.example/account/",
    "https://evil.example",
    "http://evil.example/",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    " //evil.example",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_pointing_elsewhere_is_ignored_at_the_password_step(analyst, target):
    client = Client()
    response = sign_in(client, with_password(analyst).username, next=target)

    assert response.status_code == 302 and response["Location"] == reverse("front")


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_pointing_elsewhere_is_ignored_at_the_second_step(reviewer, authenticator, target):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    to_verify = sign_in(client, reviewer.username, next=target)
    assert to_verify["Location"] == reverse("login-verify")

    done = client.post(
        reverse("login-verify"), {"otp_token": authenticator.code(device), "next": target}
    )

    assert done.status_code == 302 and done["Location"] == reverse("front")


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_the_sign_in_page_does_not_carry_a_foreign_next(target):
    response = Client().get(reverse("login"), {"next": target})

    assert 'name="next"' not in response.content.decode()


def test_a_signed_in_visit_to_the_sign_in_page_goes_on_to_next(analyst):
    client = Client()
    verified_session(client, analyst)

    response = client.get(reverse("login"), {"next": "/account/"})

    assert response.status_code == 302 and response["Location"] == "/account/"


def test_signing_out_by_get_only_asks(analyst):
    client = Client()
    verified_session(client, analyst)

    response = client.get(reverse("logout"))

    assert response.status_code == 200
    assert '<form method="post" action="/logout/">' in response.content.decode()
    assert client.get(reverse("account")).status_code == 200


def test_signing_out_by_post_ends_the_session(analyst):
    client = Client()
    verified_session(client, analyst)

    response = client.post(reverse("logout"))

    assert _target(response) == (reverse("login"), {})
    assert "You are signed out." in client.get(reverse("login")).content.decode()
    assert _target(client.get(reverse("account")))[0] == reverse("login")


def test_a_half_signed_in_session_can_sign_out(reviewer, authenticator):
    authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)

    response = client.post(reverse("logout"))

    assert _target(response) == (reverse("login"), {})
    assert "_auth_user_id" not in client.session


# --- CSRF ---------------------------------------------------------------------------------


def _csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def _form_token(client: Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert found, path
    return found.group(1)


def test_the_sign_in_form_needs_its_csrf_token(analyst):
    client = _csrf_client()
    with_password(analyst)
    token = _form_token(client, reverse("login"))

    refused = sign_in(client, analyst.username)
    accepted = sign_in(client, analyst.username, csrfmiddlewaretoken=token)

    assert refused.status_code == 403
    assert accepted.status_code == 302


def test_the_second_step_needs_its_csrf_token(reviewer, authenticator):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = _csrf_client()
    sign_in(client, reviewer.username, csrfmiddlewaretoken=_form_token(client, reverse("login")))
    token = _form_token(client, reverse("login-verify"))

    refused = client.post(reverse("login-verify"), {"otp_token": authenticator.code(device)})
    accepted = client.post(
        reverse("login-verify"),
        {"otp_token": authenticator.code(device), "csrfmiddlewaretoken": token},
    )

    assert refused.status_code == 403
    assert accepted.status_code == 302


# Each form of a fully signed-in session: (the page showing the form, where it posts, data).
SIGNED_IN_FORMS = [
    ("logout", "logout", {}),
    ("reauthenticate", "reauthenticate", {"password": PASSWORD}),
    (
        "password-change",
        "password-change",
        {
            "old_password": PASSWORD,
            "new_password1": "another synthetic passphrase 97",
            "new_password2": "another synthetic passphrase 97",
        },
    ),
    ("second-factor", "second-factor-recovery-codes", {}),
    ("second-factor", "second-factor-remove", {}),
]


@pytest.mark.parametrize(("page", "action", "data"), SIGNED_IN_FORMS)
def test_every_signed_in_form_needs_its_csrf_token(reviewer, authenticator, page, action, data):
    authenticator.enrol(with_password(reviewer))
    client = _csrf_client()
    verified_session(client, reviewer)
    token = _form_token(client, reverse(page))

    refused = client.post(reverse(action), data)
    assert refused.status_code == 403
    accepted = client.post(reverse(action), {**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code in (200, 302)


def test_the_enrolment_form_needs_its_csrf_token(reviewer, authenticator):
    client = _csrf_client()
    verified_session(client, with_password(reviewer))
    token = _form_token(client, reverse("second-factor"))
    from accounts.second_factor import totp_pending

    pending = totp_pending(reviewer)
    data = {"device_id": pending.pk, "otp_token": authenticator.code(pending)}

    assert client.post(reverse("second-factor"), data).status_code == 403
    accepted = client.post(reverse("second-factor"), {**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 200 and "Your recovery codes" in accepted.content.decode()
