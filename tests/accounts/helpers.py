"""Signing in the way a person does: a known password typed into the form, an authenticator
app whose codes the test computes, and sessions that have (or have not) passed their second
factor."""

from __future__ import annotations

from typing import Any

import django_otp
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import second_factor
from accounts.policy import CHECKED_AT, SIGNED_IN_AT

PASSWORD = "synthetic passphrase for tests 41"


class Authenticator:
    """The authenticator app on the person's phone. The server's TOTP clock is held at
    ``now`` (see the ``authenticator`` fixture), so a code never expires in the middle of a
    test; ``tick()`` moves both a step on, for a second code the device has not seen."""

    def __init__(self, now: float) -> None:
        self.now = now

    def code(self, device: TOTPDevice) -> str:
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = self.now
        return f"{totp.token():0{device.digits}d}"

    def tick(self) -> None:
        self.now += 30

    def enrol(self, user: Any) -> tuple[TOTPDevice, list[str]]:
        """Set up the app through the service, as the enrolment page does: (device, recovery
        codes)."""
        pending = second_factor.totp_pending(user)
        codes = second_factor.totp_confirm(
            actor=user, device_id=pending.pk, token=self.code(pending)
        )
        self.tick()  # the code just used is spent
        device = second_factor.totp_device(user)
        assert device is not None
        return device, codes


def with_password(user: Any, password: str = PASSWORD) -> Any:
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    """Type the username and password into the sign-in form (``next`` etc. as ``extra``)."""
    return client.post(reverse("login"), {"username": username, "password": password, **extra})


def verified_session(client: Client, user: Any, device: Any | None = None) -> None:
    """A session that passed its second factor (with ``device``, or the user's confirmed app,
    when there is one) and whose password was checked just now."""
    client.force_login(user)
    session = client.session
    device = device or second_factor.totp_device(user)
    if device is not None:
        session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[CHECKED_AT] = timezone.now().timestamp()
    session.save()


def age_session(client: Client, key: str, seconds: float) -> None:
    """Move a time stored in the session (SIGNED_IN_AT, CHECKED_AT) ``seconds`` into the
    past."""
    session: SessionBase = client.session
    session[key] = session[key] - seconds
    session.save()


__all__ = [
    "CHECKED_AT",
    "PASSWORD",
    "SIGNED_IN_AT",
    "Authenticator",
    "age_session",
    "sign_in",
    "verified_session",
    "with_password",
]
