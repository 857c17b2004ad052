"""Read-only admin views. Every change to the list must go through a proposal and a second
person's review (``hashlist.services``), so the admin never writes hash-list data."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from hashlist.models import AuditEvent, Change, Entry, ImportBatch, Proposal


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "category",
        "age_group",
        "content_type",
        "status",
        "revision",
        "updated_at",
    ]
    list_filter = ["status", "category", "age_group", "content_type"]


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "entry", "author", "reviewer", "created_at"]
    list_filter = ["status", "kind"]


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "entry", "proposal", "approved_at", "release"]


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "original_name", "status", "rows_processed", "error_count", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
