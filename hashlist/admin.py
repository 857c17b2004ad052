"""Read-only admin views. Every change to the list must go through a proposal and a second
person's review (``hashlist.services``), so the admin never writes hash-list data."""

from __future__ import annotations

from django.contrib import admin

from hashlist.models import Change, Entry, ImportBatch, Proposal
from hashsync.admin import ReadOnlyAdmin


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
