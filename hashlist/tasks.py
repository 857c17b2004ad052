"""Celery tasks of the hash list: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from hashlist import imports


@shared_task(name="hashlist.import_validate", acks_late=True, ignore_result=True)
def import_validate_task(batch_id: int) -> None:
    # Safe to run twice: the service claims the batch with a conditional UPDATE and returns
    # early when validation is already done.
    imports.import_validate(batch_id=batch_id)
