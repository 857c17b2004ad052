"""Curation's backlog at scrape time (``hashsync.metrics``): proposals waiting for review and
bulk imports not finished. Two aggregate queries; the pending count and its oldest row are
served by ``proposal_pending_idx`` (created_at, pending only)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import Metric

from hashlist.models import ImportBatch, ImportStatus, Proposal, ProposalStatus
from hashsync.metrics import gauge_family

# An import in one of these states still has work ahead of it (a worker's or a reviewer's).
IMPORT_BACKLOG = (
    ImportStatus.UPLOADED,
    ImportStatus.VALIDATING,
    ImportStatus.STAGED,
    ImportStatus.APPLYING,
)


class CurationCollector:
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending = Proposal.objects.filter(status=ProposalStatus.PENDING).aggregate(
            n=Count("id"), oldest=Min("created_at")
        )
        depth = gauge_family("hashsync_review_queue_depth", "Proposals waiting for review.")
        depth.add_metric([], float(pending["n"]))
        age = gauge_family(
            "hashsync_review_queue_oldest_seconds",
            "Age of the oldest proposal waiting for review (0: none waits).",
        )
        oldest = pending["oldest"]
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield depth
        yield age

        backlog = gauge_family(
            "hashsync_import_backlog",
            "Bulk imports not finished, by state (uploaded and validating: a worker's; staged: "
            "a reviewer's; applying: a worker's, after approval).",
            ["status"],
        )
        counts = dict.fromkeys([str(s) for s in IMPORT_BACKLOG], 0)
        oldest_import = None
        for row in (
            ImportBatch.objects.filter(status__in=IMPORT_BACKLOG)
            .order_by()
            .values("status")
            .annotate(n=Count("id"), oldest=Min("created_at"))
        ):
            counts[row["status"]] = row["n"]
            if oldest_import is None or row["oldest"] < oldest_import:
                oldest_import = row["oldest"]
        for status, n in counts.items():
            backlog.add_metric([status], float(n))
        yield backlog
        import_age = gauge_family(
            "hashsync_import_backlog_oldest_seconds",
            "Age of the oldest unfinished bulk import (0: none).",
        )
        import_age.add_metric([], (now - oldest_import).total_seconds() if oldest_import else 0.0)
        yield import_age
