"""Reads of the audit trail. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet, Sum

from audit.models import AuditChainHead, AuditEvent, ChainCheck

# How far apart two events' ``at`` may be in the opposite order of their ``seq``: ``seq`` is
# drawn from a sequence and ``at`` from the web node's clock just after it, so concurrent
# appends on different nodes (with NTP-synchronised clocks) can disagree by the time between
# the two plus the nodes' clock difference. Date filters look this far beyond their range.
SEQ_AT_SKEW = dt.timedelta(minutes=5)


def trail_length() -> int:
    """How many events the trail holds, across every lane: the sum of the lanes' heads (each
    lane's ``lane_seq`` is gapless), one read of a row per lane whatever the trail's size.
    ``seq`` cannot say it: the sequence skips the numbers of rolled-back appends."""
    return int(AuditChainHead.objects.aggregate(total=Sum("seq"))["total"] or 0)


def audit_events(
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    lane: int | None = None,
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if lane is not None:
        qs = qs.filter(lane=lane)
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
    """The trail's size, its newest event's time and about how many events came after ``since``.

    A few index probes, whatever the trail's size: the size is ``trail_length``; the recent
    count is the ``seq`` range from the first event at or after ``since`` to the newest, which
    also counts numbers the sequence skipped (rolled-back appends) — a dashboard figure, not
    an audit one."""
    newest = AuditEvent.objects.order_by("-seq").values_list("seq", "at").first()
    if newest is None:
        return TrailSummary(events=0, latest_at=None, events_since=0)
    total = trail_length()
    first_since = (
        AuditEvent.objects.filter(at__gte=since)
        .order_by("at")
        .values_list("seq", flat=True)
        .first()
    )
    recent = 0 if first_since is None else min(newest[0] - first_since + 1, total)
    return TrailSummary(events=total, latest_at=newest[1], events_since=recent)


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


def _seq_bounds(since: dt.datetime | None, until: dt.datetime | None) -> tuple[int, int]:
    """A ``seq`` range holding every event in [since, until): two probes of ``audit_at_idx``.

    ``seq`` and ``at`` grow together except between appends less than ``SEQ_AT_SKEW`` apart,
    so the range runs from just after the last event more than that before ``since`` to just
    before the first event more than that after ``until``; the caller filters ``at`` exactly
    inside it. The range lets the actor/action/object indexes, all ordered by ``seq``, serve
    the page instead of a scan of the date range."""
    low, high = 1, 2**63 - 1
    if since is not None:
        before = (
            AuditEvent.objects.filter(at__lt=since - SEQ_AT_SKEW)
            .order_by("-at", "-seq")
            .values_list("seq", flat=True)
            .first()
        )
        if before is not None:
            low = before + 1
    if until is not None:
        after = (
            AuditEvent.objects.filter(at__gte=until + SEQ_AT_SKEW)
            .order_by("at", "seq")
            .values_list("seq", flat=True)
            .first()
        )
        if after is not None:
            high = after - 1
    return (low, high)


def audit_trail(trail: TrailFilter) -> QuerySet[AuditEvent]:
    """The events matching ``trail``, unordered: the caller pages them by ``seq`` (keyset,
    never OFFSET). Each filter is served by an index that reads in ``seq`` order — actor and
    action by ``audit_actor_seq_idx`` / ``audit_action_seq_idx``, objects by
    ``audit_object_idx``, the date range by ``seq`` bounds found on ``audit_at_idx`` (then
    ``at`` itself) — so a page costs the same at millions of events."""
    qs = AuditEvent.objects.all()
    if trail.since or trail.until:
        low, high = _seq_bounds(trail.since, trail.until)
        qs = qs.filter(seq__gte=low, seq__lte=high)
        if trail.since:
            qs = qs.filter(at__gte=trail.since)
        if trail.until:
            qs = qs.filter(at__lt=trail.until)
    if trail.actor:
        qs = qs.filter(actor=trail.actor)
    if trail.action:
        qs = qs.filter(action=trail.action)
    for scope in trail.scopes:
        qs = qs.filter(scope.where())
    return qs


def audit_event_get(*, seq: int) -> AuditEvent | None:
    return AuditEvent.objects.filter(seq=seq).first()


def audit_event_neighbour(*, seq: int, newer: bool) -> int | None:
    """The ``seq`` of the next newer (or older) event present: the sequence skips numbers."""
    if newer:
        qs = AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
    else:
        qs = AuditEvent.objects.filter(seq__lt=seq).order_by("-seq")
    return qs.values_list("seq", flat=True).first()


def chain_checks_latest(*, limit: int = 10) -> list[ChainCheck]:
    return list(ChainCheck.objects.order_by("-started_at", "-pk")[:limit])


def chain_check_get(*, check_id: int) -> ChainCheck | None:
    return ChainCheck.objects.filter(pk=check_id).first()
