"""Walk the audit chain and name the first altered, missing or inserted event.

Exit status 0 when the chain is intact and agrees with the tables the apps cross-check (every
released change approved on the chain, ...), 1 otherwise — so a cron job or monitoring probe can
alert on it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.checks import chain_check_record
from audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the hash chain of the audit trail and cross-check it with the tables (every "
        "released change approved on the chain); exit 1 naming what does not check out."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started_at = timezone.now()
        report = verify_chain()
        # The result is kept like a check started from the auditors' page, so the page and
        # /metrics (hashsync_audit_verify_ok) show the newest verification, however it ran.
        chain_check_record(report=report, started_at=started_at, by="manage.py audit_verify")
        # One line per lane: what was checked, the lane's head, and its first break if any.
        for lane in report.lanes:
            state = "intact" if lane.ok else f"BROKEN at #{lane.first_bad_lane_seq}"
            self.stdout.write(
                f"lane {lane.lane}: {lane.events_checked} events, head #{lane.head_seq} "
                f"{lane.head_digest} {state}"
            )
        if report.findings:
            # The chain itself is intact; what it says disagrees with the tables.
            raise CommandError(
                f"Audit chain intact ({report.events_checked} events, head #{report.head_seq} "
                f"{report.head_digest}), but {len(report.findings)} cross-check problem(s):\n"
                + "\n".join(f"  - {finding}" for finding in report.findings),
                returncode=1,
            )
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain intact: {report.events_checked} events in "
                    f"{len(report.lanes)} lane(s), head #{report.head_seq} {report.head_digest}"
                )
            )
            return
        raise CommandError(
            f"Audit chain BROKEN at event #{report.first_bad_seq}: {report.problem} "
            f"({report.events_checked} events verified)",
            returncode=1,
        )
