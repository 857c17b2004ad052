"""Saying what was wrong when a request carries credentials an API does not take.

Without this, a member token sent to the staff API and a staff password or personal token sent
to the sync API were all answered "Authentication credentials were not provided." although
credentials were sent. The schemes named in messages are only ever the ones listed here, and
tokens are named by their kind's prefix: nothing the caller sent is echoed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from hashsync.tokens import MEMBER, STAFF

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


def staff_credentials() -> str:
    """What the staff API takes, as a refusal names it (HTTP Basic only where it is on)."""
    basic = ", or HTTP Basic" if settings.HASHSYNC_STAFF_BASIC_AUTH else ""
    return (
        f"a personal API token ('Authorization: Bearer {STAFF.prefix}…', created in the web "
        f"application under Account → API tokens), the web session{basic}"
    )


class StaffCredentialsHint(BaseAuthentication):
    """Last in the staff API's authentication classes: reached only when no staff class
    accepted the request. If an Authorization header was sent, say what the staff API takes."""

    def authenticate(self, request: Request) -> Any:
        scheme = presented_scheme(request)
        if scheme is None or scheme == "HTTP Basic":
            return None  # no credentials, or Basic that StaffBasicAuthentication already judged
        if scheme == "Bearer":
            presented = request.META["HTTP_AUTHORIZATION"].partition(" ")[2].strip()
            if MEMBER.has_prefix(presented):
                raise NotAuthenticated(
                    f"A member API token ({MEMBER.prefix}…) was sent to {STAFF_API}. Member API "
                    f"tokens work only on {SYNC_API}; the staff API takes "
                    f"{staff_credentials()}."
                )
            raise NotAuthenticated(
                f"A Bearer token that is not a personal API token was sent to {STAFF_API}, "
                f"which takes {staff_credentials()}."
            )
        raise NotAuthenticated(
            f"{scheme} credentials were sent to {STAFF_API}, which takes {staff_credentials()}."
        )


def refuse_staff_token_on_sync_api(presented: str) -> None:
    """For the sync API, given a token that is not a member token: if it is a staff personal
    token, say plainly that staff tokens do not work there."""
    if STAFF.is_well_formed(presented):
        raise NotAuthenticated(
            f"A staff personal API token ({STAFF.prefix}…) was sent to {SYNC_API}. Staff tokens "
            f"do not work there: it takes a member API token ({MEMBER.prefix}…, issued by a "
            f"member administrator). Personal tokens work only on {STAFF_API}."
        )


class StaffCredentialsHintScheme(OpenApiAuthenticationExtension):
    """``StaffCredentialsHint`` accepts nothing, so it adds no security scheme to the schema."""

    target_class = "hashsync.authentication.StaffCredentialsHint"
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> None:  # type: ignore[override]
        return None

    def get_security_definition(self, auto_schema: Any) -> list[Any]:
        return []
