"""The chain's format is a published contract (docs/audit.md): an event's digest must not change
when the code that computes it moves, or every existing chain would stop verifying."""

from __future__ import annotations

import datetime as dt
import hashlib

from audit.chain import GENESIS_DIGEST, event_digest


def test_event_digest_is_the_documented_canonical_form():
    digest = event_digest(
        seq=1,
        at=dt.datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=dt.UTC),
        actor="reviewer",
        actor_id=7,
        action="proposal.approve",
        object_type="proposal",
        object_id="42",
        before={"status": "pending"},
        after={"status": "approved"},
        reason="checked",
        request_id="req-12345678",
        prev_digest=GENESIS_DIGEST,
        format=1,
    )
    # Computed by hashlist.audit.event_digest before the trail moved to the audit app.
    assert digest == "3d1b16ea2009a23c5c3bba8ea5ec0ec19b8db97a3f9433247e9b09fa8574f9d5"


def _format_2(**changes: object) -> str:
    fields: dict[str, object] = {
        "seq": 1,
        "at": dt.datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=dt.UTC),
        "actor": "member:acme/edge-1",
        "actor_id": None,
        "action": "sync.plan",
        "object_type": "feed",
        "object_id": "3",
        "before": None,
        "after": {"feed": "md5-all", "version": 4},
        "reason": "",
        "request_id": "req-12345678",
        "prev_digest": GENESIS_DIGEST,
        "lane": 5,
        "lane_seq": 1,
        "format": 2,
    }
    fields.update(changes)
    return event_digest(**fields)  # type: ignore[arg-type]


def test_format_2_digest_is_the_documented_canonical_form():
    # The canonical JSON docs/audit.md spells out for format 2, hashed by hand.
    canonical = (
        '{"action":"sync.plan","actor":"member:acme/edge-1","actor_id":null,'
        '"after":{"feed":"md5-all","version":4},"at":"2025-01-31T12:00:00.123456+00:00",'
        '"before":null,"lane":5,"lane_seq":1,"object_id":"3","object_type":"feed",'
        f'"prev":"{GENESIS_DIGEST}","reason":"","request_id":"req-12345678","seq":1,"v":2}}'
    )
    assert _format_2() == hashlib.sha256(canonical.encode()).hexdigest()


def test_format_2_digest_covers_the_lane_and_the_place_in_it():
    assert _format_2(lane=6) != _format_2()
    assert _format_2(lane_seq=2) != _format_2()
    assert _format_2(format=1) != _format_2()
