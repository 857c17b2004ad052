"""The audit trail in the admin, read-only: the database refuses changes to it anyway."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEvent
from hashsync.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
