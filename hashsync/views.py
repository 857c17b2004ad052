"""The pages and indexes that tell a newcomer where things are: the front page and the API
index. (The staff web application builds on these.)"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

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
                    "staff": "HTTP session or Basic credentials (docs/api.md)",
                    "members": "Authorization: Bearer hsk_… API token (docs/sync-api.md)",
                },
                "links": _links(request),
                "documentation": DOCUMENTATION,
            }
        )


@require_safe
def front_page(request: HttpRequest) -> HttpResponse:
    return render(request, "front.html", {"links": _links(request), "documentation": DOCUMENTATION})
