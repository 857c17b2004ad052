"""Chain verification started from the auditors' page: ``chain_check_start`` records who asked
(on the trail too) and hands the walk to a Celery task after commit; ``chain_check_run`` walks
the chain with ``audit.verify.verify_chain`` and stores what it found on the ``ChainCheck``.

A large trail takes minutes to walk, so the page never waits for it: it polls the check's row.
Starting a check while another is still running returns the running one rather than walking
the chain twice at once; a check left unfinished for longer than the task time limit (its worker
was killed) no longer blocks a new one."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import ChainCheck
from audit.services import audit_record
from audit.verify import ChainReport, verify_chain
from hashsync.actors import User, require_permission

log = logging.getLogger(__name__)

VIEW_AUDIT = "audit.view_auditevent"
START_ACTION = "audit.chain_check"


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """A check started before this and still unfinished was abandoned (its task was lost)."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


@transaction.atomic
def chain_check_start(*, actor: User) -> tuple[ChainCheck, bool]:
    """Start a verification of the whole chain in the background: (the check, whether it is
    new). An unfinished, not abandoned check is returned as it is."""
    require_permission(actor, VIEW_AUDIT, "verify the audit trail")
    running = (
        ChainCheck.objects.select_for_update()
        .filter(finished_at__isnull=True, started_at__gte=stale_before())
        .order_by("-started_at")
        .first()
    )
    if running is not None:
        return running, False
    check = ChainCheck.objects.create(
        started_at=timezone.now(),
        started_by_id=actor.pk,
        started_by_name=actor.get_username(),
    )
    audit_record(
        actor=actor,
        action=START_ACTION,
        object_type="chain_check",
        object_id=check.pk,
        after={"check": check.pk},
    )
    from audit.tasks import chain_check_task  # tasks import this module

    transaction.on_commit(lambda: chain_check_task.delay(check.pk))
    return check, True


def chain_check_record(*, report: ChainReport, started_at: dt.datetime, by: str) -> ChainCheck:
    """Keep the result of a verification run outside the page (``manage.py audit_verify`` from
    cron), finished as it is recorded; ``by`` names what ran it (no user did)."""
    return ChainCheck.objects.create(
        started_at=started_at,
        started_by_name=by,
        finished_at=timezone.now(),
        ok=report.ok,
        events_checked=report.events_checked,
        head_seq=report.head_seq,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
        findings=list(report.findings),
    )


def chain_check_run(*, check_id: int) -> ChainCheck | None:
    """Walk the chain for check ``check_id`` and store the result; returns early (None) when
    the check is unknown or already finished, so a re-delivered task does nothing."""
    if not ChainCheck.objects.filter(pk=check_id, finished_at__isnull=True).exists():
        return None
    try:
        report = verify_chain()
    except Exception as error:  # a database error mid-walk: say so rather than run forever
        log.exception("chain check %s failed", check_id)
        ChainCheck.objects.filter(pk=check_id, finished_at__isnull=True).update(
            finished_at=timezone.now(),
            ok=False,
            problem=f"The check could not finish ({type(error).__name__}). Start it again; "
            "if it fails again, run manage.py audit_verify on the server.",
        )
        return ChainCheck.objects.get(pk=check_id)
    # Conditional: a second delivery that raced this one stores nothing twice.
    ChainCheck.objects.filter(pk=check_id, finished_at__isnull=True).update(
        finished_at=timezone.now(),
        ok=report.ok,
        events_checked=report.events_checked,
        head_seq=report.head_seq,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
        findings=list(report.findings),
    )
    return ChainCheck.objects.get(pk=check_id)
