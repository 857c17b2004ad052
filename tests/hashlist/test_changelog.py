"""The change log's hook: curation announces waiting changes without knowing who listens."""

from __future__ import annotations

from typing import Any

import pytest

from hashlist import services
from hashlist.changelog import changes_waiting
from hashsync.errors import FourEyesViolation
from tests.factories import propose_entry


@pytest.fixture
def announcements() -> Any:
    heard: list[object] = []

    def listener(sender: object, **_: Any) -> None:
        heard.append(sender)

    changes_waiting.connect(listener)
    yield heard
    changes_waiting.disconnect(listener)


def test_approval_announces_that_changes_wait(announcements, analyst, reviewer):
    proposal = propose_entry(analyst)

    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)

    assert len(announcements) == 1


def test_rejection_and_proposals_announce_nothing(announcements, analyst, reviewer):
    proposal = propose_entry(analyst)
    services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason="not sure")

    assert announcements == []


def test_a_refused_approval_announces_nothing(announcements, reviewer):
    proposal = propose_entry(reviewer)

    with pytest.raises(FourEyesViolation):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)

    assert announcements == []
