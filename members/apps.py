from __future__ import annotations

from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"

    def ready(self) -> None:
        # Member lag, read from the fleet when /metrics is scraped.
        from hashsync.metrics import register_collector
        from members.metrics import MemberLagCollector

        register_collector(MemberLagCollector())
