"""Enter every manifest signed before the transparency log existed (docs/transparency.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from distribution.releases.backfill import log_backfill


class Command(BaseCommand):
    help = "Append to the transparency log every manifest it does not hold yet, oldest first."

    def handle(self, *args: Any, **options: Any) -> None:
        appended = log_backfill()
        self.stdout.write(f"{appended} manifest(s) appended to the log.")
