"""The audit trail at scrape time (``hashsync.metrics``): the trail's length (the sum of its
lanes' heads, one row per lane) and the newest finished verification (``ChainCheck``, recorded
by the auditors' page and by ``manage.py audit_verify``; one indexed row)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from audit.models import ChainCheck
from audit.selectors import trail_length
from hashsync.metrics import gauge_family


class AuditCollector:
    def collect(self) -> Iterator[Metric]:
        length = gauge_family(
            "hashsync_audit_chain_length",
            "Events on the audit trail, across every lane (the sum of the lanes' heads).",
        )
        length.add_metric([], float(trail_length()))
        yield length

        last = (
            ChainCheck.objects.filter(finished_at__isnull=False)
            .order_by("-started_at")
            .values("ok", "findings", "finished_at")
            .first()
        )
        ok = gauge_family(
            "hashsync_audit_verify_ok",
            "1 when the newest finished verification of the audit chain found it intact and in "
            "agreement with the tables, 0 when it did not; absent before the first.",
        )
        finished = gauge_family(
            "hashsync_audit_verify_finished_timestamp_seconds",
            "When the newest verification of the audit chain finished (Unix time).",
        )
        if last is not None and last["finished_at"] is not None:
            ok.add_metric([], 1.0 if last["ok"] and not last["findings"] else 0.0)
            finished.add_metric([], last["finished_at"].timestamp())
        yield ok
        yield finished
