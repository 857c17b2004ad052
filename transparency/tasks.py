"""Celery tasks of the transparency log (thin: the work is in ``witnesses``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from transparency.witnesses import cosign_latest

logger = logging.getLogger(__name__)


@shared_task(
    name="transparency.cosign",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def cosign_task() -> None:
    """Collect witness cosignatures of the newest checkpoint; safe to run twice (a witness
    that already cosigned it is skipped)."""
    cosign_latest()


def _enqueue() -> None:
    # The publication has committed: a broker that is down must not fail it. The next
    # publication asks the witnesses again, for the newest checkpoint then.
    try:
        cosign_task.delay()
    except Exception as exc:
        logger.warning("could not queue the witness cosigning: %s", exc)


def schedule_cosign() -> None:
    """After the publishing transaction commits, if witnesses are configured."""
    if settings.HASHSYNC_TLOG_WITNESSES:
        transaction.on_commit(_enqueue)
