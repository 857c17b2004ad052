"""The hash-chained, append-only audit trail.

Each event's digest is SHA-256 over a canonical JSON form of its fields and the previous
event's digest. Appends are serialised by locking the single ``AuditChainHead`` row, which also
records the last sequence number and digest, so a deleted, altered, inserted or truncated event
breaks the chain at a point ``verify_chain`` can name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from hashlist.models import AuditChainHead, AuditEvent
from hashsync.middleware import current_request_id

GENESIS_DIGEST = "0" * 64


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def event_digest(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    reason: str,
    request_id: str,
    prev_digest: str,
) -> str:
    payload = {
        "v": 1,
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "reason": reason,
        "request_id": request_id,
        "prev": prev_digest,
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def digest_of(event: AuditEvent) -> str:
    """The digest an event should carry, recomputed from its stored fields."""
    return event_digest(
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        actor_id=event.actor_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        before=event.before,
        after=event.after,
        reason=event.reason,
        request_id=event.request_id,
        prev_digest=event.prev_digest,
    )


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # Normally created by the migration; recreated after a test flush of all tables.
        AuditChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "digest": GENESIS_DIGEST})
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    object_type: str,
    object_id: object = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    ``actor_label`` names an actor that is not a staff user (a member's sync client, e.g.
    ``member:acme/edge-1``); pass ``actor=None`` with it.

    Call it in the same transaction as the state change it records, so an event exists exactly
    when its change does. ``before``/``after`` must be JSON made of dicts, lists, strings, ints,
    booleans and None (no floats: their text form is not stable across databases).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change")
    head = _lock_head()
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    fields: dict[str, Any] = {
        "seq": head.seq + 1,
        # Truncated to microseconds by every database we support; the digest uses that precision.
        "at": timezone.now(),
        "actor": (
            actor.get_username() if is_user and actor is not None else (actor_label or "system")
        ),
        "actor_id": actor.pk if is_user and actor is not None else None,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "before": before,
        "after": after,
        "reason": reason,
        "request_id": current_request_id() or "",
        "prev_digest": head.digest,
    }
    digest = event_digest(**fields)
    event = AuditEvent.objects.create(digest=digest, **fields)
    head.seq = event.seq
    head.digest = digest
    head.save(update_fields=["seq", "digest"])
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int
    head_seq: int
    head_digest: str
    first_bad_seq: int | None = None
    problem: str = ""


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
    return ChainReport(ok=True, events_checked=last, head_seq=head_seq, head_digest=head_digest)
