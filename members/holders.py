"""The auditors' "which sync clients held hash X at time T, and when did each receive its
removal" (``POST /api/v1/audit/hash-holders/``; fields in docs/audit.md, "Who held a hash").

An ack is only what a client *says* it holds: anyone with a token can copy a state digest from
its own feed list. So a claim counts as holding only with evidence that the client was given
the data: the bundles served to it (the ``sync.bundle`` events of the audit trail, attributed
to the client) lead to the acknowledged version — a snapshot at or below it and every delta
after that snapshot up to it, each served before the ack. The answer says, for each holder,
which evidence its state rests on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from django.db.models import Q

from audit.models import AuditEvent
from distribution.feeds import FeedFilter, records_in_feed
from distribution.models import Feed, FeedVersion, Release
from hashlist.changelog import EntryState
from hashlist.models import Change, EntryStatus, Hash
from hashsync_client.format import ALGORITHM_NAMES
from members.models import Ack, SyncClient

# What a holder's state rests on (docs/audit.md): the served bundles lead to the acked version,
# or nothing but the ack does.
Evidence = Literal["bundles_served", "ack_only"]
BUNDLES_SERVED: Final = "bundles_served"
ACK_ONLY: Final = "ack_only"
EVIDENCE_VALUES: Final = (BUNDLES_SERVED, ACK_ONLY)
# The action of the audit event written for every bundle served to a member
# (``sync.services.record_bundle_served``): the evidence is read from the trail.
BUNDLE_SERVED_ACTION = "sync.bundle"

HASH_STATES = ("active", "retracted", "unknown")
HOLDER_STATES = ("held", "claimed_unverified", "not_held", "no_ack")

Interval = tuple[int, int | None]
# (version, delta bundle SHA-256, snapshot bundle SHA-256) of a feed, newest first.
Chain = list[tuple[int, str, str]]


@dataclass(frozen=True)
class HolderRecord:
    member: str
    client: str
    feed: str
    state_at_time: str
    evidence: Evidence | None
    version_at_time: int | None
    acked_at: dt.datetime | None
    listed_versions: list[Interval]
    removed_in_version: int | None
    removal_acked_at: dt.datetime | None
    removal_evidence: Evidence | None
    # For the auditors' timeline page (not part of the API's answer): when the client first
    # acked a version listing the hash, and when the release that removed it was cut.
    received_at: dt.datetime | None = None
    removal_published_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "client": self.client,
            "feed": self.feed,
            "state_at_time": self.state_at_time,
            "held_at_time": self.state_at_time == "held",
            "evidence": self.evidence,
            "version_at_time": self.version_at_time,
            "acked_at": self.acked_at,
            "listed_versions": [
                {"from_version": start, "until_version": end} for start, end in self.listed_versions
            ],
            "removed_in_version": self.removed_in_version,
            "removal_acked_at": self.removal_acked_at,
            "removal_evidence": self.removal_evidence,
            "received_at": self.received_at,
            "removal_published_at": self.removal_published_at,
        }


def _listed_intervals(
    feed: Feed, algorithm: str, value: bytes, changes: Sequence[Change]
) -> list[Interval]:
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


def _in_intervals(version: int, intervals: Sequence[Interval]) -> bool:
    return any(start <= version and (end is None or version < end) for start, end in intervals)


def _interval_filter(intervals: Sequence[Interval]) -> Q:
    where = Q(pk__in=[])
    for start, end in intervals:
        where |= Q(version__gte=start) & (Q(version__lt=end) if end is not None else Q())
    return where


def _feed_chain(feed: Feed) -> Chain:
    rows = FeedVersion.objects.filter(feed=feed).order_by("-version")
    return list(rows.values_list("version", "delta_sha256", "snapshot_sha256"))


def _bundles_served(
    chain: Chain, clients: Iterable[SyncClient]
) -> dict[str, dict[str, dt.datetime]]:
    """For each client (by its audit label): the feed's bundles served to it, each with when it
    was first served — counting only downloads since the client was created, since a client
    re-created under a deleted one's member and name has the same label. One query on the
    trail's (object type, object id) index."""
    since = {client.audit_label: client.created_at for client in clients}
    shas = {sha for _, delta, snapshot in chain for sha in (delta, snapshot) if sha}
    rows = AuditEvent.objects.filter(
        object_type="bundle",
        object_id__in=shas,
        action=BUNDLE_SERVED_ACTION,
        actor__in=list(since),
    ).values_list("actor", "object_id", "at")
    served: dict[str, dict[str, dt.datetime]] = {}
    for actor, sha, at in rows:
        if at < since[actor]:
            continue
        first = served.setdefault(actor, {})
        if sha not in first or at < first[sha]:
            first[sha] = at
    return served


def evidence_for(chain: Chain, served: dict[str, dt.datetime], ack: Ack) -> Evidence:
    """``BUNDLES_SERVED`` when the bundles served before ``ack`` lead to its version: walking
    down from it, every version's delta was served until one whose snapshot was (or the
    feed's first version, whose delta starts from nothing); else ``ACK_ONLY``."""

    def had(sha: str) -> bool:
        return bool(sha) and sha in served and served[sha] <= ack.acked_at

    for version, delta, snapshot in chain:
        if version > ack.version:
            continue
        if had(snapshot):
            return BUNDLES_SERVED
        if not had(delta):
            return ACK_ONLY
    return BUNDLES_SERVED if any(v <= ack.version for v, _, _ in chain) else ACK_ONLY


def _hash_state(status: str | None) -> str:
    if status is None:
        return "unknown"
    return "retracted" if status == EntryStatus.RETRACTED else "active"


def hash_holders(*, algorithm: str, value: bytes, at: dt.datetime) -> dict[str, Any]:
    """Which sync clients held the hash at time ``at`` (by their last ack at or before it, and
    the bundles served to them that lead to it), and when each acked a version without it
    after it was removed from its feed.

    Only acks whose digest matched are claims at all; a claim without served bundles that
    lead to it is reported as ``claimed_unverified``, never as held. Cost: a few indexed
    queries per client that ever claimed the hash and one query on the audit trail per feed,
    never a scan of every ack."""
    row = (
        Hash.objects.filter(algorithm=algorithm, value=value)
        .values_list("entry_id", "entry__status")
        .first()
    )
    result: dict[str, Any] = {
        "hash_state": _hash_state(row[1] if row else None),
        "at": at,
        "holders": [],
    }
    if row is None:
        return result
    holders = []
    # The entry's released change log, read once for every feed.
    changes = list(
        Change.objects.filter(entry_id=row[0], release__isnull=False)
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
        clients = list(SyncClient.objects.filter(pk__in=list(client_ids)).select_related("member"))
        if not clients:
            continue
        chain = _feed_chain(feed)
        served = _bundles_served(chain, clients)
        for client in clients:
            holders.append(
                _holder(client, feed, acks.filter(client=client), intervals, chain, served, at)
            )
    result["holders"] = sorted(holders, key=lambda h: (h["member"], h["client"], h["feed"]))
    return result


def _holder(
    client: SyncClient,
    feed: Feed,
    own: Any,
    intervals: list[Interval],
    chain: Chain,
    served: dict[str, dict[str, dt.datetime]],
    at: dt.datetime,
) -> dict[str, Any]:
    """One client's entry: its state at ``at`` and the removal it acked after it last claimed
    the hash; ``own`` is its matching acks of ``feed``."""
    given = served.get(client.audit_label, {})
    last = own.filter(acked_at__lte=at).order_by("-acked_at", "-id").first()
    last_held = own.filter(_interval_filter(intervals)).order_by("-acked_at", "-id").first()
    assert last_held is not None  # the client was selected for having one
    evidence = evidence_for(chain, given, last) if last is not None else None
    if last is None:
        state = "no_ack"
    elif not _in_intervals(last.version, intervals):
        state = "not_held"
    else:
        state = "held" if evidence == BUNDLES_SERVED else "claimed_unverified"
    removed_in, removal, removal_published = None, None, None
    first_held = own.filter(_interval_filter(intervals)).order_by("acked_at", "id").first()
    # The removal that matters is the first one after the client last claimed the hash.
    closing = [e for s, e in intervals if e is not None and s <= last_held.version < e]
    if closing:
        removed_in = closing[0]
        removal_published = (
            Release.objects.filter(version=removed_in).values_list("created_at", flat=True).first()
        )
        removal = (
            own.filter(acked_at__gte=last_held.acked_at, version__gte=removed_in)
            .order_by("acked_at", "id")
            .first()
        )
    return HolderRecord(
        member=client.member.name,
        client=client.name,
        feed=feed.name,
        state_at_time=state,
        evidence=evidence,
        version_at_time=last.version if last else None,
        acked_at=last.acked_at if last else None,
        listed_versions=list(intervals),
        removed_in_version=removed_in,
        removal_acked_at=removal.acked_at if removal else None,
        removal_evidence=evidence_for(chain, given, removal) if removal else None,
        received_at=first_held.acked_at if first_held else None,
        removal_published_at=removal_published,
    ).as_dict()
