"""The review pages (web/views/review.py): a proposal's page with before and after, the
decisions (approve, reject, withdraw) through the API's services, and the review queue.

Synthetic hashes only (``tests.conftest.synthetic``)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import NoReverseMatch, reverse

from hashlist import imports, services
from hashlist.models import Entry, ImportStatus, Proposal, ProposalStatus
from hashsync.celery import app as celery_app
from hashsync_client.algorithms import get_algorithm
from tests.conftest import synthetic
from tests.factories import approved_entry, propose_entry
from tests.utils import audit_events_since, last_audit_seq
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

ROLES = ("analyst", "reviewer", "member_admin", "auditor", "outsider", "anonymous")


@pytest.fixture
def people(analyst, reviewer, member_admin, auditor, outsider) -> dict[str, Any]:
    return {
        "analyst": analyst,
        "reviewer": reviewer,
        "member_admin": member_admin,
        "auditor": auditor,
        "outsider": outsider,
        "anonymous": None,
    }


@pytest.fixture
def entry(analyst2, reviewer2) -> Entry:
    return approved_entry(
        analyst2,
        reviewer2,
        hashes=[
            {"algorithm": "md5", "value": synthetic("md5")},
            {"algorithm": "sha1", "value": synthetic("sha1")},
        ],
    )


def _client(user: Any) -> Client:
    client = Client()
    return client if user is None else signed_in(client, user)


def _regrade(author: Any, entry: Entry, **grading: str) -> Proposal:
    return services.proposal_regrade(
        actor=author, entry_id=entry.pk, grading=grading, comment="synthetic recheck"
    )


def _status(proposal: Proposal) -> str:
    proposal.refresh_from_db()
    return proposal.status


def _canonical(entry: Entry, algorithm: str) -> str:
    return get_algorithm(algorithm).canonical(entry.hashes.get(algorithm=algorithm).value)


# --- Who may open what -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_proposal_page_is_for_people_who_may_view_proposals(role, people, analyst2):
    proposal = propose_entry(analyst2)
    response = _client(people[role]).get(reverse("web-proposal", args=[proposal.pk]))
    if role in ("analyst", "reviewer", "auditor"):
        assert response.status_code == 200
    elif role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_review_queue_is_for_reviewers(role, people):
    response = _client(people[role]).get(reverse("web-review-queue"))
    if role == "reviewer":
        assert response.status_code == 200
    elif role == "anonymous":
        assert response.status_code == 302
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ["analyst", "member_admin", "auditor", "outsider", "anonymous"])
def test_only_reviewers_can_post_a_decision(role, people, analyst2):
    proposal = propose_entry(analyst2)
    client = _client(people[role])
    client.post(reverse("web-proposal-approve", args=[proposal.pk]), {})
    client.post(reverse("web-proposal-reject", args=[proposal.pk]), {"reject-reason": "no"})
    assert _status(proposal) == ProposalStatus.PENDING


def test_an_unknown_proposal_is_a_not_found_page(reviewer):
    response = _client(reviewer).get(reverse("web-proposal", args=[999999]))
    assert response.status_code == 404


def test_decisions_are_posts_only(reviewer, analyst2):
    proposal = propose_entry(analyst2)
    response = _client(reviewer).get(reverse("web-proposal-approve", args=[proposal.pk]))
    assert response.status_code == 405
    assert _status(proposal) == ProposalStatus.PENDING


# --- The page: who, when, before and after -----------------------------------------------------


def test_a_reviewer_sees_who_proposed_what_and_both_decisions(reviewer, analyst2):
    md5 = synthetic("md5")
    proposal = propose_entry(analyst2, hashes=[{"algorithm": "md5", "value": md5}])
    html = _client(reviewer).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert "analyst2" in html and "Pending review" in html
    assert "No entry yet: this proposal creates one." in html
    assert f'data-copy="{md5}"' in html
    assert reverse("web-proposal-approve", args=[proposal.pk]) in html
    assert reverse("web-proposal-reject", args=[proposal.pk]) in html
    # Approve comes before reject in the tab order, each with its reason box first.
    order = [
        html.index('id="id_approve-reason"'),
        html.index(">Approve</button>"),
        html.index('id="id_reject-reason"'),
        html.index(">Reject</button>"),
    ]
    assert order == sorted(order)


def test_the_author_is_told_why_they_cannot_decide(reviewer, entry):
    proposal = _regrade(reviewer, entry, category="C")
    html = _client(reviewer).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert "You proposed this, so you cannot approve or reject it" in html
    assert "four-eyes" in html
    assert reverse("web-proposal-approve", args=[proposal.pk]) not in html


def test_an_analyst_and_an_auditor_read_the_page_without_decisions(analyst, auditor, analyst2):
    proposal = propose_entry(analyst2)
    for person in (analyst, auditor):
        html = _client(person).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
        assert reverse("web-proposal-approve", args=[proposal.pk]) not in html
        assert reverse("web-proposal-withdraw", args=[proposal.pk]) not in html
        assert "Waiting for a reviewer" in html


def test_a_regrade_marks_the_changed_fields_in_words(reviewer, analyst, entry):
    proposal = _regrade(analyst, entry, category="C", age_group="unknown")
    html = _client(reviewer).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert html.count('<dd class="changed">') == 4  # two fields, before and after
    assert html.count('<span class="mark">changed</span>') == 4
    assert "Category A" in html and "Category C" in html
    assert "2 differences marked" in html


def test_added_and_removed_hashes_are_marked_in_words(reviewer, analyst, entry):
    sha256 = synthetic("sha256")
    adding = services.proposal_add_hash(
        actor=analyst, entry_id=entry.pk, algorithm="sha256", value=sha256
    )
    removing = services.proposal_remove_hash(
        actor=analyst,
        entry_id=entry.pk,
        algorithm="sha1",
        value=_canonical(entry, "sha1"),
        comment="not this item's",
    )
    client = _client(reviewer)
    added = client.get(reverse("web-proposal", args=[adding.pk])).content.decode()
    assert re.search(
        r'<li class="added">.*?' + sha256 + r'.*?<span class="mark">added</span>', added, re.S
    )
    removed = client.get(reverse("web-proposal", args=[removing.pk])).content.decode()
    assert re.search(
        r'<li class="removed">.*?'
        + _canonical(entry, "sha1")
        + r'.*?<span class="mark">removed</span>',
        removed,
        re.S,
    )


def test_a_retraction_shows_the_status_changing(reviewer, analyst, entry):
    proposal = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="wrong")
    html = _client(reviewer).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert re.search(r'<dd class="changed">Retracted <span class="mark">changed</span>', html)


def test_an_approved_proposal_shows_what_it_changed_and_who_approved(
    reviewer, analyst, entry, reviewer2
):
    proposal = _regrade(analyst, entry, category="B")
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk, reason="checked")
    html = _client(reviewer).get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert "Approved by" in html and "reviewer2" in html and "checked" in html
    assert '<span class="mark">changed</span>' in html
    assert reverse("web-proposal-approve", args=[proposal.pk]) not in html


# --- Deciding ----------------------------------------------------------------------------------


def test_reviewer_approves_and_goes_on_to_the_next_proposal(reviewer, analyst, entry, caplog):
    caplog.set_level(logging.DEBUG)
    first = _regrade(analyst, entry, category="B")
    second = propose_entry(analyst)
    client = _client(reviewer)
    seq = last_audit_seq()
    response = client.post(
        reverse("web-proposal-approve", args=[first.pk]), {"approve-reason": "looks right"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web-proposal", args=[second.pk])
    assert _status(first) == ProposalStatus.APPROVED
    first.refresh_from_db()
    assert first.reviewer == reviewer and first.review_reason == "looks right"
    assert [e.action for e in audit_events_since(seq)] == ["proposal.approve"]
    page = client.get(response["Location"])
    assert f"Proposal {first.pk} approved".encode() in page.content


def test_deciding_the_last_proposal_goes_back_to_the_empty_queue(reviewer, analyst, entry):
    proposal = _regrade(analyst, entry, category="B")
    client = _client(reviewer)
    response = client.post(
        reverse("web-proposal-reject", args=[proposal.pk]), {"reject-reason": "not so"}
    )
    assert response["Location"] == reverse("web-review-queue")
    assert _status(proposal) == ProposalStatus.REJECTED
    page = client.get(response["Location"])
    assert f"Proposal {proposal.pk} rejected".encode() in page.content
    assert b"The queue is empty" in page.content


def test_the_next_proposal_wraps_round_to_one_skipped_earlier(reviewer, analyst, entry):
    skipped = propose_entry(analyst)
    decided = _regrade(analyst, entry, category="B")
    response = _client(reviewer).post(
        reverse("web-proposal-approve", args=[decided.pk]), {"approve-reason": ""}
    )
    assert response["Location"] == reverse("web-proposal", args=[skipped.pk])


def test_rejecting_needs_a_reason(reviewer, analyst, entry):
    proposal = _regrade(analyst, entry, category="B")
    response = _client(reviewer).post(
        reverse("web-proposal-reject", args=[proposal.pk]), {"reject-reason": "  "}
    )
    assert response.status_code == 400
    assert b'id="id_reject-reason-error"' in response.content
    assert b"Say why you reject it" in response.content
    assert _status(proposal) == ProposalStatus.PENDING


def test_approving_your_own_proposal_is_refused_by_the_service(reviewer, entry):
    proposal = _regrade(reviewer, entry, category="B")
    response = _client(reviewer).post(reverse("web-proposal-approve", args=[proposal.pk]), {})
    assert response.status_code == 400
    assert b"a different reviewer must approve it" in response.content
    assert _status(proposal) == ProposalStatus.PENDING


def test_a_proposal_decided_meanwhile_says_so(reviewer, reviewer2, analyst, entry):
    proposal = _regrade(analyst, entry, category="B")
    services.proposal_reject(actor=reviewer2, proposal_id=proposal.pk, reason="no")
    response = _client(reviewer).post(reverse("web-proposal-approve", args=[proposal.pk]), {})
    assert response.status_code == 400
    assert b"is already rejected" in response.content
    assert _status(proposal) == ProposalStatus.REJECTED


def test_a_stale_proposal_says_what_changed_and_cannot_be_approved(
    reviewer, reviewer2, analyst, analyst2, entry
):
    stale = _regrade(analyst, entry, age_group="unknown")
    first = _regrade(analyst2, entry, category="C")
    services.proposal_approve(actor=reviewer2, proposal_id=first.pk)
    client = _client(reviewer)
    html = client.get(reverse("web-proposal", args=[stale.pk])).content.decode()
    assert "Stale" in html
    assert f"Entry {entry.pk} changed after this was proposed" in html
    assert "revision 1 then; it is at revision 2 now" in html
    assert "Category: Category A → Category C" in html
    assert reverse("web-proposal", args=[first.pk]) in html
    assert reverse("web-proposal-approve", args=[stale.pk]) not in html
    assert reverse("web-proposal-reject", args=[stale.pk]) in html
    # Posted anyway (an old tab): the service refuses and the page says why.
    response = client.post(reverse("web-proposal-approve", args=[stale.pk]), {})
    assert response.status_code == 400
    assert b"changed after proposal" in response.content
    assert _status(stale) == ProposalStatus.PENDING


def test_a_hash_that_reached_the_list_meanwhile_is_flagged(reviewer, reviewer2, analyst, analyst2):
    md5 = synthetic("md5")
    late = propose_entry(analyst, hashes=[{"algorithm": "md5", "value": md5}])
    approved = approved_entry(analyst2, reviewer2)
    page = _client(reviewer).get(reverse("web-proposal", args=[late.pk])).content.decode()
    assert "is now on the list" not in page
    other = services.proposal_add_hash(
        actor=analyst2, entry_id=approved.pk, algorithm="md5", value=md5.upper()
    )
    # The same hash cannot be proposed twice while it is on the list, but it can be while both
    # proposals wait: approving one makes the other unapprovable.
    services.proposal_approve(actor=reviewer2, proposal_id=other.pk)
    page = _client(reviewer).get(reverse("web-proposal", args=[late.pk])).content.decode()
    assert "The MD5 hash of this proposal is now on the list, on" in page
    # With the entry pages built, the entry is named by a link to it.
    assert f'href="/entries/{approved.pk}/">entry {approved.pk}</a>' in page


# --- Withdrawing -------------------------------------------------------------------------------


def test_the_author_withdraws_a_pending_proposal(analyst, entry):
    proposal = _regrade(analyst, entry, category="B")
    client = _client(analyst)
    page = client.get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert reverse("web-proposal-withdraw", args=[proposal.pk]) in page
    response = client.post(reverse("web-proposal-withdraw", args=[proposal.pk]))
    assert response["Location"] == reverse("web-proposal", args=[proposal.pk])
    assert _status(proposal) == ProposalStatus.WITHDRAWN
    assert b"Withdrawn" in client.get(response["Location"]).content


def test_someone_else_cannot_withdraw_a_proposal(analyst, analyst2, entry):
    proposal = _regrade(analyst2, entry, category="B")
    response = _client(analyst).post(reverse("web-proposal-withdraw", args=[proposal.pk]))
    assert response.status_code == 400
    assert b"Only the author of a proposal can withdraw it." in response.content
    assert _status(proposal) == ProposalStatus.PENDING


def test_a_decided_proposal_cannot_be_withdrawn(analyst, reviewer2, entry):
    proposal = _regrade(analyst, entry, category="B")
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    client = _client(analyst)
    html = client.get(reverse("web-proposal", args=[proposal.pk])).content.decode()
    assert reverse("web-proposal-withdraw", args=[proposal.pk]) not in html
    response = client.post(reverse("web-proposal-withdraw", args=[proposal.pk]))
    assert response.status_code == 400
    assert b"is already approved" in response.content


# --- The queue ---------------------------------------------------------------------------------


def test_the_queue_lists_other_peoples_pending_proposals_oldest_first(reviewer, analyst, entry):
    older = _regrade(analyst, entry, category="B")
    newer = propose_entry(analyst)
    own = _regrade(reviewer, entry, category="C")
    html = _client(reviewer).get(reverse("web-review-queue")).content.decode()
    assert "data-keyboard-list" in html
    assert html.count("<tr data-row-link>") == 2
    older_at = html.index(f'href="{reverse("web-proposal", args=[older.pk])}"')
    newer_at = html.index(f'href="{reverse("web-proposal", args=[newer.pk])}"')
    assert older_at < newer_at
    assert reverse("web-proposal", args=[own.pk]) not in html
    assert "Your own 1 pending proposal is not listed" in html
    assert "category A → B" in html


def test_the_queue_pages_by_key(reviewer, analyst):
    proposals = [propose_entry(analyst) for _ in range(3)]
    client = _client(reviewer)
    first = client.get(reverse("web-review-queue"), {"limit": 2}).content.decode()
    assert first.count("<tr data-row-link>") == 2
    match = re.search(r'href="\?after=(\d+)" rel="next"', first)
    assert match and int(match.group(1)) == proposals[1].pk
    second = client.get(reverse("web-review-queue"), {"limit": 2, "after": match.group(1)})
    html = second.content.decode()
    assert html.count("<tr data-row-link>") == 1
    assert reverse("web-proposal", args=[proposals[2].pk]) in html
    assert "First page" in html and 'rel="next"' not in html


def test_the_queue_filters_by_kind(reviewer, analyst, entry):
    regrade = _regrade(analyst, entry, category="B")
    created = propose_entry(analyst)
    html = _client(reviewer).get(reverse("web-review-queue"), {"kind": "regrade"}).content.decode()
    assert reverse("web-proposal", args=[regrade.pk]) in html
    assert reverse("web-proposal", args=[created.pk]) not in html


@pytest.mark.parametrize(
    "query", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"kind": "nope"}]
)
def test_bad_queue_parameters_are_errors_not_crashes(reviewer, query):
    response = _client(reviewer).get(reverse("web-review-queue"), query)
    assert response.status_code == 400
    assert b"error-summary" in response.content


def test_an_empty_queue_says_so(reviewer):
    html = _client(reviewer).get(reverse("web-review-queue")).content.decode()
    assert "The queue is empty" in html
    assert "data-keyboard-list" not in html


def test_a_stale_proposal_is_flagged_in_the_queue(reviewer, reviewer2, analyst, analyst2, entry):
    _regrade(analyst, entry, category="B")
    services.proposal_approve(
        actor=reviewer2, proposal_id=_regrade(analyst2, entry, category="C").pk
    )
    html = _client(reviewer).get(reverse("web-review-queue")).content.decode()
    assert '<span class="badge warn">Stale</span>' in html


# --- Imports -----------------------------------------------------------------------------------


@pytest.fixture
def staged_import(analyst: Any, settings: Any, tmp_path: Any, monkeypatch: Any) -> Proposal:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    body = "category,age_group,content_type,md5\n" + "".join(
        f"{c},3-6,image,{synthetic('md5')}\n" for c in "AAB"
    )
    batch = imports.import_upload(
        actor=analyst, file=SimpleUploadedFile("synthetic.csv", body.encode())
    )
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED and batch.proposal is not None
    return batch.proposal


def test_an_import_proposal_shows_its_batch_or_links_to_its_page(reviewer, staged_import):
    client = _client(reviewer)
    html = client.get(reverse("web-proposal", args=[staged_import.pk])).content.decode()
    assert "synthetic.csv" in html and "3 valid" in html
    try:
        import_url = reverse("web-import", args=[staged_import.import_batch.pk])
    except NoReverseMatch:  # the import pages are another area's
        import_url = None
    if import_url:
        assert import_url in html
    else:
        assert "Staged rows by grading" in html
        assert reverse("web-proposal-approve", args=[staged_import.pk]) in html
    queue = client.get(reverse("web-review-queue")).content.decode()
    assert "3 rows from synthetic.csv" in queue


def test_a_reviewer_approves_an_import_from_its_proposal(
    reviewer, staged_import, django_capture_on_commit_callbacks
):
    client = _client(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("web-proposal-approve", args=[staged_import.pk]), {"approve-reason": "sampled"}
        )
    assert response.status_code == 302
    assert _status(staged_import) == ProposalStatus.APPROVED
    assert Entry.objects.count() == 3  # applied by the (eager) task after commit


# --- Forms and privacy -------------------------------------------------------------------------


def test_decisions_need_the_csrf_token(reviewer, analyst, entry):
    proposal = _regrade(analyst, entry, category="B")
    client = signed_in(Client(enforce_csrf_checks=True), reviewer)
    for name in ("web-proposal-approve", "web-proposal-reject"):
        response = client.post(reverse(name, args=[proposal.pk]), {"reject-reason": "x"})
        assert response.status_code == 403
    assert _status(proposal) == ProposalStatus.PENDING


def test_no_hash_reaches_a_url_a_title_or_a_log(reviewer, analyst, caplog):
    caplog.set_level(logging.DEBUG)
    md5 = synthetic("md5")
    proposal = propose_entry(analyst, hashes=[{"algorithm": "md5", "value": md5}])
    client = _client(reviewer)
    page = client.get(reverse("web-proposal", args=[proposal.pk]))
    queue = client.get(reverse("web-review-queue"))
    refused = client.post(reverse("web-proposal-reject", args=[proposal.pk]), {})
    approved = client.post(reverse("web-proposal-approve", args=[proposal.pk]), {})
    assert md5.encode() in page.content
    for response in (page, queue, refused):
        title = re.search(rb"<title>(.*?)</title>", response.content, re.S)
        assert title and md5.encode() not in title.group(1)
    assert md5 not in approved["Location"]
    assert md5.encode() not in queue.content  # the queue summarises; it never lists values
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert md5 not in logged
