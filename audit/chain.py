"""The chain's format: the canonical form of an event and the digest that links it to the one
before. ``audit.services`` writes with it and ``audit.verify`` checks with it (docs/audit.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from audit.models import AuditEvent

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
