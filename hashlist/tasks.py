"""Celery tasks of the hash list: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from hashlist import imports
from hashsync.middleware import bind_request_id, unbind_request_id


@shared_task(name="hashlist.import_validate", acks_late=True, ignore_result=True)
def import_validate_task(batch_id: int, request_id: str | None = None) -> None:
    # Safe to run twice: the service claims the batch with a conditional UPDATE and returns
    # early when validation is already done.
    token = bind_request_id(request_id)
    try:
        imports.import_validate(batch_id=batch_id)
    finally:
        unbind_request_id(token)


@shared_task(name="hashlist.import_sweep", acks_late=True, ignore_result=True)
def import_sweep_task() -> None:
    """Beat: re-send validation of uploads whose task was lost (broker down at upload time,
    worker killed mid-file)."""
    imports.import_sweep()
