from __future__ import annotations

from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "distribution"

    def ready(self) -> None:
        # Bundle storage, the signing key and manifest expiry join the readiness checks.
        from distribution import health  # noqa: F401

        # The newest release and manifest expiry, read when /metrics is scraped.
        from distribution.metrics import PublicationCollector
        from hashsync.metrics import register_collector

        register_collector(PublicationCollector())

        # Publication listens to curation, never the other way round: an approval announces
        # that changes wait in the change log, and a release cut is scheduled for after commit.
        from distribution.tasks import on_changes_waiting
        from hashlist.changelog import changes_waiting

        changes_waiting.connect(on_changes_waiting, dispatch_uid="distribution.release_cut")
