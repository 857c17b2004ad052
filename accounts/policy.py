"""Who must sign in with a second factor, and how recent a password check must be for a
sensitive action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_otp import user_has_device

from hashsync.roles import AUDITOR, MEMBER_ADMIN, REVIEWER

# Four-eyes review is only as strong as the reviewer's account; member administrators hand out
# tokens; auditors read everything.
SECOND_FACTOR_ROLES = frozenset({REVIEWER, MEMBER_ADMIN, AUDITOR})

# Session keys.
SIGNED_IN_AT = "hashsync_signed_in_at"
CHECKED_AT = "hashsync_password_checked_at"


def second_factor_required(user: Any) -> bool:
    if settings.HASHSYNC_SECOND_FACTOR_FOR_ALL or user.is_superuser:
        return True
    return user.groups.filter(name__in=SECOND_FACTOR_ROLES).exists()


def has_second_factor(user: Any) -> bool:
    return bool(user_has_device(user, confirmed=True))


def mark_password_checked(session: Any) -> None:
    session[CHECKED_AT] = timezone.now().timestamp()


def password_checked_recently(session: Any) -> bool:
    checked = session.get(CHECKED_AT)
    if not isinstance(checked, (int, float)):
        return False
    age = timezone.now().timestamp() - checked
    return 0 <= age <= timedelta(minutes=settings.HASHSYNC_REAUTH_MINUTES).total_seconds()


def session_outlived(session: Any) -> bool:
    """True once a session is older than HASHSYNC_SESSION_MAX_HOURS, however busy it was."""
    started = session.get(SIGNED_IN_AT)
    if not isinstance(started, (int, float)):
        return True
    age = timezone.now().timestamp() - started
    return age > settings.HASHSYNC_SESSION_MAX_HOURS * 3600


def session_complete(user: Any) -> bool:
    """Whether this session has done every step its user needs: the password, and the second
    factor when the user has one or their role needs one."""
    if session_verified(user):
        return True
    return not has_second_factor(user) and not second_factor_required(user)


def session_verified(user: Any) -> bool:
    """Whether this request's session passed its second factor (django-otp's middleware adds
    ``is_verified`` to the user)."""
    check = getattr(user, "is_verified", None)
    return bool(check()) if callable(check) else False
