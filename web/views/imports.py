"""Bulk imports: the list with the upload form, an import's page (progress while it runs, then
its summary, errors, a sample and the review), the progress fragment htmx polls, and the error
report as CSV. Deciding a staged import is import_review.py's.

Uploading calls the service the API calls (``hashlist.imports.import_upload``): its size and
format checks and the audit trail hold as they do there. File names and messages are shown,
never logged here; hash values appear only in the sample, in the page body.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST, require_safe

from hashlist import imports, selectors
from hashlist.models import ImportBatch
from hashsync.errors import DomainError, InvalidInput
from hashsync.validation import MAX_BIGINT, query_int
from web.forms.imports import (
    ApproveForm,
    ImportFilterForm,
    RejectForm,
    UploadForm,
    WithdrawForm,
)
from web.pages import show_error, staff_page
from web.views.import_state import import_context

VIEW = "hashlist.view_importbatch"
PROPOSE = "hashlist.propose_change"
REVIEW = "hashlist.review_proposal"

LIST_PAGE = 50
CSV_CHUNK = 5000


def batch_or_404(batch_id: int) -> ImportBatch:
    batch = selectors.import_get(batch_id=batch_id)
    if batch is None:
        raise Http404(f"Import {batch_id} does not exist.")
    return batch


def optional_url(name: str, *args: Any) -> str | None:
    """The URL of a page another area builds, or None while it does not exist yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def newest_first(
    queryset: QuerySet[ImportBatch], params: Mapping[str, str], size: int
) -> tuple[list[ImportBatch], int | None]:
    """One page of a keyset walk by id downwards (``before`` is the last id shown), and the
    ``before`` of the next page. Raises InvalidInput for a malformed ``before``."""
    before = query_int(params, "before", default=0, minimum=0, maximum=MAX_BIGINT)
    if before:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].pk if more and rows else None)


# --- The list and the upload form --------------------------------------------------------------


def _render_list(
    request: HttpRequest, *, upload_form: UploadForm | None = None, status: int = 200
) -> HttpResponse:
    filters = ImportFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    mine = bool(chosen.get("mine"))
    queryset = selectors.import_list(
        status=chosen.get("status") or None,
        uploaded_by_id=int(request.user.pk or 0) if mine else None,
    )
    if not filters.is_valid():
        status = 400
    try:
        batches, before = newest_first(queryset, request.GET, LIST_PAGE)
    except InvalidInput as error:
        filters.add_error(None, error.message)
        batches, before = newest_first(queryset, {}, LIST_PAGE)
        status = 400
    keep = {"status": chosen.get("status") or "", "mine": "on" if mine else ""}
    keep = {name: value for name, value in keep.items() if value}
    may_upload = request.user.has_perm(PROPOSE)
    return render(
        request,
        "web/imports/list.html",
        {
            "filters": filters,
            "filtered": bool(keep),
            "rows": [import_context(b, short=True) for b in batches],
            "paged": bool(request.GET.get("before")),
            "first_url": _query(keep),
            "next_url": _query({**keep, "before": before}) if before else None,
            "may_upload": may_upload,
            "upload_form": (upload_form or UploadForm()) if may_upload else None,
        },
        status=status,
    )


def _query(params: Mapping[str, Any]) -> str:
    return "?" + urlencode(params)


@staff_page(VIEW)
@require_safe
def import_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@staff_page(PROPOSE)
@require_POST
def import_upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            batch = imports.import_upload(
                actor=request.user,
                file=data["file"],
                format=data["format"] or None,
                comment=data["comment"],
            )
        except DomainError as error:
            _show_upload_error(form, error)
        else:
            messages.success(
                request,
                f"Import {batch.pk} uploaded. Every row is being checked; this page shows the "
                "progress, then the result.",
            )
            return HttpResponseRedirect(reverse("web-import", args=[batch.pk]))
    return _render_list(request, upload_form=form, status=400)


def _show_upload_error(form: UploadForm, error: DomainError) -> None:
    if error.code == "unknown_format":
        # The service's message speaks to API callers ("pass format"); here it is a field.
        form.add_error(
            "format",
            "The format cannot be told from the file's name. Choose CSV or JSON Lines here, "
            "or rename the file to end in .csv or .jsonl.",
        )
    elif error.code == "empty_file":
        form.add_error(
            "file",
            f"{error.message} Check that you chose the right file and that the export finished.",
        )
    elif error.code == "upload_too_large":
        form.add_error("file", f"{error.message} Split it into several files and upload each one.")
    else:
        show_error(form, error, field="file")


# --- An import's page, its progress fragment and its error report ------------------------------


def render_import(
    request: HttpRequest,
    batch: ImportBatch,
    *,
    approve_form: ApproveForm | None = None,
    reject_form: RejectForm | None = None,
    withdraw_form: WithdrawForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = import_context(batch, request=request)
    forms: list[Any] = [
        approve_form or ApproveForm(),
        reject_form or RejectForm(),
        withdraw_form or WithdrawForm(),
    ]
    context.update(
        approve_form=forms[0],
        reject_form=forms[1],
        withdraw_form=forms[2],
        proposal_url=optional_url("web-proposal", batch.proposal_id) if batch.proposal_id else None,
    )
    if context.get("errors_page_invalid"):
        status = 400
    return render(request, "web/imports/detail.html", context, status=status)


@staff_page(VIEW)
@require_safe
def import_page(request: HttpRequest, batch_id: int) -> HttpResponse:
    return render_import(request, batch_or_404(batch_id))


@staff_page(VIEW)
@require_safe
def import_progress(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The progress card alone, for htmx to swap in every two seconds. Once the import has
    moved on it answers without the trigger (so polling stops) and asks htmx to reload the
    page, which then shows the result."""
    batch = batch_or_404(batch_id)
    context = import_context(batch, request=request, with_details=False)
    context["fragment"] = True
    response = render(request, "web/imports/_progress.html", context)
    if not context["running"] and getattr(request, "htmx", False):
        response["HX-Refresh"] = "true"
    return response


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer's output."""

    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text that starts like a formula gets a leading
    apostrophe (OWASP's advice against CSV injection). Numbers are left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _error_lines(batch_id: int) -> Iterator[list[Any]]:
    yield ["line", "field", "reason"]
    rows = selectors.import_errors(batch_id=batch_id).order_by("pk")
    last = 0
    while True:
        # Keyset chunks: no cursor is held open while the client reads slowly.
        chunk = list(rows.filter(pk__gt=last)[:CSV_CHUNK])
        if not chunk:
            return
        for error in chunk:
            field = selectors.import_error_field(error.message)
            yield [error.line, csv_cell(field), csv_cell(error.message)]
        last = chunk[-1].pk


@staff_page(VIEW)
@require_safe
def import_errors_csv(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = batch_or_404(batch_id)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _error_lines(batch.pk)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-errors.csv"'
    # staff_page types its views as answering HttpResponse; Django serves either kind.
    return cast(HttpResponse, response)
