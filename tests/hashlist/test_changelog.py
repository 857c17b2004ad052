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


def test_entry_state_json_round_trips_and_keeps_the_logged_form(analyst, reviewer):
    from hashlist.changelog import EntryState
    from hashlist.models import Change
    from tests.factories import approved_entry

    entry = approved_entry(analyst, reviewer, baseline=True, industry_class="A1")
    logged = Change.objects.get(entry=entry).after

    state = EntryState.from_json(logged)

    assert state == EntryState.of(entry)
    assert state.to_json() == logged  # the stored JSON form is unchanged, key for key
    assert state.active and state.grading.industry_class == "A1"
    assert [name for name, _ in state.hash_values()] == ["md5"]
    assert "notes" not in logged and "source" not in logged
    assert EntryState.from_json(None) is None
