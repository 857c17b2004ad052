"""Deciding a staged import on its page (web/views/import_review.py): a reviewer other than the
uploader approves or rejects it through the proposal services, the uploader withdraws it or
reads why they cannot decide, and every refusal shows on the page. Synthetic hashes only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from hashlist.models import Change, ImportStatus, ProposalStatus
from tests.factories import approved_entry, invalid_import_batch
from tests.web import import_helpers
from tests.web.conftest import signed_in
from tests.web.import_helpers import checked_batch, csv_rows, field_error

pytestmark = pytest.mark.django_db

# The shared fixtures of the import page tests.
as_role = import_helpers.as_role
eager_tasks = import_helpers.eager_tasks
staged = import_helpers.staged


@pytest.mark.parametrize("role", ["analyst", "auditor", "member_admin", "outsider"])
@pytest.mark.parametrize("action", ["web-import-approve", "web-import-reject"])
def test_only_reviewers_may_decide_an_import(as_role, staged, role, action):
    response = as_role(role).post(reverse(action, args=[staged.pk]), {"reject-reason": "no"})

    assert response.status_code == 403
    staged.refresh_from_db()
    assert staged.status == ImportStatus.STAGED


def test_reviewer_approves_and_the_page_shows_it_applied_and_its_release(
    as_role, staged, django_capture_on_commit_callbacks
):
    client = as_role("reviewer")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("web-import-approve", args=[staged.pk]), {"approve-reason": "sampled 20"}
        )
    staged.refresh_from_db()
    page = client.get(response["Location"]).content.decode()

    assert response.status_code == 302
    assert response["Location"] == reverse("web-import", args=[staged.pk])
    assert staged.status == ImportStatus.APPROVED and staged.rows_applied == 3
    assert staged.proposal.review_reason == "sampled 20"
    assert f"Import {staged.pk} approved" in page
    # In-process, the release is cut as soon as the rows are applied.
    release = Change.objects.filter(proposal_id=staged.proposal_id).first().release
    assert release is not None
    assert f"They were published in <strong>release {release}</strong>" in page


def test_an_applied_import_before_its_release_says_the_next_release_carries_it(
    as_role, staged, reviewer, monkeypatch, django_capture_on_commit_callbacks
):
    # No cut: the release cutter's hook is not listening.
    monkeypatch.setattr("hashlist.imports.apply.announce_changes_waiting", lambda: None)
    client = as_role("reviewer")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("web-import-approve", args=[staged.pk]), {})

    page = client.get(reverse("web-import", args=[staged.pk])).content.decode()

    assert "All 3 rows are entries on the list now" in page
    assert "next release, which has not been cut yet" in page


def test_reviewer_sees_the_summary_the_sample_and_both_decisions(as_role, staged):
    page = as_role("reviewer").get(reverse("web-import", args=[staged.pk])).content.decode()

    assert "Approve all 3 rows" in page and "Reject the file" in page
    assert "Category A" in page
    assert page.count('class="copy"') == 6  # md5 and sha1 of three sampled rows
    assert "note 0" in page


def test_uploader_who_reviews_sees_why_they_cannot_decide_and_is_refused(as_role, reviewer):
    body, _ = csv_rows(1)
    batch = checked_batch(reviewer, body)
    client = as_role("reviewer")

    page = client.get(reverse("web-import", args=[batch.pk])).content.decode()
    response = client.post(reverse("web-import-approve", args=[batch.pk]), {})

    assert "the four-eyes rule needs a second person" in page
    assert reverse("web-import-approve", args=[batch.pk]) not in page
    assert response.status_code == 400
    assert "a different reviewer must approve it" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED


def test_uploader_without_review_rights_sees_it_waits_and_may_withdraw_it(as_role, staged):
    client = as_role("analyst")

    page = client.get(reverse("web-import", args=[staged.pk])).content.decode()
    response = client.post(reverse("web-import-withdraw", args=[staged.pk]))
    after = client.get(response["Location"]).content.decode()

    assert "Waiting for a reviewer other than you" in page
    assert response.status_code == 302
    staged.refresh_from_db()
    assert staged.status == ImportStatus.REJECTED
    assert staged.proposal.status == ProposalStatus.WITHDRAWN
    assert "Withdrawn: nothing was applied" in after


def test_another_analyst_cannot_withdraw_someone_elses_import(as_role, analyst2, staged, client):
    response = signed_in(client, analyst2).post(reverse("web-import-withdraw", args=[staged.pk]))

    assert response.status_code == 400
    assert b"Only the author of a proposal can withdraw it." in response.content
    staged.refresh_from_db()
    assert staged.status == ImportStatus.STAGED


def test_rejecting_needs_a_reason_and_then_shows_it(as_role, staged):
    client = as_role("reviewer")

    refused = client.post(reverse("web-import-reject", args=[staged.pk]), {"reject-reason": ""})
    done = client.post(reverse("web-import-reject", args=[staged.pk]), {"reject-reason": "old"})
    page = client.get(done["Location"]).content.decode()

    assert refused.status_code == 400
    assert "Say why you reject it" in field_error(refused.content.decode(), "reject-reason")
    assert done.status_code == 302
    staged.refresh_from_db()
    assert staged.status == ImportStatus.REJECTED
    assert "Rejected: nothing was applied" in page and "“old”" in page


def test_deciding_an_import_already_decided_says_so(as_role, staged, reviewer2, client):
    signed_in(Client(), reviewer2).post(
        reverse("web-import-reject", args=[staged.pk]), {"reject-reason": "no"}
    )

    response = as_role("reviewer").post(reverse("web-import-approve", args=[staged.pk]), {})

    assert response.status_code == 400
    assert "already rejected" in response.content.decode()


def test_deciding_a_batch_that_was_never_staged_is_a_404(as_role, analyst):
    batch = invalid_import_batch(analyst)

    response = as_role("reviewer").post(reverse("web-import-approve", args=[batch.pk]), {})

    assert response.status_code == 404


def test_a_hash_that_reached_the_list_is_flagged_and_makes_applying_fail(
    as_role, analyst, analyst2, reviewer2, django_capture_on_commit_callbacks
):
    body, values = csv_rows(2)
    batch = checked_batch(analyst, body)
    approved_entry(analyst2, reviewer2, hashes=[{"algorithm": "md5", "value": values[2]}])
    client = as_role("reviewer")

    warned = client.get(reverse("web-import", args=[batch.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("web-import-approve", args=[batch.pk]), {})
    failed = client.get(reverse("web-import", args=[batch.pk])).content.decode()

    assert "1 row would fail" in warned and "line 3 reached the list" in warned
    batch.refresh_from_db()
    assert batch.status == ImportStatus.FAILED
    assert "Approved, but applying it failed" in failed
    assert "nothing was applied" in failed
    assert "Line 3" in failed
