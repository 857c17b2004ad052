"""An entry's page: its hashes, its grading and status, and its whole history as one timeline
(proposals and their review, the release that carried each approved change, and members'
disputes), with the changes the viewer may propose.

Entries are addressed by id; hash values appear only in the page body."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_safe

from distribution import selectors as distribution_selectors
from hashlist import selectors
from hashlist.models import (
    AGE_GROUP_CHOICES,
    CATEGORY_CHOICES,
    CONTENT_TYPE_CHOICES,
    INDUSTRY_CLASS_CHOICES,
    Change,
    Entry,
    EntryStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from hashsync_client.algorithms import ALGORITHMS
from members import selectors as members_selectors
from members.models import Feedback, FeedbackStatus
from web.pages import staff_page

VIEW_ENTRY = "hashlist.view_entry"
VIEW_PROPOSAL = "hashlist.view_proposal"
VIEW_RELEASE = "distribution.view_release"
VIEW_FEEDBACK = "members.view_feedback"
PROPOSE = "hashlist.propose_change"

GRADING: tuple[tuple[str, str, dict[Any, str]], ...] = (
    ("category", "Category", {value: value for value, _ in CATEGORY_CHOICES}),
    ("age_group", "Age group", dict(AGE_GROUP_CHOICES)),
    ("baseline", "INTERPOL baseline", {None: "Not assessed", True: "Yes", False: "No"}),
    ("industry_class", "Industry class", dict(INDUSTRY_CLASS_CHOICES)),
    ("content_type", "Content type", dict(CONTENT_TYPE_CHOICES)),
)
STATUS_BADGE: dict[str, str] = {
    ProposalStatus.PENDING: "info",
    ProposalStatus.APPROVED: "ok",
    ProposalStatus.REJECTED: "bad",
    ProposalStatus.WITHDRAWN: "",
    ProposalStatus.FAILED: "bad",
}
DISPUTE_BADGE: dict[str, str] = {FeedbackStatus.OPEN: "warn", FeedbackStatus.UPHELD: "ok"}


def grading_facts(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value as people read it) of each grading field present in ``values``."""
    return [
        (label, names.get(values[name], str(values[name])))
        for name, label, names in GRADING
        if name in values
    ]


def grading_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, str]]:
    """The grading fields that differ, each with its old and new value as people read them."""
    return [
        {
            "field": label,
            "before": names.get(before.get(name), str(before.get(name))),
            "after": names.get(after.get(name), str(after.get(name))),
        }
        for name, label, names in GRADING
        if name in after and before.get(name) != after.get(name)
    ]


def algorithm_label(name: str) -> str:
    algorithm = ALGORITHMS.get(name)
    return algorithm.label if algorithm else name


def _url(name: str, *args: Any) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None  # that page belongs to another area, not built yet


@dataclass
class Event:
    """One item of the timeline: a proposal with its review and release, or a dispute."""

    at: dt.datetime
    kind: str  # "proposal" | "dispute"
    proposal: Proposal | None = None
    dispute: Feedback | None = None
    badge: str = ""
    url: str | None = None
    changes: list[Change] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    grading: list[dict[str, str]] = field(default_factory=list)
    hash: tuple[str, str] | None = None
    import_url: str | None = None


def _proposal_event(
    proposal: Proposal,
    entry: Entry,
    changes: list[Change],
    *,
    states: dict[int, dict[str, Any]],
    releases: dict[int, Any] | None,
) -> Event:
    event = Event(
        at=proposal.created_at,
        kind="proposal",
        proposal=proposal,
        badge=STATUS_BADGE.get(proposal.status, ""),
        url=_url("web-proposal", proposal.pk),
        changes=changes,
    )
    payload = proposal.payload if isinstance(proposal.payload, dict) else {}
    if proposal.kind == ProposalKind.REGRADE:
        if changes:  # approved: what it changed, from the change log
            event.grading = grading_changes(changes[0].before or {}, changes[0].after or {})
        else:  # what it proposed to change, against the revision it was made on
            base = states.get(proposal.base_revision or 0)
            if base is None:
                base = {name: getattr(entry, name) for name, _, _ in GRADING}
            event.grading = grading_changes(base, payload.get("grading", {}))
    elif proposal.kind in (ProposalKind.ADD_HASH, ProposalKind.REMOVE_HASH):
        pair = payload.get("hash")
        if isinstance(pair, list) and len(pair) == 2:
            event.hash = (algorithm_label(str(pair[0])), str(pair[1]))
    elif proposal.kind == ProposalKind.IMPORT:
        batch = getattr(proposal, "import_batch", None)
        event.import_url = _url("web-import", batch.pk) if batch else None
    if releases is not None:
        for change in changes:
            release = releases.get(change.release) if change.release is not None else None
            event.releases.append({"version": change.release, "release": release})
    return event


def timeline(
    entry: Entry,
    history: selectors.EntryHistory,
    *,
    releases: dict[int, Any] | None,
    disputes: list[Feedback],
) -> list[Event]:
    """Every proposal and dispute of the entry, oldest first."""
    by_proposal: dict[int, list[Change]] = {}
    for change in history.changes:
        by_proposal.setdefault(change.proposal_id, []).append(change)
    # The entry's state at each revision: it is created at revision 1 and each approved change
    # adds one, in the transaction that writes its change row, so the n-th change led to n.
    states = {n: c.after or {} for n, c in enumerate(history.changes, start=1)}
    events = [
        _proposal_event(p, entry, by_proposal.get(p.pk, []), states=states, releases=releases)
        for p in history.proposals
    ]
    for dispute in disputes:
        events.append(
            Event(
                at=dispute.created_at,
                kind="dispute",
                dispute=dispute,
                badge=DISPUTE_BADGE.get(dispute.status, ""),
                url=_url("web-dispute", dispute.pk),
                hash=_disputed_hash(dispute),
            )
        )
    return sorted(events, key=lambda e: e.at)


def _disputed_hash(dispute: Feedback) -> tuple[str, str] | None:
    try:
        value = selectors.hash_canonical(dispute.algorithm, dispute.value)
        return algorithm_label(dispute.algorithm), value
    except (KeyError, ValueError):  # not a known algorithm and length: say nothing, never fail
        return None


def propose_actions(entry: Entry, user: Any) -> list[dict[str, Any]]:
    """The changes the viewer may propose to this entry, as links to the propose pages (each
    only once its page exists). A retracted entry takes no changes; an entry's only hash can
    only go with a retraction (the service says the same if asked)."""
    if not user.has_perm(PROPOSE) or entry.status != EntryStatus.ACTIVE:
        return []
    several = len(entry.hashes.all()) > 1
    offered = [
        ("web-propose-regrade", "Regrade", "", True),
        ("web-propose-add-hash", "Add a hash", "", True),
        ("web-propose-remove-hash", "Remove a hash", "", several),
        ("web-propose-retract", "Retract", "danger", True),
    ]
    actions = []
    for name, label, style, allowed in offered:
        url = _url(name, entry.pk)
        if url and allowed:
            actions.append({"label": label, "url": url, "style": style})
    return actions


@staff_page(VIEW_ENTRY)
@require_safe
def entry_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.entry_get(entry_id=entry_id)
    if entry is None:
        raise Http404(f"Entry {entry_id} does not exist.")
    user = request.user
    history = selectors.entry_history(entry_id=entry.pk) if user.has_perm(VIEW_PROPOSAL) else None
    disputes = (
        list(members_selectors.entry_disputes(entry_id=entry.pk))
        if user.has_perm(VIEW_FEEDBACK)
        else []
    )
    events: list[Event] | None = None
    pending: list[Proposal] = []
    if history is not None:
        releases = (
            distribution_selectors.releases_by_version(c.release for c in history.changes)
            if user.has_perm(VIEW_RELEASE)
            else None
        )
        events = timeline(entry, history, releases=releases, disputes=disputes)
        pending = [p for p in history.proposals if p.status == ProposalStatus.PENDING]
    context = {
        "entry": entry,
        "grading": grading_facts({name: getattr(entry, name) for name, _, _ in GRADING}),
        "hashes": [
            {
                "algorithm": h.get_algorithm_display(),
                "value": selectors.hash_canonical(h.algorithm, h.value),
                "added": h.created_at,
            }
            for h in entry.hashes.all()
        ],
        "events": events,
        "pending": pending,
        "disputes_shown": user.has_perm(VIEW_FEEDBACK),
        "actions": propose_actions(entry, user),
        "can_propose": user.has_perm(PROPOSE),
    }
    return render(request, "web/entries/entry.html", context)
