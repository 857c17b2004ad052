"""Celery tasks of the hash list: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

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


# The whole batch is applied in one transaction (see hashlist.imports.apply), under its own,
# longer time limit (HASHSYNC_IMPORT_APPLY_TIME_LIMIT, 4 hours by default).
@shared_task(
    name="hashlist.import_apply",
    acks_late=True,
    ignore_result=True,
    time_limit=settings.HASHSYNC_IMPORT_APPLY_TIME_LIMIT,
    soft_time_limit=settings.HASHSYNC_IMPORT_APPLY_TIME_LIMIT - 30,
)
def import_apply_task(batch_id: int, request_id: str | None = None) -> None:
    # Safe to run twice or after a killed run: the service serialises on the proposal's row
    # lock and returns early once the batch has left "applying".
    token = bind_request_id(request_id)
    try:
        imports.import_apply(batch_id=batch_id)
    finally:
        unbind_request_id(token)


@shared_task(name="hashlist.import_sweep", acks_late=True, ignore_result=True)
def import_sweep_task() -> None:
    """Beat: re-send validation of uploads, and application of approved imports, whose task
    was lost (broker down, worker killed mid-file)."""
    imports.import_sweep()
