"""Members' disputes (false-positive reports): the queue, open ones first and oldest first, and
one dispute's page with its resolution. Resolving calls the API's service
(``members.services.feedback_resolve``), so its rules (a required resolution, no second
resolution of a closed dispute) and its audit event are the same as there.

The disputed hash appears only in the page body, in full on the dispute's page; never in a URL
or a title. Upholding a dispute does not change the list: the analyst proposes the correction
from the entry's page, and it goes through four-eyes review."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from hashlist import selectors as hashlist_selectors
from hashsync.errors import DomainError
from members import selectors, services
from members.models import Feedback, FeedbackStatus
from web.forms.disputes import DisputeFilterForm, ResolveForm
from web.pages import show_error, staff_page
from web.views.imports import optional_url
from web.views.proposal_diff import algorithm_label

VIEW = "members.view_feedback"
RESOLVE = "members.resolve_feedback"
VIEW_ENTRY = "hashlist.view_entry"
PROPOSE = "hashlist.propose_change"
PAGE_SIZE = 50
BADGES: dict[str, str] = {
    FeedbackStatus.OPEN: "warn",
    FeedbackStatus.UPHELD: "ok",
    FeedbackStatus.DISMISSED: "",
}


def disputed_hash(dispute: Feedback) -> dict[str, str] | None:
    """The disputed hash in its canonical text form (None: not a value the registry knows)."""
    try:
        value = hashlist_selectors.hash_canonical(dispute.algorithm, bytes(dispute.value))
    except (KeyError, ValueError):
        return None
    return {"label": algorithm_label(dispute.algorithm), "value": value}


def _row(dispute: Feedback, user: Any) -> dict[str, Any]:
    return {
        "dispute": dispute,
        "url": reverse("web-dispute", args=[dispute.pk]),
        "entry_url": optional_url("web-entry", dispute.entry_id)
        if user.has_perm(VIEW_ENTRY)
        else None,
        "hash": disputed_hash(dispute),
        "badge": BADGES.get(dispute.status, ""),
    }


@staff_page(VIEW)
@require_safe
def dispute_queue(request: HttpRequest) -> HttpResponse:
    filters = DisputeFilterForm(request.GET)
    valid = filters.is_valid()
    status = filters.cleaned_data.get("status") or None
    kind = filters.cleaned_data.get("kind") or None
    page = Paginator(selectors.dispute_queue(status=status, kind=kind), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    keep = urlencode({k: v for k, v in (("status", status), ("kind", kind)) if v})
    context = {
        "filters": filters,
        "page": page,
        "rows": [_row(d, request.user) for d in page.object_list],
        "open_count": selectors.disputes_open_count(),
        "filtered": bool(status or kind),
        "keep": keep,
    }
    return render(request, "web/disputes/queue.html", context, status=200 if valid else 400)


def _dispute(feedback_id: int) -> Feedback:
    dispute = selectors.dispute_get(feedback_id=feedback_id)
    if dispute is None:
        raise Http404(f"Dispute {feedback_id} does not exist.")
    return dispute


def _render(
    request: HttpRequest, dispute: Feedback, form: ResolveForm | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    row = _row(dispute, user)
    is_open = dispute.status == FeedbackStatus.OPEN
    context = {
        **row,
        "form": form or ResolveForm(),
        "is_open": is_open,
        "may_resolve": is_open and user.has_perm(RESOLVE),
        "may_propose": user.has_perm(PROPOSE),
        # An entry's only hash goes only with a retraction (as on the entry's page).
        "several_hashes": dispute.status == FeedbackStatus.UPHELD
        and hashlist_selectors.entry_hash_count(entry_id=dispute.entry_id) > 1,
        "others": selectors.entry_disputes(entry_id=dispute.entry_id).exclude(pk=dispute.pk),
    }
    return render(request, "web/disputes/dispute.html", context, status=status)


@staff_page(VIEW)
@require_safe
def dispute_page(request: HttpRequest, feedback_id: int) -> HttpResponse:
    return _render(request, _dispute(feedback_id))


@staff_page(RESOLVE)
@require_POST
def dispute_resolve(request: HttpRequest, feedback_id: int) -> HttpResponse:
    dispute = _dispute(feedback_id)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            resolved = services.feedback_resolve(
                actor=request.user,
                feedback_id=dispute.pk,
                status=form.cleaned_data["status"],
                resolution=form.cleaned_data["resolution"],
            )
        except DomainError as error:
            show_error(form, error)
        else:
            if resolved.status == FeedbackStatus.UPHELD:
                # Upholding is half the work: the correction is proposed next, from here.
                messages.success(
                    request,
                    f"Dispute {resolved.pk} upheld. The list changes only once you propose the "
                    f"correction of entry {resolved.entry_id} and a reviewer approves it.",
                )
                return HttpResponseRedirect(reverse("web-dispute", args=[resolved.pk]))
            messages.success(request, f"Dispute {resolved.pk} dismissed; the entry stays as it is.")
            following = selectors.dispute_next_open(after=resolved)
            if following is None:
                return HttpResponseRedirect(reverse("web-disputes"))
            return HttpResponseRedirect(reverse("web-dispute", args=[following.pk]))
    return _render(request, _dispute(feedback_id), form, status=400)
