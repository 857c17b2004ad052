"""Build (or map) the matcher's index of every published feed that carries PDQ, on this node."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution import selectors
from distribution.feeds import FeedFilter
from sync import matcher


class Command(BaseCommand):
    help = (
        "Load each named feed's PDQ index (all published feeds carrying PDQ by default) and save "
        "it in HASHSYNC_MATCH_INDEX_DIR, so the web processes of this node map it in seconds "
        "instead of building it inside a request. Run before starting the web service."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("feeds", nargs="*", metavar="FEED")

    def handle(self, *args: Any, feeds: list[str], **options: Any) -> None:
        if not settings.HASHSYNC_MATCH_INDEX_DIR:
            raise CommandError("HASHSYNC_MATCH_INDEX_DIR is empty: there is nowhere to save.")
        chosen = selectors.feed_list_published(names=feeds or None)
        if feeds:
            missing = set(feeds) - set(chosen.values_list("name", flat=True))
            if missing:
                raise CommandError(f"No published, active feed named {', '.join(sorted(missing))}.")
        for feed in chosen.order_by("name"):
            if not FeedFilter.of(feed).admits_algorithm(matcher.PDQ):
                continue
            started = time.monotonic()
            try:
                loaded = matcher.matcher_for(feed)
            except matcher.MatcherUnavailable as exc:
                raise CommandError(f"{feed.name}: {exc}") from None
            self.stdout.write(
                f"{feed.name}@{loaded.version}: {len(loaded):,} PDQ values, "
                f"{time.monotonic() - started:.1f} s"
            )
