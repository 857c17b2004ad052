"""The hash-chained, append-only audit trail.

The trail is a set of lanes, each a chain of its own (docs/audit.md, "Lanes and anchors"):
lane 0 for staff and system events, lanes 1..``HASHSYNC_AUDIT_LANES`` for member clients'
events. Each event's digest is SHA-256 over a canonical JSON form of its fields and the digest
of the previous event in its lane. Appends to a lane are serialised by locking that lane's
``AuditChainHead`` row, which also records the lane's last ``lane_seq`` and digest, so a
deleted, altered, inserted or truncated event breaks the lane at a point ``verify_chain`` can
name. Member clients spread over the lanes, so the fleet's plans, bundles, acks and lookups no
longer wait for one row lock; ``audit_anchor`` commits every member lane's head to lane 0.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audit.chain import FORMAT, GENESIS_DIGEST, event_digest
from audit.models import STAFF_LANE, AuditChainHead, AuditEvent
from hashsync.middleware import current_request_id

# The PostgreSQL sequence the trail's global order (``seq``) is drawn from (audit 0004).
SEQ_SEQUENCE = "audit_event_seq"
ANCHOR = "audit.anchor"


def member_lane(client_id: int) -> int:
    """The lane a sync client's events go to: the same one for every event of the client."""
    return 1 + client_id % settings.HASHSYNC_AUDIT_LANES


def _lock_head(lane: int) -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(lane=lane).first()
    if head is None:
        # A lane's first event (or a test's flush of all tables): create its head. Racing
        # creators both insert-or-ignore, then both lock the one row that exists.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(lane=lane, seq=0, digest=GENESIS_DIGEST)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(lane=lane)
    if connection.vendor == "sqlite":
        # SELECT ... FOR UPDATE is a no-op on SQLite; a write takes the database's write lock,
        # which then serialises this whole transaction against every other writer.
        AuditChainHead.objects.filter(pk=head.pk).update(seq=F("seq"))
    return head


def _next_seq() -> int:
    """The trail's next global ``seq``. On PostgreSQL a sequence, taken without any shared lock
    (a rolled-back append leaves a gap: ``seq`` orders, ``lane_seq`` proves completeness). On
    SQLite the transaction already holds the database's write lock (``_lock_head``), so the
    largest ``seq`` plus one is safe and gapless."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(%s)", [SEQ_SEQUENCE])
        else:
            cursor.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM hashlist_auditevent")
        row = cursor.fetchone()
    return int(row[0])


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
    client_id: int | None = None,
) -> AuditEvent:
    """Append one event to the trail, inside the caller's transaction.

    ``actor_label`` names an actor that is not a staff user (a member's sync client, e.g.
    ``member:acme/edge-1``); pass ``actor=None`` with it. ``client_id`` is that sync client's
    id: its events go to the client's member lane instead of the staff lane, so member traffic
    does not queue on the staff lane's lock.

    Call it in the same transaction as the state change it records, so an event exists exactly
    when its change does. ``before``/``after`` must be JSON made of dicts, lists, strings, ints,
    booleans and None (no floats: their text form is not stable across databases).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change")
    lane = STAFF_LANE if client_id is None else member_lane(client_id)
    head = _lock_head(lane)
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    fields: dict[str, Any] = {
        # Taken after the lane lock, then the time at once: ``seq`` and ``at`` grow together
        # within a lane, and across lanes up to the moment between the two (docs/audit.md).
        "seq": _next_seq(),
        # Truncated to microseconds by every database we support; the digest uses that precision.
        "at": timezone.now(),
        "lane": lane,
        "lane_seq": head.seq + 1,
        "format": FORMAT,
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
    head.seq = event.lane_seq
    head.digest = digest
    head.save(update_fields=["seq", "digest"])
    return event


@transaction.atomic
def audit_anchor() -> AuditEvent | None:
    """Commit every member lane's head (lane, lane_seq, digest) to the staff lane, so that a
    member lane cut short afterwards — its tail deleted and its head row rewound — no longer
    matches what lane 0 recorded. Run by beat every ``HASHSYNC_AUDIT_ANCHOR_SECONDS``; returns
    None without writing when no member lane moved since the last anchor (an idle trail does
    not grow). The heads are read unlocked: each is a committed state of its lane, and an
    anchor only vouches for a prefix of each lane."""
    heads = [
        [lane, seq, digest]
        for lane, seq, digest in AuditChainHead.objects.exclude(lane=STAFF_LANE)
        .filter(seq__gt=0)
        .order_by("lane")
        .values_list("lane", "seq", "digest")
    ]
    if not heads:
        return None
    last = (
        AuditEvent.objects.filter(action=ANCHOR, lane=STAFF_LANE)
        .order_by("-seq")
        .values_list("after", flat=True)
        .first()
    )
    if isinstance(last, dict) and last.get("lanes") == heads:
        return None
    return audit_record(
        actor=None, action=ANCHOR, object_type="audit_lanes", after={"lanes": heads}
    )
