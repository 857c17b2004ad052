"""Read-only admin views of members. Writes go through ``members.services`` (the API), which
audits them and shows a token exactly once; the admin never shows a token digest."""

from __future__ import annotations

from django.contrib import admin

from hashsync.admin import ReadOnlyAdmin
from members.models import Ack, ApiToken, Feedback, Member, SyncClient


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ["name", "display_name", "status", "created_at", "suspended_at"]
    list_filter = ["status"]


@admin.register(SyncClient)
class SyncClientAdmin(ReadOnlyAdmin):
    list_display = ["member", "name", "created_at", "digest_mismatch_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "client", "scopes", "created_at", "expires_at", "revoked_at"]
    exclude = ["digest"]


@admin.register(Ack)
class AckAdmin(ReadOnlyAdmin):
    list_display = ["client", "feed", "version", "digest_matches", "acked_at"]
    list_filter = ["digest_matches"]


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["id", "member", "entry", "kind", "status", "created_at"]
    list_filter = ["status", "kind"]
    exclude = ["value"]
