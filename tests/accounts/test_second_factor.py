"""Setting up, using and removing the second factor: an authenticator app (TOTP) with ten
one-time recovery codes; changes ask for a recent password and are on the audit trail without
any code or key."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts import second_factor, services
from hashsync.errors import Conflict, InvalidInput
from tests.accounts.helpers import (
    CHECKED_AT,
    PASSWORD,
    age_session,
    sign_in,
    verified_session,
    with_password,
)
from tests.utils import assert_error, audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db


def _enrolment_page(client: Client, user) -> tuple[str, TOTPDevice]:
    page = client.get(reverse("second-factor"))
    assert page.status_code == 200
    pending = TOTPDevice.objects.get(user=user, confirmed=False)
    return page.content.decode(), pending


def _codes(html: str) -> list[str]:
    listed = re.search(r'<ol class="codes mono" id="recovery-codes">(.*?)</ol>', html, re.S)
    return re.findall(r"<li>([^<]+)</li>", listed.group(1)) if listed else []


def _enrolled_client(user, authenticator) -> tuple[Client, TOTPDevice, list[str]]:
    device, codes = authenticator.enrol(with_password(user))
    client = Client()
    verified_session(client, user, device)
    return client, device, codes


def test_the_enrolment_page_shows_an_inline_qr_code_and_the_key(reviewer):
    client = Client()
    sign_in(client, with_password(reviewer).username)

    html, pending = _enrolment_page(client, reviewer)

    figure = re.search(r'<figure class="qr"[^>]*>(.*?)</figure>', html, re.S)
    assert figure and figure.group(1).lstrip().startswith("<svg")
    assert "<?xml" not in html and "<img" not in figure.group(1)
    # Inline style would be blocked by the CSP and leave the code unreadable.
    assert "style=" not in figure.group(1)
    assert second_factor.totp_secret_text(pending) in html
    assert 'name="device_id"' in html and f'value="{pending.pk}"' in html


def test_reloading_the_enrolment_page_keeps_the_same_key(reviewer):
    client = Client()
    sign_in(client, with_password(reviewer).username)

    _, pending = _enrolment_page(client, reviewer)
    again, same = _enrolment_page(client, reviewer)

    assert pending.pk == same.pk
    assert second_factor.totp_secret_text(pending) in again


def test_the_right_code_turns_it_on_and_shows_ten_recovery_codes_once(reviewer, authenticator):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)

    response = client.post(
        reverse("second-factor"),
        {"device_id": pending.pk, "otp_token": authenticator.code(pending)},
    )

    assert response.status_code == 200
    codes = _codes(response.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    pending.refresh_from_db()
    assert pending.confirmed
    reloaded = client.get(reverse("second-factor")).content.decode()
    assert _codes(reloaded) == [] and not any(code in reloaded for code in codes)
    assert "10 recovery codes left" in reloaded
    # The session that set it up counts as verified: the work can start.
    assert client.get(reverse("front")).status_code == 200


def test_enrolment_is_on_the_audit_trail_without_code_or_key(reviewer, authenticator):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)
    code = authenticator.code(pending)
    since = last_audit_seq()

    response = client.post(reverse("second-factor"), {"device_id": pending.pk, "otp_token": code})

    [event] = [e for e in audit_events_since(since) if e.action == "staff.second_factor_enrol"]
    assert (event.actor, event.object_id) == (reviewer.username, reviewer.username)
    assert event.after == {"kind": "totp", "recovery_codes": 10}
    stored = json.dumps([event.before, event.after, event.reason, event.object_id]).lower()
    secret_text = second_factor.totp_secret_text(pending).replace(" ", "").lower()
    for secret in [code, pending.key.lower(), secret_text, *_codes(response.content.decode())]:
        assert secret not in stored


def test_a_wrong_code_is_an_error_next_to_the_field(reviewer, authenticator):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)
    wrong = f"{(int(authenticator.code(pending)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("second-factor"), {"device_id": pending.pk, "otp_token": wrong})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'<p class="error" id="id_otp_token-error">.*That code does not match', html)
    assert 'class="error-summary"' in html
    pending.refresh_from_db()
    assert not pending.confirmed
    assert second_factor.totp_secret_text(pending) in html  # still there to scan again


@pytest.mark.parametrize("token", ["", "abcdef", "1" * 17])
def test_a_malformed_code_is_a_field_error_not_a_500(reviewer, token):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)

    response = client.post(reverse("second-factor"), {"device_id": pending.pk, "otp_token": token})

    assert response.status_code == 400
    assert 'id="id_otp_token-error"' in response.content.decode()


def test_a_set_up_finished_elsewhere_says_so(reviewer, authenticator):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)
    code = authenticator.code(pending)
    client.post(reverse("second-factor"), {"device_id": pending.pk, "otp_token": code})
    other = Client()
    verified_session(other, reviewer)

    response = other.post(reverse("second-factor"), {"device_id": pending.pk, "otp_token": code})

    assert response.status_code == 302 and response["Location"] == reverse("second-factor")
    page = other.get(response["Location"]).content.decode()
    assert "This set-up is no longer pending" in page
    assert '<span class="badge ok">On</span>' in page
    assert TOTPDevice.objects.filter(user=reviewer).count() == 1


def test_a_stale_enrolment_form_is_replaced_by_the_current_one(reviewer, authenticator):
    client = Client()
    sign_in(client, with_password(reviewer).username)
    _, pending = _enrolment_page(client, reviewer)
    stale = pending.pk
    pending.delete()  # removed meanwhile (another window, an administrator)

    response = client.post(
        reverse("second-factor"), {"device_id": stale, "otp_token": "123456"}, follow=True
    )

    html = response.content.decode()
    assert "This set-up is no longer pending" in html
    current = TOTPDevice.objects.get(user=reviewer, confirmed=False)
    assert f'value="{current.pk}"' in html


def test_regenerating_recovery_codes_replaces_the_old_ones(reviewer, authenticator):
    client, _, old = _enrolled_client(reviewer, authenticator)

    response = client.post(reverse("second-factor-recovery-codes"))

    new = _codes(response.content.decode())
    assert response.status_code == 200 and len(new) == 10
    assert not set(new) & set(old)
    stored = set(StaticToken.objects.filter(device__user=reviewer).values_list("token", flat=True))
    assert stored == set(new)


@pytest.mark.parametrize(
    ("action", "page"),
    [
        ("second-factor-recovery-codes", "second-factor"),
        ("second-factor-remove", "second-factor"),
    ],
)
def test_changing_the_second_factor_asks_for_a_password_older_than_the_limit(
    settings, reviewer, authenticator, action, page
):
    client, _, codes = _enrolled_client(reviewer, authenticator)
    age_session(client, CHECKED_AT, settings.HASHSYNC_REAUTH_MINUTES * 60 + 1)

    asked = client.post(reverse(action), HTTP_REFERER=f"http://testserver{reverse(page)}")

    assert asked.status_code == 302
    target = urlsplit(asked["Location"])
    assert target.path == reverse("reauthenticate")
    back = parse_qs(target.query)["next"][0]
    # Nothing changed yet: a POST is never replayed after the password.
    assert TOTPDevice.objects.filter(user=reviewer, confirmed=True).exists()
    assert StaticToken.objects.filter(device__user=reviewer).count() == len(codes)
    confirmed = client.post(reverse("reauthenticate"), {"password": PASSWORD, "next": back})
    assert confirmed.status_code == 302
    landed = client.get(confirmed["Location"])
    assert landed.status_code == 200, confirmed["Location"]
    assert confirmed["Location"] == reverse(page)
    # Within the limit now: the same action goes through.
    assert client.post(reverse(action)).status_code in (200, 302)


def test_changing_the_second_factor_comes_back_to_its_page_without_a_referer(
    settings, reviewer, authenticator
):
    client, _, _ = _enrolled_client(reviewer, authenticator)
    age_session(client, CHECKED_AT, settings.HASHSYNC_REAUTH_MINUTES * 60 + 1)

    asked = client.post(reverse("second-factor-remove"))

    back = parse_qs(urlsplit(asked["Location"]).query)["next"][0]
    assert back == reverse("second-factor")


def test_a_password_within_the_limit_is_not_asked_again(settings, reviewer, authenticator):
    client, _, _ = _enrolled_client(reviewer, authenticator)
    age_session(client, CHECKED_AT, settings.HASHSYNC_REAUTH_MINUTES * 60 - 30)

    assert client.post(reverse("second-factor-recovery-codes")).status_code == 200


def test_the_second_factor_page_asks_for_an_old_password_and_comes_back(
    settings, reviewer, authenticator
):
    client, _, _ = _enrolled_client(reviewer, authenticator)
    age_session(client, CHECKED_AT, settings.HASHSYNC_REAUTH_MINUTES * 60 + 1)

    asked = client.get(reverse("second-factor"))
    assert urlsplit(asked["Location"]).path == reverse("reauthenticate")
    confirmed = client.post(asked["Location"], {"password": PASSWORD})

    assert confirmed["Location"] == reverse("second-factor")


def test_the_confirmation_page_says_the_configured_minutes(settings, reviewer):
    settings.HASHSYNC_REAUTH_MINUTES = 10
    client = Client()
    verified_session(client, with_password(reviewer))

    page = client.get(reverse("reauthenticate"))

    assert "more than 10 minutes ago" in page.content.decode()


def test_a_wrong_password_at_the_confirmation_is_an_error_next_to_the_field(reviewer):
    client = Client()
    verified_session(client, with_password(reviewer))

    response = client.post(reverse("reauthenticate"), {"password": "not it"})

    assert response.status_code == 400
    assert re.search(
        r'id="id_password-error">.*That is not your password', response.content.decode()
    )


def test_removing_it_for_a_reviewer_forces_a_new_enrolment(reviewer, authenticator):
    client, _, _ = _enrolled_client(reviewer, authenticator)
    since = last_audit_seq()

    removed = client.post(reverse("second-factor-remove"), follow=True)

    assert removed.redirect_chain[-1][0] == reverse("second-factor")
    html = removed.content.decode()
    assert "Your role needs one: set up a new one now." in html
    assert '<figure class="qr"' in html
    assert not TOTPDevice.objects.filter(user=reviewer, confirmed=True).exists()
    assert not StaticToken.objects.filter(device__user=reviewer).exists()
    assert client.get(reverse("front"))["Location"].startswith(reverse("second-factor"))
    assert_error(client.get(reverse("me")), 403, "second_factor_enrolment_required")
    assert [e.action for e in audit_events_since(since)] == ["staff.second_factor_remove"]


def test_removing_it_revokes_the_api_tokens_made_on_its_strength(analyst, authenticator):
    client, _, _ = _enrolled_client(analyst, authenticator)
    first, first_secret = services.staff_token_create(actor=analyst, name="laptop")
    second, _ = services.staff_token_create(actor=analyst, name="ci")
    services.staff_token_revoke(actor=analyst, token_id=second.pk)
    assert (
        APIClient().get(reverse("me"), HTTP_AUTHORIZATION=f"Bearer {first_secret}").status_code
        == 200
    )
    since = last_audit_seq()

    removed = client.post(reverse("second-factor-remove"), follow=True)

    assert "Your 1 API token was revoked with it" in removed.content.decode()
    first.refresh_from_db()
    assert first.revoked_at is not None
    refused = APIClient().get(reverse("me"), HTTP_AUTHORIZATION=f"Bearer {first_secret}")
    assert refused.status_code == 401
    events = audit_events_since(since)
    assert [e.action for e in events] == ["staff.second_factor_remove", "staff_token.revoke"]
    assert events[1].after["reason"] == "second_factor_removed"
    assert events[1].object_id == str(first.pk)


def test_removing_it_for_an_analyst_leaves_the_work_open(analyst, authenticator):
    client, _, _ = _enrolled_client(analyst, authenticator)

    client.post(reverse("second-factor-remove"))

    assert client.get(reverse("front")).status_code == 200
    assert sign_in(Client(), analyst.username)["Location"] == reverse("front")


def test_removing_needs_a_post(reviewer, authenticator):
    client, _, _ = _enrolled_client(reviewer, authenticator)

    assert client.get(reverse("second-factor-remove")).status_code == 405
    assert TOTPDevice.objects.filter(user=reviewer, confirmed=True).exists()


def test_a_second_enrolment_replaces_the_first_device_and_its_codes(reviewer, authenticator):
    first, old_codes = authenticator.enrol(reviewer)
    pending = second_factor.totp_pending(reviewer)
    assert pending.pk != first.pk

    new_codes = second_factor.totp_confirm(
        actor=reviewer, device_id=pending.pk, token=authenticator.code(pending)
    )

    assert list(TOTPDevice.objects.filter(user=reviewer).values_list("pk", flat=True)) == [
        pending.pk
    ]
    stored = set(StaticToken.objects.filter(device__user=reviewer).values_list("token", flat=True))
    assert stored == set(new_codes) and not stored & set(old_codes)


def test_a_replaced_device_no_longer_signs_in(reviewer, authenticator):
    first, _ = authenticator.enrol(with_password(reviewer))
    old_code_source = TOTPDevice(key=first.key)
    authenticator.enrol(reviewer)
    client = Client()
    sign_in(client, reviewer.username)

    response = client.post(
        reverse("login-verify"), {"otp_token": authenticator.code(old_code_source)}
    )

    assert response.status_code == 400


def test_confirming_someone_elses_pending_device_is_refused(reviewer, reviewer2, authenticator):
    pending = second_factor.totp_pending(reviewer2)

    with pytest.raises(Conflict):
        second_factor.totp_confirm(
            actor=reviewer, device_id=pending.pk, token=authenticator.code(pending)
        )

    pending.refresh_from_db()
    assert not pending.confirmed


def test_a_wrong_code_at_enrolment_is_invalid_input(reviewer, authenticator):
    pending = second_factor.totp_pending(reviewer)

    with pytest.raises(InvalidInput):
        second_factor.totp_confirm(actor=reviewer, device_id=pending.pk, token="12345x")
