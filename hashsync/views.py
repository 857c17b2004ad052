"""The pages and indexes that tell a newcomer where things are: the front page and the API
index. (The staff web application builds on these.)"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashsync import api, health, outages

logger = logging.getLogger(__name__)

# The documentation lives in the repository (docs/); the index names the files.
DOCUMENTATION = {
    "curation, review and audit API": "docs/api.md",
    "member sync API": "docs/sync-api.md",
    "bundle format and state digest": "docs/bundle-format.md",
    "keys, keyrings and signed manifests": "docs/signing.md",
    "bulk import formats": "docs/import-format.md",
    "member client": "client/README.md",
}


def _links(request: HttpRequest) -> dict[str, str]:
    names = {
        "schema": "schema",
        "docs": "api-docs",
        "docs_redoc": "api-docs-redoc",
        "me": "me",
        "entries": "entry-list",
        "hash_search": "hash-search",
        "proposals": "proposal-list",
        "review_queue": "review-queue",
        "imports": "import-upload",
        "feeds": "feed-list",
        "releases": "release-list",
        "keyring": "keyring",
        "members": "member-list",
        "disputes": "dispute-list",
        "audit_events": "audit-events",
        "sync_feeds": "sync-feeds",
        "health": "health",
        "ready": "ready",
    }
    return {key: request.build_absolute_uri(reverse(name)) for key, name in names.items()}


class ApiIndexApi(APIView):
    """``/api/v1/``: where each part of the API starts, and which document describes it.
    Open to anyone: it names only what the public documentation names."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, auth=[])
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "hashsync",
                "api_version": "v1",
                "authentication": {
                    "staff": "Authorization: Bearer hsp_… personal API token (created in the "
                    "web application under Account → API tokens) or the web session; HTTP Basic "
                    "only where the server enables it (docs/api.md)",
                    "members": "Authorization: Bearer hsk_… API token (docs/sync-api.md)",
                },
                "links": _links(request),
                "documentation": DOCUMENTATION,
            }
        )


@require_safe
def front_page(request: HttpRequest) -> HttpResponse:
    return render(request, "front.html", {"links": _links(request), "documentation": DOCUMENTATION})


# --- Error pages: JSON on the API (hashsync.api), a page for people everywhere else -------------
_ERRORS = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your role does not allow this page."),
    404: ("Not found", "There is no page at this address."),
    500: ("Something went wrong", "The server failed to handle this request; it was logged."),
}


def _error_page(request: HttpRequest, status: int) -> HttpResponse:
    title, message = _ERRORS[status]
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api.json_400(request, exception)
    return _error_page(request, 400)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api.json_403(request, exception)
    return _error_page(request, 403)


@csrf_exempt
def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api.json_404(request, exception)
    return _error_page(request, 404)


def error_500(request: HttpRequest) -> HttpResponse:
    # Django calls this inside the ``except`` that caught the error, which may be an outage
    # raised by a middleware (a session read, the sign-in policy) rather than a bug.
    outage = outages.current_outage()
    if outage is not None:
        outages.log_outage(outage[0], outage[1], request.path)
        return outages.response_for(request, outage[0])
    if request.path.startswith("/api/"):
        return api.json_500(request)
    # No template context processors: the database may be what failed.
    from django.template import loader

    body = loader.get_template("error_500.html").render({})
    return HttpResponse(body, status=500)


# --- Probes (hashsync.health) ----------------------------------------------------------------
# Plain Django views: no DRF authentication, no session or second-factor policy (the sign-in
# middleware only guards pages and the staff API), no pacing. They name no secret and no data.

# How long a load balancer should wait before asking a node that is not ready again.
READYZ_RETRY_AFTER_SECONDS = 10


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests. Touches no database, cache or broker, so an
    outage of one of those never gets every web node restarted at once."""
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every registered check passes, else 503 with ``Retry-After`` and
    the error body naming the failed checks; each check's result is in ``checks``."""
    results = health.run_checks()
    failed = [r.name for r in results if not r.ok]
    body: dict[str, Any] = {
        "status": "fail" if failed else "ok",
        "checks": {r.name: {"ok": r.ok, "detail": r.detail, "seconds": r.seconds} for r in results},
    }
    if not failed:
        return JsonResponse(body)
    body["error"] = api.error_body("not_ready", f"Not ready: {', '.join(failed)} failed.")["error"]
    response = JsonResponse(
        body, status=503, headers={"Retry-After": str(READYZ_RETRY_AFTER_SECONDS)}
    )
    # One warning naming the checks instead of django.request's error line per probe.
    logger.warning(
        "readiness failed: %s", "; ".join(f"{r.name}: {r.detail}" for r in results if not r.ok)
    )
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
