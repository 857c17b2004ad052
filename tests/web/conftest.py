"""Shared by the page tests: signing a test client in as a person, second factor included."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import django_otp
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.policy import SIGNED_IN_AT, second_factor_required


def signed_in(client: Client, user: Any) -> Client:
    """``client`` signed in as ``user``; for a role that needs a second factor, with a
    confirmed TOTP device and the session marked as having passed it.

    The session is written directly rather than by ``client.force_login``: that signs in
    through a bare request without an address, which django-axes then records as "unknown"
    — an address PostgreSQL refuses to store. (Signing in itself is the accounts tests' job.)"""
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[SIGNED_IN_AT] = timezone.now().timestamp()
    if second_factor_required(user):
        device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return client
