from __future__ import annotations

from audit.verify import verify_chain
from hashlist.models import Change, Hash
from tests.factories import approved_entry


def test_analyst_proposal_approved_by_reviewer_creates_entry_and_change(analyst, reviewer):
    entry = approved_entry(analyst, reviewer)
    assert Hash.objects.filter(entry=entry).count() == 1
    assert Change.objects.filter(entry=entry, kind="create", release__isnull=True).count() == 1
    assert verify_chain().ok
