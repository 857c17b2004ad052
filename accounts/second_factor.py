"""The second factor: a TOTP authenticator app (django-otp), with one-time recovery codes.

Enrolment: ``totp_pending`` makes (or reuses) an unconfirmed device whose QR code the page
shows; ``totp_confirm`` confirms it with a code from the app and returns recovery codes, which
the page shows once (only django-otp's StaticToken rows keep them, and a used code is deleted).
Every change is on the audit trail; codes and keys never are.
"""

from __future__ import annotations

import io
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import qrcode
import qrcode.image.svg
from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import staff_tokens_revoke_all
from audit.services import audit_record
from hashsync.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from hashsync.validation import clean_text

RECOVERY_CODES = 10
TOTP_NAME = "authenticator app"
RECOVERY_NAME = "recovery codes"


@dataclass(frozen=True)
class Verification:
    device: Any | None
    # Set when the code was not even checked: too many wrong codes in a row.
    retry_at: datetime | None = None


def _record(user: Any, action: str, after: dict[str, Any] | None = None) -> None:
    audit_record(
        actor=user,
        action=action,
        object_type="staff_user",
        object_id=user.get_username(),
        after=after,
    )


def totp_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def totp_pending(user: Any) -> TOTPDevice:
    """The device being enrolled: one unconfirmed device per user, reused until confirmed so
    reloading the page does not invalidate a QR code already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def totp_secret_text(device: TOTPDevice) -> str:
    """The key as people type it into an app that cannot scan: base32 in groups of four."""
    text = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG drawn here: the key never leaves the page, and no
    image service or script is involved."""
    image = qrcode.make(
        device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2
    )
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    # Drop the XML declaration: the SVG is embedded in HTML.
    return svg[svg.index("<svg") :]


def _clean_code(token: Any) -> str:
    if not isinstance(token, str):
        raise InvalidInput("Enter the code from your authenticator app.", code="invalid_code")
    return "".join(token.split()).lower()


def _new_recovery_codes(user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def totp_confirm(*, actor: Any, device_id: int, token: Any) -> list[str]:
    """Confirm the pending device with a code from the app; returns the new recovery codes."""
    code = _clean_code(token)
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(pk=device_id, user=actor, confirmed=False)
        .first()
    )
    if device is None:
        raise Conflict(
            "This set-up is no longer pending: it was finished or replaced in another window.",
            code="enrolment_not_pending",
        )
    if not code.isdigit() or not device.verify_token(code):
        raise InvalidInput(
            "That code does not match. Check the app shows hashsync for this account, that the "
            "phone's clock is right, and enter the current six digits.",
            code="invalid_code",
        )
    TOTPDevice.objects.filter(user=actor).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(actor)
    _record(actor, "staff.second_factor_enrol", {"kind": "totp", "recovery_codes": len(codes)})
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, actor: Any) -> list[str]:
    if totp_device(actor) is None:
        raise Conflict("Set up an authenticator app first.", code="no_second_factor")
    codes = _new_recovery_codes(actor)
    _record(actor, "staff.recovery_codes_regenerate", {"recovery_codes": len(codes)})
    return codes


@transaction.atomic
@transaction.atomic
def second_factor_remove(*, actor: Any) -> int:
    """Remove ``actor``'s second factor and recovery codes, and revoke their personal API
    tokens (created on the strength of it); returns how many tokens were revoked."""
    removed = TOTPDevice.objects.filter(user=actor).delete()[0]
    StaticDevice.objects.filter(user=actor).delete()
    if not removed:
        return 0
    _record(actor, "staff.second_factor_remove", {"kind": "totp"})
    return staff_tokens_revoke_all(actor=actor, owner=actor, reason="second_factor_removed")


@transaction.atomic
def second_factor_reset(*, actor: Any, username: Any, reason: Any) -> int:
    """An administrator's reset for someone who lost both phone and recovery codes: their
    devices and recovery codes are deleted and their API tokens revoked, on the audit trail
    with who did it and why; at their next sign-in (or next page, if signed in) they set up a
    new authenticator. Returns how many tokens were revoked. Only a superuser may, and not for
    themselves (that would be one person vouching for their own account)."""
    if not getattr(actor, "is_superuser", False) or not actor.is_active:
        raise PermissionDenied("Only an active superuser may reset someone's second factor.")
    why = clean_text(reason, "reason", limit=500, required=True)
    user = get_user_model().objects.filter(username=clean_text(username, "username")).first()
    if user is None:
        raise NotFound(f"There is no user named {username!r}.")
    if user.pk == actor.pk:
        raise PermissionDenied(
            "You cannot reset your own second factor: ask another administrator, or sign in "
            "with a recovery code and remove it yourself."
        )
    devices = TOTPDevice.objects.filter(user=user).delete()[0]
    codes = StaticDevice.objects.filter(user=user).delete()[0]
    revoked = staff_tokens_revoke_all(actor=actor, owner=user, reason="second_factor_reset")
    audit_record(
        actor=actor,
        action="staff.second_factor_reset",
        object_type="staff_user",
        object_id=user.get_username(),
        after={"reason": why, "devices_deleted": devices + codes, "tokens_revoked": revoked},
    )
    return revoked


def second_factor_verify(*, user: Any, token: Any) -> Verification:
    """Check a code from the app, or a recovery code (used once). Throttled per device by
    django-otp: after a wrong code the next try must wait 1, 2, 4, … seconds."""
    try:
        code = _clean_code(token)
    except InvalidInput:
        code = ""
    devices: list[Any] = []
    if code.isdigit():
        devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    elif code:
        devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    retry_at = None
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if not allowed:
            retry_at = (details or {}).get("locked_until")
            continue
        if device.verify_token(code):
            with transaction.atomic():
                kind = "recovery_code" if isinstance(device, StaticDevice) else "totp"
                after: dict[str, Any] = {"kind": kind}
                if kind == "recovery_code":
                    after["recovery_codes_left"] = recovery_codes_left(user)
                _record(user, "staff.second_factor_verified", after)
            return Verification(device=device)
    with transaction.atomic():
        _record(user, "staff.second_factor_failed", {"throttled": retry_at is not None})
    return Verification(device=None, retry_at=retry_at)
