"""Fixtures of the page tests: a Django test client signed in as someone, with the second
factor passed when their role needs one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.policy import second_factor_required


def sign_in(client: Client, user: Any) -> Client:
    """``client`` signed in as ``user``; for roles that need a second factor, with a confirmed
    TOTP device whose check this session has passed (as the verify step leaves it)."""
    client.force_login(user)
    if second_factor_required(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def signed_in() -> Callable[[Client, Any], Client]:
    """``signed_in(client, user)``: see ``sign_in``."""
    return sign_in


@pytest.fixture
def client_as(request: pytest.FixtureRequest) -> Callable[[str], Client]:
    """``client_as("reviewer")``: a client signed in as the user of that fixture of
    tests/conftest.py (``analyst``, ``reviewer``, ``member_admin``, ``auditor``, ``outsider``),
    or an anonymous one for ``"anonymous"``."""

    def make(role: str) -> Client:
        if role == "anonymous":
            return Client()
        return sign_in(Client(), request.getfixturevalue(role))

    return make
