"""Bulk import through a real Celery worker process on the Redis broker (services pass)."""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from hashlist.models import Entry, ImportBatch, ImportStatus
from hashsync.roles import ANALYST, REVIEWER
from tests.conftest import synthetic
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _csv(rows: list[str]) -> SimpleUploadedFile:
    body = "category,age_group,source,md5,sha1\n" + "\n".join(rows) + "\n"
    return SimpleUploadedFile("synthetic.csv", body.encode(), content_type="text/csv")


@pytest.fixture
def worker(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with celery_worker(media_root=settings.MEDIA_ROOT) as running:
        yield running


def _batch_settled(batch_id: int) -> ImportBatch | None:
    batch = ImportBatch.objects.get(pk=batch_id)
    done = batch.status not in (ImportStatus.UPLOADED, ImportStatus.VALIDATING)
    return batch if done else None


def test_worker_validates_and_stages_an_upload_then_review_applies_it(worker, make_user, api):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    rows = [f"B,11-13,synthetic,{synthetic('md5')},{synthetic('sha1')}" for _ in range(250)]
    response = api(analyst).post(
        "/api/v1/imports/",
        {"file": _csv(rows)},
        format="multipart",
        HTTP_X_REQUEST_ID="upload-req-0001",
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == ImportStatus.UPLOADED  # queued, not run in-process

    batch = wait_for(lambda: _batch_settled(response.json()["id"]), what="the worker to validate")
    assert batch.status == ImportStatus.STAGED, batch.failure_message
    assert batch.rows_valid == 250
    # The worker's audit event carries the request id of the upload that caused it.
    staged = AuditEvent.objects.get(action="import.staged", object_id=str(batch.pk))
    assert staged.request_id == "upload-req-0001"

    approve = api(reviewer).post(f"/api/v1/proposals/{batch.proposal_id}/approve/", {})
    # Accepted at once; the worker applies the rows and the release cutter takes them.
    assert approve.status_code == 202, approve.content
    assert approve.json()["import_status"] in (ImportStatus.APPLYING, ImportStatus.APPROVED)
    applied = wait_for(
        lambda: ImportBatch.objects.filter(pk=batch.pk, status=ImportStatus.APPROVED).first(),
        what="the worker to apply the approved import",
    )
    assert applied.rows_applied == 250
    assert Entry.objects.filter(source="synthetic").count() == 250


def test_worker_reports_a_bad_row_and_stages_nothing(worker, make_user, api):
    analyst = make_user(ANALYST)
    rows = [f"A,0-2,synthetic,{synthetic('md5')},{synthetic('sha1')}" for _ in range(10)]
    rows[6] = "A,0-2,synthetic,not-a-hash," + synthetic("sha1")
    response = api(analyst).post("/api/v1/imports/", {"file": _csv(rows)}, format="multipart")
    assert response.status_code == 202, response.content

    batch = wait_for(lambda: _batch_settled(response.json()["id"]), what="the worker to validate")
    assert batch.status == ImportStatus.INVALID
    errors = api(analyst).get(f"/api/v1/imports/{batch.pk}/errors/").json()["results"]
    assert [e["line"] for e in errors] == [8]  # header is line 1, so row 7 is line 8
    assert "md5" in errors[0]["message"]
    assert batch.staged_rows.count() == 0


def test_worker_uses_the_redis_broker_not_in_process_execution(worker):
    from hashsync.celery import app

    assert app.conf.task_always_eager is False
    assert app.conf.broker_url.startswith("redis://")
    assert os.environ.get("DATABASE_URL", "").startswith("postgres")
