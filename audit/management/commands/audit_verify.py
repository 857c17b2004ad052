"""Walk the audit chain and name the first altered, missing or inserted event.

Exit status 0 when the chain is intact, 1 when it is broken — so a cron job or monitoring
probe can alert on it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Verify the hash chain of the audit trail; exit 1 and name the first bad event if broken."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit chain intact: {report.events_checked} events, "
                    f"head #{report.head_seq} {report.head_digest}"
                )
            )
            return
        raise CommandError(
            f"Audit chain BROKEN at event #{report.first_bad_seq}: {report.problem} "
            f"({report.events_checked} events verified before it)",
            returncode=1,
        )
