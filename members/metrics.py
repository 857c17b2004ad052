"""Member lag at scrape time (``hashsync.metrics``): per member, how far its furthest-behind
sync client is from the newest version of the feeds the member is entitled to.

Two statements, whatever the size of the fleet:

1. the entitlements in force (``members.selectors.entitlements_in_force``, the one statement
   of who may receive what) joined to each member's clients and their holdings, grouped in
   the database to one row per (member, feed): the lowest version any of its clients holds
   (0: one never acked) — a join and a GROUP BY, no per-client subquery;
2. for each distinct (feed, lowest version) among those rows — a handful in a healthy fleet,
   since clients sit at the head or a few versions behind it — how many versions the feed
   published after it and when the first of them was published (``feed_version_unique``).

Per-client correlated subqueries, as the fleet page runs for one page of rows, cost ~1 s of
PostgreSQL time a scrape at 10,000 clients; these two statements ~0.08 s
(bench/metrics_scrape.py, docs/operations.md), the rest of a scrape's time being the
per-member series themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import Count, F, FilteredRelation, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import Metric

from distribution.models import FeedVersion
from hashsync.metrics import gauge_family
from members.selectors import entitlements_in_force

# Pairs per statement of step 2 (SQLite allows 500 terms in a compound SELECT).
_PAIRS_PER_QUERY = 400


def _lowest_held(now: dt.datetime) -> list[dict[str, Any]]:
    return list(
        entitlements_in_force(now=now)
        .annotate(
            client_id=F("member__clients__id"),
            held=FilteredRelation(
                "member__clients__holdings",
                condition=Q(member__clients__holdings__feed_id=F("feed_id")),
            ),
            member_name=F("member__name"),
        )
        .filter(client_id__isnull=False)
        .values("member_name", "feed_id")
        .annotate(lowest=Min(Coalesce("held__version", 0)), pairs=Count("client_id"))
        .order_by()
    )


def _missing(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, Any]]:
    """For each (feed, version): (versions of the feed after it, when the first was
    published — None when there is none)."""
    table = connection.ops.quote_name(FeedVersion._meta.db_table)
    found: dict[tuple[int, int], tuple[int, Any]] = {}
    ordered = sorted(pairs)
    for start in range(0, len(ordered), _PAIRS_PER_QUERY):
        chunk = ordered[start : start + _PAIRS_PER_QUERY]
        wanted = " UNION ALL ".join(["SELECT %s AS feed_id, %s AS held"] * len(chunk))
        # Only the table name (from the model) is formatted in; every value is a parameter.
        sql = (
            f"SELECT p.feed_id, p.held, "  # noqa: S608
            f"(SELECT COUNT(*) FROM {table} v WHERE v.feed_id = p.feed_id AND v.version > p.held), "
            f"(SELECT MIN(v.created_at) FROM {table} v "
            f"WHERE v.feed_id = p.feed_id AND v.version > p.held) "
            f"FROM ({wanted}) p"
        )
        params = [value for pair in chunk for value in pair]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for feed_id, held, count, since in cursor.fetchall():
                if isinstance(since, str):  # SQLite returns MIN() of a datetime as text
                    since = dt.datetime.fromisoformat(since)
                    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
                found[(int(feed_id), int(held))] = (int(count), since)
    return found


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
        rows = _lowest_held(now)
        missing = _missing({(row["feed_id"], row["lowest"]) for row in rows})
        worst: dict[str, list[float]] = {}  # member: [versions, seconds, pairs]
        for row in rows:
            count, since = missing[(row["feed_id"], row["lowest"])]
            age = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
            figures = worst.setdefault(row["member_name"], [0.0, 0.0, 0.0])
            figures[0] = max(figures[0], float(count))
            figures[1] = max(figures[1], age)
            figures[2] += row["pairs"]
        for member, (behind, age, pairs) in sorted(worst.items()):
            versions.add_metric([member], behind)
            seconds.add_metric([member], age)
            clients.add_metric([member], pairs)
        yield versions
        yield seconds
        yield clients
