"""What every staff page shares: who may open it, and how a refusal or a domain error shows."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from hashsync.errors import DomainError

View = Callable[..., HttpResponse]


def staff_page(*permissions: str, any_of: bool = False) -> Callable[[View], View]:
    """A page for signed-in staff holding ``permissions`` (all of them, or ``any_of``).

    Anonymous visitors go to the sign-in page and come back; a signed-in person without the
    permission gets a 403 page saying so. (The second factor is enforced before any view, by
    accounts.middleware.) Pages are never cached: they show what only their reader may see."""

    def decorate(view: View) -> View:
        @wraps(view)
        @never_cache
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            check = any if any_of else all
            if permissions and not check(user.has_perm(p) for p in permissions):
                return render(request, "web/denied.html", status=403)
            return view(request, *args, **kwargs)

        wrapper.required_permissions = permissions  # type: ignore[attr-defined]
        return wrapper

    return decorate


def show_error(form: Form, error: DomainError, field: str | None = None) -> None:
    """Put a service's refusal on the form: next to ``field`` (or the field the error's
    details name), else at the top."""
    details = error.details if isinstance(error.details, dict) else {}
    target = field or details.get("field")
    if target not in form.fields:
        target = None
    form.add_error(target, error.message)
