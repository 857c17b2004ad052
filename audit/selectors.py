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


def audit_object_ids(*, action: str, object_type: str, object_ids: list[str]) -> set[str]:
    """Which of ``object_ids`` already have an event of ``action`` (served by
    ``audit_object_idx``)."""
    return set(
        AuditEvent.objects.filter(
            object_type=object_type, object_id__in=object_ids, action=action
        ).values_list("object_id", flat=True)
    )
