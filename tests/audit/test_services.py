"""The audit trail: what each service action records, the database's refusal to change or
remove an audit row, and the hash chain's detection of rows changed behind the triggers' back.

Runs on SQLite and PostgreSQL; ``append_only_triggers_off`` switches the append-only triggers
off the way someone with the table owner's rights could, so tampering can be simulated on both.
Every hash is synthetic.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from hashlist import services
from hashlist.audit import GENESIS_DIGEST, digest_of, event_digest, verify_chain
from hashlist.models import AuditChainHead, AuditEvent, ImportBatch, ImportStatus
from tests.conftest import synthetic
from tests.factories import GRADING, approved_entry, propose_entry

pytestmark = pytest.mark.django_db

REQUEST_ID = "test-req-12345678"
API = "/api/v1"
# The SQL the migration uses to create the SQLite triggers, so the tamper helper restores
# exactly what production has.
MIGRATION = importlib.import_module("hashlist.migrations.0002_audit_append_only")
FULL_GRADING = {**GRADING, "baseline": None, "industry_class": ""}


# --- Helpers ----------------------------------------------------------------------------------


def last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def events_after(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def post_audited(client: Any, url: str, data: Any = None, **extra: Any) -> tuple[Any, AuditEvent]:
    """POST with a request id; return the response and the single event the request appended."""
    before = last_seq()
    response = client.post(url, data, HTTP_X_REQUEST_ID=REQUEST_ID, **extra)
    assert response.status_code in (200, 201, 202), response.content
    assert response["X-Request-ID"] == REQUEST_ID
    appended = events_after(before)
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


@contextmanager
def append_only_triggers_off() -> Iterator[None]:
    """Let the block UPDATE/DELETE audit rows, as a person with the table owner's rights
    could; restore the triggers afterwards (the test transaction's rollback would too)."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(
                "ALTER TABLE hashlist_auditevent DISABLE TRIGGER hashlist_auditevent_append_only"
            )
        else:
            for statement in MIGRATION.SQLITE_BACKWARD:
                cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if postgres:
                cursor.execute(
                    "ALTER TABLE hashlist_auditevent ENABLE TRIGGER hashlist_auditevent_append_only"
                )
            else:
                for statement in MIGRATION.SQLITE_FORWARD:
                    cursor.execute(statement)


def forged_event(*, seq: int, prev_digest: str, reason: str = "forged") -> AuditEvent:
    """An event with a correct digest over its own fields, linked to ``prev_digest`` — what a
    forger who knows the format would insert."""
    fields: dict[str, Any] = {
        "seq": seq,
        "at": timezone.now().astimezone(dt.UTC),
        "actor": "reviewer",
        "actor_id": None,
        "action": "proposal.approve",
        "object_type": "proposal",
        "object_id": "999999",
        "before": {"status": "pending"},
        "after": {"status": "approved"},
        "reason": reason,
        "request_id": "",
        "prev_digest": prev_digest,
    }
    return AuditEvent.objects.create(digest=event_digest(**fields), **fields)


@pytest.fixture
def history(analyst: Any, reviewer: Any) -> list[AuditEvent]:
    """Six events of different kinds, committed to the chain in order."""
    start = last_seq()
    entry = approved_entry(analyst, reviewer)  # proposal.create, proposal.approve
    regrade = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}, comment="looks like B"
    )
    services.proposal_reject(actor=reviewer, proposal_id=regrade.pk, reason="it is A")
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="duplicate")
    services.proposal_withdraw(actor=analyst, proposal_id=retract.pk)
    events = events_after(start)
    assert len(events) == 6
    return events


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
            "payload": {"grading": {**FULL_GRADING, "category": "B"}},
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
    start = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(analyst).post(
            f"{API}/imports/",
            {"file": SimpleUploadedFile("batch.csv", content), "comment": "weekly export"},
            format="multipart",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
    assert response.status_code == 202, response.content
    upload, staged = events_after(start)
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
    start = last_seq()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(analyst).post(
            f"{API}/imports/",
            {"file": SimpleUploadedFile("bad.csv", content)},
            format="multipart",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
    assert response.status_code == 202, response.content
    upload, invalid = events_after(start)
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
    before = last_seq()

    own_approval = api(reviewer).post(f"{API}/proposals/{own.pk}/approve/", {})
    second_decision = api(reviewer).post(f"{API}/proposals/{decided.pk}/approve/", {})

    assert own_approval.status_code == 403
    assert own_approval.json()["error"]["code"] == "four_eyes_violation"
    assert second_decision.status_code == 409
    assert second_decision.json()["error"]["code"] == "proposal_not_pending"
    assert last_seq() == before


def test_event_recorded_inside_a_rolled_back_transaction_leaves_no_gap(analyst):
    before = last_seq()
    with pytest.raises(RuntimeError), transaction.atomic():
        propose_entry(analyst)
        raise RuntimeError("the caller's transaction fails after the event was written")
    propose_entry(analyst)
    assert [e.seq for e in events_after(before)] == [before + 1]
    assert verify_chain().ok


def test_unacceptable_request_id_is_replaced_not_recorded(analyst, api):
    before = last_seq()
    response = api(analyst).post(
        f"{API}/proposals/create-entry/",
        {**GRADING, "hashes": [{"algorithm": "md5", "value": synthetic("md5")}]},
        HTTP_X_REQUEST_ID="evil\nid with spaces",
    )
    assert response.status_code == 201
    (event,) = events_after(before)
    assert event.request_id == response["X-Request-ID"]
    assert len(event.request_id) == 32
    assert "evil" not in event.request_id


def test_events_are_chained_to_their_predecessor_from_the_genesis_digest(history):
    everything = list(AuditEvent.objects.order_by("seq"))
    assert everything[0].seq == 1
    assert everything[0].prev_digest == GENESIS_DIGEST
    for earlier, later in itertools.pairwise(everything):
        assert later.seq == earlier.seq + 1
        assert later.prev_digest == earlier.digest
        assert later.digest == digest_of(later)
    head = AuditChainHead.objects.get(pk=1)
    assert (head.seq, head.digest) == (everything[-1].seq, everything[-1].digest)


def test_chain_verifies_on_a_clean_history(history):
    report = verify_chain()
    assert report.ok, report.problem
    assert report.first_bad_seq is None
    assert report.events_checked == history[-1].seq
    assert (report.head_seq, report.head_digest) == (history[-1].seq, history[-1].digest)


# --- The database refuses changes -------------------------------------------------------------


def _orm_update(event: AuditEvent) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")


def _orm_save(event: AuditEvent) -> None:
    event.reason = "rewritten"
    event.save()


def _orm_delete(event: AuditEvent) -> None:
    event.delete()


def _orm_bulk_delete(event: AuditEvent) -> None:
    AuditEvent.objects.all().delete()


def _raw_update(event: AuditEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE hashlist_auditevent SET reason = %s WHERE seq = %s", ["rewritten", event.seq]
        )


def _raw_delete(event: AuditEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM hashlist_auditevent WHERE seq = %s", [event.seq])


@pytest.mark.parametrize(
    ("change", "verb"),
    [
        (_orm_update, "UPDATE"),
        (_orm_save, "UPDATE"),
        (_orm_delete, "DELETE"),
        (_orm_bulk_delete, "DELETE"),
        (_raw_update, "UPDATE"),
        (_raw_delete, "DELETE"),
    ],
    ids=["orm-update", "orm-save", "orm-delete", "orm-bulk-delete", "raw-update", "raw-delete"],
)
def test_database_refuses_to_change_or_remove_an_audit_event(
    history, change: Callable[[AuditEvent], None], verb: str
):
    target = history[2]
    original_reason = target.reason
    # The savepoint keeps the test's transaction usable after the error on PostgreSQL.
    with pytest.raises(DatabaseError, match=rf"append-only: {verb} refused"), transaction.atomic():
        change(target)
    assert AuditEvent.objects.get(pk=target.pk).reason == original_reason
    assert AuditEvent.objects.count() == len(history)
    assert verify_chain().ok


def test_tamper_helper_restores_the_append_only_triggers(history):
    with append_only_triggers_off():
        AuditEvent.objects.filter(pk=history[0].pk).update(reason="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw_delete(history[1])
    assert AuditEvent.objects.filter(pk=history[1].pk).exists()


# --- Tampering is detected --------------------------------------------------------------------


def _change_reason(history: list[AuditEvent]) -> int:
    target = history[2]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE hashlist_auditevent SET reason = %s WHERE seq = %s",
            ["approved after a second look", target.seq],
        )
    return target.seq


def _change_after_json(history: list[AuditEvent]) -> int:
    target = history[3]  # the rejection
    AuditEvent.objects.filter(pk=target.pk).update(after={"status": "approved"})
    return target.seq


def _delete_middle(history: list[AuditEvent]) -> int:
    target = history[2]
    AuditEvent.objects.filter(pk=target.pk).delete()
    return target.seq


def _delete_last(history: list[AuditEvent]) -> int:
    target = history[-1]
    AuditEvent.objects.filter(pk=target.pk).delete()
    return target.seq


def _insert_rechained(history: list[AuditEvent]) -> int:
    # Make room at position 2 (highest first: seq is unique) and insert a forged event that
    # links correctly to its predecessor. The forgery itself is consistent; the first row that
    # no longer checks out is the genuine event moved up behind it.
    for event in reversed(history[2:]):
        AuditEvent.objects.filter(pk=event.pk).update(seq=event.seq + 1)
    forged_event(seq=history[2].seq, prev_digest=history[1].digest)
    return history[2].seq + 1


def _rewrite_last_with_valid_digest(history: list[AuditEvent]) -> int:
    last = AuditEvent.objects.get(pk=history[-1].pk)
    last.reason = "rewritten"
    AuditEvent.objects.filter(pk=last.pk).update(reason=last.reason, digest=digest_of(last))
    return last.seq


def _append_without_advancing_head(history: list[AuditEvent]) -> int:
    # INSERT is allowed, so this needs no trigger bypass: a chained event appended without
    # taking the chain-head lock (the head still names the previous last event).
    return forged_event(seq=history[-1].seq + 1, prev_digest=history[-1].digest).seq


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_change_reason, "was altered"),
        (_change_after_json, "was altered"),
        (_delete_middle, "is missing"),
        (_delete_last, "removed from the end"),
        (_insert_rechained, "does not link to the event before it"),
        (_rewrite_last_with_valid_digest, "chain head"),
        (_append_without_advancing_head, "chain head"),
    ],
    ids=[
        "changed-reason",
        "changed-after-json",
        "deleted-middle-event",
        "deleted-last-event",
        "rechained-insertion",
        "last-event-rewritten-with-valid-digest",
        "appended-without-advancing-head",
    ],
)
def test_verify_chain_names_the_first_tampered_event(
    history, tamper: Callable[[list[AuditEvent]], int], problem: str
):
    with append_only_triggers_off():
        first_bad = tamper(history)

    report = verify_chain()

    assert not report.ok
    assert report.first_bad_seq == first_bad
    assert problem in report.problem
    assert f"#{first_bad}" in report.problem
    assert report.events_checked == first_bad - 1


# --- The audit_verify command -----------------------------------------------------------------


def test_audit_verify_command_reports_an_intact_chain(history):
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()
    assert f"{len(history)} events" in out.getvalue()


def test_audit_verify_command_fails_with_status_1_naming_the_altered_event(history):
    with append_only_triggers_off():
        bad = _change_reason(history)

    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", stdout=io.StringIO())

    assert failure.value.returncode == 1
    assert f"BROKEN at event #{bad}" in str(failure.value)


# --- Who may read the trail -------------------------------------------------------------------


def test_auditor_can_list_events_and_verify_the_chain(auditor, api, history):
    client = api(auditor)

    listing = client.get(f"{API}/audit/events/")
    check = client.get(f"{API}/audit/verify/")

    assert listing.status_code == 200
    assert [e["seq"] for e in listing.json()["results"]] == [e.seq for e in history]
    assert listing.json()["results"][0]["digest"] == history[0].digest
    assert check.status_code == 200
    assert check.json()["ok"] is True
    assert check.json()["head_seq"] == history[-1].seq


def test_auditor_sees_a_broken_chain_through_the_api(auditor, api, history):
    with append_only_triggers_off():
        bad = _delete_middle(history)

    body = api(auditor).get(f"{API}/audit/verify/").json()

    assert body["ok"] is False
    assert body["first_bad_seq"] == bad


def test_auditor_can_filter_events_by_object(auditor, api, history):
    target = history[2]
    response = api(auditor).get(
        f"{API}/audit/events/",
        {"object_type": target.object_type, "object_id": target.object_id},
    )
    assert response.status_code == 200
    expected = [
        e.seq
        for e in history
        if e.object_id == target.object_id and e.object_type == target.object_type
    ]
    assert [e["seq"] for e in response.json()["results"]] == expected


@pytest.mark.parametrize("role", ["analyst", "member_admin", "outsider"])
@pytest.mark.parametrize("path", ["audit/events/", "audit/verify/"])
def test_only_auditors_can_read_the_audit_trail(request, api, history, role: str, path: str):
    user = request.getfixturevalue(role)
    response = api(user).get(f"{API}/{path}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "results" not in response.json()
