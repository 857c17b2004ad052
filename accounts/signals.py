"""Sign-in events on the audit trail: every password accepted or refused, every lockout and
every sign-out. (Second-factor and token events are recorded by the services that make them.)

A username that matches no account is not recorded: people type passwords into the username
field, and the trail is read by many.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from accounts.policy import SIGNED_IN_AT
from audit.services import audit_record
from hashsync.clientip import client_ip

logger = logging.getLogger("hashsync.signin")


def _channel(request: Any) -> str:
    path = getattr(request, "path", "") or ""
    return "api" if path.startswith("/api/") else "web"


def _known_user(username: Any) -> Any:
    if not isinstance(username, str) or not username or "\x00" in username:
        return None
    return get_user_model().objects.filter(username=username).first()


@receiver(user_logged_in, dispatch_uid="accounts.audit_sign_in")
def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is None:
        return
    # Every way into a session (the sign-in page, the test client, the admin) starts the
    # session's absolute lifetime here (accounts.policy.session_outlived).
    if hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = timezone.now().timestamp()
    with transaction.atomic():
        audit_record(
            actor=user,
            action="staff.sign_in",
            object_type="staff_user",
            object_id=user.get_username(),
            after={"client": client_ip(request), "via": _channel(request)},
        )


@receiver(user_logged_out, dispatch_uid="accounts.audit_sign_out")
def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None or request is None:
        return
    with transaction.atomic():
        audit_record(
            actor=user,
            action="staff.sign_out",
            object_type="staff_user",
            object_id=user.get_username(),
            after={"client": client_ip(request)},
        )


@receiver(user_login_failed, dispatch_uid="accounts.audit_sign_in_failed")
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    if request is None:
        return
    # Axes' receiver ran first (its app is listed before this one). It sets
    # axes_failures_since_start only when it counted a failed password; an attempt refused
    # during a lockout was not checked at all, and the lockout itself is on the trail once.
    failures = getattr(request, "axes_failures_since_start", None)
    locked = bool(getattr(request, "axes_locked_out", False))
    address = client_ip(request)
    if failures is None and locked:
        logger.info("sign-in refused during a lockout (client %s)", address)
        return
    user = _known_user(credentials.get("username"))
    after: dict[str, Any] = {"client": address, "via": _channel(request)}
    if failures is not None:
        after["failures"] = int(failures)
    if locked:
        after["locked_out"] = True
    with transaction.atomic():
        audit_record(
            actor=None,
            actor_label="anonymous",
            action="staff.lockout" if locked else "staff.sign_in_failed",
            object_type="staff_user",
            object_id=user.get_username() if user is not None else "",
            after=after,
        )
    if locked:
        logger.warning(
            "sign-in locked out after %s failures (client %s, known account: %s)",
            failures,
            address,
            "yes" if user is not None else "no",
        )
