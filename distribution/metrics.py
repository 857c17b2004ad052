"""Publication at scrape time (``hashsync.metrics``): the newest release, how long its cut
took and how many changes it carried (recorded by the cutter on the ``Release`` row, so the
figures are the same whichever worker cut it and whichever web node is scraped), and how soon
the first feed's newest manifest expires. Three small queries."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Min, OuterRef, Subquery
from django.utils import timezone
from prometheus_client.core import Metric

from distribution import selectors
from distribution.models import Release
from hashsync.metrics import gauge_family


class PublicationCollector:
    def collect(self) -> Iterator[Metric]:
        latest = Release.objects.order_by("-version").first()
        version = gauge_family("hashsync_release_version", "The newest release's version.")
        cut = gauge_family(
            "hashsync_release_cut_seconds",
            "How long the newest release's cut took (lock held to release row written).",
        )
        size = gauge_family("hashsync_release_changes", "Changes carried by the newest release.")
        published = gauge_family(
            "hashsync_release_timestamp_seconds", "When the newest release was cut (Unix time)."
        )
        if latest is not None:
            version.add_metric([], float(latest.version))
            size.add_metric([], float(latest.change_count))
            published.add_metric([], latest.created_at.timestamp())
            if latest.cut_seconds is not None:
                cut.add_metric([], latest.cut_seconds)
        yield from (version, cut, size, published)

        newest_expiry = selectors.manifests_newest_first(OuterRef("pk")).values("expires_at")[:1]
        soonest = (
            selectors.feed_list_published()
            .annotate(newest_expires_at=Subquery(newest_expiry))
            .aggregate(soonest=Min("newest_expires_at"))["soonest"]
        )
        expiry = gauge_family(
            "hashsync_manifest_expiry_seconds",
            "Seconds until the first published feed's newest manifest expires (negative: "
            "expired; absent: no published feed). Beat re-signs well before 0.",
        )
        if soonest is not None:
            expiry.add_metric([], (soonest - timezone.now()).total_seconds())
        yield expiry
