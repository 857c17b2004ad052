"""Snapshots: a feed's whole membership as one bundle, written when the policy says one is due.

The snapshot writer streams the feed's members straight from the database (``feed_rows``),
which the cutter also uses for a new feed's first snapshot.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Generator

from django.db import connection, transaction
from django.utils import timezone

from distribution import keys
from distribution.framework_grading import feed_framework
from distribution.models import Feed, FeedEntry, FeedVersion
from distribution.releases.bundles import index_bundle, store_bundle
from distribution.releases.lock import lock_release_state
from distribution.releases.manifests import manifest_publish
from hashsync_client.format import ALGORITHM_NAMES, Op, Record
from transparency.services import one_checkpoint


def feed_rows(feed_id: int) -> Generator[Record, None, None]:
    """A feed's members in bundle order, streamed with bounded memory.

    Pauses Python's cyclic garbage collector until the generator is exhausted or closed, so
    consume it fully (or close it) promptly."""
    table = FeedEntry._meta.db_table
    # The records are acyclic, but each block of 65,536 the codec holds outlives the young
    # collections, so the GC ran a full collection (over every object in the process) about
    # every 1.3 blocks: ~200 per 10M members, 15-18 s of the ~30 s of CPU this process spent
    # (docs/benchmarks.md, P1). Paused, that is gone; cycles made meanwhile wait until after.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for algo_id in sorted(ALGORITHM_NAMES):
            name = ALGORITHM_NAMES[algo_id]
            # On PostgreSQL an index-only scan (feed_entry_unique_key INCLUDEs grading,
            # migration 0002): it skips the heap for pages VACUUM has marked all-visible.
            sql = (
                f"SELECT value, grading FROM {table} "  # noqa: S608 - the table name is ours
                "WHERE feed_id = %s AND algorithm = %s ORDER BY value"
            )
            if connection.vendor == "postgresql":
                # A named (server-side) cursor keeps memory bounded. Binary rows need no text
                # parsing and fetchmany returns a batch per call: together ~2.5 s less CPU per
                # 10M members than iterating a text cursor. A thread fetching a batch ahead
                # pays only while the scan still reads the heap, and P1 is met without one.
                raw = connection.connection
                with raw.cursor(name=f"snapshot_{feed_id}_{algo_id}", binary=True) as cursor:
                    cursor.execute(sql, (feed_id, name))
                    while rows := cursor.fetchmany(20000):
                        for value, grading in rows:
                            yield Record(name, value, Op.UPSERT, grading)
            else:
                with connection.cursor() as cursor:
                    cursor.execute(sql, (feed_id, name))
                    while rows := cursor.fetchmany(20000):
                        for value, grading in rows:
                            yield Record(name, bytes(value), Op.UPSERT, grading)
    finally:
        if gc_was_enabled:
            gc.enable()


def snapshot_build(*, feed_id: int) -> FeedVersion | None:
    """Write a snapshot of the feed at its current version and publish a manifest naming it.
    Returns None when there is nothing to do (no version yet, or that version has one)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        # One consistent read of the feed and all its members: a release committing meanwhile
        # must not leak half into the snapshot. (Inside a caller's transaction — tests — that
        # transaction's snapshot rules.)
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        feed = Feed.objects.get(pk=feed_id)
        target = FeedVersion.objects.filter(feed=feed, version=feed.version).first()
        if target is None or target.snapshot_sha256:
            return None
        with contextlib.closing(feed_rows(feed.pk)) as rows:  # see cutter._populate_feed
            info = store_bundle(
                rows,
                kind="snapshot",
                feed=feed.name,
                from_version=0,
                to_version=target.version,
                framework=feed_framework(feed),
            )
        if info.record_count != target.entry_count:
            raise RuntimeError(
                f"snapshot of {feed.name}@{target.version} has {info.record_count} records; "
                f"the feed version says {target.entry_count}"
            )
    with transaction.atomic(), one_checkpoint():
        lock_release_state()
        index_bundle(info, "snapshot")
        updated = FeedVersion.objects.filter(pk=target.pk, snapshot_sha256="").update(
            snapshot_sha256=info.sha256, snapshot_size=info.size
        )
        if updated:
            feed = Feed.objects.get(pk=feed_id)
            manifest_publish(feed, signer=keys.online_signing_key(), now=timezone.now())
    target.refresh_from_db()
    return target


SNAPSHOT_DELTA_RATIO = 0.5


def snapshot_due(feed: Feed, *, force: bool = False) -> bool:
    """A snapshot is due when the feed's current version has none and either ``force`` is set
    or the deltas since the last snapshot add up to more than half of its size — past that, a
    far-behind client is better served by the snapshot, and a fresh one keeps it so."""
    versions = list(FeedVersion.objects.filter(feed=feed).order_by("-version")[:500])
    if not versions or versions[0].snapshot_sha256:
        return False
    if force:
        return True
    delta_bytes = 0
    for fv in versions:
        if fv.snapshot_sha256:
            return delta_bytes > SNAPSHOT_DELTA_RATIO * (fv.snapshot_size or 0)
        delta_bytes += fv.delta_size or 0
    return True
