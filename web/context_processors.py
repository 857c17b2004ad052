from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from web.navigation import navigation_for


def web(request: HttpRequest) -> dict[str, Any]:
    """What every page's frame (templates/base.html) shows."""
    user = getattr(request, "user", None)
    context: dict[str, Any] = {"hashsync_environment": settings.HASHSYNC_ENV}
    if user is None or not user.is_authenticated:
        return context
    verified = bool(getattr(user, "is_verified", lambda: False)())
    context["user_verified"] = verified or not _needs_verification(user)
    context["user_roles"] = sorted(g.name.replace("_", " ") for g in user.groups.all())
    if context["user_verified"]:
        context["navigation"] = navigation_for(request)
    return context


def _needs_verification(user: Any) -> bool:
    from accounts.policy import has_second_factor, second_factor_required

    return has_second_factor(user) or second_factor_required(user)
