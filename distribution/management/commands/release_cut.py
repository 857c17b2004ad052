"""Cut a release now (normally done by the worker after each approval, and by beat)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from distribution import releases


class Command(BaseCommand):
    help = "Publish every approved, unreleased change as the next release."

    def handle(self, *args: Any, **options: Any) -> None:
        release = releases.release_cut()
        if release is None:
            self.stdout.write("Nothing to release.")
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Release {release.version}: {release.change_count} changes.")
            )
