"""Lockout after repeated wrong passwords (django-axes): per account and per address, on every
form that takes a password and on HTTP Basic, for the cool-off time and no longer; on the
audit trail once, and never with a password or a mistyped username in a log line."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.accounts.helpers import PASSWORD, sign_in, verified_session, with_password
from tests.utils import assert_error, audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db

WRONG = "wrong synthetic password 5"
LOCKED = "Too many failed sign-in attempts"


def _client(address: str = "192.0.2.10") -> Client:
    return Client(REMOTE_ADDR=address)


def _fail(settings, username: str, client: Client | None = None, times: int | None = None):
    """``times`` wrong passwords (default: the limit, which locks)."""
    client = client or _client()
    response = None
    for _ in range(settings.AXES_FAILURE_LIMIT if times is None else times):
        response = sign_in(client, username, WRONG)
    return response


def _assert_locked_page(response, settings) -> None:
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))


def _basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {pair}"}


def _move_attempts_back(by: timedelta) -> None:
    """Time passes for the lockout: every recorded failure happened ``by`` earlier."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


def test_wrong_passwords_below_the_limit_are_only_refused(settings, analyst):
    client = _client()
    with_password(analyst)

    refused = _fail(settings, analyst.username, client, times=settings.AXES_FAILURE_LIMIT - 1)
    accepted = sign_in(client, analyst.username)

    assert refused.status_code == 400
    assert accepted.status_code == 302


def test_the_limit_of_wrong_passwords_locks_the_account_even_for_the_right_one(settings, analyst):
    client = _client()
    with_password(analyst)

    _assert_locked_page(_fail(settings, analyst.username, client), settings)
    right = sign_in(client, analyst.username)

    _assert_locked_page(right, settings)
    assert "_auth_user_id" not in client.session
    assert f"refused for {settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in (
        right.content.decode()
    )


def test_the_lockout_follows_the_account_to_another_address(settings, analyst):
    with_password(analyst)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3")[: settings.AXES_FAILURE_LIMIT]:
        sign_in(_client(address), analyst.username, WRONG)

    _assert_locked_page(sign_in(_client("198.51.100.7"), analyst.username), settings)


def test_wrong_passwords_for_many_usernames_lock_the_address(settings, make_user):
    users = [with_password(make_user("analyst")) for _ in range(settings.AXES_FAILURE_LIMIT)]
    attacker = _client("203.0.113.9")
    for user in users:
        sign_in(attacker, user.username, WRONG)
    bystander = with_password(make_user("analyst"))

    _assert_locked_page(sign_in(attacker, bystander.username), settings)
    # The accounts themselves are not locked: each saw one wrong password.
    assert sign_in(_client("198.51.100.7"), users[0].username).status_code == 302


def test_unknown_usernames_count_towards_the_address(settings, analyst):
    attacker = _client("203.0.113.9")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, f"nobody-{n}", WRONG)

    _assert_locked_page(sign_in(attacker, with_password(analyst).username), settings)


def test_an_ipv6_address_counts_as_its_64(settings, make_user):
    users = [with_password(make_user("analyst")) for _ in range(settings.AXES_FAILURE_LIMIT)]
    for n, user in enumerate(users, start=1):
        sign_in(_client(f"2001:db8:1:2::{n}"), user.username, WRONG)
    bystander = with_password(make_user("analyst"))

    _assert_locked_page(sign_in(_client("2001:db8:1:2:ffff::9"), bystander.username), settings)
    assert sign_in(_client("2001:db8:1:3::1"), bystander.username).status_code == 302
    # Stored as an address: axes' column is PostgreSQL's inet, which refuses "…/64".
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"2001:db8:1:2::"}


def test_a_request_without_an_address_still_signs_in(analyst):
    client = Client(REMOTE_ADDR="")

    assert sign_in(client, with_password(analyst).username).status_code == 302
    assert sign_in(Client(REMOTE_ADDR=""), analyst.username, WRONG).status_code == 400


def test_the_lockout_ends_after_the_cool_off(settings, analyst):
    client = _client()
    with_password(analyst)
    _fail(settings, analyst.username, client)

    _move_attempts_back(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))

    assert sign_in(client, analyst.username).status_code == 302


def test_the_lockout_lasts_the_whole_cool_off(settings, analyst):
    client = _client()
    with_password(analyst)
    _fail(settings, analyst.username, client)

    _move_attempts_back(settings.AXES_COOLOFF_TIME - timedelta(seconds=30))

    _assert_locked_page(sign_in(client, analyst.username), settings)


def test_attempts_refused_during_a_lockout_do_not_extend_it(settings, analyst):
    """The page says how long the lockout lasts; trying again before then must not start it
    over (else the person who retries with the right password is locked out for longer)."""
    client = _client()
    with_password(analyst)
    _fail(settings, analyst.username, client)
    _move_attempts_back(settings.AXES_COOLOFF_TIME - timedelta(minutes=1))

    _assert_locked_page(sign_in(client, analyst.username), settings)
    _assert_locked_page(sign_in(client, analyst.username, WRONG), settings)
    _move_attempts_back(timedelta(minutes=1, seconds=1))

    assert sign_in(client, analyst.username).status_code == 302


def test_a_good_sign_in_forgets_earlier_mistakes(settings, analyst):
    client = _client()
    with_password(analyst)
    _fail(settings, analyst.username, client, times=settings.AXES_FAILURE_LIMIT - 1)
    sign_in(client, analyst.username)
    client.post(reverse("logout"))

    refused = _fail(settings, analyst.username, client, times=settings.AXES_FAILURE_LIMIT - 1)

    assert refused.status_code == 400


# --- HTTP Basic ----------------------------------------------------------------------------


def test_wrong_passwords_on_http_basic_lock_the_account_for_the_page_too(settings, analyst):
    with_password(analyst)
    api = _client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert api.get(reverse("me"), **_basic(analyst.username, WRONG)).status_code == 401

    # The failure that locks the account is answered as the lockout, as on the sign-in page.
    locking = api.get(reverse("me"), **_basic(analyst.username, WRONG))
    assert_error(locking, 429, "account_locked")
    _assert_locked_page(sign_in(_client("198.51.100.7"), analyst.username), settings)


def test_http_basic_refuses_the_right_password_of_a_locked_account(settings, analyst):
    with_password(analyst)
    _fail(settings, analyst.username)

    response = _client("198.51.100.7").get(reverse("me"), **_basic(analyst.username, PASSWORD))

    assert response.status_code in (401, 429)
    assert response["Content-Type"].startswith("application/json")
    assert analyst.username not in response.content.decode()


def test_a_username_with_nul_on_http_basic_is_refused_and_counted_not_a_500(settings, analyst):
    with_password(analyst)
    api = _client()
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = api.get(reverse("me"), **_basic(f"{analyst.username}\x00", WRONG))
        if attempt < settings.AXES_FAILURE_LIMIT:
            assert_error(response, 401, "authentication_failed")
        else:  # the failure that locks the address
            assert_error(response, 429, "account_locked")

    _assert_locked_page(sign_in(api, "someone-else"), settings)


def test_http_basic_says_the_account_is_locked(settings, analyst):
    with_password(analyst)
    _fail(settings, analyst.username)

    response = _client().get(reverse("me"), **_basic(analyst.username, PASSWORD))

    error = assert_error(response, 429, "account_locked")
    assert "refused for" in error["message"]
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))


# --- The other forms that take a password ------------------------------------------------


def test_wrong_passwords_in_the_confirm_password_form_lock_the_account(settings, analyst):
    with_password(analyst)
    client = _client()
    verified_session(client, analyst)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = client.post(reverse("reauthenticate"), {"password": WRONG})
        assert refused.status_code == 400
        assert "That is not your password." in refused.content.decode()

    locked = client.post(reverse("reauthenticate"), {"password": WRONG})

    assert locked.status_code == 429 and LOCKED in locked.content.decode()
    right = client.post(reverse("reauthenticate"), {"password": PASSWORD})
    assert right.status_code == 429
    _assert_locked_page(sign_in(_client("198.51.100.7"), analyst.username), settings)


def test_wrong_passwords_in_the_password_change_form_lock_the_account(settings, analyst):
    with_password(analyst)
    client = _client()
    verified_session(client, analyst)
    data = {
        "new_password1": "new synthetic passphrase 3",
        "new_password2": "new synthetic passphrase 3",
    }
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("password-change"), {"old_password": WRONG, **data})

    refused = client.post(reverse("password-change"), {"old_password": PASSWORD, **data})

    assert refused.status_code == 429 and LOCKED in refused.content.decode()
    analyst.refresh_from_db()
    assert analyst.check_password(PASSWORD)
    _assert_locked_page(sign_in(_client("198.51.100.7"), analyst.username), settings)


# --- Audit trail and logs ----------------------------------------------------------------


def test_a_good_sign_in_is_on_the_audit_trail(analyst):
    since = last_audit_seq()

    sign_in(_client("192.0.2.44"), with_password(analyst).username)

    events = [e for e in audit_events_since(since) if e.action == "staff.sign_in"]
    assert len(events) == 1
    event = events[0]
    assert (event.actor, event.object_type, event.object_id) == (
        analyst.username,
        "staff_user",
        analyst.username,
    )
    assert event.after == {"client": "192.0.2.44", "via": "web"}


def test_a_wrong_password_for_an_account_is_on_the_trail_under_its_name(analyst):
    since = last_audit_seq()

    sign_in(_client("192.0.2.44"), with_password(analyst).username, WRONG)

    [event] = audit_events_since(since)
    assert event.action == "staff.sign_in_failed"
    assert (event.actor, event.object_id) == ("anonymous", analyst.username)
    assert event.after == {"client": "192.0.2.44", "via": "web", "failures": 1}


def test_an_unknown_username_is_never_written_to_the_trail(db):
    typed = "Synthetic-Secret-Typed-As-Username"
    since = last_audit_seq()

    sign_in(_client(), typed, WRONG)

    [event] = audit_events_since(since)
    assert (event.action, event.object_id) == ("staff.sign_in_failed", "")
    stored = json.dumps([event.actor, event.object_id, event.before, event.after, event.reason])
    assert typed.lower() not in stored.lower()


def test_the_lockout_is_on_the_trail_once_and_refused_attempts_add_nothing(settings, analyst):
    with_password(analyst)
    client = _client()
    since = last_audit_seq()

    _fail(settings, analyst.username, client)
    for password in (PASSWORD, WRONG, PASSWORD):
        sign_in(client, analyst.username, password)
    _client().get(reverse("me"), **_basic(analyst.username, PASSWORD))

    actions = [e.action for e in audit_events_since(since)]
    limit = settings.AXES_FAILURE_LIMIT
    assert actions == ["staff.sign_in_failed"] * (limit - 1) + ["staff.lockout"]
    lockout = AuditEvent.objects.get(action="staff.lockout")
    assert lockout.object_id == analyst.username
    assert lockout.after["locked_out"] is True and lockout.after["failures"] == limit


def test_no_password_or_unknown_username_reaches_a_log_line(settings, analyst, caplog):
    caplog.set_level(logging.DEBUG)
    typed = "Synthetic-Secret-Typed-As-Username"
    with_password(analyst)
    client = _client()

    sign_in(client, typed, WRONG)
    _fail(settings, analyst.username, client)
    sign_in(client, analyst.username, PASSWORD)
    sign_in(client, typed, PASSWORD)
    _client().get(reverse("me"), **_basic(typed, WRONG))
    verified = _client("198.51.100.7")
    verified_session(verified, analyst)
    verified.post(reverse("reauthenticate"), {"password": WRONG})

    assert caplog.records, "the lockout should have been logged"
    for record in caplog.records:
        line = record.getMessage()
        for secret in (WRONG, PASSWORD, typed):
            assert secret.lower() not in line.lower(), (record.name, line)


def test_axes_keeps_no_password_in_its_records(settings, analyst):
    with_password(analyst)
    _fail(settings, analyst.username)

    for attempt in AccessAttempt.objects.all():
        assert WRONG not in attempt.post_data and WRONG not in attempt.get_data
