"""The audit tests' shared fixture: a short, genuine history on the chain."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from hashlist import services
from tests.factories import approved_entry
from tests.utils import audit_events_since, last_audit_seq


@pytest.fixture
def history(analyst: Any, reviewer: Any) -> list[AuditEvent]:
    """Six events of different kinds, committed to the chain in order."""
    start = last_audit_seq()
    entry = approved_entry(analyst, reviewer)  # proposal.create, proposal.approve
    regrade = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}, comment="looks like B"
    )
    services.proposal_reject(actor=reviewer, proposal_id=regrade.pk, reason="it is A")
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="duplicate")
    services.proposal_withdraw(actor=analyst, proposal_id=retract.pk)
    events = audit_events_since(start)
    assert len(events) == 6
    return events
