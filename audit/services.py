"""The hash-chained, append-only audit trail.

Each event's digest is SHA-256 over a canonical JSON form of its fields and the previous
event's digest. Appends are serialised by locking the single ``AuditChainHead`` row, which also
records the last sequence number and digest, so a deleted, altered, inserted or truncated event
breaks the chain at a point ``verify_chain`` can name.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from audit.chain import GENESIS_DIGEST, event_digest
from audit.models import AuditChainHead, AuditEvent
from hashsync.middleware import current_request_id


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
