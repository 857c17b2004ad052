"""Celery tasks of the audit app: thin wrappers over ``audit.checks`` and ``audit.services``."""

from __future__ import annotations

from celery import shared_task

from audit import checks, services


@shared_task(name="audit.chain_check", acks_late=True, ignore_result=True)
def chain_check_task(check_id: int) -> None:
    # Safe to run twice: the service returns early once the check has finished.
    checks.chain_check_run(check_id=check_id)


@shared_task(name="audit.anchor", acks_late=True, ignore_result=True)
def anchor_task() -> None:
    # Safe to run twice: an anchor naming the same heads as the last one is not written again.
    services.audit_anchor()
