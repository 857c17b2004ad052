"""Reads of the audit trail. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


@dataclass(frozen=True)
class TrailSummary:
    events: int
    latest_at: dt.datetime | None
    events_since: int


def audit_summary(*, since: dt.datetime) -> TrailSummary:
    """The trail's size, its newest event's time and how many events came after ``since``.

    Two index probes, whatever the trail's size: ``seq`` is gapless and assigned with ``at``
    under the chain-head lock, so the events after ``since`` are those from the first one at
    or after it to the newest."""
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", "at").first()
    if newest is None:
        return TrailSummary(events=0, latest_at=None, events_since=0)
    first_since = (
        AuditEvent.objects.filter(at__gte=since)
        .order_by("at")
        .values_list("seq", flat=True)
        .first()
    )
    recent = 0 if first_since is None else newest[0] - first_since + 1
    return TrailSummary(events=newest[0], latest_at=newest[1], events_since=recent)
