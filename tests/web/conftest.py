"""Shared by the page tests: signing a test client in as a person, second factor included."""

from __future__ import annotations

from typing import Any

import django_otp
import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.policy import second_factor_required


def signed_in(client: Client, user: Any) -> Client:
    """``client`` signed in as ``user``; for a role that needs a second factor, with a
    confirmed TOTP device and the session marked as having passed it."""
    client.force_login(user)
    if second_factor_required(user):
        device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def as_user(client: Client) -> Any:
    """``as_user(user)``: the test client, signed in as ``user`` (or anonymous for None)."""

    def sign_in(user: Any) -> Client:
        return client if user is None else signed_in(client, user)

    return sign_in
