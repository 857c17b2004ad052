"""Deciding a staged import on its page: approve and reject as a reviewer other than the
uploader, withdraw as the uploader. Each calls the proposal service the API calls
(``hashlist.services.proposal_approve`` and friends), so the four-eyes rule, the "already
decided" check and the audit trail hold as they do there; a refusal is shown on the page."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from hashlist import services
from hashlist.models import ImportBatch
from hashsync.errors import DomainError
from web.forms.imports import ApproveForm, RejectForm, WithdrawForm
from web.pages import show_error, staff_page
from web.views.imports import PROPOSE, REVIEW, batch_or_404, render_import


def _proposal_id(batch: ImportBatch) -> int:
    if batch.proposal_id is None:
        # Not staged (yet): the service would say the same of a missing proposal.
        raise Http404(f"Import {batch.pk} has nothing to review.")
    return batch.proposal_id


@staff_page(REVIEW)
@require_POST
def import_approve(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    form = ApproveForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_approve(
                actor=request.user,
                proposal_id=_proposal_id(batch),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as error:
            show_error(form, error)
        else:
            messages.success(
                request,
                f"Import {batch.pk} approved. Its rows are applied as one unit by a background "
                "task; this page follows it.",
            )
            return HttpResponseRedirect(reverse("web-import", args=[batch.pk]))
    return render_import(request, batch_or_404(batch_id), approve_form=form, status=400)


@staff_page(REVIEW)
@require_POST
def import_reject(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            services.proposal_reject(
                actor=request.user,
                proposal_id=_proposal_id(batch),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as error:
            show_error(form, error)
        else:
            messages.success(request, f"Import {batch.pk} rejected: nothing of it was applied.")
            return HttpResponseRedirect(reverse("web-import", args=[batch.pk]))
    return render_import(request, batch_or_404(batch_id), reject_form=form, status=400)


@staff_page(PROPOSE)
@require_POST
def import_withdraw(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    form = WithdrawForm(request.POST)
    form.is_valid()
    try:
        services.proposal_withdraw(actor=request.user, proposal_id=_proposal_id(batch))
    except DomainError as error:
        show_error(form, error)
        return render_import(request, batch_or_404(batch_id), withdraw_form=form, status=400)
    messages.success(request, f"Import {batch.pk} withdrawn: nobody will review it.")
    return HttpResponseRedirect(reverse("web-import", args=[batch.pk]))
