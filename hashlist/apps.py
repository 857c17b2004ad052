from __future__ import annotations

from django.apps import AppConfig


class HashlistConfig(AppConfig):
    name = "hashlist"

    def ready(self) -> None:
        # The audit app sits below curation and does not know its tables: curation registers
        # what audit_verify must check of them against the chain.
        from audit.verify import register_trail_check
        from hashlist.trail_checks import ReleasedChangesApproved

        register_trail_check("hashlist.released_changes_approved", ReleasedChangesApproved)

        # The review queue and the import backlog, read when /metrics is scraped.
        from hashlist.metrics import CurationCollector
        from hashsync.metrics import register_collector

        register_collector(CurationCollector())
