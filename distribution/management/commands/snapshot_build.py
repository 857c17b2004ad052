"""Build snapshots of feeds at their current versions (normally done by the worker)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution import releases, selectors


class Command(BaseCommand):
    help = "Build a snapshot of each named feed (all active feeds by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("feeds", nargs="*", metavar="FEED")

    def handle(self, *args: Any, feeds: list[str], **options: Any) -> None:
        chosen = selectors.feed_list_published(names=feeds or None)
        if feeds:
            missing = set(feeds) - set(chosen.values_list("name", flat=True))
            if missing:
                raise CommandError(f"No published, active feed named {', '.join(sorted(missing))}.")
        for feed in chosen.order_by("name"):
            built = releases.snapshot_build(feed_id=feed.pk)
            state = f"snapshot {built.snapshot_sha256[:16]}…" if built else "already has one"
            self.stdout.write(f"{feed.name}@{feed.version}: {state}")
