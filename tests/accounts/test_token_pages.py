"""Account → API tokens: the page that creates, lists and revokes personal tokens."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import StaffToken
from accounts.policy import CHECKED_AT
from tests.utils import last_audit_event
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def _recently_confirmed(client: Client) -> Client:
    from django.utils import timezone

    session = client.session
    session[CHECKED_AT] = timezone.now().timestamp()
    session.save()
    return client


def test_reviewer_creates_a_token_and_sees_it_once(reviewer: Any, caplog: Any) -> None:
    client = _recently_confirmed(signed_in(Client(), reviewer))
    caplog.set_level(logging.DEBUG)

    response = client.post(reverse("api-tokens"), {"name": "import script", "expires_in_days": 30})

    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("hsp_") and secret in response.content.decode()
    token = StaffToken.objects.get(user=reviewer)
    assert token.name == "import script" and token.digest != secret
    # The API takes it, as the reviewer.
    me = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert me.status_code == 200 and me.json()["username"] == reviewer.username
    # Shown once: the list afterwards has the prefix only.
    listing = client.get(reverse("api-tokens")).content.decode()
    assert secret not in listing and token.prefix in listing
    assert secret not in caplog.text
    event = last_audit_event()
    assert event is not None and event.action == "staff_token.create"
    assert secret not in str(event.after)


def test_creating_a_token_asks_for_the_password_again_when_it_is_old(reviewer: Any) -> None:
    client = signed_in(Client(), reviewer)

    response = client.post(reverse("api-tokens"), {"name": "x", "expires_in_days": 30})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("reauthenticate"))
    assert not StaffToken.objects.exists()


def test_an_analyst_without_a_second_factor_is_told_to_set_one_up(analyst: Any) -> None:
    client = _recently_confirmed(signed_in(Client(), analyst))

    page = client.get(reverse("api-tokens")).content.decode()
    response = client.post(reverse("api-tokens"), {"name": "x", "expires_in_days": 30})

    assert "Set one up" in page
    assert response.status_code == 400
    assert "second factor" in response.content.decode()
    assert not StaffToken.objects.exists()


@pytest.mark.parametrize("days", ["0", "-1", "100000", "ten", ""])
def test_a_bad_expiry_is_shown_next_to_the_field(reviewer: Any, days: str) -> None:
    client = _recently_confirmed(signed_in(Client(), reviewer))

    response = client.post(reverse("api-tokens"), {"name": "x", "expires_in_days": days})

    assert response.status_code == 400
    assert response.context["form"].errors["expires_in_days"]
    assert not StaffToken.objects.exists()


def test_revoking_a_token_stops_it_at_once(reviewer: Any) -> None:
    client = _recently_confirmed(signed_in(Client(), reviewer))
    secret = client.post(reverse("api-tokens"), {"name": "x", "expires_in_days": 5}).context[
        "secret"
    ]
    token = StaffToken.objects.get(user=reviewer)

    response = client.post(reverse("api-token-revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    me = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert me.status_code == 401


def test_nobody_revokes_another_persons_token(reviewer: Any, reviewer2: Any) -> None:
    owner = _recently_confirmed(signed_in(Client(), reviewer))
    owner.post(reverse("api-tokens"), {"name": "mine", "expires_in_days": 5})
    token = StaffToken.objects.get(user=reviewer)
    other = signed_in(Client(), reviewer2)

    other.post(reverse("api-token-revoke", args=[token.pk]))

    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoke_is_post_only_and_csrf_protected(reviewer: Any) -> None:
    owner = _recently_confirmed(signed_in(Client(), reviewer))
    owner.post(reverse("api-tokens"), {"name": "mine", "expires_in_days": 5})
    token = StaffToken.objects.get(user=reviewer)
    strict = signed_in(Client(enforce_csrf_checks=True), reviewer)

    assert owner.get(reverse("api-token-revoke", args=[token.pk])).status_code == 405
    assert strict.post(reverse("api-token-revoke", args=[token.pk])).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_anonymous_visitors_are_sent_to_sign_in(db: None) -> None:
    response = Client().get(reverse("api-tokens"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
