"""Re-confirming the password before a sensitive action (healthchecks' "sudo mode"): creating
a token, changing entitlements, suspending a member, changing the second factor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.policy import password_checked_recently


def safe_next(request: HttpRequest, fallback: str = "/") -> str:
    """The ``next`` parameter if it points into this site, else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def require_recent_password(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send the person to re-enter their password first when the last check is too old. A POST
    is not replayed: they come back to the page (GET) and submit again."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if password_checked_recently(request.session):
            return view(request, *args, **kwargs)
        back = request.get_full_path() if request.method == "GET" else request.path
        return HttpResponseRedirect(reverse("reauthenticate") + "?" + urlencode({"next": back}))

    return wrapper
