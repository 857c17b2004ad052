"""A lost or undeliverable validation task loses no upload: the batch waits in the database and
the beat sweeper sends it again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from hashlist import imports
from hashlist.models import ImportBatch, ImportStatus
from hashsync.celery import app as celery_app
from tests.conftest import synthetic
from tests.workers import celery_sending_to


@pytest.fixture
def broker_down():
    with celery_sending_to("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        yield


def _upload(api, user, django_capture_on_commit_callbacks):
    body = f"category,age_group,md5\nA,0-2,{synthetic('md5')}\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        return api(user).post(
            "/api/v1/imports/",
            {"file": SimpleUploadedFile("synthetic.csv", body)},
            format="multipart",
        )


def test_upload_succeeds_and_waits_when_the_broker_is_down(
    analyst, api, broker_down, django_capture_on_commit_callbacks, caplog
):
    response = _upload(api, analyst, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    batch = ImportBatch.objects.get(pk=response.json()["id"])
    assert batch.status == ImportStatus.UPLOADED
    assert "the sweeper will retry" in caplog.text


def test_sweeper_resends_validation_of_a_stuck_upload(
    analyst, api, django_capture_on_commit_callbacks, settings, broker_down
):
    response = _upload(api, analyst, django_capture_on_commit_callbacks)
    batch_id = response.json()["id"]
    ImportBatch.objects.filter(pk=batch_id).update(
        created_at=timezone.now() - dt.timedelta(minutes=10)
    )
    celery_app.conf.task_always_eager = True  # the broker is back (in-process here)

    assert imports.import_sweep() == [batch_id]
    assert ImportBatch.objects.get(pk=batch_id).status == ImportStatus.STAGED


def test_sweeper_leaves_recent_and_finished_batches_alone(
    analyst, api, django_capture_on_commit_callbacks
):
    response = _upload(api, analyst, django_capture_on_commit_callbacks)  # eager: staged now
    assert ImportBatch.objects.get(pk=response.json()["id"]).status == ImportStatus.STAGED
    assert imports.import_sweep() == []
