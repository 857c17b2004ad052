"""Lockout after repeated failed passwords (django-axes), answered in words a person can act on.

Axes counts failures per account and per client address (``AXES_LOCKOUT_PARAMETERS``) on every
path that checks a password through ``django.contrib.auth.authenticate``: the sign-in form, the
re-confirmation before sensitive actions, and HTTP Basic on the API where it is enabled.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from hashsync.api import error_body
from hashsync.clientip import client_ip as _client_ip


def client_ip(request: HttpRequest) -> str | None:
    """Axes' AXES_CLIENT_IP_CALLABLE: the address the member-token limits count, as one address
    (axes stores it in an IP address column, PostgreSQL's inet): an IPv6 client as the first
    address of its /64, and None (one shared bucket) when the request names no address."""
    try:
        network = ipaddress.ip_network(_client_ip(request), strict=False)
    except ValueError:
        return None
    return str(network.network_address)


def client_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """Axes' AXES_USERNAME_CALLABLE: the username typed (as axes reads it by default), with NUL
    replaced. No account has NUL in its name, but HTTP Basic passes it on, and PostgreSQL text
    cannot hold it: axes recording the failure was a 500."""
    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")  # set by axes.conf
    if credentials:
        value = credentials.get(field)
    else:
        value = getattr(request, "data", request.POST).get(field)
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def lockout_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    return (
        "Too many failed sign-in attempts for this account or from this address. Signing in is "
        f"refused for {lockout_minutes()} minutes, even with the right password. If this was "
        "not you, tell your administrator."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """Axes' AXES_LOCKOUT_CALLABLE: JSON on the API, the sign-in page elsewhere. 429 with
    Retry-After either way: the lockout ends by itself."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            error_body("account_locked", lockout_message()), status=429
        )
    elif getattr(request, "user", None) is not None and request.user.is_authenticated:
        # A signed-in person who mistyped their password in the re-confirmation or the
        # password-change form: the session goes on, the password check waits.
        response = render(
            request, "accounts/locked.html", {"lockout_message": lockout_message()}, status=429
        )
    else:
        from accounts.forms import SignInForm

        # An unbound form (a bound one would check the password again, and count again); the
        # page shows the lockout instead of the form's errors.
        context = {
            "form": SignInForm(request),
            "lockout_message": lockout_message(),
            "lockout_limit": settings.AXES_FAILURE_LIMIT,
        }
        response = render(request, "accounts/login.html", context, status=429)
    response["Retry-After"] = retry_after
    return response
