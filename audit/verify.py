"""Verification of the audit chain: walk every lane in order and name each lane's first event
that was altered, removed or inserted, and check each member lane against the anchors lane 0
recorded of it (``manage.py audit_verify``, ``GET audit/verify/``); then run the
cross-checks other apps register, which compare their own tables with what the intact chain
says happened (e.g. hashlist: every released change has its approval on the chain).

The audit app sits below the apps it records, so it does not know their tables: an app
registers a ``TrailCheck`` factory (``register_trail_check``, from its ``AppConfig.ready``),
each check sees every event of the same walk, in the same snapshot, and reports its problems at
the end — one pass over the trail, whatever the number of checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction

from audit.chain import GENESIS_DIGEST, digest_of
from audit.models import STAFF_LANE, AuditChainHead, AuditEvent
from audit.services import ANCHOR


@dataclass(frozen=True)
class LaneReport:
    """One lane's walk: how far it verified, what its head records and its first break."""

    lane: int
    events_checked: int
    head_seq: int  # the lane's last ``lane_seq`` as its head row records it
    head_digest: str
    first_bad_lane_seq: int | None = None
    # The global ``seq`` of the event where the break shows; for a lane cut short or run past
    # its head, the lane's last event present (None: the lane has none left).
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int  # across all lanes, up to each lane's first break
    head_seq: int  # lane 0's head: the staff lane, which anchors the member lanes
    head_digest: str
    first_bad_seq: int | None = None
    problem: str = ""
    # Problems the registered cross-checks found on an intact chain (ids only, never hashes).
    findings: tuple[str, ...] = ()
    lanes: tuple[LaneReport, ...] = ()
    first_bad_lane: int | None = None


class TrailCheck(Protocol):
    def see(self, event: AuditEvent) -> None:
        """Called with every event of the trail: lane 0 (staff) first, each lane in
        ``lane_seq`` order."""

    def problems(self) -> list[str]:
        """Called once after an intact walk, in the same snapshot: what does not agree."""


_TRAIL_CHECKS: dict[str, Callable[[], TrailCheck]] = {}


def register_trail_check(name: str, factory: Callable[[], TrailCheck]) -> None:
    """Run a fresh ``factory()`` check in every verification (idempotent per ``name``)."""
    _TRAIL_CHECKS[name] = factory


def _lane_events(lane: int, chunk: int = 2000) -> Iterator[AuditEvent]:
    """A lane's events in ``lane_seq`` order, in keyset pages on ``audit_lane_seq_uniq``."""
    last = 0
    while True:
        page = list(
            AuditEvent.objects.filter(lane=lane, lane_seq__gt=last).order_by("lane_seq")[:chunk]
        )
        if not page:
            return
        yield from page
        last = page[-1].lane_seq


def verify_chain() -> ChainReport:
    """Walk every lane; report each lane's first event that was altered, removed or inserted,
    and whether each member lane still holds what the staff lane's anchors recorded."""
    connection = transaction.get_connection()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        # One snapshot for the heads and every page of events: an append committed during the
        # walk would otherwise show up as an event beyond its head (a false alarm on a live
        # system). Inside a caller's transaction, that transaction's snapshot rules.
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify_in_snapshot()


@dataclass(frozen=True, slots=True)
class _Anchored:
    digest: str
    anchor_seq: int  # the anchor event's global seq
    anchor_lane_seq: int  # its place in lane 0


class _Anchors:
    """What lane 0's anchor events recorded of each member lane: lane -> lane_seq -> digest.
    Anchors repeat unchanged lanes, so this holds one item per distinct anchored position."""

    def __init__(self) -> None:
        self.by_lane: dict[int, dict[int, _Anchored]] = {}

    def see(self, event: AuditEvent) -> None:
        if event.action != ANCHOR or event.lane != STAFF_LANE:
            return
        after = event.after if isinstance(event.after, dict) else {}
        for item in after.get("lanes") or []:
            if not (isinstance(item, list) and len(item) == 3):
                continue
            lane, lane_seq, digest = item
            if isinstance(lane, int) and isinstance(lane_seq, int) and isinstance(digest, str):
                self.by_lane.setdefault(lane, {}).setdefault(
                    lane_seq, _Anchored(digest, event.seq, event.lane_seq)
                )


def _walk_lane(
    lane: int,
    head: tuple[int, str],
    anchored: dict[int, _Anchored],
    checks: list[TrailCheck],
    anchors: _Anchors | None,
) -> LaneReport:
    head_seq, head_digest = head
    name = "lane 0 (staff)" if lane == STAFF_LANE else f"lane {lane}"

    def broken(lane_seq: int, seq: int | None, problem: str) -> LaneReport:
        # Everything before the first bad event of the lane was verified.
        return LaneReport(
            lane=lane,
            events_checked=max(lane_seq - 1, 0),
            head_seq=head_seq,
            head_digest=head_digest,
            first_bad_lane_seq=lane_seq,
            first_bad_seq=seq,
            problem=f"{name}: {problem}",
        )

    expected = 1
    prev = GENESIS_DIGEST
    last_seq: int | None = None
    for event in _lane_events(lane):
        if event.lane_seq != expected:
            return broken(
                expected,
                event.seq,
                f"event #{expected} of the lane is missing (the next present is #{event.lane_seq}"
                f", event #{event.seq})",
            )
        if event.prev_digest != prev:
            return broken(
                expected,
                event.seq,
                f"event #{event.seq} (#{expected} of the lane) does not link to the event before "
                "it (inserted, reordered or re-chained)",
            )
        try:
            digest = digest_of(event)
        except ValueError:  # an unknown format number is an alteration too
            digest = ""
        if digest != event.digest:
            return broken(
                expected,
                event.seq,
                f"event #{event.seq} (#{expected} of the lane) was altered: its content no "
                "longer matches its digest",
            )
        pinned = anchored.get(expected)
        if pinned is not None and pinned.digest != event.digest:
            return broken(
                expected,
                event.seq,
                f"event #{event.seq} (#{expected} of the lane) is not the event the anchor "
                f"#{pinned.anchor_seq} on lane 0 recorded: the lane was rewritten",
            )
        if anchors is not None:
            anchors.see(event)
        for check in checks:
            check.see(event)
        prev = event.digest
        last_seq = event.seq
        expected += 1
    last = expected - 1
    beyond = [lane_seq for lane_seq in anchored if lane_seq > last]
    if beyond:
        furthest = anchored[max(beyond)]
        return broken(
            last + 1,
            last_seq,
            f"the lane ends at #{last} but the anchor #{furthest.anchor_seq} on lane 0 "
            f"recorded #{max(beyond)}: events were removed from the end",
        )
    if last < head_seq:
        return broken(
            last + 1,
            last_seq,
            f"the lane ends at #{last} but its head records #{head_seq}: events were removed "
            "from the end",
        )
    if last > head_seq:
        # Correctly linked events that the head does not vouch for: appended without the lock.
        return broken(
            head_seq + 1,
            last_seq,
            f"event #{head_seq + 1} of the lane is beyond its head, which records "
            f"#{head_seq}: {last - head_seq} event(s) were appended behind the chain's back",
        )
    if prev != head_digest:
        return broken(
            last,
            last_seq,
            f"event #{last} of the lane is not the event its head records: the end of the "
            "lane (or its head) was rewritten",
        )
    return LaneReport(lane=lane, events_checked=last, head_seq=head_seq, head_digest=head_digest)


def _verify_in_snapshot() -> ChainReport:
    heads = {
        lane: (seq, digest)
        for lane, seq, digest in AuditChainHead.objects.values_list("lane", "seq", "digest")
    }
    # Lanes with events but no head row (the row deleted) are walked too: against no head.
    orphans = set(
        AuditEvent.objects.exclude(lane__in=list(heads)).values_list("lane", flat=True).distinct()
    )
    genesis = (0, GENESIS_DIGEST)
    checks = [factory() for factory in _TRAIL_CHECKS.values()]
    anchors = _Anchors()
    staff = _walk_lane(STAFF_LANE, heads.get(STAFF_LANE, genesis), {}, checks, anchors)
    reports = [staff]
    members = (set(heads) | orphans | set(anchors.by_lane)) - {STAFF_LANE}
    for lane in sorted(members):
        reports.append(
            _walk_lane(lane, heads.get(lane, genesis), anchors.by_lane.get(lane, {}), checks, None)
        )
    events = sum(r.events_checked for r in reports)
    head_seq, head_digest = heads.get(STAFF_LANE, genesis)
    first_bad = next((r for r in reports if not r.ok), None)
    if first_bad is not None:
        problems = [r for r in reports if not r.ok]
        more = f" (and {len(problems) - 1} other lane(s) broken)" if len(problems) > 1 else ""
        return ChainReport(
            ok=False,
            events_checked=events,
            head_seq=head_seq,
            head_digest=head_digest,
            first_bad_seq=first_bad.first_bad_seq,
            problem=first_bad.problem + more,
            lanes=tuple(reports),
            first_bad_lane=first_bad.lane,
        )
    findings = tuple(problem for check in checks for problem in check.problems())
    return ChainReport(
        ok=not findings,
        events_checked=events,
        head_seq=head_seq,
        head_digest=head_digest,
        problem=f"the chain is intact, but {len(findings)} cross-check(s) failed"
        if findings
        else "",
        findings=findings,
        lanes=tuple(reports),
    )
