"""Reads of members that the staff pages use: an entry's disputes, open disputes, member
counts. Synthetic hashes only."""

from __future__ import annotations

from typing import Any

import pytest

from members import selectors, services
from members.models import Feedback, SyncClient
from tests.factories import approved_entry, member_with_token

pytestmark = pytest.mark.django_db


def _dispute(member: Any, entry: Any) -> Feedback:
    first = entry.hashes.first()
    return Feedback.objects.create(
        member=member,
        client=SyncClient.objects.get(member=member),
        entry=entry,
        algorithm=first.algorithm,
        value=first.value,
        kind="false_positive",
        reason="Synthetic dispute.",
    )


def test_an_entrys_disputes_are_every_members_oldest_first(analyst, reviewer, member_admin):
    entry, other = approved_entry(analyst, reviewer), approved_entry(analyst, reviewer)
    acme, _ = member_with_token(member_admin, name="acme")
    beta, _ = member_with_token(member_admin, name="beta")
    first, second = _dispute(acme, entry), _dispute(beta, entry)
    _dispute(acme, other)
    services.feedback_resolve(
        actor=analyst, feedback_id=first.pk, status="dismissed", resolution="Checked."
    )

    assert list(selectors.entry_disputes(entry_id=entry.pk)) == [first, second]
    assert selectors.disputes_open_count() == 2


def test_member_counts_say_how_many_are_suspended(member_admin):
    assert selectors.member_counts() == {"total": 0, "suspended": 0}
    services.member_create(actor=member_admin, name="acme", display_name="Acme")
    services.member_create(actor=member_admin, name="beta", display_name="Beta")
    services.member_suspend(actor=member_admin, name="beta", reason="Unpaid.")

    assert selectors.member_counts() == {"total": 2, "suspended": 1}
