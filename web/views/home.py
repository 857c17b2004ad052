"""``/``: the dashboard for signed-in staff, the public front page for everyone else."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from hashsync.views import front_page
from web.views.dashboard import dashboard


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return dashboard(request)
    return front_page(request)
