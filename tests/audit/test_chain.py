"""The chain's format is a published contract (docs/audit.md): an event's digest must not change
when the code that computes it moves, or every existing chain would stop verifying."""

from __future__ import annotations

import datetime as dt

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
    )
    # Computed by hashlist.audit.event_digest before the trail moved to the audit app.
    assert digest == "3d1b16ea2009a23c5c3bba8ea5ec0ec19b8db97a3f9433247e9b09fa8574f9d5"
