"""Reads of the audit trail: its summary for the auditor's dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import TrailFilter, audit_summary, audit_trail, trail_length
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


def _record_at(monkeypatch: pytest.MonkeyPatch, at: dt.datetime, **kwargs: object) -> AuditEvent:
    monkeypatch.setattr("audit.services.timezone.now", lambda: at)
    with transaction.atomic():
        event = audit_record(actor=None, action="test.event", object_type="t", **kwargs)  # type: ignore[arg-type]
    monkeypatch.undo()
    return event


def test_a_date_range_holds_exactly_its_events_when_seq_and_time_disagree(monkeypatch):
    # Two web nodes append at once: the one drawing the lower seq stamps the later time. A
    # range starting between the two times holds the earlier-numbered event and not the other.
    base = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    early = _record_at(monkeypatch, base - dt.timedelta(hours=1))
    later_time = _record_at(monkeypatch, base + dt.timedelta(seconds=1), client_id=1)
    earlier_time = _record_at(monkeypatch, base - dt.timedelta(seconds=1), client_id=2)
    late = _record_at(monkeypatch, base + dt.timedelta(hours=1))
    assert later_time.seq < earlier_time.seq

    def seqs(**window: dt.datetime) -> list[int]:
        return sorted(audit_trail(TrailFilter(**window)).values_list("seq", flat=True))  # type: ignore[arg-type]

    assert seqs(since=base) == [later_time.seq, late.seq]
    assert seqs(until=base) == [early.seq, earlier_time.seq]
    assert seqs(since=base - dt.timedelta(minutes=1), until=base + dt.timedelta(minutes=1)) == [
        later_time.seq,
        earlier_time.seq,
    ]


def test_trail_length_counts_every_lane_and_the_summary_uses_it(settings):
    settings.HASHSYNC_AUDIT_LANES = 4
    _record(3)
    for client in (1, 2, 3):
        with transaction.atomic():
            audit_record(
                actor=None, actor_label="member:a/b", client_id=client, action="x", object_type="t"
            )

    assert trail_length() == 6
    assert audit_summary(since=timezone.now() - dt.timedelta(days=1)).events == 6
