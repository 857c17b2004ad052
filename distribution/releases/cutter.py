"""The release cutter: every approved change not yet released becomes the next release.

"Approved" is checked again here, not trusted: only changes whose proposal is approved by a
person other than its author are taken (``Change.objects.approved_by_another``); any other
unreleased change is withheld and reported (``_withhold_unapproved``).

A release costs O(changes * feeds): each feed's net change becomes a delta bundle, its
membership and state digest are updated in place, and a manifest is signed. A feed created
since the last release is first published here as a snapshot of the whole list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.selectors import audit_object_ids
from audit.services import audit_record
from distribution import keys
from distribution.feeds import FeedFilter, Key, records_in_feed, removal_reason, state_keys
from distribution.framework_grading import grader, latest_version
from distribution.models import Feed, FeedEntry, FeedVersion, Release
from distribution.regrade import changed_entries, changed_groups, regrade_records
from distribution.releases.bundles import index_bundle, store_bundle
from distribution.releases.lock import lock_release_state
from distribution.releases.manifests import manifest_publish
from distribution.releases.snapshots import feed_rows
from hashlist.changelog import EntryState
from hashlist.models import Change, Entry, EntryStatus
from hashsync_client.format import ALGORITHM_IDS, ALGORITHM_NAMES, Op, Record
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import SigningKey
from transparency.services import one_checkpoint

logger = logging.getLogger(__name__)

QUERY_CHUNK = 2000
# The audit action for a change kept out of every release (docs/audit.md).
WITHHELD = "release.change_withheld"


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
        state_after = change.state_after
        # Every key the entry had is a candidate removal, not only those the filter admitted
        # before: under new rules (a regrade in this release) "before" is judged by the new
        # rules, and a key the old rules put on the feed must still come off. A removal is
        # only taken for a key that is on the feed now (_cut_feed).
        before = {
            key
            for name, key in state_keys(change.state_before)
            if feed_filter.admits_algorithm(name)
        }
        after = records_in_feed(feed_filter, state_after)
        for key in before - after.keys():
            final[key] = (None, removal_reason(key, state_after), change.entry_id)
        for key, code in after.items():
            final[key] = (code, None, change.entry_id)
    return final


def _element(key: Key, grading: int) -> bytes:
    return element(ALGORITHM_NAMES[key[0]], key[1], grading)


def _cut_feed(
    feed: Feed,
    changes: Sequence[Change],
    version: int,
    signer: SigningKey,
    now: dt.datetime,
    regrades: _Regrades,
) -> bool:
    newest = regrades.newest(feed.framework)
    feed_filter = FeedFilter.of(feed, framework_version=newest)
    final = _net_effect(feed_filter, changes)
    rules_changed = feed.framework_version != newest
    # 0: a feed published before it recorded its rule version (tests that set populated_at).
    old = feed.framework_version or newest
    if old != newest:
        # The framework's rules changed since the feed was published: the entries whose class
        # moved get their new records, unless a change of this release already gave them.
        for key, effect in regrade_records(
            feed_filter, regrades.entries(feed.framework, old, newest)
        ).items():
            final.setdefault(key, effect)
    if not final and not rules_changed:
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
    framework = feed_filter.grader.ref
    if not upserts and not removals:
        if rules_changed and framework is None:
            # A format-1 feed names no rule version: nothing for members to learn.
            feed.framework_version = newest
            feed.save(update_fields=["framework_version"])
        if not rules_changed or framework is None:
            return False
        # A format-2 feed's manifest names its rule version: publish the new one, even with
        # no record changed (an empty delta).

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
        records,
        kind="delta",
        feed=feed.name,
        from_version=feed.version,
        to_version=version,
        framework=framework,
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
    feed.framework_version = newest
    feed.save(update_fields=["version", "entry_count", "lthash", "framework_version"])
    manifest_publish(feed, signer=signer, now=now)
    return True


class _Regrades:
    """Per cut: each framework's newest rule version, and the entries a rule change moves
    (computed once per framework and pair of versions, shared by the feeds in it)."""

    def __init__(self) -> None:
        self._newest: dict[str, int] = {}
        self._entries: dict[tuple[str, int, int], list[tuple[int, EntryState]]] = {}

    def newest(self, slug: str) -> int:
        if slug not in self._newest:
            self._newest[slug] = latest_version(slug)
        return self._newest[slug]

    def entries(self, slug: str, old: int, new: int) -> list[tuple[int, EntryState]]:
        key = (slug, old, new)
        if key not in self._entries:
            groups = changed_groups(slug, grader(slug, old), grader(slug, new))
            self._entries[key] = list(changed_entries(groups))
        return self._entries[key]


def _stale_frameworks() -> bool:
    """Whether a published feed's rules are older than its framework's newest."""
    feeds = Feed.objects.filter(active=True, populated_at__isnull=False)
    pairs = set(feeds.values_list("framework", "framework_version"))
    return any(version != latest_version(slug) for slug, version in pairs)


def _entry_states() -> Iterator[tuple[int, EntryState]]:
    """(entry id, distributable state) of every active entry, in bounded memory."""
    active = Entry.objects.filter(status=EntryStatus.ACTIVE).prefetch_related("hashes")
    for entry in active.iterator(chunk_size=QUERY_CHUNK):
        yield entry.pk, EntryState.of(entry)


def _populate_feed(feed: Feed, version: int, signer: SigningKey, now: dt.datetime) -> None:
    """First publication of a new feed: its membership over the whole list (a one-off O(list)
    scan), published as version ``version`` with a snapshot and no delta."""
    newest = latest_version(feed.framework)
    feed_filter = FeedFilter.of(feed, framework_version=newest)
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
    with contextlib.closing(feed_rows(feed.pk)) as rows:
        info = store_bundle(
            rows,
            kind="snapshot",
            feed=feed.name,
            from_version=0,
            to_version=version,
            framework=feed_filter.grader.ref,
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
    feed.populated_at, feed.framework_version = now, newest
    feed.save(
        update_fields=["version", "entry_count", "lthash", "populated_at", "framework_version"]
    )
    manifest_publish(feed, signer=signer, now=now)


def _withhold_unapproved() -> None:
    """Changes whose proposal is not approved by a person other than its author stay out of
    every release (``release_cut``'s query does not take them, so they block nothing). The database
    refuses to store them (hashlist migration 0005): one that exists was written behind the
    triggers' back, so it is logged and put on the audit trail — once per change — by id only,
    never its hash values."""
    withheld = list(
        Change.objects.filter(release__isnull=True)
        .not_approved_by_another()
        .order_by("id")
        .values_list("id", "proposal_id", "proposal__status", "entry_id")
    )
    for start in range(0, len(withheld), QUERY_CHUNK):
        page = withheld[start : start + QUERY_CHUNK]
        known = audit_object_ids(
            action=WITHHELD, object_type="change", object_ids=[str(row[0]) for row in page]
        )
        for change_id, proposal_id, proposal_status, entry_id in page:
            if str(change_id) in known:
                continue
            logger.warning(
                "Change %s (entry %s) withheld from every release: its proposal %s is %s, "
                "not approved by a person other than its author",
                change_id,
                entry_id,
                proposal_id,
                proposal_status,
            )
            audit_record(
                actor=None,
                action=WITHHELD,
                object_type="change",
                object_id=change_id,
                after={"proposal": proposal_id, "proposal_status": proposal_status},
                reason="its proposal is not approved by a person other than its author",
            )


def release_cut(*, max_changes: int | None = None) -> Release | None:
    """Publish every approved change not yet released as the next release.

    Idempotent: with nothing to release it returns None. Serialised by the row lock, so two
    workers never hand out the same version, and changes that commit while a cut runs are
    simply taken by the next one."""
    limit = max_changes or settings.HASHSYNC_RELEASE_MAX_CHANGES
    # One log checkpoint for all the release's manifests, signed before it commits.
    with transaction.atomic(), one_checkpoint():
        state = lock_release_state()
        started = time.monotonic()
        _withhold_unapproved()
        approved = Change.objects.filter(release__isnull=True).approved_by_another()
        changes = list(approved.order_by("id")[:limit])
        if len(changes) == limit:
            # A proposal is released as one unit: a bulk import's rows (a million or more) are
            # never split across releases by the limit, which only bounds how many proposals
            # one cut takes.
            last = changes[-1]
            changes += approved.filter(proposal_id=last.proposal_id, id__gt=last.pk).order_by("id")
        new_feeds = list(Feed.objects.filter(active=True, populated_at__isnull=True).order_by("id"))
        if not changes and not new_feeds and not _stale_frameworks():
            return None
        signer = keys.online_signing_key()
        regrades = _Regrades()
        version = state.last_version + 1
        now = timezone.now()
        for feed in new_feeds:
            # Built from the entries as they are now, which already include these changes:
            # _cut_feed below then finds nothing left to do for this feed.
            _populate_feed(feed, version, signer, now)
        touched = [feed.name for feed in new_feeds] + [
            feed.name
            for feed in Feed.objects.filter(active=True, populated_at__lt=now).order_by("id")
            if _cut_feed(feed, changes, version, signer, now, regrades)
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
            cut_seconds=round(time.monotonic() - started, 3),
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
