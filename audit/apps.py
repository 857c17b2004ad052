from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        # The chain's length and its last verification, read when /metrics is scraped.
        from audit.metrics import AuditCollector
        from hashsync.metrics import register_collector

        register_collector(AuditCollector())
