"""Reads of the audit trail: its summary for the auditor's dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_summary
from audit.services import audit_record

pytestmark = pytest.mark.django_db


def _record(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(
                actor=None, actor_label="test", action="test.event", object_type="t", object_id=i
            )


def test_an_empty_trail_is_summarised_as_empty():
    assert not AuditEvent.objects.exists()

    summary = audit_summary(since=timezone.now() - dt.timedelta(days=1))

    assert (summary.events, summary.latest_at, summary.events_since) == (0, None, 0)


def test_the_summary_counts_the_trail_and_the_events_since_a_time():
    _record(3)
    cut = timezone.now()
    _record(2)

    summary = audit_summary(since=cut)

    assert summary.events == AuditEvent.objects.count()
    assert summary.events_since == AuditEvent.objects.filter(at__gte=cut).count() == 2
    newest = AuditEvent.objects.order_by("-seq").first()
    assert newest is not None and summary.latest_at == newest.at


def test_nothing_since_a_time_after_the_newest_event():
    _record(1)

    assert audit_summary(since=timezone.now() + dt.timedelta(seconds=1)).events_since == 0
