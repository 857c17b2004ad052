"""The reads the import pages use (hashlist/selectors.py): the list of batches, the release that
carried an applied batch, and the field a row error is about."""

from __future__ import annotations

import pytest

from hashlist import selectors
from hashlist.models import Change
from tests.factories import approved_entry, invalid_import_batch


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("category must be one of A, B, C; got 'D'.", "category"),
        ("age_group is required; expected one of 0-2, …", "age_group"),
        ("md5: expected 32 hexadecimal characters …; got 31 characters", "md5"),
        ("sha256 hash is already on the list (entry 12)", "sha256"),
        ("pdq hash repeats the one on line 3", "pdq"),
        ("hashes: md5 given twice; give one value per algorithm", "hashes"),
        ("header: unknown column(s) 'colour'. Known columns: …", "header"),
        ("notes is too long (4001 characters; at most 4000).", "notes"),
        ("expected 8 fields as in the header, found 7", ""),
        ("not valid UTF-8 (invalid byte at position 3); save the file as UTF-8", ""),
        ("not valid JSON: Expecting value", ""),
        ("no hash: give at least one of md5, sha1, …", ""),
        ("the file has no data rows", ""),
        ("", ""),
    ],
)
def test_import_error_field_names_the_field_a_message_starts_with(message, field):
    assert selectors.import_error_field(message) == field


@pytest.mark.django_db
def test_import_list_filters_by_status_and_uploader(analyst, analyst2):
    mine = invalid_import_batch(analyst)
    theirs = invalid_import_batch(analyst2)

    assert set(selectors.import_list()) == {mine, theirs}
    assert list(selectors.import_list(uploaded_by_id=analyst.pk)) == [mine]
    assert list(selectors.import_list(status="staged")) == []


@pytest.mark.django_db
def test_import_release_is_none_without_a_proposal_or_before_the_cut(analyst, analyst2, reviewer):
    batch = invalid_import_batch(analyst)
    entry = approved_entry(analyst2, reviewer)
    change = Change.objects.get(entry=entry)
    batch.proposal_id = change.proposal_id

    assert selectors.import_release(batch=invalid_import_batch(analyst)) is None
    assert selectors.import_release(batch=batch) is None
    Change.objects.filter(pk=change.pk).update(release=3)
    assert selectors.import_release(batch=batch) == 3
