"""How staff authenticate to the staff API (``/api/v1/`` outside ``/api/v1/sync/``).

* ``StaffTokenAuthentication``: ``Authorization: Bearer hsp_…``, a personal API token created in
  the web application after a two-factor sign-in (``accounts.services.staff_token_create``).
* ``StaffBasicAuthentication``: HTTP Basic, a bare password on every request, with no second
  factor: only where ``HASHSYNC_STAFF_BASIC_AUTH`` is on (the embedded demo and tests; production
  refuses to start with it on). Off, it refuses Basic in words and challenges Bearer instead.
* The session (DRF's ``SessionAuthentication``, listed in settings).

A token is looked up by its digest on every request (no caching), so revoking it, or
deactivating its owner, takes effect on the next request.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, BasicAuthentication
from rest_framework.request import Request

from accounts.models import StaffToken
from hashsync import tokens
from hashsync.authentication import presented_scheme
from hashsync.authfailures import count_failure, refuse_if_throttled
from hashsync.clientip import client_ip
from hashsync.errors import NotAuthenticated

BEARER_CHALLENGE = 'Bearer realm="hashsync"'
CREATE_NEW = "create a new token in the web application under Account → API tokens"
# last_used_at is a hint for its owner ("is this token still in use?"), not an audit record:
# writing it on every request would turn every API call into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _bearer_token(request: Request) -> str | None:
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else None


def _record_use(token: StaffToken, now: datetime) -> None:
    """Set ``last_used_at`` at most once a minute per token. The check on the loaded row skips
    the write on most requests; the condition in the UPDATE keeps concurrent requests of one
    token from all writing when a minute has passed."""
    stale = now - LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > stale:
        return
    StaffToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)


def staff_token_authenticate(
    request: Request, presented: str
) -> tuple[AbstractBaseUser, StaffToken]:
    """Check a presented personal token: bad-token throttling, shape and checksum (no query for
    junk), lookup by digest, then revocation, expiry and the owner's account, in that order."""
    ip = client_ip(request)
    refuse_if_throttled(ip)
    if not tokens.STAFF.is_well_formed(presented):
        count_failure(ip)
        raise NotAuthenticated(
            f"The Authorization header must be 'Bearer {tokens.STAFF.prefix}…' with a valid "
            f"personal API token. To get one, {CREATE_NEW}."
        )
    digest = tokens.digest(presented)
    token = StaffToken.objects.select_related("user").filter(digest=digest).first()
    # The lookup is by digest, so timing reveals nothing about the token; the comparison is
    # constant-time all the same, in case the lookup ever changes.
    if token is None or not hmac.compare_digest(token.digest, digest):
        count_failure(ip)
        raise NotAuthenticated(f"This personal API token is not valid. To get one, {CREATE_NEW}.")
    if token.revoked_at is not None:
        raise NotAuthenticated(f"This personal API token has been revoked. To go on, {CREATE_NEW}.")
    now = timezone.now()
    if token.expires_at <= now:
        raise NotAuthenticated(f"This personal API token has expired. To go on, {CREATE_NEW}.")
    if not token.user.is_active:
        raise NotAuthenticated(
            "The account this personal API token belongs to is deactivated, so the token no "
            "longer works. Ask an administrator if the account should be active again."
        )
    _record_use(token, now)
    return token.user, token


class StaffTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer hsp_…``. A member token (``hsk_…``) is left to
    ``StaffCredentialsHint``, which says where member tokens work; any other Bearer value is
    judged (and counted) as a bad personal token."""

    keyword = "Bearer"

    def authenticate_header(self, request: Request) -> str:
        return BEARER_CHALLENGE

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, StaffToken] | None:
        presented = _bearer_token(request)
        if presented is None or tokens.MEMBER.is_well_formed(presented):
            return None
        return staff_token_authenticate(request, presented)


class StaffBasicAuthentication(BasicAuthentication):
    """HTTP Basic where ``HASHSYNC_STAFF_BASIC_AUTH`` is on; otherwise Basic credentials are
    refused (without checking the password) and the 401 challenge is Bearer, so no client is
    invited to send a password."""

    def authenticate(self, request: Request) -> Any:
        if settings.HASHSYNC_STAFF_BASIC_AUTH:
            return super().authenticate(request)
        if presented_scheme(request) == "HTTP Basic":
            raise NotAuthenticated(
                "HTTP Basic is turned off on this server; use a personal API token "
                f"('Authorization: Bearer {tokens.STAFF.prefix}…': {CREATE_NEW}) or the web "
                "session.",
                code="basic_auth_disabled",
            )
        return None

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[AbstractBaseUser, None]:
        # django-axes marks a locked-out attempt on the request it is given, and AxesMiddleware
        # answers with the lockout (429 account_locked, Retry-After) only if the mark is on
        # Django's request; DRF's Request would keep it to itself, leaving a bare 401.
        django_request = getattr(request, "_request", request)
        user, _ = super().authenticate_credentials(userid, password, django_request)
        return user, None

    def authenticate_header(self, request: Request) -> str:
        if settings.HASHSYNC_STAFF_BASIC_AUTH:
            return str(super().authenticate_header(request))
        return BEARER_CHALLENGE


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.StaffTokenAuthentication"
    name = "staffToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": f"{tokens.STAFF.prefix}…",
            "description": "A staff personal API token, created in the web application under "
            "Account → API tokens; it acts with its owner's role (docs/api.md).",
        }


class StaffBasicScheme(OpenApiAuthenticationExtension):
    """HTTP Basic appears in the schema only where the server accepts it."""

    target_class = "accounts.authentication.StaffBasicAuthentication"
    name = ["basicAuth"]

    def get_security_requirement(self, auto_schema: Any) -> Any:
        return {"basicAuth": []} if settings.HASHSYNC_STAFF_BASIC_AUTH else None

    def get_security_definition(self, auto_schema: Any) -> list[Any]:
        if not settings.HASHSYNC_STAFF_BASIC_AUTH:
            return []
        return [{"type": "http", "scheme": "basic"}]
