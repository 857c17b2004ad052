"""Reads for the report charts about publication: each feed's size over time, release cuts
and the bundle bytes written. Grouped in the database by week over a bounded range; rows are
feeds by weeks at most. Re-exported by ``distribution.selectors``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Avg, Count, Max, Sum
from django.db.models.functions import TruncWeek

from distribution.models import BundleObject, Feed, FeedVersion, Release


def feed_sizes_per_week(*, since: dt.datetime) -> dict[str, Any]:
    """Each feed's entry count at the end of every week from ``since`` in which it changed,
    and where it stood before ``since``.

    ``{"feeds": [Feed…] (every feed ever published, by name), "start": {feed_id: count},
    "weeks": {(feed_id, week): count}}``."""
    last_in_week = (
        FeedVersion.objects.filter(created_at__gte=since)
        .annotate(week=TruncWeek("created_at"))
        .values("feed_id", "week")
        .annotate(version=Max("version"))
        .order_by()
    )
    before = (
        FeedVersion.objects.filter(created_at__lt=since)
        .values("feed_id")
        .annotate(version=Max("version"))
        .order_by()
    )
    wanted = {(r["feed_id"], r["version"]): r["week"] for r in last_in_week}
    start_versions = {(r["feed_id"], r["version"]) for r in before}
    pairs = set(wanted) | start_versions
    counts: dict[tuple[int, int], int] = {}
    if pairs:
        rows = FeedVersion.objects.filter(
            feed_id__in={f for f, _ in pairs}, version__in={v for _, v in pairs}
        ).values_list("feed_id", "version", "entry_count")
        counts = {(f, v): c for f, v, c in rows if (f, v) in pairs}
    feeds = list(Feed.objects.filter(versions__isnull=False).distinct().order_by("name"))
    return {
        "feeds": feeds,
        "start": {f: counts[(f, v)] for f, v in start_versions if (f, v) in counts},
        "weeks": {(f, week): counts[(f, v)] for (f, v), week in wanted.items() if (f, v) in counts},
    }


def releases_per_week(*, since: dt.datetime) -> list[dict[str, Any]]:
    """``{"week", "count", "changes", "mean_seconds", "max_seconds", "timed"}`` per week from
    ``since`` with releases; ``timed``: how many of them recorded their cut duration."""
    rows = (
        Release.objects.filter(created_at__gte=since)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(
            count=Count("id"),
            changes=Sum("change_count"),
            mean_seconds=Avg("cut_seconds"),
            max_seconds=Max("cut_seconds"),
            timed=Count("cut_seconds"),
        )
        .order_by("week")
    )
    return list(rows)


def bundle_bytes_per_week(*, since: dt.datetime) -> list[dict[str, Any]]:
    """``{"week", "kind", "count", "bytes", "largest"}``: bundles stored per week and kind
    ("delta", "snapshot") from ``since`` (each content-addressed bundle once)."""
    rows = (
        BundleObject.objects.filter(created_at__gte=since)
        .annotate(week=TruncWeek("created_at"))
        .values("week", "kind")
        .annotate(count=Count("sha256"), bytes=Sum("size"), largest=Max("size"))
        .order_by("week", "kind")
    )
    return list(rows)
