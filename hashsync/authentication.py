"""Saying what was wrong when a request carries credentials an API does not take.

Without this, a member token sent to the staff API and a staff password sent to the sync API
were both answered "Authentication credentials were not provided." although credentials were
sent. The schemes named in messages are only ever the ones listed here: nothing the caller
sent is echoed.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

STAFF_API = "the staff API (/api/v1/ outside /api/v1/sync/)"
SYNC_API = "the member sync API (/api/v1/sync/) and the StopNCII-compatible endpoint"

_KNOWN = {"basic": "HTTP Basic", "bearer": "Bearer", "token": "Token", "digest": "Digest"}


def presented_scheme(request: Request) -> str | None:
    """The Authorization header's scheme as one of the names above ("another scheme" for any
    other), or None without the header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme = header.partition(" ")[0].lower()
    return _KNOWN.get(scheme, "another scheme")


class StaffCredentialsHint(BaseAuthentication):
    """Last in the staff API's authentication classes: reached only when no staff class
    accepted the request. If an Authorization header was sent, say what the staff API takes."""

    def authenticate(self, request: Request) -> Any:
        scheme = presented_scheme(request)
        if scheme is None or scheme == "HTTP Basic":
            return None  # no credentials, or Basic that BasicAuthentication already judged
        if scheme == "Bearer":
            raise NotAuthenticated(
                f"A Bearer token was sent to {STAFF_API}. Member API tokens (hsk_…) work only on "
                f"{SYNC_API}; the staff API takes a staff sign-in (session, or HTTP Basic where "
                "enabled)."
            )
        raise NotAuthenticated(
            f"{scheme} credentials were sent to {STAFF_API}, which takes a staff sign-in "
            "(session, or HTTP Basic where enabled)."
        )


class StaffCredentialsHintScheme(OpenApiAuthenticationExtension):
    """``StaffCredentialsHint`` accepts nothing, so it adds no security scheme to the schema."""

    target_class = "hashsync.authentication.StaffCredentialsHint"
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> None:  # type: ignore[override]
        return None

    def get_security_definition(self, auto_schema: Any) -> list[Any]:
        return []
