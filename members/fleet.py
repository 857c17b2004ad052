"""The fleet: for every sync client and every feed its member is entitled to, what the client
last acknowledged and how far behind the feed's current version it is (reads only).

One row per (client, entitled feed), as one SQL statement whatever the size of the fleet: the
entitlements in force (``members.selectors.entitlements_in_force``, the one statement of who
may receive what) joined to the member's clients, each row with the client's holding of the
feed joined, and correlated subqueries on indexed columns (``feed_version_unique``) for how
many of the feed's versions it lacks, when the first of those was published, and when the
client was last seen. Filtering, sorting and counting happen in the database, so a page of
the staff fleet view costs the same for ten clients as for ten thousand.

Words the page uses (``STATUS_LABELS``):

- *current*: the client acknowledged the feed's newest version, with the server's digest;
- *behind*: it lacks versions, the oldest of them published less than ``STALE_AFTER`` ago;
- *stale*: it lacks a version published more than ``STALE_AFTER`` ago;
- *mismatch*: the digest it acknowledged for its version is not the server's (its list is
  not what was published: the client is told to take the snapshot);
- *never acked*: it has not acknowledged any version of the feed.

A *retraction release* of a feed is a release that removed an entry's hashes from that feed
because the entry was retracted (a ``retract`` change whose entry the feed listed before).
A client *missed* it when its acknowledged version of the feed is older (or it never acked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Final

from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    FilteredRelation,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models import Case as CaseExpr
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from distribution.feeds import FeedFilter, records_in_feed
from distribution.models import Feed, FeedVersion, Release
from hashlist.models import Change, ChangeKind
from members.models import ApiToken, Entitlement, Holding
from members.selectors import entitlements_in_force

# A client missing a version published longer ago than this is stale, not merely behind.
STALE_AFTER: Final = dt.timedelta(hours=24)

CURRENT: Final = "current"
BEHIND: Final = "behind"
STALE: Final = "stale"
MISMATCH: Final = "mismatch"
NEVER_ACKED: Final = "never_acked"
STATUS_LABELS: Final = {
    CURRENT: "Current",
    BEHIND: "Behind",
    STALE: "Stale",
    MISMATCH: "Digest mismatch",
    NEVER_ACKED: "Never acked",
}
# The filter that is not a status: clients that did not acknowledge their feed's newest
# retraction release.
MISSED_RETRACTION: Final = "missed_retraction"

# Sort keys of the page (a leading "-" reverses them), each with its ordering. Ties are broken
# by member, client and feed, so a page boundary never moves between two requests.
_TIEBREAK = ("member_name", "client_name", "feed_name")
SORTS: Final[dict[str, tuple[Any, ...]]] = {
    "member": (),
    "behind_versions": (F("behind_versions").desc(),),
    # Longest behind first: the oldest missing version first; current clients last.
    "behind_time": (F("behind_since").asc(nulls_last=True),),
    # Longest unseen first; clients never seen at all before them.
    "last_seen": (F("last_seen").asc(nulls_first=True),),
}
SORT_LABELS: Final = {
    "member": "Member, client, feed",
    "behind_versions": "Most versions behind first",
    "behind_time": "Longest behind first",
    "last_seen": "Longest unseen first",
}

# How many retraction changes are read, newest first, to find each feed's newest retraction
# release: retractions are rare next to additions, and a feed whose newest retraction is
# older than this many of them is reported as having none worth picking out.
RETRACTION_SCAN: Final = 2000


def retraction_versions(feeds: Iterable[Feed] | None = None) -> dict[int, int]:
    """feed id → the feed's newest retraction release (feeds without one are absent).

    Reads retraction changes newest first, each with its entry's state before it, and keeps,
    for each feed that changed at that release, the first one whose entry the feed listed."""
    wanted = {f.pk: f for f in (feeds if feeds is not None else Feed.objects.all())}
    found: dict[int, int] = {}
    if not wanted:
        return found
    filters = {pk: FeedFilter.of(feed) for pk, feed in wanted.items()}
    changes = (
        Change.objects.filter(kind=ChangeKind.RETRACT, release__isnull=False)
        .order_by("-release", "-id")
        .only("before", "release")[:RETRACTION_SCAN]
    )
    changed_at: dict[int, set[int]] = {}
    for change in changes:
        version = change.release
        assert version is not None  # filtered above
        if version not in changed_at:
            changed_at[version] = set(
                FeedVersion.objects.filter(version=version, feed_id__in=list(wanted))
                .exclude(feed_id__in=list(found))
                .values_list("feed_id", flat=True)
            )
        for feed_id in changed_at[version] - found.keys():
            if records_in_feed(filters[feed_id], change.state_before):
                found[feed_id] = version
        if len(found) == len(wanted):
            break
    return found


def fleet_rows(
    *,
    member: str | None = None,
    status: str | None = None,
    missing_release: int | None = None,
    sort: str = "member",
    now: dt.datetime | None = None,
    retractions: dict[int, int] | None = None,
) -> QuerySet[Entitlement, dict[str, Any]]:
    """The fleet, one dict per (sync client, entitled feed), filtered and sorted.

    ``member``: only that member's clients (by name). ``status``: one of ``STATUS_LABELS`` or
    ``MISSED_RETRACTION``. ``missing_release``: only clients of feeds that changed in that
    release and that have not acknowledged it (or anything later). ``sort``: a key of
    ``SORTS``, optionally with a leading "-". ``retractions``: ``retraction_versions()``, if
    the caller has it already.

    Each row has: member_name, member_display, member_status, client_id, client_name,
    client_mismatch_at, feed_id, feed_name, current_version, held_version, held_digest_matches,
    acked_at, behind_versions, behind_since, last_seen, status, retraction_version and
    missed_retraction."""
    now = now or timezone.now()
    if retractions is None:
        retractions = retraction_versions()
    # Any: the type checker's Django plugin does not see the annotations filtered on below.
    rows: Any = _annotated(now, retractions)
    if member is not None:
        rows = rows.filter(member__name=member)
    if status == MISSED_RETRACTION:
        rows = rows.filter(missed_retraction=True)
    elif status is not None:
        rows = rows.filter(status=status)
    if missing_release is not None:
        changed = FeedVersion.objects.filter(feed_id=OuterRef("feed_id"), version=missing_release)
        rows = rows.filter(Exists(changed)).filter(
            Q(held_version__isnull=True) | Q(held_version__lt=missing_release)
        )
    key = sort.removeprefix("-")
    primary = list(SORTS.get(key) or (F("member_name").asc(),))
    if sort.startswith("-"):
        primary = [order.copy().reverse_ordering() for order in primary]
    return rows.order_by(*primary, *_TIEBREAK)


def _annotated(now: dt.datetime, retractions: dict[int, int]) -> QuerySet[Entitlement, Any]:
    missing = FeedVersion.objects.filter(
        feed_id=OuterRef("feed_id"), version__gt=Coalesce(OuterRef("held_version"), 0)
    )
    token_seen = Subquery(
        ApiToken.objects.filter(client_id=OuterRef("client_id"))
        .order_by()
        .values("client_id")
        .annotate(at=Max("last_used_at"))
        .values("at")
    )
    ack_seen = Subquery(
        Holding.objects.filter(client_id=OuterRef("client_id"))
        .order_by()
        .values("client_id")
        .annotate(at=Max("acked_at"))
        .values("at")
    )
    # GREATEST ignores NULLs on PostgreSQL but not on SQLite: pair each with the other.
    last_seen = Greatest(Coalesce(token_seen, ack_seen), Coalesce(ack_seen, token_seen))
    retraction = CaseExpr(
        *[When(feed_id=feed_id, then=Value(v)) for feed_id, v in retractions.items()],
        default=Value(None),
        output_field=BigIntegerField(),
    )
    return (
        entitlements_in_force(now=now)
        # One row per client of the entitled member (the join reused by the names below),
        # with the client's holding of the row's feed joined (holding_unique: at most one).
        .annotate(
            client_id=F("member__clients__id"),
            held=FilteredRelation(
                "member__clients__holdings",
                condition=Q(member__clients__holdings__feed_id=F("feed_id")),
            ),
        )
        .filter(client_id__isnull=False)
        .annotate(
            member_name=F("member__name"),
            member_display=F("member__display_name"),
            member_status=F("member__status"),
            client_name=F("member__clients__name"),
            client_mismatch_at=F("member__clients__digest_mismatch_at"),
            feed_name=F("feed__name"),
            current_version=F("feed__version"),
            held_version=F("held__version"),
            held_digest_matches=F("held__digest_matches"),
            acked_at=F("held__acked_at"),
        )
        .annotate(
            behind_versions=Coalesce(
                Subquery(missing.order_by().values("feed_id").annotate(n=Count("*")).values("n")),
                0,
            ),
            behind_since=Subquery(
                missing.order_by("version").values("created_at")[:1],
                output_field=DateTimeField(),
            ),
            last_seen=last_seen,
            retraction_version=retraction,
        )
        .annotate(
            status=CaseExpr(
                When(held_version__isnull=True, then=Value(NEVER_ACKED)),
                When(held_digest_matches=False, then=Value(MISMATCH)),
                When(held_version__gte=F("current_version"), then=Value(CURRENT)),
                When(behind_since__lt=now - STALE_AFTER, then=Value(STALE)),
                default=Value(BEHIND),
                output_field=CharField(),
            ),
            missed_retraction=CaseExpr(
                When(
                    Q(retraction_version__isnull=False)
                    & (Q(held_version__isnull=True) | Q(held_version__lt=F("retraction_version"))),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .values(
            "member_name",
            "member_display",
            "member_status",
            "client_id",
            "client_name",
            "client_mismatch_at",
            "feed_id",
            "feed_name",
            "current_version",
            "held_version",
            "held_digest_matches",
            "acked_at",
            "behind_versions",
            "behind_since",
            "last_seen",
            "status",
            "retraction_version",
            "missed_retraction",
        )
    )


def fleet_counts(rows: Any) -> dict[str, int]:
    """How many of ``rows`` are in each status, how many missed their feed's newest retraction,
    and at how many members: two grouped queries over the same statement, however many rows.
    ``rows`` is a ``fleet_rows`` queryset."""
    counts = dict.fromkeys([*STATUS_LABELS, "total", MISSED_RETRACTION], 0)
    grouped = rows.order_by().values("status", "missed_retraction").annotate(n=Count("client_id"))
    for group in grouped:
        counts[group["status"]] += group["n"]
        counts["total"] += group["n"]
        if group["missed_retraction"]:
            counts[MISSED_RETRACTION] += group["n"]
    counts["missed_members"] = (
        rows.filter(missed_retraction=True).order_by().values("member_name").distinct().count()
        if counts[MISSED_RETRACTION]
        else 0
    )
    return counts


def recent_releases(limit: int = 40) -> list[dict[str, Any]]:
    """The newest releases, each with how many retraction changes it carried (the page's
    "not holding the release of …" choices)."""
    retracted = Change.objects.filter(kind=ChangeKind.RETRACT, release=OuterRef("version"))
    rows = Release.objects.order_by("-version").annotate(
        retractions=Coalesce(
            Subquery(retracted.order_by().values("release").annotate(n=Count("*")).values("n")),
            0,
        )
    )
    return list(rows.values("version", "created_at", "change_count", "retractions")[:limit])


def newest_retraction_release() -> Release | None:
    """The newest release that carried a retraction (of any feed)."""
    version = (
        Change.objects.filter(kind=ChangeKind.RETRACT, release__isnull=False)
        .order_by("-release")
        .values_list("release", flat=True)
        .first()
    )
    return Release.objects.filter(version=version).first() if version is not None else None


def member_fleet(member: str, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One member's clients and their feeds, for its page (``templates/web/fleet/_table.html``)."""
    return list(fleet_rows(member=member, now=now))
