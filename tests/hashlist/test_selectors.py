"""Reads of the hash list that the staff pages use: the review queue's summary, a person's
pending proposals, imports running and failed, entries by filter, and an entry's history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from hashlist import imports, selectors, services
from hashlist.models import Entry, ImportBatch, ImportStatus, Proposal
from tests.conftest import synthetic
from tests.factories import approved_entry, invalid_import_batch, propose_entry

pytestmark = pytest.mark.django_db


def test_the_queue_summary_counts_pending_proposals_and_the_oldest(analyst, reviewer):
    assert selectors.review_queue_summary() == selectors.QueueSummary(size=0, oldest_at=None)
    old = propose_entry(analyst)
    Proposal.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    propose_entry(reviewer)
    decided = propose_entry(analyst)
    services.proposal_reject(actor=reviewer, proposal_id=decided.pk, reason="No.")
    old.refresh_from_db()

    everyone = selectors.review_queue_summary()
    for_reviewer = selectors.review_queue_summary(reviewer_id=reviewer.pk)

    assert everyone == selectors.QueueSummary(size=2, oldest_at=old.created_at)
    assert for_reviewer == selectors.QueueSummary(size=1, oldest_at=old.created_at)


def test_pending_proposals_by_an_author_are_theirs_and_pending_oldest_first(analyst, analyst2):
    first, second = propose_entry(analyst), propose_entry(analyst)
    propose_entry(analyst2)
    withdrawn = propose_entry(analyst)
    services.proposal_withdraw(actor=analyst, proposal_id=withdrawn.pk)

    assert list(selectors.proposals_pending_by(author_id=analyst.pk)) == [first, second]


def _batch(uploader: Any, status: str, **fields: Any) -> ImportBatch:
    return ImportBatch.objects.create(
        uploaded_by=uploader,
        file="imports/synthetic.csv",
        original_name="synthetic.csv",
        format="csv",
        size=10,
        sha256="0" * 64,
        status=status,
        **fields,
    )


def test_running_imports_are_uploaded_validating_or_applying(analyst):
    running = [_batch(analyst, s) for s in ("uploaded", "validating", "applying")]
    for status in ("staged", "approved", "rejected", "invalid", "failed"):
        _batch(analyst, status)

    assert list(selectors.imports_running()) == running


def test_failed_imports_since_a_time_are_failed_or_invalid_newest_first(analyst):
    invalid = invalid_import_batch(analyst)
    failed = _batch(analyst, "failed")
    old = _batch(analyst, "failed")
    ImportBatch.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=9))
    _batch(analyst, "approved")

    since = timezone.now() - dt.timedelta(days=7)
    assert list(selectors.imports_failed_since(since=since)) == [failed, invalid]


def test_entries_filter_by_the_author_of_the_proposal_that_created_them(
    analyst, analyst2, reviewer
):
    mine = approved_entry(analyst, reviewer)
    theirs = approved_entry(analyst2, reviewer)
    # A regrade by analyst2 does not make analyst2 the author of analyst's entry.
    regrade = services.proposal_regrade(actor=analyst2, entry_id=mine.pk, grading={"category": "C"})
    services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)

    assert list(selectors.entry_filter(author_id=analyst2.pk)) == [theirs]
    assert list(selectors.entry_filter(author_id=analyst.pk)) == [mine]


def test_entries_filter_by_the_half_open_range_of_their_creation(analyst, reviewer):
    at = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    before, inside, end = (approved_entry(analyst, reviewer) for _ in range(3))
    for entry, when in (
        (before, at - dt.timedelta(seconds=1)),
        (inside, at),
        (end, at + dt.timedelta(days=1)),
    ):
        Entry.objects.filter(pk=entry.pk).update(created_at=when)

    found = selectors.entry_filter(created_from=at, created_before=at + dt.timedelta(days=1))

    assert list(found) == [inside]


def test_proposal_authors_are_the_people_who_proposed_something(analyst, analyst2, reviewer):
    propose_entry(analyst2)

    assert list(selectors.proposal_authors()) == [analyst2]


def test_the_history_of_an_entry_made_by_an_import_includes_the_import(
    analyst, reviewer, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    body = f"category,age_group,source,md5\nA,3-6,synthetic,{synthetic('md5')}\n"
    batch = imports.import_upload(actor=analyst, file=SimpleUploadedFile("s.csv", body.encode()))
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED
    with django_capture_on_commit_callbacks(execute=True):
        services.proposal_approve(actor=reviewer, proposal_id=batch.proposal_id)
    entry = Entry.objects.get(changes__proposal_id=batch.proposal_id)
    regrade = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})

    history = selectors.entry_history(entry_id=entry.pk)

    assert [p.pk for p in history.proposals] == [batch.proposal_id, regrade.pk]
    assert [c.proposal_id for c in history.changes] == [batch.proposal_id]
