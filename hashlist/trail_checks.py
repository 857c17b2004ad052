"""What ``audit_verify`` checks of curation against the audit chain (registered in
``hashlist.apps``; see ``audit.verify.register_trail_check``).

``ReleasedChangesApproved``: every released change has its approval on the chain — a
``proposal.approve`` event for its proposal, by the reviewer the proposal names, whose author
(as the event recorded it) is still the proposal's author and is not the reviewer. The database
refuses unapproved changes and the cutter withholds them; this catches what someone who can
also alter the schema or the proposal rows did behind both (docs/audit.md).

One pass: the approvals are collected while the chain is walked (ints only), then the released
changes are read as one aggregate per (proposal, release) — no query per change or per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Min

from audit.models import AuditEvent
from hashlist.models import Change

APPROVE = "proposal.approve"
# Enough to act on; the count says how many more there are.
MAX_FINDINGS = 50


@dataclass(frozen=True, slots=True)
class _Approval:
    reviewer: int | None
    author: int | None  # as recorded in the event; None in events written before it was


class ReleasedChangesApproved:
    def __init__(self) -> None:
        self.approvals: dict[int, _Approval] = {}

    def see(self, event: AuditEvent) -> None:
        if event.action != APPROVE or event.object_type != "proposal":
            return
        try:
            proposal_id = int(event.object_id)
        except ValueError:
            return
        after = event.after if isinstance(event.after, dict) else {}
        author = after.get("author")
        self.approvals[proposal_id] = _Approval(
            event.actor_id, author if isinstance(author, int) else None
        )

    def problems(self) -> list[str]:
        groups = (
            Change.objects.filter(release__isnull=False)
            .values("proposal_id", "release", "proposal__author_id", "proposal__reviewer_id")
            .annotate(first=Min("id"), last=Max("id"), count=Count("id"))
            .order_by("release", "proposal_id")
        )
        found: list[str] = []
        missing = 0
        for group in groups.iterator(chunk_size=2000):
            why = self._why_unapproved(group)
            if why is None:
                continue
            missing += 1
            if len(found) < MAX_FINDINGS:
                first, last, count = group["first"], group["last"], group["count"]
                which = f"change {first}" if count == 1 else f"{count} changes ({first}–{last})"
                found.append(
                    f"{which} of proposal {group['proposal_id']} released in release "
                    f"{group['release']} without its approval on the chain: {why}"
                )
        if missing > len(found):
            found.append(f"… and {missing - len(found)} more released group(s) like these")
        return found

    def _why_unapproved(self, group: dict[str, Any]) -> str | None:
        author, reviewer = group["proposal__author_id"], group["proposal__reviewer_id"]
        approval = self.approvals.get(group["proposal_id"])
        if approval is None:
            return f"no {APPROVE} event for the proposal"
        if reviewer is None or approval.reviewer != reviewer:
            return (
                f"the {APPROVE} event's actor (user {approval.reviewer}) is not the reviewer "
                f"the proposal names (user {reviewer})"
            )
        if reviewer == author:
            return f"the proposal's author (user {author}) is its reviewer"
        if approval.author is not None and approval.author != author:
            return (
                f"the proposal's author is user {author}, but the approval recorded user "
                f"{approval.author}"
            )
        return None
