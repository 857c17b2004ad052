"""Cutting releases, building snapshots and publishing signed manifests.

Every function here that changes what members can see takes the ``ReleaseState`` row lock
first, so releases, snapshot publication and re-signing are serialised across all workers, and
the manifest chain of each feed is linear. Bundles are written to content-addressed storage
before the transaction that references them commits: a worker killed at any point leaves
either the previous release or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import tempfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from distribution import keys
from distribution.feeds import FeedFilter, Key, records_in_feed, removal_reason
from distribution.models import (
    BundleObject,
    Feed,
    FeedEntry,
    FeedVersion,
    Manifest,
    Release,
    ReleaseState,
)
from distribution.storage import put_object
from hashlist.models import Change, Entry, EntryStatus
from hashlist.services import entry_state
from hashsync_client.format import ALGORITHM_IDS, BundleInfo, Op, Record, write_bundle
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import SigningKey, manifest_sha256, sign_manifest

logger = logging.getLogger(__name__)

ALGORITHM_NAMES = {number: name for name, number in ALGORITHM_IDS.items()}
QUERY_CHUNK = 2000
FORMAT_VERSION = 1


def lock_release_state() -> ReleaseState:
    """Take the cutter lock for the rest of the current transaction."""
    state = ReleaseState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        ReleaseState.objects.get_or_create(pk=1)
        state = ReleaseState.objects.select_for_update().get(pk=1)
    return state


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Bundles ---------------------------------------------------------------------------------


def store_bundle(
    records: Iterable[Record], *, kind: str, feed: str, from_version: int, to_version: int
) -> BundleInfo:
    """Encode records into a temporary file and store it under its SHA-256."""
    with tempfile.TemporaryFile() as handle:
        info = write_bundle(
            handle,
            kind=kind,
            feed=feed,
            from_version=from_version,
            to_version=to_version,
            records=records,
        )
        put_object(handle, sha256=info.sha256, size=info.size)
    return info


def index_bundle(info: BundleInfo, kind: str) -> None:
    BundleObject.objects.get_or_create(
        sha256=info.sha256, defaults={"size": info.size, "kind": kind}
    )


# --- Manifests -------------------------------------------------------------------------------


def manifest_payload(feed: Feed, *, now: dt.datetime, previous: Manifest | None) -> dict:
    latest = FeedVersion.objects.filter(feed=feed).order_by("-version").first()
    if latest is None:
        raise ValueError(f"feed {feed.name} has no published version")
    snapshot = (
        FeedVersion.objects.filter(feed=feed, version__lte=latest.version)
        .exclude(snapshot_sha256="")
        .order_by("-version")
        .first()
    )
    ttl = dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS)
    return {
        "type": "hashsync/manifest",
        "format": FORMAT_VERSION,
        "feed": feed.name,
        "version": latest.version,
        "previous_manifest_sha256": previous.sha256 if previous else None,
        "issued_at": iso(now),
        "expires_at": iso(now + ttl),
        "entry_count": latest.entry_count,
        "state_digest": latest.state_digest,
        "delta": (
            {
                "from_version": latest.previous_version or 0,
                "sha256": latest.delta_sha256,
                "size": latest.delta_size,
                "records": latest.delta_records,
            }
            if latest.delta_sha256
            else None
        ),
        "snapshot": (
            {
                "version": snapshot.version,
                "sha256": snapshot.snapshot_sha256,
                "size": snapshot.snapshot_size,
            }
            if snapshot
            else None
        ),
    }


def manifest_publish(feed: Feed, *, signer: SigningKey, now: dt.datetime) -> Manifest:
    """Sign and store the feed's next manifest. Call with the release lock held."""
    previous = Manifest.objects.filter(feed=feed).order_by("-id").first()
    payload = manifest_payload(feed, now=now, previous=previous)
    envelope = sign_manifest(payload, signer)
    return Manifest.objects.create(
        feed=feed,
        version=payload["version"],
        envelope=envelope,
        sha256=manifest_sha256(payload),
        previous_sha256=previous.sha256 if previous else "",
        issued_at=now,
        expires_at=now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS),
    )


# --- The release cutter ----------------------------------------------------------------------


@dataclass
class _Current:
    id: int
    grading: int


def _current_members(feed: Feed, keys_: Iterable[Key]) -> dict[Key, _Current]:
    by_algo: dict[int, list[bytes]] = {}
    for algo_id, value in keys_:
        by_algo.setdefault(algo_id, []).append(value)
    found: dict[Key, _Current] = {}
    for algo_id, values in by_algo.items():
        for start in range(0, len(values), QUERY_CHUNK):
            rows = FeedEntry.objects.filter(
                feed=feed,
                algorithm=ALGORITHM_NAMES[algo_id],
                value__in=values[start : start + QUERY_CHUNK],
            ).values_list("id", "value", "grading")
            for pk, value, grading in rows:
                found[(algo_id, bytes(value))] = _Current(pk, grading)
    return found


def _net_effect(feed_filter: FeedFilter, changes: Sequence[Change]) -> dict[Key, tuple]:
    """key → (grading code or None, removal reason or None, entry id), after all the changes
    in order. Changes to one entry are ordered by id (they are serialised by the entry's row
    lock), and a hash can only move between entries after its removal committed."""
    final: dict[Key, tuple] = {}
    for change in changes:
        before = records_in_feed(feed_filter, change.before)
        after = records_in_feed(feed_filter, change.after)
        for key in before.keys() - after.keys():
            final[key] = (None, removal_reason(key, change.after), change.entry_id)
        for key, code in after.items():
            final[key] = (code, None, change.entry_id)
    return final


def _element(key: Key, grading: int) -> bytes:
    return element(ALGORITHM_NAMES[key[0]], key[1], grading)


def _cut_feed(
    feed: Feed, changes: Sequence[Change], version: int, signer: SigningKey, now: dt.datetime
) -> bool:
    final = _net_effect(FeedFilter.of(feed), changes)
    if not final:
        return False
    current = _current_members(feed, final.keys())
    upserts: dict[Key, tuple[int, int]] = {}
    removals: dict[Key, Op] = {}
    for key, (code, reason, entry_id) in final.items():
        member = current.get(key)
        if code is None:
            if member is not None:
                removals[key] = reason
        elif member is None or member.grading != code:
            upserts[key] = (code, entry_id)
    if not upserts and not removals:
        return False

    digest = LtHash16(bytes(feed.lthash))
    digest.remove(_element(k, current[k].grading) for k in (*removals, *upserts) if k in current)
    digest.add(_element(k, code) for k, (code, _) in upserts.items())

    FeedEntry.objects.filter(id__in=[current[k].id for k in removals]).delete()
    changed = [
        FeedEntry(id=current[k].id, grading=c) for k, (c, _) in upserts.items() if k in current
    ]
    FeedEntry.objects.bulk_update(changed, ["grading"], batch_size=QUERY_CHUNK)
    FeedEntry.objects.bulk_create(
        [
            FeedEntry(feed=feed, algorithm=ALGORITHM_NAMES[k[0]], value=k[1], grading=c, entry_id=e)
            for k, (c, e) in upserts.items()
            if k not in current
        ],
        batch_size=QUERY_CHUNK,
    )
    records = sorted(
        [Record(ALGORITHM_NAMES[k[0]], k[1], Op.UPSERT, c) for k, (c, _) in upserts.items()]
        + [Record(ALGORITHM_NAMES[k[0]], k[1], op, 0) for k, op in removals.items()],
        key=lambda r: (ALGORITHM_IDS[r.algorithm], r.value),
    )
    info = store_bundle(
        records, kind="delta", feed=feed.name, from_version=feed.version, to_version=version
    )
    index_bundle(info, "delta")
    count = feed.entry_count - len(removals) + sum(1 for k in upserts if k not in current)
    FeedVersion.objects.create(
        feed=feed,
        version=version,
        previous_version=feed.version or None,
        entry_count=count,
        state_digest=digest.hexdigest(),
        delta_sha256=info.sha256,
        delta_size=info.size,
        delta_records=info.record_count,
    )
    feed.version, feed.entry_count, feed.lthash = version, count, digest.state()
    feed.save(update_fields=["version", "entry_count", "lthash"])
    manifest_publish(feed, signer=signer, now=now)
    return True


def _entry_states() -> Iterator[tuple[int, dict]]:
    """(entry id, distributable state) of every active entry, in bounded memory."""
    active = Entry.objects.filter(status=EntryStatus.ACTIVE).prefetch_related("hashes")
    for entry in active.iterator(chunk_size=QUERY_CHUNK):
        yield entry.pk, entry_state(entry)


def _populate_feed(feed: Feed, version: int, signer: SigningKey, now: dt.datetime) -> None:
    """First publication of a new feed: its membership over the whole list (a one-off O(list)
    scan), published as version ``version`` with a snapshot and no delta."""
    feed_filter = FeedFilter.of(feed)
    digest = LtHash16()
    batch: list[FeedEntry] = []
    count = 0

    def flush() -> int:
        digest.add(_element((ALGORITHM_IDS[m.algorithm], m.value), m.grading) for m in batch)
        written = len(FeedEntry.objects.bulk_create(batch))
        batch.clear()
        return written

    for entry_id, state in _entry_states():
        for key, code in records_in_feed(feed_filter, state).items():
            batch.append(
                FeedEntry(
                    feed=feed,
                    algorithm=ALGORITHM_NAMES[key[0]],
                    value=key[1],
                    grading=code,
                    entry_id=entry_id,
                )
            )
        if len(batch) >= QUERY_CHUNK:
            count += flush()
    count += flush()
    # closing(): the reader pauses the GC until it is exhausted or closed, even if the
    # encoder fails half-way and the generator is caught in a traceback's reference cycle.
    with contextlib.closing(_feed_rows(feed.pk)) as rows:
        info = store_bundle(
            rows, kind="snapshot", feed=feed.name, from_version=0, to_version=version
        )
    index_bundle(info, "snapshot")
    FeedVersion.objects.create(
        feed=feed,
        version=version,
        previous_version=None,
        entry_count=count,
        state_digest=digest.hexdigest(),
        snapshot_sha256=info.sha256,
        snapshot_size=info.size,
    )
    feed.version, feed.entry_count, feed.lthash = version, count, digest.state()
    feed.populated_at = now
    feed.save(update_fields=["version", "entry_count", "lthash", "populated_at"])
    manifest_publish(feed, signer=signer, now=now)


def release_cut(*, max_changes: int | None = None) -> Release | None:
    """Publish every approved change not yet released as the next release.

    Idempotent: with nothing to release it returns None. Serialised by the row lock, so two
    workers never hand out the same version, and changes that commit while a cut runs are
    simply taken by the next one."""
    limit = max_changes or settings.HASHSYNC_RELEASE_MAX_CHANGES
    with transaction.atomic():
        state = lock_release_state()
        changes = list(Change.objects.filter(release__isnull=True).order_by("id")[:limit])
        new_feeds = list(Feed.objects.filter(active=True, populated_at__isnull=True).order_by("id"))
        if not changes and not new_feeds:
            return None
        signer = keys.online_signing_key()
        version = state.last_version + 1
        now = timezone.now()
        for feed in new_feeds:
            # Built from the entries as they are now, which already include these changes:
            # _cut_feed below then finds nothing left to do for this feed.
            _populate_feed(feed, version, signer, now)
        touched = [feed.name for feed in new_feeds] + [
            feed.name
            for feed in Feed.objects.filter(active=True, populated_at__lt=now).order_by("id")
            if _cut_feed(feed, changes, version, signer, now)
        ]
        ids = [c.pk for c in changes]
        for start in range(0, len(ids), QUERY_CHUNK):
            Change.objects.filter(id__in=ids[start : start + QUERY_CHUNK]).update(release=version)
        state.last_version = version
        state.save(update_fields=["last_version"])
        release = Release.objects.create(
            version=version,
            change_count=len(changes),
            first_change_id=min(ids, default=0),
            last_change_id=max(ids, default=0),
        )
        audit_record(
            actor=None,
            action="release.cut",
            object_type="release",
            object_id=version,
            after={"changes": len(changes), "feeds": touched},
        )
    logger.info("Release %s cut: %s changes, feeds %s", version, len(changes), touched)
    return release


# --- Snapshots -------------------------------------------------------------------------------


def _feed_rows(feed_id: int) -> Generator[Record, None, None]:
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
        with contextlib.closing(_feed_rows(feed.pk)) as rows:  # see _populate_feed
            info = store_bundle(
                rows,
                kind="snapshot",
                feed=feed.name,
                from_version=0,
                to_version=target.version,
            )
        if info.record_count != target.entry_count:
            raise RuntimeError(
                f"snapshot of {feed.name}@{target.version} has {info.record_count} records; "
                f"the feed version says {target.entry_count}"
            )
    with transaction.atomic():
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


def manifest_resign(*, now: dt.datetime | None = None) -> list[str]:
    """Re-sign every feed whose newest manifest expires soon, so clients never see a frozen
    feed go stale merely because nothing changed. Returns the feeds re-signed."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS)
    resigned = []
    with transaction.atomic():
        lock_release_state()
        signer = None
        for feed in Feed.objects.filter(active=True).exclude(version=0).order_by("id"):
            latest = Manifest.objects.filter(feed=feed).order_by("-id").first()
            if latest is not None and latest.expires_at > horizon:
                continue
            signer = signer or keys.online_signing_key()
            manifest_publish(feed, signer=signer, now=now)
            resigned.append(feed.name)
    return resigned


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
