"""Accepting an upload and sending it to validation, and the sweeper that re-sends lost ones."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from hashlist.models import (
    ImportBatch,
    ImportFormat,
    ImportStatus,
)
from hashlist.services import PROPOSE
from hashsync.actors import User, as_staff, require_permission
from hashsync.errors import DomainError, InvalidInput
from hashsync.middleware import current_request_id
from hashsync.validation import clean_text

logger = logging.getLogger(__name__)


class UploadTooLarge(DomainError):
    code = "upload_too_large"
    http_status = 413


def _detect_format(name: str, requested: str | None) -> str:
    if requested:
        value = requested.strip().lower()
        if value in ("jsonl", "ndjson", "json-lines"):
            return ImportFormat.JSONL
        if value == "csv":
            return ImportFormat.CSV
        raise InvalidInput(
            f"format must be csv or jsonl; got {requested[:20]!r}.", code="unknown_format"
        )
    suffix = PurePath(name).suffix.lower()
    if suffix == ".csv":
        return ImportFormat.CSV
    if suffix in (".jsonl", ".ndjson"):
        return ImportFormat.JSONL
    raise InvalidInput(
        "Cannot tell the file's format from its name; name it .csv or .jsonl, or pass format.",
        code="unknown_format",
    )


@transaction.atomic
def import_upload(
    *, actor: User, file: UploadedFile, format: str | None = None, comment: Any = ""
) -> ImportBatch:
    require_permission(actor, PROPOSE, "import entries")
    size = file.size or 0
    if size == 0:
        raise InvalidInput("The uploaded file is empty.", code="empty_file")
    limit = settings.HASHSYNC_IMPORT_MAX_BYTES
    if size > limit:
        raise UploadTooLarge(f"The file is {size} bytes; the limit is {limit} bytes.")
    name = PurePath(file.name or "upload").name[:255]
    fmt = _detect_format(name, format)
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    batch = ImportBatch(
        uploaded_by=as_staff(actor),
        original_name=name,
        format=fmt,
        size=size,
        sha256=digest.hexdigest(),
        comment=clean_text(comment, "comment"),
    )
    batch.file.save(f"{digest.hexdigest()}{PurePath(name).suffix.lower()}", file, save=False)
    batch.save()
    audit_record(
        actor=actor,
        action="import.upload",
        object_type="import",
        object_id=batch.pk,
        after={"name": name, "format": fmt, "size": size, "sha256": batch.sha256},
    )
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue_validation(batch_id))
    return batch


def enqueue_validation(batch_id: int) -> None:
    from hashlist.tasks import import_validate_task

    send_task(import_validate_task, batch_id)


def send_task(task: Any, batch_id: int, *, always_quiet: bool = False) -> None:
    """Send a batch's task. A broker outage must not fail the request that is already
    committed: the batch stays where it is and ``import_sweep`` sends it again later."""
    try:
        # The request id travels with the task, so the worker's audit events name the request.
        task.delay(batch_id, request_id=current_request_id())
    except Exception as exc:
        if task.app.conf.task_always_eager and not always_quiet:
            raise  # in-process: this is the task itself failing, not the broker
        logger.warning(
            "Could not run %s of import %s (%s); the sweeper will retry it.",
            task.name,
            batch_id,
            type(exc).__name__,
        )


def import_sweep(*, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> list[int]:
    """Re-send the task of batches whose task was lost. Validation: still ``uploaded``, or stuck
    in ``validating`` past the task time limit (a worker killed mid-file). Approval: still
    ``applying`` and never claimed, or claimed longer ago than the time limit (the worker was
    killed; its transaction rolled back, so the re-run starts clean). Returns their ids."""
    from hashlist.imports.apply import enqueue_apply

    now = timezone.now()
    stuck = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - older_than
    validate = list(
        ImportBatch.objects.filter(
            Q(status=ImportStatus.UPLOADED, created_at__lt=now - older_than)
            | Q(status=ImportStatus.VALIDATING, started_at__lt=stuck)
        ).values_list("pk", flat=True)
    )
    for batch_id in validate:
        enqueue_validation(batch_id)
    stuck_applying = (
        now - dt.timedelta(seconds=settings.HASHSYNC_IMPORT_APPLY_TIME_LIMIT) - older_than
    )
    apply = list(
        ImportBatch.objects.filter(
            Q(
                status=ImportStatus.APPLYING,
                apply_started_at__isnull=True,
                proposal__reviewed_at__lt=now - older_than,
            )
            | Q(status=ImportStatus.APPLYING, apply_started_at__lt=stuck_applying)
        ).values_list("pk", flat=True)
    )
    for batch_id in apply:
        enqueue_apply(batch_id)
    return sorted(validate + apply)
