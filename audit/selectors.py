"""Reads of the audit trail. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_events(
    *, object_type: str | None = None, object_id: str | None = None, action: str | None = None
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    if action:
        qs = qs.filter(action=action)
    return qs
