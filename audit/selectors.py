"""Reads of the audit trail. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from audit.models import AuditEvent, ChainCheck


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


@dataclass(frozen=True)
class TrailScope:
    """Events about any of these objects ((object type, object ids) pairs) or done by any of
    these actors; resolved by the caller from what the auditor typed (an entry: its proposals
    and changes; a member: itself, its clients and what its clients did). Empty: no event."""

    about: tuple[tuple[str, tuple[str, ...]], ...] = ()
    actors: tuple[str, ...] = ()

    def where(self) -> Q:
        where = Q(pk__in=[])
        for object_type, ids in self.about:
            if ids:
                where |= Q(object_type=object_type, object_id__in=list(ids))
        if self.actors:
            where |= Q(actor__in=list(self.actors))
        return where


@dataclass(frozen=True)
class TrailFilter:
    """What the auditors' trail page narrows the trail to; every part optional, all of them
    must hold (each scope too)."""

    actor: str = ""
    action: str = ""
    scopes: tuple[TrailScope, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None  # exclusive


def _seq_bounds(since: dt.datetime | None, until: dt.datetime | None) -> tuple[int, int] | None:
    """The ``seq`` range of the events in [since, until): two probes of ``audit_at_idx``, since
    ``seq`` and ``at`` are assigned together under the chain-head lock and grow together (see
    ``audit_summary``). None when no event falls in the range."""
    low, high = 1, None
    if since is not None:
        first = (
            AuditEvent.objects.filter(at__gte=since)
            .order_by("at", "seq")
            .values_list("seq", flat=True)
            .first()
        )
        if first is None:
            return None
        low = first
    if until is not None:
        last = (
            AuditEvent.objects.filter(at__lt=until)
            .order_by("-at", "-seq")
            .values_list("seq", flat=True)
            .first()
        )
        if last is None:
            return None
        high = last
    if high is None:
        return (low, 2**63 - 1)
    return (low, high) if low <= high else None


def audit_trail(trail: TrailFilter) -> QuerySet[AuditEvent]:
    """The events matching ``trail``, unordered: the caller pages them by ``seq`` (keyset,
    never OFFSET). Each filter is served by an index that reads in ``seq`` order — actor and
    action by ``audit_actor_seq_idx`` / ``audit_action_seq_idx``, objects by
    ``audit_object_idx``, the date range by ``seq`` bounds found on ``audit_at_idx`` — so a page
    costs the same at millions of events."""
    qs = AuditEvent.objects.all()
    bounds = _seq_bounds(trail.since, trail.until)
    if (trail.since or trail.until) and bounds is None:
        return qs.none()
    if bounds is not None and (trail.since or trail.until):
        qs = qs.filter(seq__gte=bounds[0], seq__lte=bounds[1])
    if trail.actor:
        qs = qs.filter(actor=trail.actor)
    if trail.action:
        qs = qs.filter(action=trail.action)
    for scope in trail.scopes:
        qs = qs.filter(scope.where())
    return qs


def audit_event_get(*, seq: int) -> AuditEvent | None:
    return AuditEvent.objects.filter(seq=seq).first()


def chain_checks_latest(*, limit: int = 10) -> list[ChainCheck]:
    return list(ChainCheck.objects.order_by("-started_at", "-pk")[:limit])


def chain_check_get(*, check_id: int) -> ChainCheck | None:
    return ChainCheck.objects.filter(pk=check_id).first()
