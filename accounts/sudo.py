"""Re-confirming the password before a sensitive action (healthchecks' "sudo mode"): creating
a token, changing entitlements, suspending a member, changing the second factor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

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


def _page_of_post(request: HttpRequest, return_to: str | None) -> str:
    """Where someone who posted a form should come back to: the named page, else the
    same-site page the form was on (Referer), else the form's own address."""
    if return_to:
        return reverse(return_to)
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.path


def require_recent_password(
    view: Callable[..., HttpResponse] | None = None, *, return_to: str | None = None
) -> Any:
    """Send the person to re-enter their password first when the last check is too old. A POST
    is not replayed: they come back to the page the form is on (``return_to``, a URL name, for
    a view that only takes POST) and submit again. Use as ``@require_recent_password`` or
    ``@require_recent_password(return_to="...")``."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if password_checked_recently(request.session):
                return view(request, *args, **kwargs)
            if request.method == "GET":
                back = request.get_full_path()
            else:
                back = _page_of_post(request, return_to)
            query = urlencode({"next": back})
            return HttpResponseRedirect(reverse("reauthenticate") + "?" + query)

        return wrapper

    return decorate(view) if view is not None else decorate
