"""Applying an approved import (hashlist/imports/apply.py): approval is recorded at once, a task
applies every row in one transaction, exactly once, and the batch is released as one unit.

Synthetic hashes only. The apply task is sent when the approval commits; here it runs
in-process when the on-commit callbacks are executed, or is called directly.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.utils import timezone

from audit.models import AuditEvent
from audit.verify import verify_chain
from hashlist import imports, services
from hashlist.imports import apply
from hashlist.models import (
    Change,
    Entry,
    Hash,
    ImportBatch,
    ImportStatus,
    Proposal,
    ProposalStatus,
)
from hashsync.celery import app as celery_app
from hashsync.roles import ANALYST, REVIEWER
from tests.conftest import synthetic

ROWS = 7


@pytest.fixture(autouse=True)
def _eager_tasks_and_private_media(settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)
    monkeypatch.setattr(apply, "CHUNK_ROWS", 2)  # several chunks even for a few rows


def _staged_batch(author: Any, rows: int = ROWS) -> ImportBatch:
    body = "category,age_group,source,md5\n" + "".join(
        f"A,3-6,synthetic,{synthetic('md5')}\n" for _ in range(rows)
    )
    batch = imports.import_upload(
        actor=author, file=SimpleUploadedFile("synthetic.csv", body.encode())
    )
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED
    return batch


def _approve_without_running_the_task(reviewer: Any, batch: ImportBatch) -> Proposal:
    # Outside a captured on-commit block the task is not sent: the state a worker would find.
    return services.proposal_approve(actor=reviewer, proposal_id=batch.proposal_id)


@pytest.mark.django_db
def test_approval_records_the_decision_and_leaves_the_rows_to_the_task(
    analyst, reviewer, api, django_capture_on_commit_callbacks
):
    batch = _staged_batch(analyst)

    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = api(reviewer).post(f"/api/v1/proposals/{batch.proposal_id}/approve/", {})

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["reviewer"], body["import_status"]) == (
        "approved",
        "reviewer",
        "applying",
    )
    assert len(sent) == 1, "the apply task goes out after commit"
    assert Entry.objects.count() == 0
    assert AuditEvent.objects.filter(action="proposal.approve").count() == 1
    detail = api(reviewer).get(f"/api/v1/imports/{batch.pk}/").json()
    assert (detail["status"], detail["rows_applied"], detail["rows_valid"]) == (
        "applying",
        0,
        ROWS,
    )


@pytest.mark.django_db
def test_the_task_applies_every_row_once_and_a_rerun_changes_nothing(analyst, reviewer):
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)

    first = imports.import_apply(batch_id=batch.pk)
    again = imports.import_apply(batch_id=batch.pk)

    assert first is not None and first.status == ImportStatus.APPROVED
    assert first.rows_applied == ROWS
    assert again is None
    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == (
        ROWS,
        ROWS,
        ROWS,
    )
    assert AuditEvent.objects.filter(action="import.applied").count() == 1
    assert verify_chain().ok


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the service handles it."""


@pytest.mark.django_db
def test_a_worker_killed_mid_batch_applies_nothing_and_the_sweeper_reruns_it_once(
    analyst, reviewer, monkeypatch, django_capture_on_commit_callbacks
):
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)
    real_chunk = apply._apply_chunk
    calls = []

    def dies_on_the_third_chunk(*args: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise WorkerKilled
        return real_chunk(*args)

    monkeypatch.setattr(apply, "_apply_chunk", dies_on_the_third_chunk)
    with pytest.raises(WorkerKilled):
        imports.import_apply(batch_id=batch.pk)

    # Two chunks had been written inside the transaction: none of it survives.
    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == (0, 0, 0)
    stuck = ImportBatch.objects.get(pk=batch.pk)
    assert stuck.status == ImportStatus.APPLYING and stuck.apply_started_at is not None
    assert imports.import_sweep() == [], "a claim younger than the time limit is left alone"

    monkeypatch.setattr(apply, "_apply_chunk", real_chunk)
    ImportBatch.objects.filter(pk=batch.pk).update(
        apply_started_at=timezone.now() - dt.timedelta(hours=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.import_sweep() == [batch.pk]

    done = ImportBatch.objects.get(pk=batch.pk)
    assert (done.status, done.rows_applied) == (ImportStatus.APPROVED, ROWS)
    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == (
        ROWS,
        ROWS,
        ROWS,
    )
    assert Change.objects.values("release").distinct().count() == 1, "one release"


@pytest.mark.django_db
def test_an_unexpected_error_fails_the_batch_instead_of_leaving_it_applying(
    analyst, reviewer, monkeypatch
):
    # A bug, bad staged data or the task's soft time limit would fail on every retry, each
    # holding the proposal's lock for hours: the batch ends failed, with nothing applied.
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)

    def breaks(*args: Any) -> int:
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(apply, "_apply_chunk", breaks)
    with pytest.raises(RuntimeError):
        imports.import_apply(batch_id=batch.pk)

    failed = ImportBatch.objects.get(pk=batch.pk)
    assert failed.status == ImportStatus.FAILED
    assert "unexpected error" in failed.failure_message
    assert failed.proposal.status == ProposalStatus.FAILED
    assert (Entry.objects.count(), Change.objects.count()) == (0, 0)
    event = AuditEvent.objects.get(action="import.apply_failed")
    assert event.after["code"] == "import_apply_error"
    assert imports.import_sweep() == []  # nothing left to retry


@pytest.mark.django_db
def test_sweeper_resends_an_apply_task_lost_at_approval(analyst, reviewer):
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)  # the task never went out
    assert imports.import_sweep() == []  # too recent: it may still be on its way

    Proposal.objects.filter(pk=batch.proposal_id).update(
        reviewed_at=timezone.now() - dt.timedelta(minutes=10)
    )
    assert imports.import_sweep() == [batch.pk]

    assert ImportBatch.objects.get(pk=batch.pk).status == ImportStatus.APPROVED
    assert Entry.objects.count() == ROWS


@pytest.mark.django_db
def test_a_failed_apply_is_not_retried_and_the_proposal_says_failed(analyst, analyst2, reviewer):
    batch = _staged_batch(analyst)
    first = batch.staged_rows.order_by("line").first()
    assert first is not None
    services.proposal_approve(
        actor=reviewer,
        proposal_id=services.proposal_create_entry(
            actor=analyst2,
            grading={"category": "B", "age_group": "0-2"},
            hashes=[{"algorithm": "md5", "value": first.hashes.split('"')[3]}],
        ).pk,
    )
    _approve_without_running_the_task(reviewer, batch)

    failed = imports.import_apply(batch_id=batch.pk)

    assert failed is not None and failed.status == ImportStatus.FAILED
    assert "Line 2: its md5 hash was added to the list" in failed.failure_message
    assert Proposal.objects.get(pk=batch.proposal_id).status == ProposalStatus.FAILED
    assert Entry.objects.count() == 1
    assert imports.import_apply(batch_id=batch.pk) is None
    assert imports.import_sweep() == []


def test_approving_anything_but_an_import_is_unchanged(db, analyst, reviewer, api):
    proposal = services.proposal_create_entry(
        actor=analyst,
        grading={"category": "A", "age_group": "0-2"},
        hashes=[{"algorithm": "md5", "value": synthetic("md5")}],
    )

    response = api(reviewer).post(f"/api/v1/proposals/{proposal.pk}/approve/", {})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["import_status"]) == ("approved", None)
    assert Entry.objects.count() == 1


# --- PostgreSQL: progress from another connection, two workers at once -------------------------


@pytest.fixture
def task_lost(monkeypatch: Any) -> None:
    """Committed approvals send no task (here every statement commits at once)."""
    monkeypatch.setattr(apply, "enqueue_apply", lambda batch_id: None)


def _observed_rows_applied(batch_id: int) -> int:
    """rows_applied as another session sees it (committed data only)."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT rows_applied FROM hashlist_importbatch WHERE id = %s", [batch_id]
            )
            return int(cursor.fetchone()[0])
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_other_sessions_while_the_batch_is_applied(
    make_user, monkeypatch, task_lost
):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)
    seen: list[int] = []
    real_report = apply._Progress.report

    def report_and_look(self: Any, applied: int) -> None:
        real_report(self, applied)
        seen.append(_observed_rows_applied(batch.pk))

    monkeypatch.setattr(apply._Progress, "report", report_and_look)

    result = imports.import_apply(batch_id=batch.pk)

    assert result is not None and result.status == ImportStatus.APPROVED, result
    assert seen == [1, 3, 5, 7]  # chunks are ranges of two lines; line 1 is the header
    assert Entry.objects.count() == ROWS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_applying_one_batch_at_once_apply_it_once(make_user, task_lost):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    batch = _staged_batch(analyst)
    _approve_without_running_the_task(reviewer, batch)
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(imports.import_apply(batch_id=batch.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2
    assert sum(1 for r in results if r is not None and r.status == ImportStatus.APPROVED) >= 1
    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == (
        ROWS,
        ROWS,
        ROWS,
    )
    assert AuditEvent.objects.filter(action="import.applied").count() == 1
