"""``audit_verify`` cross-checks the change log against the chain: every released change has its
approval on the chain (a ``proposal.approve`` event by the reviewer the proposal names, who is
not its author). Tampering is done as someone holding the database credentials — and, where the
triggers would refuse it, the right to alter the schema. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.verify import verify_chain
from distribution import releases
from hashlist.models import Change
from tests.factories import approved_entry
from tests.hashlist.change_tampering import (
    forged_after,
    insert_change_sql,
    pending_hash_addition,
    release_a_forged_change,
)

pytestmark = pytest.mark.django_db


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_released_changes_with_their_approvals_on_the_chain_verify(analyst, reviewer):
    for _ in range(3):
        approved_entry(analyst, reviewer)
    assert releases.release_cut() is not None

    report = verify_chain()

    assert report.ok, (report.problem, report.findings)
    assert report.findings == ()


def test_a_change_released_behind_the_triggers_back_is_reported_with_its_id_and_release(
    analyst, reviewer
):
    forged = release_a_forged_change(analyst, reviewer)

    report = verify_chain()

    assert not report.ok
    assert report.first_bad_seq is None  # the chain itself is intact
    [finding] = report.findings
    assert f"change {forged.change_id} of proposal {forged.proposal.pk}" in finding
    assert f"release {forged.release}" in finding
    assert "no proposal.approve event" in finding
    assert forged.md5 not in finding


def test_a_proposal_marked_approved_by_raw_sql_passes_the_triggers_but_not_the_audit(
    analyst, reviewer, reviewer2
):
    """Status and reviewer written straight into the proposal row: the database and the cutter
    see an approval by another person; only the chain knows nobody approved."""
    entry, pending, md5 = pending_hash_addition(analyst, reviewer)
    _raw(
        "UPDATE hashlist_proposal SET status = 'approved', reviewer_id = %s WHERE id = %s",
        [reviewer2.pk, pending.pk],
    )
    forged = insert_change_sql(
        entry_id=entry.pk, proposal_id=pending.pk, after=forged_after(entry, md5)
    )
    release = releases.release_cut()
    assert release is not None
    assert Change.objects.get(pk=forged).release == release.version

    report = verify_chain()

    assert not report.ok
    [finding] = report.findings
    assert f"change {forged} " in finding and f"release {release.version}" in finding


def test_a_reviewer_swapped_after_the_approval_is_reported(analyst, reviewer, reviewer2):
    entry = approved_entry(analyst, reviewer)
    release = releases.release_cut()
    assert release is not None
    change = Change.objects.get(entry=entry)
    _raw(
        "UPDATE hashlist_proposal SET reviewer_id = %s WHERE id = %s",
        [reviewer2.pk, change.proposal_id],
    )

    [finding] = verify_chain().findings

    assert f"change {change.pk} " in finding
    assert f"(user {reviewer.pk}) is not the reviewer the proposal names (user {reviewer2.pk})" in (
        finding
    )


def test_an_author_swapped_after_the_approval_is_reported(analyst, analyst2, reviewer):
    entry = approved_entry(analyst, reviewer)
    releases.release_cut()
    change = Change.objects.get(entry=entry)
    _raw(
        "UPDATE hashlist_proposal SET author_id = %s WHERE id = %s",
        [analyst2.pk, change.proposal_id],
    )

    [finding] = verify_chain().findings

    assert f"approval recorded user {analyst.pk}" in finding


def _queries_of_verify() -> int:
    with CaptureQueriesContext(connection) as queries:
        assert verify_chain().ok
    return len(queries)


def test_the_cross_check_costs_the_same_queries_for_many_released_changes(analyst, reviewer):
    approved_entry(analyst, reviewer)
    releases.release_cut()
    few = _queries_of_verify()
    for _ in range(8):
        approved_entry(analyst, reviewer)
    releases.release_cut()

    assert _queries_of_verify() == few
