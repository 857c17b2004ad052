"""Who is acting: the staff-user helpers every app's services use for their permission checks.

Services take ``actor`` (whoever the request, command or task acts for), check it with
``require_permission`` before anything else, and only then treat it as a stored user.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as StaffUser

from hashsync.errors import PermissionDenied

User = AbstractBaseUser | AnonymousUser


def as_staff(actor: User) -> StaffUser:
    """The actor as a stored user, once ``require_permission`` has vouched for it."""
    return cast(StaffUser, actor)


def require_signed_in(actor: User, doing: str) -> None:
    """Refuse an actor that is not a signed-in, active staff user, whatever its role: for what
    every staff user may do for themselves (their own API tokens)."""
    if not getattr(actor, "is_authenticated", False) or not getattr(actor, "is_active", False):
        raise PermissionDenied(f"You must be signed in to {doing}.")


def require_permission(actor: User, perm: str, doing: str) -> None:
    """Refuse an actor that is not signed in, inactive, or whose role lacks ``perm``; the
    message says what they tried to do (``doing``: "approve proposals")."""
    require_signed_in(actor, doing)
    if not actor.has_perm(perm):  # type: ignore[union-attr]
        raise PermissionDenied(f"Your role does not allow you to {doing}.")
