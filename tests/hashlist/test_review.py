"""Proposals and their review, at the service layer (plus the four-eyes rule through the API
and the database).

Every approved proposal must change its entry, bump ``revision`` and write exactly one
``Change``; a rejected, withdrawn, stale or refused one must change nothing. Every service call
that succeeds appends one audit event and the chain stays verifiable.

Synthetic data only: every hash here is random bytes (``tests.conftest.synthetic``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.verify import verify_chain
from hashlist import imports, services
from hashlist.changelog import EntryState
from hashlist.models import (
    Change,
    Entry,
    Hash,
    ImportStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from hashsync.errors import Conflict, DomainError, FourEyesViolation, InvalidInput, PermissionDenied
from tests.conftest import synthetic
from tests.factories import GRADING, approved_entry, propose_entry
from tests.utils import audit_events_since, last_audit_event, last_audit_seq

pytestmark = pytest.mark.django_db

SECRET_NOTE = "INTERNAL-ANALYST-NOTE-do-not-distribute"


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def audited(action: str) -> Iterator[None]:
    """Assert that the block appends exactly one audit event, with ``action``."""
    before = last_audit_seq()
    yield
    new = audit_events_since(before)
    assert [e.action for e in new] == [action]


@contextmanager
def refused(error: type[DomainError], code: str) -> Iterator[None]:
    """Assert that the block raises ``error`` with ``code`` and writes no audit event."""
    before = last_audit_seq()
    with pytest.raises(error) as caught:
        yield
    assert caught.value.code == code
    assert last_audit_seq() == before


def _md5(value: str | None = None) -> dict[str, str]:
    return {"algorithm": "md5", "value": value or synthetic("md5")}


def _state_json(change: Change) -> str:
    return json.dumps([change.before, change.after])


def _assert_no_notes(change: Change) -> None:
    for state in (change.before, change.after):
        if state is not None:
            assert "notes" not in state
    assert SECRET_NOTE not in _state_json(change)


@pytest.fixture
def entry(analyst2: Any, reviewer2: Any) -> Entry:
    """An active entry with one md5 hash and internal notes, at revision 1."""
    proposal = services.proposal_create_entry(
        actor=analyst2, grading=GRADING, hashes=[_md5()], notes=SECRET_NOTE
    )
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry


@pytest.fixture
def two_hash_entry(analyst2: Any, reviewer2: Any) -> Entry:
    proposal = services.proposal_create_entry(
        actor=analyst2,
        grading=GRADING,
        hashes=[_md5(), {"algorithm": "sha1", "value": synthetic("sha1")}],
        notes=SECRET_NOTE,
    )
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry


def _hash_pairs(entry: Entry) -> list[list[str]]:
    return EntryState.of(entry).to_json()["hashes"]


def _approve(reviewer: Any, proposal: Proposal) -> Proposal:
    with audited("proposal.approve"):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk, reason="checked")
    proposal.refresh_from_db()
    return proposal


def _only_change(proposal: Proposal, kind: str) -> Change:
    changes = list(Change.objects.filter(proposal=proposal))
    assert len(changes) == 1
    change = changes[0]
    assert change.kind == kind
    assert change.release is None
    assert change.entry_id == proposal.entry_id
    _assert_no_notes(change)
    return change


# --- every proposal kind, proposed then approved -----------------------------------------------


def test_approved_create_proposal_creates_entry_with_one_change(analyst, reviewer):
    md5, sha256 = synthetic("md5"), synthetic("sha256")
    with audited("proposal.create"):
        proposal = services.proposal_create_entry(
            actor=analyst,
            grading={**GRADING, "baseline": True, "industry_class": "a1"},
            hashes=[_md5(md5.upper()), {"algorithm": "sha256", "value": sha256}],
            source="synthetic-test",
            notes=SECRET_NOTE,
            comment="new item",
        )
    assert proposal.status == ProposalStatus.PENDING
    assert proposal.entry is None
    assert Entry.objects.count() == 0  # nothing exists until a second person approves

    proposal = _approve(reviewer, proposal)

    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.reviewer == reviewer
    assert proposal.reviewed_at is not None
    assert proposal.review_reason == "checked"
    entry = Entry.objects.get(pk=proposal.entry_id)
    assert entry.revision == 1
    assert (entry.category, entry.age_group, entry.baseline, entry.industry_class) == (
        "A",
        "7-10",
        True,
        "A1",
    )
    assert entry.notes == SECRET_NOTE  # kept for analysts, but never in the change log
    change = _only_change(proposal, "create")
    assert change.before is None
    assert change.after == EntryState.of(entry).to_json()
    assert change.after["hashes"] == [["md5", md5], ["sha256", sha256]]  # canonical lowercase
    assert verify_chain().ok


def test_approved_regrade_changes_grading_and_bumps_revision(entry, analyst, reviewer):
    with audited("proposal.regrade"):
        proposal = services.proposal_regrade(
            actor=analyst, entry_id=entry.pk, grading={"category": "b"}, comment="regrade"
        )
    assert proposal.base_revision == 1
    entry.refresh_from_db()
    assert (entry.category, entry.revision) == ("A", 1)  # unchanged while pending

    proposal = _approve(reviewer, proposal)

    entry.refresh_from_db()
    assert (entry.category, entry.age_group, entry.revision) == ("B", "7-10", 2)
    change = _only_change(proposal, "regrade")
    assert change.before["category"] == "A"
    assert change.after["category"] == "B"
    assert change.before["hashes"] == change.after["hashes"]
    assert change.after == EntryState.of(entry).to_json()
    assert verify_chain().ok


def test_approved_add_hash_adds_the_hash_and_bumps_revision(entry, analyst, reviewer):
    sha1 = synthetic("sha1")
    with audited("proposal.add_hash"):
        proposal = services.proposal_add_hash(
            actor=analyst, entry_id=entry.pk, algorithm="SHA1", value=f"  {sha1.upper()}\n"
        )
    assert proposal.payload == {"hash": ["sha1", sha1]}
    assert not Hash.objects.filter(algorithm="sha1").exists()

    proposal = _approve(reviewer, proposal)

    entry.refresh_from_db()
    assert entry.revision == 2
    change = _only_change(proposal, "add_hash")
    assert ["sha1", sha1] not in change.before["hashes"]
    assert ["sha1", sha1] in change.after["hashes"]
    assert len(change.after["hashes"]) == len(change.before["hashes"]) + 1
    assert _hash_pairs(entry) == change.after["hashes"]
    assert verify_chain().ok


def test_approved_remove_hash_removes_the_hash_and_bumps_revision(
    two_hash_entry, analyst, reviewer
):
    sha1 = next(v for a, v in _hash_pairs(two_hash_entry) if a == "sha1")
    with audited("proposal.remove_hash"):
        proposal = services.proposal_remove_hash(
            actor=analyst,
            entry_id=two_hash_entry.pk,
            algorithm="sha1",
            value=sha1,
            comment="wrong frame",
        )

    proposal = _approve(reviewer, proposal)

    two_hash_entry.refresh_from_db()
    assert two_hash_entry.revision == 2
    change = _only_change(proposal, "remove_hash")
    assert ["sha1", sha1] in change.before["hashes"]
    assert ["sha1", sha1] not in change.after["hashes"]
    assert not Hash.objects.filter(entry=two_hash_entry, algorithm="sha1").exists()
    assert Hash.objects.filter(entry=two_hash_entry).count() == 1
    assert verify_chain().ok


def test_approved_retraction_retracts_entry_and_keeps_its_hashes(entry, analyst, reviewer):
    hashes = _hash_pairs(entry)
    with audited("proposal.retract"):
        proposal = services.proposal_retract(
            actor=analyst, entry_id=entry.pk, reason="not abuse material"
        )
    assert proposal.comment == "not abuse material"

    proposal = _approve(reviewer, proposal)

    entry.refresh_from_db()
    assert (entry.status, entry.revision) == ("retracted", 2)
    change = _only_change(proposal, "retract")
    assert (change.before["status"], change.after["status"]) == ("active", "retracted")
    # The hashes stay on the list (unique forever), so the same item cannot be re-added quietly.
    assert change.after["hashes"] == hashes == _hash_pairs(entry)
    assert verify_chain().ok


def test_change_log_states_never_contain_internal_notes(two_hash_entry, analyst, reviewer):
    pk = two_hash_entry.pk
    sha1 = next(v for a, v in _hash_pairs(two_hash_entry) if a == "sha1")
    for propose in (
        lambda: services.proposal_regrade(actor=analyst, entry_id=pk, grading={"category": "C"}),
        lambda: services.proposal_add_hash(
            actor=analyst, entry_id=pk, algorithm="pdq", value=synthetic("pdq")
        ),
        lambda: services.proposal_remove_hash(
            actor=analyst, entry_id=pk, algorithm="sha1", value=sha1, comment="dup"
        ),
        lambda: services.proposal_retract(actor=analyst, entry_id=pk, reason="wrong"),
    ):
        services.proposal_approve(actor=reviewer, proposal_id=propose().pk)
    changes = list(Change.objects.filter(entry_id=pk).order_by("id"))
    assert [c.kind for c in changes] == ["create", "regrade", "add_hash", "remove_hash", "retract"]
    for change in changes:
        _assert_no_notes(change)
    two_hash_entry.refresh_from_db()
    assert two_hash_entry.revision == 5
    assert two_hash_entry.notes == SECRET_NOTE


# --- rejection and withdrawal ------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_rejection_requires_a_reason(entry, analyst, reviewer, reason):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "C"}
    )
    with refused(InvalidInput, "invalid_input"):
        services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason=reason)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
    assert proposal.reviewer is None


def test_rejected_regrade_changes_nothing(entry, analyst, reviewer):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "C"}
    )
    changes_before = Change.objects.count()
    with audited("proposal.reject"):
        services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason="  grading holds ")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert proposal.reviewer == reviewer
    assert proposal.review_reason == "grading holds"
    entry.refresh_from_db()
    assert (entry.category, entry.revision) == ("A", 1)
    assert Change.objects.count() == changes_before
    assert verify_chain().ok


def test_rejected_create_proposal_creates_no_entry(analyst, reviewer):
    value = synthetic("md5")
    proposal = propose_entry(analyst, hashes=[_md5(value)])
    services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason="duplicate report")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert proposal.entry is None
    assert Entry.objects.count() == 0
    assert Change.objects.count() == 0
    # A rejected proposal does not hold its hash: it can be proposed again.
    assert propose_entry(analyst, hashes=[_md5(value)]).status == ProposalStatus.PENDING


def test_author_can_withdraw_own_pending_proposal(entry, analyst, reviewer):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "C"}
    )
    with audited("proposal.withdraw"):
        services.proposal_withdraw(actor=analyst, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.WITHDRAWN
    assert proposal.reviewer is None
    entry.refresh_from_db()
    assert (entry.category, entry.revision) == ("A", 1)
    with refused(Conflict, "proposal_not_pending"):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)


@pytest.mark.parametrize("other", ["analyst2", "reviewer"])
def test_only_the_author_can_withdraw_a_proposal(entry, analyst, other, request):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "C"}
    )
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_withdraw(actor=request.getfixturevalue(other), proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


# --- four eyes ---------------------------------------------------------------------------------


def test_reviewer_cannot_approve_own_proposal(reviewer):
    proposal = propose_entry(reviewer)
    with refused(FourEyesViolation, "four_eyes_violation"):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer, proposal.entry) == ("pending", None, None)
    assert Entry.objects.count() == 0
    assert Change.objects.count() == 0


def test_reviewer_cannot_reject_own_proposal(entry, reviewer):
    proposal = services.proposal_regrade(
        actor=reviewer, entry_id=entry.pk, grading={"category": "C"}
    )
    with refused(FourEyesViolation, "four_eyes_violation"):
        services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason="changed my mind")
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer) == ("pending", None)


def test_another_reviewer_can_approve_a_reviewers_proposal(reviewer, reviewer2):
    proposal = propose_entry(reviewer)
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer) == ("approved", reviewer2)


def test_reviewer_cannot_approve_own_proposal_via_api(api, reviewer):
    client = api(reviewer)
    created = client.post(
        "/api/v1/proposals/create-entry/",
        {"category": "A", "age_group": "3-6", "hashes": [_md5()]},
        format="json",
    )
    assert created.status_code == 201
    pk = created.json()["id"]

    approve = client.post(f"/api/v1/proposals/{pk}/approve/", {}, format="json")
    assert approve.status_code == 403
    assert approve.json()["error"]["code"] == "four_eyes_violation"
    reject = client.post(f"/api/v1/proposals/{pk}/reject/", {"reason": "mine"}, format="json")
    assert reject.status_code == 403
    assert reject.json()["error"]["code"] == "four_eyes_violation"

    queue = client.get("/api/v1/review-queue/")
    assert queue.status_code == 200
    assert pk not in [p["id"] for p in queue.json()["results"]]
    assert Proposal.objects.get(pk=pk).status == ProposalStatus.PENDING
    assert Entry.objects.count() == 0


def test_database_refuses_a_proposal_reviewed_by_its_author(reviewer):
    proposal = propose_entry(reviewer)
    with pytest.raises(IntegrityError), transaction.atomic():
        Proposal.objects.filter(pk=proposal.pk).update(
            status=ProposalStatus.APPROVED, reviewer=reviewer, reviewed_at=timezone.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Proposal.objects.create(
            kind=ProposalKind.REGRADE,
            author=reviewer,
            reviewer=reviewer,
            status=ProposalStatus.REJECTED,
            reviewed_at=timezone.now(),
        )
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer) == ("pending", None)


def test_database_accepts_a_proposal_reviewed_by_someone_else(reviewer, reviewer2):
    # The counterpart of the refusal above: proves the constraint is about four eyes only.
    proposal = propose_entry(reviewer)
    updated = Proposal.objects.filter(pk=proposal.pk).update(
        status=ProposalStatus.REJECTED, reviewer=reviewer2, reviewed_at=timezone.now()
    )
    assert updated == 1


def test_reviewer_cannot_approve_own_bulk_import(reviewer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    content = f"category,age_group,md5\nA,3-6,{synthetic('md5')}\n".encode()
    batch = imports.import_upload(
        actor=reviewer, file=SimpleUploadedFile("synthetic.csv", content, "text/csv")
    )
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED
    assert batch.proposal is not None
    with refused(FourEyesViolation, "four_eyes_violation"):
        services.proposal_approve(actor=reviewer, proposal_id=batch.proposal.pk)
    assert Entry.objects.count() == 0


@pytest.mark.parametrize("role", ["analyst", "member_admin", "auditor", "outsider"])
def test_only_reviewers_can_approve_or_reject(role, request, analyst2):
    actor = request.getfixturevalue(role)
    proposal = propose_entry(analyst2)
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_approve(actor=actor, proposal_id=proposal.pk)
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_reject(actor=actor, proposal_id=proposal.pk, reason="no")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


@pytest.mark.parametrize("role", ["member_admin", "auditor", "outsider", "anonymous"])
def test_roles_without_propose_permission_cannot_propose(role, request, entry):
    actor = AnonymousUser() if role == "anonymous" else request.getfixturevalue(role)
    count = Proposal.objects.count()
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_create_entry(actor=actor, grading=GRADING, hashes=[_md5()])
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_regrade(actor=actor, entry_id=entry.pk, grading={"category": "B"})
    with refused(PermissionDenied, "permission_denied"):
        services.proposal_retract(actor=actor, entry_id=entry.pk, reason="x")
    assert Proposal.objects.count() == count


# --- stale and already-decided proposals -------------------------------------------------------


def test_second_regrade_against_same_revision_is_refused_as_stale(
    entry, analyst, analyst2, reviewer
):
    first = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})
    second = services.proposal_regrade(
        actor=analyst2, entry_id=entry.pk, grading={"age_group": "0-2"}
    )
    assert first.base_revision == second.base_revision == 1
    services.proposal_approve(actor=reviewer, proposal_id=first.pk)

    with refused(Conflict, "proposal_stale"):
        services.proposal_approve(actor=reviewer, proposal_id=second.pk)

    second.refresh_from_db()
    assert second.status == ProposalStatus.PENDING
    entry.refresh_from_db()
    assert (entry.category, entry.age_group, entry.revision) == ("B", "7-10", 2)
    assert Change.objects.filter(entry=entry, kind="regrade").count() == 1
    # A stale proposal can still be rejected, which is what the error message asks for.
    services.proposal_reject(actor=reviewer, proposal_id=second.pk, reason="stale")
    assert verify_chain().ok


def test_stale_error_names_both_revisions(entry, analyst, analyst2, reviewer):
    first = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})
    second = services.proposal_regrade(actor=analyst2, entry_id=entry.pk, grading={"category": "C"})
    services.proposal_approve(actor=reviewer, proposal_id=first.pk)
    with pytest.raises(Conflict) as caught:
        services.proposal_approve(actor=reviewer, proposal_id=second.pk)
    assert caught.value.details == {"base_revision": 1, "current_revision": 2}


def test_pending_change_to_an_entry_retracted_since_is_refused_as_stale(
    entry, analyst, analyst2, reviewer
):
    regrade = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "C"})
    retract = services.proposal_retract(actor=analyst2, entry_id=entry.pk, reason="wrong")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)
    with refused(Conflict, "proposal_stale"):
        services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)
    entry.refresh_from_db()
    assert (entry.status, entry.category) == ("retracted", "A")


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_deciding_an_approved_proposal_again_is_refused(
    entry, analyst, reviewer, reviewer2, decision
):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    changes = Change.objects.count()
    with refused(Conflict, "proposal_not_pending"):
        getattr(services, f"proposal_{decision}")(
            actor=reviewer2, proposal_id=proposal.pk, reason="again"
        )
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer) == ("approved", reviewer)
    entry.refresh_from_db()
    assert entry.revision == 2
    assert Change.objects.count() == changes


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_deciding_a_rejected_proposal_again_is_refused(
    entry, analyst, reviewer, reviewer2, decision
):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}
    )
    services.proposal_reject(actor=reviewer, proposal_id=proposal.pk, reason="no")
    with refused(Conflict, "proposal_not_pending"):
        getattr(services, f"proposal_{decision}")(
            actor=reviewer2, proposal_id=proposal.pk, reason="again"
        )
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewer, proposal.review_reason) == (
        "rejected",
        reviewer,
        "no",
    )
    entry.refresh_from_db()
    assert (entry.category, entry.revision) == ("A", 1)


def test_withdrawing_a_decided_proposal_is_refused(entry, analyst, reviewer):
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    with refused(Conflict, "proposal_not_pending"):
        services.proposal_withdraw(actor=analyst, proposal_id=proposal.pk)


@pytest.mark.parametrize(
    ("proposal_id", "code"),
    [
        (0, "not_found"),
        (10**6, "not_found"),
        (2**70, "not_found"),
        ("abc", "invalid_input"),
        (None, "invalid_input"),
    ],
)
def test_approving_a_missing_or_malformed_proposal_id_is_refused(reviewer, proposal_id, code):
    with refused(DomainError, code):
        services.proposal_approve(actor=reviewer, proposal_id=proposal_id)


# --- hash uniqueness ---------------------------------------------------------------------------


def test_proposing_a_hash_already_on_the_list_is_refused(entry, analyst):
    (algorithm, value) = _hash_pairs(entry)[0]
    count = Proposal.objects.count()
    for spelling in (value, value.upper(), f" {value}\t"):
        with refused(Conflict, "hash_exists"):
            services.proposal_create_entry(
                actor=analyst,
                grading=GRADING,
                hashes=[_md5(), {"algorithm": algorithm, "value": spelling}],
            )
        with refused(Conflict, "hash_exists"):
            services.proposal_add_hash(
                actor=analyst, entry_id=entry.pk, algorithm=algorithm, value=spelling
            )
    assert Proposal.objects.count() == count


def test_hash_exists_error_names_the_entry_but_not_the_value(entry, analyst):
    (algorithm, value) = _hash_pairs(entry)[0]
    with pytest.raises(Conflict) as caught:
        services.proposal_create_entry(
            actor=analyst,
            grading=GRADING,
            hashes=[_md5(), {"algorithm": algorithm, "value": value}],
        )
    assert caught.value.details == {"index": 1, "algorithm": "md5", "entry_id": entry.pk}
    assert value not in caught.value.message


def test_proposing_a_hash_of_a_retracted_entry_is_refused(entry, analyst, reviewer):
    (algorithm, value) = _hash_pairs(entry)[0]
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="wrong")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)
    with refused(Conflict, "hash_exists"):
        services.proposal_create_entry(
            actor=analyst, grading=GRADING, hashes=[{"algorithm": algorithm, "value": value}]
        )


def test_second_of_two_creates_with_the_same_hash_fails_and_applies_nothing(
    analyst, analyst2, reviewer
):
    shared, fresh = synthetic("sha256"), synthetic("md5")
    first = propose_entry(analyst, hashes=[{"algorithm": "sha256", "value": shared}])
    # Both are accepted while pending: nothing is on the list yet.
    second = propose_entry(
        analyst2, hashes=[_md5(fresh), {"algorithm": "sha256", "value": shared.upper()}]
    )
    services.proposal_approve(actor=reviewer, proposal_id=first.pk)
    counts = (Entry.objects.count(), Hash.objects.count(), Change.objects.count())

    with refused(Conflict, "hash_exists"):
        services.proposal_approve(actor=reviewer, proposal_id=second.pk)

    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == counts
    assert not Hash.objects.filter(algorithm="md5").exists()  # the other hash was not inserted
    second.refresh_from_db()
    assert (second.status, second.entry, second.reviewer) == ("pending", None, None)
    assert verify_chain().ok


def test_remove_hash_refuses_the_last_hash(entry, analyst):
    (algorithm, value) = _hash_pairs(entry)[0]
    with refused(InvalidInput, "last_hash"):
        services.proposal_remove_hash(
            actor=analyst, entry_id=entry.pk, algorithm=algorithm, value=value, comment="x"
        )
    assert Hash.objects.filter(entry=entry).count() == 1


def test_remove_hash_refuses_a_hash_of_another_entry(two_hash_entry, entry, analyst):
    (algorithm, value) = _hash_pairs(entry)[0]
    with refused(InvalidInput, "hash_not_on_entry"):
        services.proposal_remove_hash(
            actor=analyst,
            entry_id=two_hash_entry.pk,
            algorithm=algorithm,
            value=value,
            comment="x",
        )


def test_remove_hash_requires_a_comment(two_hash_entry, analyst):
    (algorithm, value) = _hash_pairs(two_hash_entry)[0]
    with refused(InvalidInput, "invalid_input"):
        services.proposal_remove_hash(
            actor=analyst, entry_id=two_hash_entry.pk, algorithm=algorithm, value=value
        )


def test_two_removals_cannot_together_remove_every_hash(
    two_hash_entry, analyst, analyst2, reviewer
):
    (a1, v1), (a2, v2) = _hash_pairs(two_hash_entry)
    first = services.proposal_remove_hash(
        actor=analyst, entry_id=two_hash_entry.pk, algorithm=a1, value=v1, comment="x"
    )
    second = services.proposal_remove_hash(
        actor=analyst2, entry_id=two_hash_entry.pk, algorithm=a2, value=v2, comment="y"
    )
    services.proposal_approve(actor=reviewer, proposal_id=first.pk)
    with refused(Conflict, "proposal_stale"):
        services.proposal_approve(actor=reviewer, proposal_id=second.pk)
    assert Hash.objects.filter(entry=two_hash_entry).count() == 1


# --- retracted entries and other refusals ------------------------------------------------------


@pytest.fixture
def retracted(entry: Entry, analyst: Any, reviewer: Any) -> Entry:
    proposal = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="wrong")
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    entry.refresh_from_db()
    assert entry.status == "retracted"
    return entry


def _md5_of(entry: Entry) -> str:
    """The entry's md5 hash, or a fresh synthetic one for an entry that does not exist."""
    found = Hash.objects.filter(entry_id=entry.pk, algorithm="md5").first()
    return synthetic("md5") if found is None else _hash_pairs(entry)[0][1]


CHANGES_TO_AN_ENTRY: dict[str, Callable[[Any, Entry], Proposal]] = {
    "regrade": lambda actor, e: services.proposal_regrade(
        actor=actor, entry_id=e.pk, grading={"category": "C"}
    ),
    "add_hash": lambda actor, e: services.proposal_add_hash(
        actor=actor, entry_id=e.pk, algorithm="pdq", value=synthetic("pdq")
    ),
    "remove_hash": lambda actor, e: services.proposal_remove_hash(
        actor=actor, entry_id=e.pk, algorithm="md5", value=_md5_of(e), comment="x"
    ),
    "retract": lambda actor, e: services.proposal_retract(actor=actor, entry_id=e.pk, reason="x"),
}


@pytest.mark.parametrize("kind", CHANGES_TO_AN_ENTRY)
def test_changing_a_retracted_entry_is_refused(retracted, analyst, kind):
    count = Proposal.objects.count()
    with refused(Conflict, "entry_retracted"):
        CHANGES_TO_AN_ENTRY[kind](analyst, retracted)
    assert Proposal.objects.count() == count


@pytest.mark.parametrize("kind", CHANGES_TO_AN_ENTRY)
def test_changing_a_missing_entry_is_refused(analyst, kind):
    missing = Entry(pk=987654)
    with refused(DomainError, "not_found"):
        CHANGES_TO_AN_ENTRY[kind](analyst, missing)


def test_regrade_to_the_current_grading_is_refused(entry, analyst):
    with refused(InvalidInput, "invalid_input"):
        services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "a"})


@pytest.mark.parametrize(
    "grading",
    [
        {"category": "D"},
        {"age_group": "18+"},
        {"content_type": "audio"},
        {"industry_class": "Z9"},
        {"baseline": "perhaps"},
        {"colour": "red"},
    ],
)
def test_regrade_with_an_invalid_grading_is_refused(entry, analyst, grading):
    with refused(InvalidInput, "invalid_input"):
        services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading=grading)


@pytest.mark.parametrize(
    "hashes",
    [
        [],
        "not-a-list",
        [{"algorithm": "md5"}],
        [{"algorithm": "crc32", "value": "00000000"}],
        [{"algorithm": "md5", "value": "zz"}],
    ],
)
def test_create_proposal_with_invalid_hashes_is_refused(analyst, hashes):
    with pytest.raises(InvalidInput):
        services.proposal_create_entry(actor=analyst, grading=GRADING, hashes=hashes)
    assert Proposal.objects.count() == 0


def test_create_proposal_with_a_repeated_hash_is_refused(analyst):
    value = synthetic("md5")
    with refused(InvalidInput, "invalid_input"):
        services.proposal_create_entry(
            actor=analyst, grading=GRADING, hashes=[_md5(value), _md5(value.upper())]
        )


# --- the audit trail across a whole review -----------------------------------------------------


def test_every_successful_service_call_writes_one_audit_event(analyst, analyst2, reviewer):
    start = last_audit_seq()
    entry = approved_entry(analyst, reviewer)  # propose + approve
    pk = entry.pk
    calls: list[tuple[str, Callable[[], Any]]] = [
        (
            "proposal.regrade",
            lambda: services.proposal_regrade(
                actor=analyst, entry_id=pk, grading={"category": "B"}
            ),
        ),
        (
            "proposal.add_hash",
            lambda: services.proposal_add_hash(
                actor=analyst2, entry_id=pk, algorithm="sha1", value=synthetic("sha1")
            ),
        ),
    ]
    regrade = add = None
    for action, call in calls:
        with audited(action):
            result = call()
        if action == "proposal.regrade":
            regrade = result
        else:
            add = result
    assert regrade is not None and add is not None
    with audited("proposal.approve"):
        services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)
    with audited("proposal.reject"):
        services.proposal_reject(actor=reviewer, proposal_id=add.pk, reason="stale now")
    with audited("proposal.retract"):
        retract = services.proposal_retract(actor=analyst, entry_id=pk, reason="wrong")
    with audited("proposal.withdraw"):
        services.proposal_withdraw(actor=analyst, proposal_id=retract.pk)

    events = audit_events_since(start)
    assert [e.action for e in events] == [
        "proposal.create",
        "proposal.approve",
        "proposal.regrade",
        "proposal.add_hash",
        "proposal.approve",
        "proposal.reject",
        "proposal.retract",
        "proposal.withdraw",
    ]
    assert [e.actor for e in events] == [
        "analyst",
        "reviewer",
        "analyst",
        "analyst2",
        "reviewer",
        "reviewer",
        "analyst",
        "analyst",
    ]
    report = verify_chain()
    assert report.ok, report.problem
    newest = last_audit_event()
    assert newest is not None and newest.lane == 0
    assert report.head_seq == newest.lane_seq
