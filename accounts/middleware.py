"""A signed-in session counts only once its second factor is checked, and only for so long.

Django's ``login()`` runs after the password; until the second factor is verified the session
may reach nothing but the second step (or, for a role that needs a second factor and has none
yet, the enrolment pages) and sign-out. That holds for pages, the admin and session-authenticated
API calls alike, so no view can forget it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import add_never_cache_headers

from accounts.policy import (
    has_second_factor,
    second_factor_required,
    session_outlived,
    session_verified,
)
from hashsync.api import error_body

# Reachable before the second factor (static assets are answered by WhiteNoise before this).
_ALWAYS = ("login", "logout", "login-verify")
_ENROLMENT = ("second-factor", "reauthenticate")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _redirect(request: HttpRequest, to: str) -> HttpResponse:
    if _is_api(request):
        # Not (fully) signed in is 401, as for any missing credentials; a session that is
        # signed in but must set up a second factor first is refused (403).
        status = 403 if to == "second-factor" else 401
        code = {
            "login": "session_expired",
            "login-verify": "second_factor_required",
            "second-factor": "second_factor_enrolment_required",
        }[to]
        message = {
            "login": "Your session has ended. Sign in again in the web application.",
            "login-verify": "This session has not passed its second factor yet: finish signing "
            "in in the web application.",
            "second-factor": "Your role needs a second factor: set one up in the web "
            "application (Account → Second factor) before using the API.",
        }[to]
        return JsonResponse(error_body(code, message), status=status)
    query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
    return HttpResponseRedirect(reverse(to) + (f"?{query}" if query else ""))


class SignInPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        response = self._answer(request, user)
        # What a signed-in person is sent (pages, error pages, redirects, the staff API) is
        # theirs alone: no shared or browser cache keeps it, unless a view chose otherwise.
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response

    def _answer(self, request: HttpRequest, user: Any) -> HttpResponse:
        if session_outlived(request.session):
            logout(request)
            return _redirect(request, "login")
        try:
            # The full name: the admin's own "login" and "logout" (admin:login) are pages like
            # any other here.
            name = resolve(request.path_info).view_name
        except Resolver404:
            name = None  # an unknown URL is judged as any other page
        if session_verified(user) or name in _ALWAYS:
            return self.get_response(request)
        if has_second_factor(user):
            return _redirect(request, "login-verify")
        if second_factor_required(user):
            if name in _ENROLMENT:
                return self.get_response(request)
            return _redirect(request, "second-factor")
        return self.get_response(request)
