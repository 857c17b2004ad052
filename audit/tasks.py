"""Celery tasks of the audit app: thin wrappers over ``audit.checks``."""

from __future__ import annotations

from celery import shared_task

from audit import checks


@shared_task(name="audit.chain_check", acks_late=True, ignore_result=True)
def chain_check_task(check_id: int) -> None:
    # Safe to run twice: the service returns early once the check has finished.
    checks.chain_check_run(check_id=check_id)
