"""Reads for members: what a member may receive, and who held what when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q
from django.utils import timezone

from distribution.feeds import FeedFilter, records_in_feed
from distribution.models import Feed, FeedEntry, FeedVersion, Manifest
from hashlist.changelog import EntryState
from hashlist.models import Change, Hash
from hashsync_client.format import ALGORITHM_NAMES
from members.models import Ack, Entitlement, Licence, LicenceKind, Member, SyncClient

PHOTODNA = "photodna"


def feed_can_carry_photodna(feed: Feed) -> bool:
    return not feed.algorithms or PHOTODNA in feed.algorithms


def has_licence(member: Member, kind: str, *, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return member.licences.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now), kind=kind
    ).exists()


def entitled_feeds(member: Member) -> list[Feed]:
    """The active feeds the member may receive now: entitled, and — for any feed that can
    carry PhotoDNA hashes — licensed for PhotoDNA. The one place that decides; every sync
    endpoint (feeds, plans, bundles, lookup, feedback) goes through it."""
    feeds = list(Feed.objects.filter(entitlements__member=member, active=True).order_by("name"))
    if any(feed_can_carry_photodna(f) for f in feeds) and not has_licence(
        member, LicenceKind.PHOTODNA
    ):
        feeds = [f for f in feeds if not feed_can_carry_photodna(f)]
    return feeds


def entitled_feed(member: Member, name: str) -> Feed | None:
    return next((f for f in entitled_feeds(member) if f.name == name), None)


@dataclass(frozen=True)
class FeedHead:
    """An entitled feed and the SHA-256 of its newest manifest (None: never published)."""

    feed: Feed  # id, name and algorithms loaded; any other field is read on first access
    manifest_sha256: str | None


def feed_head_sql(member_id: str) -> tuple[str, str]:
    """The read behind ``entitled_feed_head``, as SQL to embed in a query that has the member's
    id as the SQL expression ``member_id`` (the token query of ``members.auth`` does, so the
    up-to-date poll reads the token, entitlement and manifest in one query; P4).

    Returns (five select-list columns, a LEFT JOIN clause aliasing the feed ``f``); their
    parameters, in this order: ``feed_head_params(now)`` for the columns, then the feed's name
    for the join. ``feed_head_from_row`` reads the five columns. The rule is the one of
    ``entitled_feeds``: entitled, active, and for a feed that can carry PhotoDNA a licence
    valid now (decided in Python by ``feed_can_carry_photodna``, as there)."""
    columns = (
        # Table names from the models, ``member_id`` from the caller's code: no input here.
        f"f.id, f.name, f.algorithms, EXISTS (SELECT 1 FROM {Licence._meta.db_table} l"  # noqa: S608
        f" WHERE l.member_id = {member_id} AND l.kind = %s"
        " AND (l.valid_until IS NULL OR l.valid_until > %s)),"
        f" (SELECT x.sha256 FROM {Manifest._meta.db_table} x WHERE x.feed_id = f.id"
        " ORDER BY x.id DESC LIMIT 1)"
    )
    join = (
        f" LEFT JOIN {Feed._meta.db_table} f ON f.name = %s AND f.active AND EXISTS ("  # noqa: S608
        f"SELECT 1 FROM {Entitlement._meta.db_table} e"
        f" WHERE e.member_id = {member_id} AND e.feed_id = f.id)"
    )
    return columns, join


def feed_head_params(now: dt.datetime) -> list[Any]:
    """The parameters of ``feed_head_sql``'s columns (the join's is the feed's name)."""
    return [LicenceKind.PHOTODNA, connections[DEFAULT_DB_ALIAS].ops.adapt_datetimefield_value(now)]


def feed_head_from_row(values: Sequence[Any]) -> FeedHead | None:
    """The ``FeedHead`` of the five columns of ``feed_head_sql``, or None: not entitled."""
    feed_id, feed_name, raw_algorithms, licensed, manifest_sha256 = values
    if feed_id is None:  # no active feed of that name, or not entitled to it
        return None
    db = connections[DEFAULT_DB_ALIAS]
    algorithms = Feed._meta.get_field("algorithms")
    feed = Feed.from_db(
        db.alias,
        ["id", "name", "algorithms"],
        [feed_id, feed_name, algorithms.from_db_value(raw_algorithms, algorithms.cached_col, db)],
    )
    if feed_can_carry_photodna(feed) and not licensed:
        return None
    return FeedHead(feed, manifest_sha256)


def entitled_feed_head(
    member: Member, name: str, *, now: dt.datetime | None = None
) -> FeedHead | None:
    """``entitled_feed(member, name)`` and the feed's newest manifest, in one query: what the
    up-to-date poll reads besides the token (P4, docs/benchmarks.md).

    Raw SQL because this runs on every poll: ``entitled_feed`` and a query for the manifest
    took ~1.1 ms of Python CPU through the ORM (three or four queries), this ~0.07 ms.
    """
    columns, join = feed_head_sql("m.id")
    sql = f"SELECT {columns} FROM {Member._meta.db_table} m{join} WHERE m.id = %s"  # noqa: S608
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, [*feed_head_params(now or timezone.now()), name, member.pk])
        row = cursor.fetchone()
    return feed_head_from_row(row) if row is not None else None


def feeds_holding_bundle(sha256: str) -> set[int]:
    return set(
        FeedVersion.objects.filter(Q(delta_sha256=sha256) | Q(snapshot_sha256=sha256))
        .values_list("feed_id", flat=True)
        .distinct()
    )


def feed_entries_for(
    feed_ids: Sequence[int], pairs: Iterable[tuple[str, bytes]]
) -> dict[tuple[str, bytes], list[FeedEntry]]:
    """Rows of the given feeds holding any of the (algorithm, value) pairs."""
    by_algorithm: dict[str, set[bytes]] = {}
    for algorithm, value in pairs:
        by_algorithm.setdefault(algorithm, set()).add(value)
    found: dict[tuple[str, bytes], list[FeedEntry]] = {}
    if not feed_ids:
        return found
    for algorithm, values in by_algorithm.items():
        rows = FeedEntry.objects.filter(
            feed_id__in=feed_ids, algorithm=algorithm, value__in=list(values)
        ).select_related("feed")
        for row in rows.order_by("feed__name"):
            found.setdefault((algorithm, bytes(row.value)), []).append(row)
    return found


# --- Who held hash X at time T ---------------------------------------------------------------


@dataclass(frozen=True)
class HolderRecord:
    member: str
    client: str
    feed: str
    held_at_time: bool
    version_at_time: int | None
    acked_at: dt.datetime | None
    listed_versions: list[tuple[int, int | None]]
    removed_in_version: int | None
    removal_acked_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "client": self.client,
            "feed": self.feed,
            "held_at_time": self.held_at_time,
            "version_at_time": self.version_at_time,
            "acked_at": self.acked_at,
            "listed_versions": [
                {"from_version": start, "until_version": end} for start, end in self.listed_versions
            ],
            "removed_in_version": self.removed_in_version,
            "removal_acked_at": self.removal_acked_at,
        }


def _listed_intervals(
    feed: Feed, algorithm: str, value: bytes, changes: Sequence[Change]
) -> list[tuple[int, int | None]]:
    """The version intervals [start, end) during which the hash was in the feed, from the
    released ``changes`` of its entry (in release order). ``end`` None means still listed."""
    feed_filter = FeedFilter.of(feed)
    first = FeedVersion.objects.filter(feed=feed).order_by("version").first()
    if first is None:
        return []
    # The feed's membership at its first version is the entry's state as of that release.
    intervals: list[list[Any]] = []
    inside = False
    for change in changes:
        in_feed = any(
            key[1] == value and name == algorithm
            for name, key in _keys_in(feed_filter, change.state_after)
        )
        version = max(change.release or 0, first.version)
        if in_feed and not inside:
            intervals.append([version, None])
        elif not in_feed and inside:
            intervals[-1][1] = version
        inside = in_feed
    # Collapse intervals that opened and closed before the feed existed.
    return [(s, e) for s, e in intervals if e is None or e > s]


def _keys_in(
    feed_filter: FeedFilter, state: EntryState | None
) -> Iterable[tuple[str, tuple[int, bytes]]]:
    return [(ALGORITHM_NAMES[key[0]], key) for key in records_in_feed(feed_filter, state)]


def _in_intervals(version: int, intervals: Sequence[tuple[int, int | None]]) -> bool:
    return any(start <= version and (end is None or version < end) for start, end in intervals)


def _interval_filter(intervals: Sequence[tuple[int, int | None]]) -> Q:
    where = Q(pk__in=[])
    for start, end in intervals:
        where |= Q(version__gte=start) & (Q(version__lt=end) if end is not None else Q())
    return where


def hash_holders(*, algorithm: str, value: bytes, at: dt.datetime) -> dict[str, Any]:
    """Which sync clients held the hash at time ``at`` (by their last ack at or before it),
    and when each acked a version without it after it was removed from its feed.

    An ack is what a client proves it holds; a download alone is not holding, so the answer
    is built from acks (bundle downloads are on the audit trail for the rest of the story).
    Only acks whose digest matched count. Cost: a few indexed queries per client that ever
    held the hash, never a scan of every ack."""
    row = Hash.objects.filter(algorithm=algorithm, value=value).only("entry_id").first()
    result: dict[str, Any] = {"listed": row is not None, "at": at, "holders": []}
    if row is None:
        return result
    holders = []
    # The entry's released change log, read once for every feed.
    changes = list(
        Change.objects.filter(entry_id=row.entry_id, release__isnull=False)
        .order_by("release", "id")
        .only("after", "release")
    )
    for feed in Feed.objects.order_by("name"):
        intervals = _listed_intervals(feed, algorithm, value, changes)
        if not intervals:
            continue
        acks = Ack.objects.filter(feed=feed, digest_matches=True)
        listed = _interval_filter(intervals)
        client_ids = acks.filter(listed).values_list("client_id", flat=True).distinct()
        for client in SyncClient.objects.filter(pk__in=list(client_ids)).select_related("member"):
            own = acks.filter(client=client)
            last = own.filter(acked_at__lte=at).order_by("-acked_at", "-id").first()
            last_held = own.filter(listed).order_by("-acked_at", "-id").first()
            assert last_held is not None  # the client was selected for having one
            removed_in, removal_acked = None, None
            # The removal that matters is the first one after the client last held the hash.
            closing = [e for s, e in intervals if e is not None and s <= last_held.version < e]
            if closing:
                removed_in = closing[0]
                removal = (
                    own.filter(acked_at__gte=last_held.acked_at, version__gte=removed_in)
                    .order_by("acked_at", "id")
                    .first()
                )
                removal_acked = removal.acked_at if removal else None
            holders.append(
                HolderRecord(
                    member=client.member.name,
                    client=client.name,
                    feed=feed.name,
                    held_at_time=last is not None and _in_intervals(last.version, intervals),
                    version_at_time=last.version if last else None,
                    acked_at=last.acked_at if last else None,
                    listed_versions=list(intervals),
                    removed_in_version=removed_in,
                    removal_acked_at=removal_acked,
                ).as_dict()
            )
    result["holders"] = sorted(holders, key=lambda h: (h["member"], h["client"], h["feed"]))
    return result
