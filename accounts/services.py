"""Writes for staff accounts: personal API tokens.

(Signing in, the second factor and lockout have their own modules: ``views``,
``second_factor``, ``lockout``.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import StaffToken
from accounts.policy import has_second_factor
from audit.services import audit_record
from hashsync import tokens
from hashsync.actors import User, as_staff, require_signed_in
from hashsync.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from hashsync.validation import clean_id, clean_text

DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_NAME = 100


def _expiry_days(value: Any) -> int:
    most = settings.HASHSYNC_STAFF_TOKEN_MAX_DAYS
    if value is None:
        return min(DEFAULT_TOKEN_DAYS, most)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidInput(f"expires_in_days must be a whole number of days from 1 to {most}.")
    return value


def _described(token: StaffToken, **more: Any) -> dict[str, Any]:
    """What the audit trail says of a token: never its secret or digest."""
    return {
        "prefix": token.prefix,
        "name": token.name,
        "expires_at": token.expires_at.isoformat(),
        **more,
    }


@transaction.atomic
def staff_token_create(
    *, actor: User, name: Any, expires_in_days: Any = None
) -> tuple[StaffToken, str]:
    """Issue a personal API token to ``actor`` itself; returns the row and the token, which is
    never stored and cannot be shown again. Only for an account with a confirmed second factor:
    a token is a credential without one, so it must come from an account that has one (the
    page that calls this also requires that the session passed it)."""
    require_signed_in(actor, "create API tokens")
    if not has_second_factor(actor):
        raise PermissionDenied(
            "Set up a second factor (Account → Second factor) before creating API tokens.",
            code="second_factor_required",
        )
    label = clean_text(name, "name", limit=MAX_TOKEN_NAME, required=True)
    days = _expiry_days(expires_in_days)
    now = timezone.now()
    secret = tokens.STAFF.generate()
    token = StaffToken.objects.create(
        user=as_staff(actor),
        name=label,
        prefix=tokens.STAFF.display_prefix(secret),
        digest=tokens.digest(secret),
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    audit_record(
        actor=actor,
        action="staff_token.create",
        object_type="staff_token",
        object_id=token.pk,
        after=_described(token),
    )
    return token, secret


@transaction.atomic
def staff_token_revoke(*, actor: User, token_id: Any) -> StaffToken:
    """Revoke one of ``actor``'s own tokens; it stops working on its next request. Another
    person's token is "not found", as if it did not exist: ids reveal nothing."""
    require_signed_in(actor, "revoke API tokens")
    token = (
        StaffToken.objects.select_for_update()
        .filter(user=as_staff(actor), pk=clean_id(token_id, "token"))
        .first()
    )
    if token is None:
        raise NotFound("You have no API token with that id.")
    if token.revoked_at is not None:
        raise Conflict("The token is already revoked.", code="token_revoked")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="staff_token.revoke",
        object_type="staff_token",
        object_id=token.pk,
        after=_described(token),
    )
    return token


def staff_tokens_revoke_all(*, actor: User, owner: User, reason: str) -> int:
    """Revoke every live token of ``owner`` (each audited as done by ``actor``, with
    ``reason``); returns how many.

    Called when the second factor they were issued on the strength of is removed or reset: a
    token made after a two-factor sign-in must not outlive that factor, or removing it would
    leave a way in without one. Runs inside the caller's transaction."""
    now = timezone.now()
    live = StaffToken.objects.select_for_update().filter(
        user=as_staff(owner), revoked_at__isnull=True, expires_at__gt=now
    )
    count = 0
    for token in live.order_by("pk"):
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="staff_token.revoke",
            object_type="staff_token",
            object_id=token.pk,
            after=_described(token, reason=reason),
        )
        count += 1
    return count
