"""Reads for the member lag chart: how far behind the published feeds the fleet's clients are
now. One aggregate query over the clients of active members (a suspended member's clients are
refused sync, so their lag is not news). Re-exported by ``members.selectors``.

A client is as far behind as its furthest feed: for each feed it holds (and that is still
published), it has been behind since the first version after the one it acknowledged was
published. "Within one release" counts clients whose every feed is at the current version or
the one before it."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from distribution.models import FeedVersion
from members.models import Holding, MemberStatus, SyncClient

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# The buckets of the chart, in order: each client is in exactly one.
LAG_BUCKETS = (
    ("current", "Up to date"),
    ("hour", "Behind under an hour"),
    ("day", "Behind 1 hour to 1 day"),
    ("over_day", "Behind over a day"),
    ("never", "Never acknowledged"),
)


def client_lag_now(*, now: dt.datetime) -> dict[str, int]:
    """How many clients of active members are in each of ``LAG_BUCKETS``, and ``total`` and
    ``within_one_release``."""
    first_missed = (
        FeedVersion.objects.filter(feed=OuterRef("feed_id"), version__gt=OuterRef("version"))
        .order_by("version")
        .values("created_at")[:1]
    )
    published = Holding.objects.filter(client=OuterRef("pk"), feed__active=True)
    behind_since = (
        published.annotate(missed=Subquery(first_missed))
        .filter(missed__isnull=False)
        .order_by("missed")
        .values("missed")[:1]
    )
    previous = FeedVersion.objects.filter(
        feed=OuterRef("feed_id"), version=OuterRef("feed__version")
    ).values("previous_version")[:1]
    further = published.annotate(floor=Coalesce(Subquery(previous), F("feed__version"))).filter(
        version__lt=F("floor")
    )
    clients = SyncClient.objects.filter(member__status=MemberStatus.ACTIVE).annotate(
        acked=Exists(Holding.objects.filter(client=OuterRef("pk"))),
        behind_since=Subquery(behind_since),
        further=Exists(further),
    )
    behind = Q(acked=True, behind_since__isnull=False)
    return clients.aggregate(
        total=Count("id"),
        never=Count("id", filter=Q(acked=False)),
        current=Count("id", filter=Q(acked=True, behind_since__isnull=True)),
        hour=Count("id", filter=behind & Q(behind_since__gte=now - HOUR)),
        day=Count(
            "id", filter=behind & Q(behind_since__lt=now - HOUR, behind_since__gte=now - DAY)
        ),
        over_day=Count("id", filter=behind & Q(behind_since__lt=now - DAY)),
        within_one_release=Count("id", filter=Q(acked=True, further=False)),
    )
