"""Celery tasks of the transparency log (thin: the work is in ``witnesses``)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction

from transparency.witnesses import cosign_latest


@shared_task(name="transparency.cosign", acks_late=True, ignore_result=True, time_limit=300)
def cosign_task() -> None:
    """Collect witness cosignatures of the newest checkpoint; safe to run twice (a witness
    that already cosigned it is skipped)."""
    cosign_latest()


def schedule_cosign() -> None:
    """After the publishing transaction commits, if witnesses are configured."""
    if settings.HASHSYNC_TLOG_WITNESSES:
        transaction.on_commit(cosign_task.delay)
