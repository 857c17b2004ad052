"""Reads for members: what a member may receive, and who held what when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import (
    Case,
    Count,
    Exists,
    Expression,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import audit_events
from distribution.models import Feed, FeedEntry, FeedVersion
from distribution.selectors import manifests_newest_first
from hashsync.errors import NotFound

# Who held hash X at time T lives in its own module; re-exported with the other reads.
from members.holders import hash_holders as hash_holders
from members.models import (
    ApiToken,
    Entitlement,
    Feedback,
    FeedbackStatus,
    Licence,
    LicenceKind,
    Member,
    MemberStatus,
    SyncClient,
)

# The member lag chart's read lives in its own module too.
from members.reports import LAG_BUCKETS as LAG_BUCKETS
from members.reports import client_lag_now as client_lag_now


def member_get(name: Any) -> Member:
    member = Member.objects.filter(name=name).first() if isinstance(name, str) else None
    if member is None:
        raise NotFound("No member has that name.")
    return member


def member_list() -> QuerySet[Member]:
    return Member.objects.all()


def member_contacts(member: Member) -> list[dict[str, Any]]:
    return [
        {"id": c.pk, "name": c.name, "email": c.email, "role": c.role}
        for c in member.contacts.order_by("id")
    ]


def member_licences(member: Member) -> list[dict[str, Any]]:
    return [
        {"kind": lic.kind, "reference": lic.reference, "valid_until": lic.valid_until}
        for lic in member.licences.order_by("kind")
    ]


def member_entitlements(member: Member) -> list[dict[str, Any]]:
    """The member's entitlements, each with whether it is receivable now."""
    receivable = {f.pk for f in entitled_feeds(member)}
    return [
        {"feed": e.feed.name, "granted_at": e.granted_at, "receivable": e.feed_id in receivable}
        for e in member.entitlements.select_related("feed").order_by("feed__name")
    ]


def member_clients(member: Member) -> list[dict[str, Any]]:
    return [
        {
            "name": client.name,
            "created_at": client.created_at,
            "digest_mismatch_at": client.digest_mismatch_at,
            "holdings": [
                {
                    "feed": h.feed.name,
                    "version": h.version,
                    "digest_matches": h.digest_matches,
                    "acked_at": h.acked_at,
                }
                for h in client.holdings.select_related("feed").order_by("feed__name")
            ],
        }
        for client in member.clients.order_by("name")
    ]


def member_tokens(member: Member) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(client__member=member).select_related("client").order_by("id")


def dispute_list(*, status: str | None = None) -> QuerySet[Feedback]:
    """Member feedback for the analysts' queue, with whatever its rows show loaded."""
    rows = Feedback.objects.select_related("member", "client", "resolved_by")
    return rows.filter(status=status) if status is not None else rows


def dispute_queue(*, status: str | None = None, kind: str | None = None) -> QuerySet[Feedback]:
    """The staff pages' dispute queue: open disputes first, oldest first (the longest waiting
    is answered first), then the resolved ones, most recently resolved first."""
    rows = dispute_list(status=status)
    if kind is not None:
        rows = rows.filter(kind=kind)
    still_open = Case(When(status=FeedbackStatus.OPEN, then=Value(0)), default=Value(1))
    return rows.order_by(still_open, F("resolved_at").desc(nulls_last=True), "created_at", "id")


def dispute_get(*, feedback_id: int) -> Feedback | None:
    return dispute_list().filter(pk=feedback_id).first()


def dispute_next_open(*, after: Feedback) -> Feedback | None:
    """The open dispute to look at after ``after``: the oldest one still open."""
    return (
        dispute_list(status=FeedbackStatus.OPEN)
        .exclude(pk=after.pk)
        .order_by("created_at", "id")
        .first()
    )


def _valid_licences(kind: str, now: dt.datetime | Expression) -> QuerySet[Licence]:
    return Licence.objects.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now), kind=kind)


def has_licence(member: Member, kind: str, *, now: dt.datetime | None = None) -> bool:
    return _valid_licences(kind, now or timezone.now()).filter(member=member).exists()


def entitlements_in_force(*, now: dt.datetime | Expression) -> QuerySet[Entitlement]:
    """Which feeds members may receive at ``now``, for every member: the one statement of the
    rule. An entitlement to a feed that is not retired; for a feed that can carry PhotoDNA
    hashes (``Feed.carries_photodna``), only with a PhotoDNA licence valid at ``now``.

    Every sync endpoint goes through it: ``entitled_feeds`` and ``entitled_feed_head`` here,
    and the up-to-date poll's token query (``sync.auth``), which embeds the SQL Django compiles
    from ``feed_heads``. A suspended member keeps its entitlements (staff see what it would
    receive again); the token check refuses it before any feed is read."""
    licensed = _valid_licences(LicenceKind.PHOTODNA, now).filter(member=OuterRef("member"))
    return Entitlement.objects.filter(
        Q(feed__carries_photodna=False) | Exists(licensed), feed__active=True
    ).order_by()


def entitled_feeds(member: Member) -> list[Feed]:
    """The feeds the member may receive now (``entitlements_in_force``), by name."""
    in_force = entitlements_in_force(now=timezone.now()).filter(member=member)
    return list(Feed.objects.filter(pk__in=in_force.values("feed_id")).order_by("name"))


def entitled_feed(member: Member, name: str) -> Feed | None:
    in_force = entitlements_in_force(now=timezone.now()).filter(member=member)
    return Feed.objects.filter(pk__in=in_force.values("feed_id"), name=name).first()


@dataclass(frozen=True)
class FeedHead:
    """An entitled feed and the SHA-256 of its newest manifest (None: never published)."""

    feed: Feed  # id, name and algorithms loaded; any other field is read on first access
    manifest_sha256: str | None


# The columns of ``feed_heads``, in this order: ``feed_head_of`` reads them, and so does the
# token query that embeds the statement (``sync.auth``).
FEED_HEAD_COLUMNS = ("member_id", "feed_id", "feed_name", "feed_algorithms", "manifest_sha256")


def feed_heads(*, now: dt.datetime | Expression) -> QuerySet[Entitlement, Any]:
    """``entitlements_in_force`` with what the plan poll needs of each feed: its id, name and
    algorithms and its newest manifest's SHA-256 (``FEED_HEAD_COLUMNS``)."""
    newest = manifests_newest_first(OuterRef("feed_id")).values("sha256")
    return entitlements_in_force(now=now).values(
        "member_id",
        "feed_id",
        feed_name=F("feed__name"),
        feed_algorithms=F("feed__algorithms"),
        manifest_sha256=Subquery(newest[:1]),
    )


def feed_head_of(feed_id: int, name: str, algorithms: Any, manifest_sha256: str | None) -> FeedHead:
    """The ``FeedHead`` of one row of ``feed_heads`` (``algorithms`` already converted)."""
    feed = Feed.from_db(DEFAULT_DB_ALIAS, ["id", "name", "algorithms"], [feed_id, name, algorithms])
    return FeedHead(feed, manifest_sha256)


def entitled_feed_head(
    member: Member, name: str, *, now: dt.datetime | None = None
) -> FeedHead | None:
    """``entitled_feed(member, name)`` and the feed's newest manifest, in one query. The
    up-to-date poll reads the same row with the token instead (``sync.auth``, P4)."""
    row = feed_heads(now=now or timezone.now()).filter(member=member, feed__name=name).first()
    if row is None:
        return None
    return feed_head_of(
        row["feed_id"], row["feed_name"], row["feed_algorithms"], row["manifest_sha256"]
    )


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


# --- The staff pages --------------------------------------------------------------------------


def entry_disputes(*, entry_id: int) -> QuerySet[Feedback]:
    """Every dispute of an entry by any member, oldest first."""
    return dispute_list().filter(entry_id=entry_id).order_by("created_at", "id")


def disputes_open_count() -> int:
    """Open disputes (served by ``feedback_open_idx``)."""
    return dispute_list(status=FeedbackStatus.OPEN).count()


def member_counts() -> dict[str, int]:
    """How many members there are, and how many of them are suspended."""
    found = Member.objects.aggregate(
        total=Count("id"), suspended=Count("id", filter=Q(status=MemberStatus.SUSPENDED))
    )
    return {"total": found["total"], "suspended": found["suspended"]}


# --- The member administrators' pages (web/views/members.py) ----------------------------------


def member_overview(*, status: str | None = None, text: str | None = None) -> QuerySet[Member]:
    """Members for the administrators' list, by name, each with ``client_count``,
    ``token_count`` (tokens that work now: not revoked, not expired), ``last_seen`` (the
    newest use of any of its tokens; None: never) and its licences loaded. Counted in
    subqueries, so one member's many clients never multiply another column."""
    now = timezone.now()
    clients = (
        SyncClient.objects.filter(member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(n=Count("id"))
        .values("n")
    )
    tokens = (
        ApiToken.objects.filter(client__member=OuterRef("pk"), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by()
        .values("client__member")
        .annotate(n=Count("id"))
        .values("n")
    )
    last_used = (
        ApiToken.objects.filter(client__member=OuterRef("pk"))
        .order_by()
        .values("client__member")
        .annotate(newest=Max("last_used_at"))
        .values("newest")
    )
    rows = Member.objects.annotate(
        client_count=Coalesce(Subquery(clients), 0),
        token_count=Coalesce(Subquery(tokens), 0),
        last_seen=Subquery(last_used),
    ).prefetch_related("licences")
    if status:
        rows = rows.filter(status=status)
    if text:
        rows = rows.filter(Q(name__icontains=text) | Q(display_name__icontains=text))
    return rows.order_by("name")


def member_history(member: Member, *, limit: int = 30) -> list[AuditEvent]:
    """The member's audit events, newest first: its own (status, contacts, licences,
    entitlements) and those of its sync clients and tokens (created, revoked). Each part is
    looked up by object, served by ``audit_object_idx``."""
    client_ids = [str(pk) for pk in member.clients.values_list("pk", flat=True)]
    token_ids = [
        str(pk)
        for pk in ApiToken.objects.filter(client__member=member).values_list("pk", flat=True)
    ]
    parts = [audit_events(object_type="member", object_id=str(member.pk))]
    if client_ids:
        parts.append(AuditEvent.objects.filter(object_type="sync_client", object_id__in=client_ids))
    if token_ids:
        parts.append(AuditEvent.objects.filter(object_type="api_token", object_id__in=token_ids))
    events: list[AuditEvent] = []
    for part in parts:
        events.extend(part.order_by("-seq")[:limit])
    return sorted(events, key=lambda e: e.seq, reverse=True)[:limit]


# --- The feeds pages (web/views/feeds.py) ------------------------------------------------------


def feed_member_counts() -> dict[int, int]:
    """feed id → how many members hold an entitlement to it (whether receivable now or not)."""
    rows = Entitlement.objects.values("feed_id").annotate(n=Count("id")).order_by()
    return {row["feed_id"]: row["n"] for row in rows}


def feed_members(feed: Feed) -> list[dict[str, Any]]:
    """The members entitled to ``feed``, by name, each with whether it receives the feed now
    (``entitlements_in_force``: a PhotoDNA feed needs a valid licence) and its status."""
    receiving = set(
        entitlements_in_force(now=timezone.now())
        .filter(feed=feed)
        .values_list("member_id", flat=True)
    )
    return [
        {
            "member": e.member,
            "granted_at": e.granted_at,
            "receivable": e.member_id in receiving,
        }
        for e in Entitlement.objects.filter(feed=feed)
        .select_related("member")
        .order_by("member__name")
    ]
