#!/usr/bin/env python
"""The cost of one /metrics scrape's database reads (the scrape-time collectors) against a
fleet of N sync clients: ``hashsync.metrics.exposition()`` timed in-process, median of 5.

Set-up (not measured), in the database of DATABASE_URL (migrated; use a scratch database):
N members, each with one sync client entitled to one of 4 feeds ("md5-…", no PhotoDNA, so no
licence is needed) that have 200 versions each; a third of the clients hold the newest
version, a third are 1-50 versions behind, a third never acked. All rows are synthetic and
written with bulk inserts; nothing here is a hash.

    DATABASE_URL=postgres://…/scratch python bench/metrics_scrape.py 1000 10000
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")


def main(sizes: list[int]) -> None:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from distribution.models import Feed, FeedVersion
    from hashsync.metrics import exposition
    from members.models import Entitlement, Holding, Member, SyncClient

    feeds = []
    for n in range(4):
        feed, created = Feed.objects.get_or_create(
            name=f"bench-md5-{n}",
            defaults={"algorithms": ["md5"], "carries_photodna": False, "version": 200},
        )
        if created:
            FeedVersion.objects.bulk_create(
                FeedVersion(feed=feed, version=v, entry_count=0, state_digest="0" * 64)
                for v in range(1, 201)
            )
        feeds.append(feed)
    for size in sizes:
        have = Member.objects.filter(name__startswith="bench-").count()
        with transaction.atomic():
            members = Member.objects.bulk_create(
                Member(name=f"bench-{i}", display_name=f"Bench {i}") for i in range(have, size)
            )
            clients = SyncClient.objects.bulk_create(
                SyncClient(member=m, name="edge-1") for m in members
            )
            Entitlement.objects.bulk_create(
                Entitlement(member=m, feed=feeds[i % 4]) for i, m in enumerate(members)
            )
            now = timezone.now()
            Holding.objects.bulk_create(
                Holding(
                    client=c,
                    feed=feeds[i % 4],
                    version=200 if i % 3 == 0 else 200 - (i % 50) - 1,
                    state_digest="0" * 64,
                    digest_matches=True,
                    acked_at=now,
                )
                for i, c in enumerate(clients)
                if i % 3 != 2
            )
        exposition()  # warm
        times = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                exposition()
                times.append(time.perf_counter() - started)
        print(f"M2 metrics_scrape_{size}_clients {statistics.median(times) * 1000:.1f} ms")
        print(f"M2 metrics_scrape_{size}_clients_queries {len(queries)} queries")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000])
