"""The review pages: the queue of proposals waiting for someone else's decision, and one
proposal's page — before and after side by side, who proposed it and when, and for the
people who may: approve, reject (each with a reason) or withdraw. The decisions are the API's
services (``proposal_approve``, ``proposal_reject``, ``proposal_withdraw``), so the four-eyes
and staleness rules hold here exactly as there; the page explains them before anyone tries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from distribution.regrade import regrade_impact
from hashlist import framework_store, selectors, services
from hashlist.changelog import EntryState
from hashlist.frameworks.facts import LABELS, NEW_FACTS
from hashlist.frameworks.impact import rule_diff
from hashlist.frameworks.rules import Definition
from hashlist.models import Proposal, ProposalKind, ProposalStatus
from hashsync.errors import DomainError, InvalidInput
from hashsync.pagination import keyset_page
from web.forms.review import ApproveForm, RejectForm, WithdrawForm
from web.pages import show_error, staff_page
from web.views.proposal_diff import SAME, algorithm_label, diff, proposed_state, shown, summary
from web.views.propose import PROPOSE, optional_url

VIEW = "hashlist.view_proposal"
REVIEW = "hashlist.review_proposal"


def _proposal(proposal_id: int) -> Proposal:
    proposal = selectors.proposal_get(proposal_id=proposal_id)
    if proposal is None:
        raise Http404(f"Proposal {proposal_id} does not exist.")
    return proposal


def review_url(proposal: Proposal) -> str:
    """Where a proposal is reviewed: an import on its import page (rows, errors, a sample)
    once that page exists, everything else on the proposal page."""
    batch = getattr(proposal, "import_batch", None)
    if proposal.kind == ProposalKind.IMPORT and batch is not None:
        url = optional_url("web-import", batch.pk)
        if url:
            return url
    return reverse("web-proposal", args=[proposal.pk])


def is_stale(proposal: Proposal) -> bool:
    """Pending, and its entry has moved on since it was proposed: approving it is refused
    (``hashlist.services`` checks the same revision)."""
    entry = proposal.entry
    return (
        proposal.status == ProposalStatus.PENDING
        and entry is not None
        and proposal.kind != ProposalKind.CREATE
        and entry.revision != proposal.base_revision
    )


# --- The proposal page -------------------------------------------------------------------------


def _framework_context(proposal: Proposal) -> dict[str, Any]:
    """A rule-change proposal: the rule diff (the version it was made against → proposed) and
    how many entries it regrades, counted now (docs/grading.md)."""
    if proposal.kind != ProposalKind.FRAMEWORK:
        return {}
    from web.views.frameworks import diff_rows

    payload = proposal.payload or {}
    slug = payload.get("framework", "")
    versions = {v.version: v for v in framework_store.framework_versions(slug=slug)}
    base = versions.get(int(payload.get("base_version") or 0))
    if base is None:
        return {}
    old = Definition.parse(base.definition)
    new = Definition.parse(payload["definition"])
    found = rule_diff(old, new)
    newest = max(versions)
    made = getattr(proposal, "framework_version", None)
    return {
        "framework_change": {
            "slug": slug,
            "name": base.framework.name,
            "base_version": base.version,
            "newest_version": newest,
            "made_version": made.version if made else None,
            # Pending, and another change was approved since: approval is refused.
            "stale": proposal.status == ProposalStatus.PENDING and newest != base.version,
            "diff_rows": diff_rows(found),
            "classes_added": found.classes_added,
            "classes_removed": found.classes_removed,
            "impact": framework_store.rule_change_impact(old=old, new=new),
        },
        # What approving it releases: the entries regraded in the published feeds that
        # deliver this framework — exactly what the releases after approval carry. Only
        # for a proposal that can still be approved: once decided (or stale) the count
        # would compare the current rules with themselves.
        "impact_feeds": (
            regrade_impact(slug, payload["definition"])
            if proposal.status == ProposalStatus.PENDING and newest == base.version
            else None
        ),
    }


def _entry_states(proposal: Proposal) -> dict[str, Any]:
    """Before and after for the diff, and for a stale proposal what changed since."""
    if proposal.kind in (ProposalKind.IMPORT, ProposalKind.FRAMEWORK):
        return {}
    frameworks = framework_store.frameworks_current()
    if proposal.entry_id is None:  # a new entry, not approved (yet)
        return {"diff": diff(None, proposed_state(proposal, None) or {}, frameworks)}
    changes = list(selectors.entry_changes(entry_id=proposal.entry_id))
    own = next((c for c in changes if c.proposal_id == proposal.pk), None)
    if own is not None:  # approved: exactly what it changed
        return {"diff": diff(own.before, own.after or {}, frameworks)}
    entry = selectors.entry_get(entry_id=proposal.entry_id)
    assert entry is not None  # entries are never deleted (PROTECT)
    current = EntryState.of(entry).to_json()
    base = proposal.base_revision or 0
    # The entry as the author saw it: the state its base revision's change left.
    before: dict[str, Any] = (
        changes[base - 1].after if 0 < base <= len(changes) else None
    ) or current
    after = proposed_state(proposal, before) or before
    result: dict[str, Any] = {"diff": diff(before, after, frameworks)}
    if is_stale(proposal):
        since = diff(before, current)
        result["stale"] = {
            "base_revision": base,
            "current_revision": entry.revision,
            "changes": changes[base:],
            "fields": [row for row in since.fields if row.state != SAME],
            "hashes": [
                row for row in (*since.before_hashes, *since.after_hashes) if row.state != SAME
            ],
        }
    return result


def _hashes_now_listed(proposal: Proposal) -> list[dict[str, Any]]:
    """For a pending proposal that adds hashes: those another approval put on the list since
    (approving it would be refused)."""
    payload = proposal.payload or {}
    if proposal.status != ProposalStatus.PENDING:
        return []
    if proposal.kind == ProposalKind.CREATE:
        pairs = [(n, t) for n, t in payload.get("hashes", [])]
    elif proposal.kind == ProposalKind.ADD_HASH:
        pairs = [tuple(payload["hash"])]
    else:
        return []
    owners = selectors.hash_owners(pairs=cast(list[tuple[str, str]], pairs))
    return [
        {
            "label": algorithm_label(name),
            "entry_id": entry_id,
            "entry_url": optional_url("web-entry", entry_id),
        }
        for (name, _), entry_id in owners.items()
    ]


def _import_context(proposal: Proposal) -> dict[str, Any]:
    batch = getattr(proposal, "import_batch", None)
    if batch is None:
        return {}
    url = optional_url("web-import", batch.pk)
    if url:
        return {"batch": batch, "import_url": url}
    # Without the import pages, the batch's summary is reviewed here.
    counts = selectors.import_summary(batch=batch)
    return {
        "batch": batch,
        "import_url": None,
        "import_summary": counts,
        "import_summary_tables": [
            ("Algorithm", {algorithm_label(k): n for k, n in counts["by_algorithm"].items()}),
            ("Category", counts["by_category"]),
            ("Age group", counts["by_age_group"]),
            ("Content type", counts["by_content_type"]),
            ("INTERPOL baseline", counts["by_baseline"]),
            (
                "Industry class",
                {k or "not classified": n for k, n in counts["by_industry_class"].items()},
            ),
            *((LABELS[name], counts[f"by_{name}"]) for name in NEW_FACTS),
        ],
    }


# The import summary counts by text keys; baseline's are "yes", "no" and "unknown".
_BASELINE_KEYS = {"yes": True, "no": False, "unknown": None}


def _labelled(name: str, counts: dict[str, int]) -> dict[str, int]:
    def key(value: str) -> Any:
        return _BASELINE_KEYS.get(value) if name == "baseline" else value

    return {shown(name, key(value)): n for value, n in counts.items()}


_HEADINGS: dict[str, str] = {
    ProposalKind.CREATE: "new entry",
    ProposalKind.REGRADE: "regrade entry",
    ProposalKind.ADD_HASH: "add a hash to entry",
    ProposalKind.REMOVE_HASH: "remove a hash from entry",
    ProposalKind.RETRACT: "retract entry",
    ProposalKind.IMPORT: "bulk import",
    ProposalKind.FRAMEWORK: "change a framework's rules",
}


def _render(
    request: HttpRequest,
    proposal: Proposal,
    *,
    approve_form: ApproveForm | None = None,
    reject_form: RejectForm | None = None,
    withdraw_form: WithdrawForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    pending = proposal.status == ProposalStatus.PENDING
    is_author = proposal.author_id == user.pk
    reviewer = user.has_perm(REVIEW)
    approve_form = approve_form or ApproveForm()
    reject_form = reject_form or RejectForm()
    withdraw_form = withdraw_form or WithdrawForm()
    context: dict[str, Any] = {
        "proposal": proposal,
        "heading": _HEADINGS.get(proposal.kind, proposal.kind),
        "pending": pending,
        "is_author": is_author,
        "four_eyes": pending and reviewer and is_author,
        "may_withdraw": pending and is_author and user.has_perm(PROPOSE),
        "entry_url": optional_url("web-entry", proposal.entry_id) if proposal.entry_id else None,
        "approve_form": approve_form,
        "reject_form": reject_form,
        "withdraw_form": withdraw_form,
        "forms": [approve_form, reject_form, withdraw_form],
        "now_listed": _hashes_now_listed(proposal),
        **_entry_states(proposal),
        **_import_context(proposal),
        **_framework_context(proposal),
    }
    # An import is decided on its import page when that page exists.
    context["may_review"] = pending and reviewer and not is_author and not context.get("import_url")
    return render(request, "web/review/proposal.html", context, status=status)


@staff_page(VIEW)
@require_safe
def proposal_page(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _render(request, _proposal(proposal_id))


def _next(request: HttpRequest, decided: Proposal) -> HttpResponse:
    following = selectors.review_queue_next(
        reviewer_id=int(request.user.pk or 0), after_id=decided.pk
    )
    if following is None:
        return HttpResponseRedirect(reverse("web-review-queue"))
    return HttpResponseRedirect(review_url(following))


@staff_page(REVIEW)
@require_POST
def proposal_approve(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal(proposal_id)
    form = ApproveForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_approve(
                actor=request.user, proposal_id=proposal.pk, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            show_error(form, error)
        else:
            if proposal.kind == ProposalKind.IMPORT:
                done = f"Import proposal {proposal.pk} approved: its rows are being applied."
            else:
                done = f"Proposal {proposal.pk} approved: the next release carries it."
            messages.success(request, done)
            return _next(request, proposal)
    return _render(request, _proposal(proposal_id), approve_form=form, status=400)


@staff_page(REVIEW)
@require_POST
def proposal_reject(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal(proposal_id)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_reject(
                actor=request.user, proposal_id=proposal.pk, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            show_error(form, error)
        else:
            messages.success(request, f"Proposal {proposal.pk} rejected; its author sees why.")
            return _next(request, proposal)
    return _render(request, _proposal(proposal_id), reject_form=form, status=400)


@staff_page(PROPOSE)
@require_POST
def proposal_withdraw(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal(proposal_id)
    form = WithdrawForm(request.POST)
    form.is_valid()
    try:
        services.proposal_withdraw(actor=request.user, proposal_id=proposal.pk)
    except DomainError as error:
        show_error(form, error)
        return _render(request, _proposal(proposal_id), withdraw_form=form, status=400)
    messages.success(request, f"Proposal {proposal.pk} withdrawn; nobody will review it.")
    return HttpResponseRedirect(reverse("web-proposal", args=[proposal.pk]))


# --- The review queue --------------------------------------------------------------------------


class QueueFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "All kinds"), *ProposalKind.choices]
    )


@staff_page(REVIEW)
@require_safe
def review_queue(request: HttpRequest) -> HttpResponse:
    me = int(request.user.pk or 0)
    filters = QueueFilterForm(request.GET)
    kind = filters.cleaned_data.get("kind") if filters.is_valid() else None
    status = 200 if filters.is_valid() else 400
    queue = selectors.review_queue(reviewer_id=me, kind=kind or None)
    try:
        # The API's keyset paging, read from the page's query string.
        page = keyset_page(cast(Any, SimpleNamespace(query_params=request.GET)), queue, list)
    except InvalidInput as error:
        filters.add_error(None, error.message)
        page, status = keyset_page(cast(Any, SimpleNamespace(query_params={})), queue, list), 400
    rows = [
        {
            "proposal": p,
            "url": review_url(p),
            "summary": summary(p),
            "stale": is_stale(p),
            "entry_url": optional_url("web-entry", p.entry_id) if p.entry_id else None,
        }
        for p in page["results"]
    ]
    keep = {"kind": kind} if kind else {}
    after = page["next_after"]
    return render(
        request,
        "web/review/queue.html",
        {
            "filters": filters,
            "rows": rows,
            "waiting": selectors.review_queue(reviewer_id=me).count(),
            "mine": selectors.proposal_list(status=ProposalStatus.PENDING, author_id=me).count(),
            "paged": bool(request.GET.get("after")),
            "first_url": "?" + urlencode(keep) if keep else "?",
            "next_url": "?" + urlencode({**keep, "after": after}) if after else None,
        },
        status=status,
    )
