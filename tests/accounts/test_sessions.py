"""How long a session lasts (idle and absolute), changing the password, and who must use a
second factor."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.accounts.helpers import (
    PASSWORD,
    SIGNED_IN_AT,
    age_session,
    sign_in,
    verified_session,
    with_password,
)
from tests.utils import assert_error, audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db

NEW = "a fresh synthetic passphrase 8"


def _session_row(client: Client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def _signed_in_analyst(analyst) -> Client:
    client = Client()
    assert sign_in(client, with_password(analyst).username).status_code == 302
    return client


# --- Idle expiry -----------------------------------------------------------------------------


def test_the_idle_lifetime_is_the_configured_minutes(settings):
    assert settings.SESSION_COOKIE_AGE == settings.HASHSYNC_SESSION_IDLE_MINUTES * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_every_request_restarts_the_idle_clock(settings, analyst):
    client = _signed_in_analyst(analyst)
    Session.objects.filter(pk=client.session.session_key).update(
        expire_date=timezone.now() + timedelta(minutes=1)
    )

    assert client.get(reverse("account")).status_code == 200

    left = _session_row(client).expire_date - timezone.now()
    assert left > timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_a_session_idle_for_longer_than_the_limit_is_signed_out(analyst):
    client = _signed_in_analyst(analyst)
    Session.objects.filter(pk=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    response = client.get(reverse("account"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_session_cookie_lives_no_longer_than_the_idle_limit(settings, analyst):
    client = _signed_in_analyst(analyst)

    response = client.get(reverse("account"))

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


# --- Absolute expiry -----------------------------------------------------------------------


def test_a_busy_session_ends_after_the_maximum_hours(settings, analyst):
    client = _signed_in_analyst(analyst)
    age_session(client, SIGNED_IN_AT, settings.HASHSYNC_SESSION_MAX_HOURS * 3600 + 60)
    since = last_audit_seq()

    response = client.get(reverse("account"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=%2Faccount%2F"
    assert "_auth_user_id" not in client.session
    assert [e.action for e in audit_events_since(since)] == ["staff.sign_out"]


def test_a_session_just_under_the_maximum_hours_goes_on(settings, analyst):
    client = _signed_in_analyst(analyst)
    age_session(client, SIGNED_IN_AT, settings.HASHSYNC_SESSION_MAX_HOURS * 3600 - 60)

    assert client.get(reverse("account")).status_code == 200


def test_an_outlived_session_answers_the_api_in_json(settings, analyst):
    client = _signed_in_analyst(analyst)
    age_session(client, SIGNED_IN_AT, settings.HASHSYNC_SESSION_MAX_HOURS * 3600 + 60)

    assert_error(client.get(reverse("me")), 401, "session_expired")
    assert_error(client.get(reverse("me")), 401, "not_authenticated")


def test_the_maximum_counts_from_the_password_not_from_the_second_factor(
    settings, reviewer, authenticator
):
    device, _ = authenticator.enrol(with_password(reviewer))
    client = Client()
    sign_in(client, reviewer.username)
    age_session(client, SIGNED_IN_AT, settings.HASHSYNC_SESSION_MAX_HOURS * 3600 + 60)

    response = client.post(reverse("login-verify"), {"otp_token": authenticator.code(device)})

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("front")).templates[0].name == "front.html"


def test_a_session_without_a_sign_in_time_is_not_trusted(analyst):
    client = _signed_in_analyst(analyst)
    session = client.session
    del session[SIGNED_IN_AT]
    session.save()

    assert client.get(reverse("account"))["Location"].startswith(reverse("login"))


# --- Password change ------------------------------------------------------------------------


def _change(client: Client, old: str = PASSWORD, new1: str = NEW, new2: str | None = None):
    return client.post(
        reverse("password-change"),
        {"old_password": old, "new_password1": new1, "new_password2": new2 or new1},
    )


def _field_error(response, field: str) -> str:
    found = re.search(
        rf'<p class="error" id="id_{field}-error">(.*?)</p>', response.content.decode(), re.S
    )
    assert found, field
    return found.group(1)


def test_the_password_change_page_renders(analyst):
    response = _signed_in_analyst(analyst).get(reverse("password-change"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'autocomplete="new-password"' in html
    # The password rules are a list: inside a <p> the browser would end the help before it.
    assert re.search(r'<div class="help" id="id_new_password1_helptext">\s*<ul>', html)
    assert 'aria-describedby="id_new_password1_helptext"' in html


def test_changing_the_password_needs_the_current_one(analyst):
    client = _signed_in_analyst(analyst)

    response = _change(client, old="not the current one")

    assert response.status_code == 400
    assert "That is not your password." in _field_error(response, "old_password")
    analyst.refresh_from_db()
    assert analyst.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("new", "field", "says"),
    [
        ("short1", "new_password1", "too short"),
        ("password123", "new_password1", "too common"),
        ("83920174651029", "new_password1", "entirely numeric"),
        ("analyst1", "new_password1", "too similar"),
    ],
)
def test_the_password_validators_apply(analyst, new, field, says):
    client = _signed_in_analyst(analyst)

    response = _change(client, new1=new)

    assert response.status_code == 400
    assert says in _field_error(response, field)


def test_the_two_new_passwords_must_match(analyst):
    response = _change(_signed_in_analyst(analyst), new2=NEW + "x")

    assert response.status_code == 400
    assert "differ" in _field_error(response, "new_password2")


def test_a_changed_password_signs_out_other_sessions_but_not_this_one(analyst):
    this = _signed_in_analyst(analyst)
    other = Client()
    sign_in(other, analyst.username)
    assert other.get(reverse("account")).status_code == 200

    response = _change(this)

    assert response.status_code == 302 and response["Location"] == reverse("account")
    assert "Your password is changed" in this.get(reverse("account")).content.decode()
    assert other.get(reverse("account"))["Location"].startswith(reverse("login"))
    assert sign_in(Client(), analyst.username, NEW)["Location"] == reverse("front")
    assert sign_in(Client(), analyst.username, PASSWORD).status_code == 400


def test_a_password_change_is_on_the_audit_trail_without_the_password(analyst):
    client = _signed_in_analyst(analyst)
    since = last_audit_seq()

    _change(client)

    [event] = audit_events_since(since)
    assert (event.action, event.actor, event.object_id) == (
        "staff.password_change",
        analyst.username,
        analyst.username,
    )
    assert NEW not in str([event.before, event.after, event.reason])


def test_a_password_change_keeps_the_second_factor_verification(reviewer, authenticator):
    authenticator.enrol(with_password(reviewer))
    client = Client()
    verified_session(client, reviewer)

    _change(client)

    assert client.get(reverse("front")).status_code == 200


def test_the_account_page_names_the_role_as_people_read_it(member_admin, authenticator):
    authenticator.enrol(member_admin)
    client = Client()
    verified_session(client, member_admin)

    html = client.get(reverse("account")).content.decode()

    assert "<dt>Role</dt><dd>member admin</dd>" in html


# --- Second factor for everyone -------------------------------------------------------------


def test_second_factor_for_all_makes_an_analyst_enrol(settings, analyst):
    settings.HASHSYNC_SECOND_FACTOR_FOR_ALL = True
    client = Client()

    response = sign_in(client, with_password(analyst).username)

    assert response["Location"] == reverse("second-factor")
    assert client.get(reverse("front"))["Location"].startswith(reverse("second-factor"))
    assert_error(client.get(reverse("me")), 403, "second_factor_enrolment_required")


def test_without_second_factor_for_all_an_analyst_may_go_without(settings, analyst):
    settings.HASHSYNC_SECOND_FACTOR_FOR_ALL = False

    assert sign_in(Client(), with_password(analyst).username)["Location"] == reverse("front")
