"""Member lag at scrape time (``hashsync.metrics``): per member, how far its furthest-behind
sync client is from the newest version of the feeds the member is entitled to.

Read from the fleet's one statement (``members.fleet.fleet_rows``: every client x entitled
feed with its holding) grouped by member in the database, so a scrape is one query whatever
the size of the fleet; no row per client leaves PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Max, Min
from django.utils import timezone
from prometheus_client.core import Metric

from hashsync.metrics import gauge_family
from members.fleet import fleet_rows


class MemberLagCollector:
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        versions = gauge_family(
            "hashsync_member_lag_versions",
            "Feed versions the member's furthest-behind sync client lacks (entitled feeds; a "
            "client that never acked lacks them all).",
            ["member"],
        )
        seconds = gauge_family(
            "hashsync_member_lag_seconds",
            "Seconds since the oldest feed version one of the member's sync clients lacks was "
            "published (0: every client holds the newest version of every entitled feed).",
            ["member"],
        )
        clients = gauge_family(
            "hashsync_member_sync_clients",
            "Sync client x entitled feed pairs of the member (what the lag is the worst of).",
            ["member"],
        )
        # Any: the type checker's Django plugin does not see fleet_rows' annotations.
        rows: Any = fleet_rows(now=now, retractions={})
        grouped = (
            rows.order_by()
            .values("member_name")
            .annotate(
                worst_versions=Max("behind_versions"),
                oldest_missing=Min("behind_since"),
                pairs=Count("client_id"),
            )
        )
        for row in grouped:
            member = row["member_name"]
            versions.add_metric([member], float(row["worst_versions"] or 0))
            clients.add_metric([member], float(row["pairs"]))
            since = row["oldest_missing"]
            seconds.add_metric([member], max(0.0, (now - since).total_seconds()) if since else 0.0)
        yield versions
        yield seconds
        yield clients
