"""Verification of the audit chain: walk it in order and name the first event that was
altered, removed or inserted (``manage.py audit_verify``, ``GET audit/verify/``); then run the
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
from audit.models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int
    head_seq: int
    head_digest: str
    first_bad_seq: int | None = None
    problem: str = ""
    # Problems the registered cross-checks found on an intact chain (ids only, never hashes).
    findings: tuple[str, ...] = ()


class TrailCheck(Protocol):
    def see(self, event: AuditEvent) -> None:
        """Called with every event of the chain, in ``seq`` order."""

    def problems(self) -> list[str]:
        """Called once after an intact walk, in the same snapshot: what does not agree."""


_TRAIL_CHECKS: dict[str, Callable[[], TrailCheck]] = {}


def register_trail_check(name: str, factory: Callable[[], TrailCheck]) -> None:
    """Run a fresh ``factory()`` check in every verification (idempotent per ``name``)."""
    _TRAIL_CHECKS[name] = factory


def _events_in_order(chunk: int = 2000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        page = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:chunk])
        if not page:
            return
        yield from page
        last = page[-1].seq


def verify_chain() -> ChainReport:
    """Walk the whole chain; report the first event that was altered, removed or inserted."""
    connection = transaction.get_connection()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        # One snapshot for the head and every page of events: an append committed during the
        # walk would otherwise show up as an event beyond the head (a false alarm on a live
        # system). Inside a caller's transaction, that transaction's snapshot rules.
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify_in_snapshot()


def _verify_in_snapshot() -> ChainReport:
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq = head.seq if head else 0
    head_digest = head.digest if head else GENESIS_DIGEST

    def broken(first_bad_seq: int, problem: str) -> ChainReport:
        # Everything before the first bad event was verified.
        return ChainReport(
            ok=False,
            events_checked=max(first_bad_seq - 1, 0),
            head_seq=head_seq,
            head_digest=head_digest,
            first_bad_seq=first_bad_seq,
            problem=problem,
        )

    checks = [factory() for factory in _TRAIL_CHECKS.values()]
    expected_seq = 1
    prev = GENESIS_DIGEST
    for event in _events_in_order():
        if event.seq != expected_seq:
            return broken(
                expected_seq,
                f"event #{expected_seq} is missing (the next event present is #{event.seq})",
            )
        if event.prev_digest != prev:
            return broken(
                event.seq,
                f"event #{event.seq} does not link to the event before it (inserted or re-chained)",
            )
        if digest_of(event) != event.digest:
            return broken(
                event.seq,
                f"event #{event.seq} was altered: its content no longer matches its digest",
            )
        for check in checks:
            check.see(event)
        prev = event.digest
        expected_seq += 1
    last = expected_seq - 1
    if last < head_seq:
        return broken(
            last + 1,
            f"the chain ends at event #{last} but the chain head records #{head_seq}: "
            "events were removed from the end",
        )
    if last > head_seq:
        # Correctly linked events that the head does not vouch for: appended without the lock.
        return broken(
            head_seq + 1,
            f"event #{head_seq + 1} is beyond the chain head, which records #{head_seq}: "
            f"{last - head_seq} event(s) were appended behind the chain's back",
        )
    if prev != head_digest:
        return broken(
            last,
            f"event #{last} is not the event the chain head records: the end of the chain "
            "(or the head) was rewritten",
        )
    findings = tuple(problem for check in checks for problem in check.problems())
    return ChainReport(
        ok=not findings,
        events_checked=last,
        head_seq=head_seq,
        head_digest=head_digest,
        problem=f"the chain is intact, but {len(findings)} cross-check(s) failed"
        if findings
        else "",
        findings=findings,
    )
