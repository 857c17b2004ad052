"""After restoring the database from a backup: publish every feed afresh above the versions
members hold (docs/operations.md, "Restore")."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution import releases


class Command(BaseCommand):
    help = (
        "After a database restore: publish every active feed as a snapshot at a version above "
        "--above (the newest version any member may hold), so clients go on instead of "
        "refusing a rollback."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--above",
            type=int,
            required=True,
            help="the newest feed version any member's client may hold (a margin is harmless)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["above"] < 0:
            raise CommandError("--above must be 0 or more.")
        try:
            release = releases.release_resume(above=options["above"])
        except releases.ResumeRefused as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(
            self.style.SUCCESS(
                f"Release {release.version}: every active feed published afresh as a snapshot "
                f"({release.change_count} pending changes included)."
            )
        )
