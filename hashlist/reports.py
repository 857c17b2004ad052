"""Reads for the report charts about curation: changes per week by kind, and how long
proposals wait for a decision. Each is one grouped query over a bounded range of weeks (served
by ``change_approved_kind_idx`` and ``proposal_reviewed_idx``); its rows are weeks by kinds at
most. Re-exported by ``hashlist.selectors``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncWeek

from hashlist.models import Change, ChangeKind, Proposal, ProposalStatus
from hashsync.aggregates import Percentile, Seconds

# The three kinds of change people ask about, and the change log's kinds in each.
CHANGE_GROUPS: dict[str, tuple[str, ...]] = {
    "Added": (ChangeKind.CREATE, ChangeKind.ADD_HASH),
    "Regraded": (ChangeKind.REGRADE,),
    "Retracted": (ChangeKind.RETRACT, ChangeKind.REMOVE_HASH),
}
DECIDED = (ProposalStatus.APPROVED, ProposalStatus.REJECTED, ProposalStatus.FAILED)


def changes_per_week(*, since: dt.datetime) -> list[dict[str, Any]]:
    """``{"week", "kind", "count"}`` for each week (from ``since``) and change-log kind with
    changes approved in it."""
    rows = (
        Change.objects.filter(approved_at__gte=since)
        .annotate(week=TruncWeek("approved_at"))
        .values("week", "kind")
        .annotate(count=Count("id"))
        .order_by("week", "kind")
    )
    return list(rows)


def review_turnaround_per_week(*, since: dt.datetime) -> list[dict[str, Any]]:
    """``{"week", "count", "median", "p90"}``: proposals decided (approved, rejected, or
    approved and failed to apply) in each week from ``since``, and the median and 90th
    percentile of their time from proposal to decision, in seconds. Withdrawn proposals were
    never decided and are left out."""
    waited = Seconds("reviewed_at", "created_at")
    rows = (
        Proposal.objects.filter(reviewed_at__gte=since, status__in=DECIDED)
        .annotate(week=TruncWeek("reviewed_at"))
        .values("week")
        .annotate(count=Count("id"), median=Percentile(waited, 0.5), p90=Percentile(waited, 0.9))
        .order_by("week")
    )
    return list(rows)
