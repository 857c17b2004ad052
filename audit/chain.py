"""The chain's format: the canonical form of an event and the digest that links it to the one
before in its lane. ``audit.services`` writes with it and ``audit.verify`` checks with it
(docs/audit.md).

Format 1 (the single chain) hashed ``seq``; format 2 (lanes) also hashes ``lane`` and
``lane_seq``, so an event cannot be moved to another lane or position without breaking its
digest. Each event records the format it was hashed with, so events written before lanes keep
verifying as they were written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from audit.models import AuditEvent

GENESIS_DIGEST = "0" * 64
# The format new events are written in.
FORMAT = 2
FORMATS = (1, 2)


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
    lane: int = 0,
    lane_seq: int | None = None,
    format: int = FORMAT,
) -> str:
    """The digest of an event with these fields. Format 1 ignores ``lane`` and ``lane_seq``
    (its events are lane 0 with ``lane_seq == seq``); format 2 requires ``lane_seq``."""
    payload: dict[str, Any] = {
        "v": format,
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
    if format == 2:
        if lane_seq is None:
            raise ValueError("format 2 digests cover lane_seq")
        payload["lane"] = lane
        payload["lane_seq"] = lane_seq
    elif format != 1:
        raise ValueError(f"unknown audit digest format {format}")
    return hashlib.sha256(_canonical(payload)).hexdigest()


def digest_of(event: AuditEvent) -> str:
    """The digest an event should carry, recomputed from its stored fields in its format."""
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
        lane=event.lane,
        lane_seq=event.lane_seq,
        format=event.format,
    )
