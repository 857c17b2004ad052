"""The Django admin's pages over accounts and sign-in state, made traceable.

Everything else in the admin only shows (hashsync.admin.ReadOnlyAdmin). These models are the
exception a superuser still needs — deactivating a leaver, changing a person's role, lifting a
lockout — and a change to who holds which role, or to who is locked out, is exactly what an
auditor must be able to find. So every add, change and delete made here is also an event on
the audit trail (``admin.add`` / ``admin.change`` / ``admin.delete``), naming the fields that
changed but never their values (a password hash is a value).

Second-factor devices are not edited here at all: deleting one would reset a person's second
factor without revoking their API tokens and without a reason on the trail. That is
``manage.py second_factor_reset`` (docs/web.md).
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import audit_record


def changed_fields(message: Any) -> list[str]:
    """The field names of an admin change message (a list of ``{"changed": {"fields": …}}``
    and similar entries), without any value."""
    fields: list[str] = []
    if isinstance(message, list):
        for part in message:
            for what in part.values() if isinstance(part, dict) else ():
                if isinstance(what, dict):
                    fields.extend(str(name) for name in what.get("fields", ()))
                    if "name" in what and "object" in what:
                        fields.append(str(what["name"]))
    return sorted(set(fields))


class TracedAdmin(admin.ModelAdmin):
    """Records each admin write on the audit trail, in the admin's own transaction."""

    def _trace(self, request: HttpRequest, action: str, obj: Model, fields: list[str]) -> None:
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action=f"admin.{action}",
                object_type=obj._meta.label_lower,
                object_id=obj.pk,
                after={"fields": fields, "via": "django_admin"},
            )

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._trace(request, "add", obj, changed_fields(message))
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._trace(request, "change", obj, changed_fields(message))
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        for obj in queryset:
            self._trace(request, "delete", obj, [])
        return super().log_deletions(request, queryset)


class TracedUserAdmin(TracedAdmin, UserAdmin):
    pass


class TracedGroupAdmin(TracedAdmin, GroupAdmin):
    pass


class TracedAccessAttemptAdmin(TracedAdmin, AccessAttemptAdmin):
    pass


class TracedAccessLogAdmin(TracedAdmin, AccessLogAdmin):
    pass


class TracedAccessFailureLogAdmin(TracedAdmin, AccessFailureLogAdmin):
    pass


class _ShownOnly:
    """Second-factor devices are listed, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ShownTOTPDeviceAdmin(_ShownOnly, TOTPDeviceAdmin):
    pass


class ShownStaticDeviceAdmin(_ShownOnly, StaticDeviceAdmin):
    pass


_REPLACED: list[tuple[type[Model], type[admin.ModelAdmin]]] = [
    (User, TracedUserAdmin),
    (Group, TracedGroupAdmin),
    (AccessAttempt, TracedAccessAttemptAdmin),
    (AccessLog, TracedAccessLogAdmin),
    (AccessFailureLog, TracedAccessFailureLogAdmin),
    (TOTPDevice, ShownTOTPDeviceAdmin),
    (StaticDevice, ShownStaticDeviceAdmin),
]

for _model, _admin in _REPLACED:
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
