"""What ``audit_record`` writes: the events each service action records (actor, action, object,
before/after, reason, request id), nothing for a refused or rolled-back action, and each event
chained to the one before. Runs on SQLite and PostgreSQL; every hash is synthetic.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from audit.chain import GENESIS_DIGEST, digest_of
from audit.models import AuditChainHead, AuditEvent
from audit.verify import verify_chain
from hashlist import services
from hashlist.models import ImportBatch, ImportStatus
from tests.conftest import synthetic
from tests.factories import GRADING, approved_entry, propose_entry
from tests.utils import audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db

REQUEST_ID = "test-req-12345678"
API = "/api/v1"
FULL_GRADING = {**GRADING, "baseline": None, "industry_class": ""}
# A proposal records what the analyst saw; facts not given are recorded as unknown.
UNKNOWN_FACTS = {
    "pubertal_stage": "unknown",
    "activity": "unknown",
    "origin": "unknown",
    "self_generated": "unknown",
}


# --- Helpers ----------------------------------------------------------------------------------


def post_audited(client: Any, url: str, data: Any = None, **extra: Any) -> tuple[Any, AuditEvent]:
    """POST with a request id; return the response and the single event the request appended."""
    before = last_audit_seq()
    response = client.post(url, data, HTTP_X_REQUEST_ID=REQUEST_ID, **extra)
    assert response.status_code in (200, 201, 202), response.content
    assert response["X-Request-ID"] == REQUEST_ID
    appended = audit_events_since(before)
    assert len(appended) == 1, [e.action for e in appended]
    return response, appended[0]


def assert_event(
    event: AuditEvent,
    *,
    actor: Any,
    action: str,
    object_type: str,
    object_id: Any,
    before: Any,
    after: Any,
    reason: str,
    request_id: str | None = REQUEST_ID,
) -> None:
    """Check every recorded field; ``request_id=None`` leaves the request id unchecked."""
    assert (event.actor, event.actor_id) == (
        (actor.get_username(), actor.pk) if actor is not None else ("system", None)
    )
    assert (event.action, event.object_type, event.object_id) == (
        action,
        object_type,
        str(object_id),
    )
    assert event.before == before
    assert event.after == after
    assert event.reason == reason
    if request_id is not None:
        assert event.request_id == request_id


# --- What is recorded -------------------------------------------------------------------------


def test_create_entry_proposal_records_author_payload_comment_and_request_id(analyst, api):
    value = synthetic("sha256")
    response, event = post_audited(
        api(analyst),
        f"{API}/proposals/create-entry/",
        {
            **GRADING,
            "hashes": [{"algorithm": "sha256", "value": value.upper()}],
            "source": "synthetic-test",
            "comment": "new item",
        },
    )
    assert_event(
        event,
        actor=analyst,
        action="proposal.create",
        object_type="proposal",
        object_id=response.data["id"],
        before=None,
        reason="new item",
        after={
            "kind": "create",
            "entry": None,
            "payload": {
                "grading": FULL_GRADING,
                "facts": UNKNOWN_FACTS,
                "hashes": [["sha256", value]],
                "source": "synthetic-test",
                "notes": "",
            },
        },
    )


def test_regrade_proposal_records_the_complete_new_grading(analyst, reviewer, api):
    entry = approved_entry(analyst, reviewer)
    response, event = post_audited(
        api(analyst),
        f"{API}/proposals/regrade/",
        {"entry": entry.pk, "category": "B", "comment": "re-assessed"},
    )
    assert_event(
        event,
        actor=analyst,
        action="proposal.regrade",
        object_type="proposal",
        object_id=response.data["id"],
        before=None,
        reason="re-assessed",
        after={
            "kind": "regrade",
            "entry": entry.pk,
            "payload": {"grading": {**FULL_GRADING, "category": "B"}, "facts": UNKNOWN_FACTS},
        },
    )


def test_add_hash_proposal_records_the_hash_in_canonical_form(analyst, reviewer, api):
    entry = approved_entry(analyst, reviewer)
    value = synthetic("md5")
    response, event = post_audited(
        api(analyst),
        f"{API}/proposals/add-hash/",
        {"entry": entry.pk, "algorithm": "md5", "value": value.upper(), "comment": "variant"},
    )
    assert_event(
        event,
        actor=analyst,
        action="proposal.add_hash",
        object_type="proposal",
        object_id=response.data["id"],
        before=None,
        reason="variant",
        after={"kind": "add_hash", "entry": entry.pk, "payload": {"hash": ["md5", value]}},
    )


def test_remove_hash_proposal_records_the_hash_and_the_required_comment(analyst, reviewer, api):
    keep, drop = synthetic("md5"), synthetic("sha1")
    entry = approved_entry(
        analyst,
        reviewer,
        hashes=[{"algorithm": "md5", "value": keep}, {"algorithm": "sha1", "value": drop}],
    )
    response, event = post_audited(
        api(analyst),
        f"{API}/proposals/remove-hash/",
        {"entry": entry.pk, "algorithm": "sha1", "value": drop, "comment": "wrong file"},
    )
    assert_event(
        event,
        actor=analyst,
        action="proposal.remove_hash",
        object_type="proposal",
        object_id=response.data["id"],
        before=None,
        reason="wrong file",
        after={"kind": "remove_hash", "entry": entry.pk, "payload": {"hash": ["sha1", drop]}},
    )


def test_retract_proposal_records_the_reason(analyst, reviewer, api):
    entry = approved_entry(analyst, reviewer)
    response, event = post_audited(
        api(analyst), f"{API}/proposals/retract/", {"entry": entry.pk, "reason": "false positive"}
    )
    assert_event(
        event,
        actor=analyst,
        action="proposal.retract",
        object_type="proposal",
        object_id=response.data["id"],
        before=None,
        reason="false positive",
        after={"kind": "retract", "entry": entry.pk, "payload": {}},
    )


def test_approval_records_reviewer_status_change_entry_author_and_reason(analyst, reviewer, api):
    proposal = propose_entry(analyst)
    _, event = post_audited(
        api(reviewer), f"{API}/proposals/{proposal.pk}/approve/", {"reason": "checked twice"}
    )
    proposal.refresh_from_db()
    assert proposal.entry_id is not None
    assert_event(
        event,
        actor=reviewer,
        action="proposal.approve",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": "pending"},
        reason="checked twice",
        after={
            "status": "approved",
            "kind": "create",
            "entry": proposal.entry_id,
            "author": analyst.pk,
        },
    )


def test_rejection_records_reviewer_status_change_and_reason(analyst, reviewer, api):
    proposal = propose_entry(analyst)
    _, event = post_audited(
        api(reviewer), f"{API}/proposals/{proposal.pk}/reject/", {"reason": "not in scope"}
    )
    assert_event(
        event,
        actor=reviewer,
        action="proposal.reject",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": "pending"},
        after={"status": "rejected"},
        reason="not in scope",
    )


def test_withdrawal_records_author_and_status_change(analyst, api):
    proposal = propose_entry(analyst)
    _, event = post_audited(api(analyst), f"{API}/proposals/{proposal.pk}/withdraw/")
    assert_event(
        event,
        actor=analyst,
        action="proposal.withdraw",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": "pending"},
        after={"status": "withdrawn"},
        reason="",
    )


def test_import_upload_staging_and_approval_are_each_recorded(
    analyst, reviewer, api, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    content = f"category,age_group,md5\nA,7-10,{synthetic('md5')}\n".encode()
    start = last_audit_seq()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(analyst).post(
            f"{API}/imports/",
            {"file": SimpleUploadedFile("batch.csv", content), "comment": "weekly export"},
            format="multipart",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
    assert response.status_code == 202, response.content
    upload, staged = audit_events_since(start)
    batch = ImportBatch.objects.get(pk=response.data["id"])
    assert batch.status == ImportStatus.STAGED
    assert_event(
        upload,
        actor=analyst,
        action="import.upload",
        object_type="import",
        object_id=batch.pk,
        before=None,
        reason="",
        after={"name": "batch.csv", "format": "csv", "size": len(content), "sha256": batch.sha256},
    )
    # Validation runs in a worker, on nobody's behalf.
    assert_event(
        staged,
        actor=None,
        action="import.staged",
        object_type="import",
        object_id=batch.pk,
        before=None,
        after={"rows": 1, "proposal": batch.proposal_id},
        reason="",
        request_id=None,
    )

    _, approval = post_audited(
        api(reviewer), f"{API}/proposals/{batch.proposal_id}/approve/", {"reason": "sampled"}
    )
    assert_event(
        approval,
        actor=reviewer,
        action="proposal.approve",
        object_type="proposal",
        object_id=batch.proposal_id,
        before={"status": "pending"},
        reason="sampled",
        after={"status": "approved", "kind": "import", "entry": None, "author": analyst.pk},
    )


def test_invalid_import_is_recorded_as_a_system_event_with_the_error_count(
    analyst, api, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    content = f"category,age_group,md5\nZ,7-10,{synthetic('md5')}\nA,7-10,nothex\n".encode()
    start = last_audit_seq()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(analyst).post(
            f"{API}/imports/",
            {"file": SimpleUploadedFile("bad.csv", content)},
            format="multipart",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
    assert response.status_code == 202, response.content
    upload, invalid = audit_events_since(start)
    batch = ImportBatch.objects.get(pk=response.data["id"])
    assert batch.status == ImportStatus.INVALID
    assert (upload.action, upload.actor, upload.request_id) == (
        "import.upload",
        analyst.username,
        REQUEST_ID,
    )
    assert_event(
        invalid,
        actor=None,
        action="import.invalid",
        object_type="import",
        object_id=batch.pk,
        before=None,
        after={"rows": 2, "errors": 2},
        reason="",
        request_id=None,
    )


def test_refused_actions_append_no_event(analyst, reviewer, api):
    own = propose_entry(reviewer)
    decided = propose_entry(analyst)
    services.proposal_reject(actor=reviewer, proposal_id=decided.pk, reason="no")
    before = last_audit_seq()

    own_approval = api(reviewer).post(f"{API}/proposals/{own.pk}/approve/", {})
    second_decision = api(reviewer).post(f"{API}/proposals/{decided.pk}/approve/", {})

    assert own_approval.status_code == 403
    assert own_approval.json()["error"]["code"] == "four_eyes_violation"
    assert second_decision.status_code == 409
    assert second_decision.json()["error"]["code"] == "proposal_not_pending"
    assert last_audit_seq() == before


def test_event_recorded_inside_a_rolled_back_transaction_leaves_no_gap(analyst):
    before = last_audit_seq()
    with pytest.raises(RuntimeError), transaction.atomic():
        propose_entry(analyst)
        raise RuntimeError("the caller's transaction fails after the event was written")
    lane_before = AuditChainHead.objects.filter(lane=0).values_list("seq", flat=True).first() or 0
    propose_entry(analyst)
    # The lane's place is given back; the global seq (a database sequence) may skip a number.
    [event] = audit_events_since(before)
    assert (event.lane, event.lane_seq) == (0, lane_before + 1)
    assert verify_chain().ok


def test_unacceptable_request_id_is_replaced_not_recorded(analyst, api):
    before = last_audit_seq()
    response = api(analyst).post(
        f"{API}/proposals/create-entry/",
        {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}]},
        HTTP_X_REQUEST_ID="evil\nid with spaces",
    )
    assert response.status_code == 201
    (event,) = audit_events_since(before)
    assert event.request_id == response["X-Request-ID"]
    assert len(event.request_id) == 32
    assert "evil" not in event.request_id


def test_events_are_chained_to_their_predecessor_from_the_genesis_digest(history):
    everything = list(AuditEvent.objects.filter(lane=0).order_by("lane_seq"))
    assert everything[0].lane_seq == 1
    assert everything[0].prev_digest == GENESIS_DIGEST
    for earlier, later in itertools.pairwise(everything):
        assert later.lane_seq == earlier.lane_seq + 1
        assert later.seq > earlier.seq
        assert later.prev_digest == earlier.digest
        assert later.digest == digest_of(later)
    head = AuditChainHead.objects.get(lane=0)
    assert (head.seq, head.digest) == (everything[-1].lane_seq, everything[-1].digest)
