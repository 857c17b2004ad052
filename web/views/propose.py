"""The propose pages: a new entry, and a change to an entry (regrade, add a hash, remove a
hash, retract). Each calls the service the API calls; the service's refusal shows next to the
field it is about, and a proposal made goes to its own page, pending review."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from hashlist import selectors, services
from hashlist.models import Entry, EntryStatus, Proposal
from hashsync.errors import DomainError
from web.forms.propose import (
    MAX_HASH_ROWS,
    AddHashForm,
    CreateEntryForm,
    GradingForm,
    RegradeForm,
    RemoveHashForm,
    RetractForm,
    hash_row_formset,
)
from web.pages import show_error, staff_page
from web.views.proposal_diff import algorithm_label

PROPOSE = "hashlist.propose_change"

# "hashes[2]: md5: expected …" / "hashes[2] repeats …": the service names a row by its index.
_ROW = re.compile(r"hashes\[(\d+)\]:?\s*(.*)", re.DOTALL)


def optional_url(name: str, *args: Any) -> str | None:
    """The URL of a page another area may not have built yet; None until it exists."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def hash_exists_message(error: DomainError) -> str:
    """The service's "already on the list" refusal, with a link to the entry that holds the
    hash (the value itself is never repeated)."""
    details = error.details if isinstance(error.details, dict) else {}
    entry_id, label = details.get("entry_id"), algorithm_label(str(details.get("algorithm")))
    url = optional_url("web-entry", entry_id) if entry_id else None
    if url:
        return format_html(
            'This {} hash is already on the list, on <a href="{}">entry {}</a>.',
            label,
            url,
            entry_id,
        )
    if entry_id:
        return f"This {label} hash is already on the list, on entry {entry_id}."
    return error.message


def place_error(form: Form, error: DomainError) -> None:
    """Next to the field the service's message begins with ("category must be …",
    "reason is required."), else at the top of the form."""
    first = error.message.split(" ", 1)[0].rstrip(":")
    show_error(form, error, field=first if first in form.fields else None)


def proposed(request: HttpRequest, proposal: Proposal) -> HttpResponse:
    messages.success(request, f"Proposal {proposal.pk} is waiting for a second person's review.")
    return HttpResponseRedirect(reverse("web-proposal", args=[proposal.pk]))


# --- A new entry -------------------------------------------------------------------------------


def _with_another_row(data: Any) -> tuple[CreateEntryForm, Any]:
    """The form as typed so far, unbound (no errors yet), with one more blank hash row."""
    form = CreateEntryForm(
        initial={name: data.get(name, "") for name in CreateEntryForm.base_fields}
    )
    posted = hash_row_formset(data)
    count = min(posted.total_form_count(), MAX_HASH_ROWS - 1)
    rows = [
        {
            "algorithm": data.get(f"hashes-{i}-algorithm", ""),
            "value": data.get(f"hashes-{i}-value", ""),
        }
        for i in range(count)
    ]
    formset = hash_row_formset(initial=[*rows, {}])
    formset.forms[-1].fields["algorithm"].widget.attrs["autofocus"] = True
    return form, formset


def _place_create_error(form: CreateEntryForm, formset: Any, error: DomainError) -> None:
    rows = formset.filled_forms()
    details = error.details if isinstance(error.details, dict) else {}
    index: int | None = details.get("index") if isinstance(details.get("index"), int) else None
    message: str = error.message
    match = _ROW.match(message)
    if match:
        index = int(match.group(1)) if index is None else index
        message = match.group(2)[:1].upper() + match.group(2)[1:]
    if error.code == "hash_exists":
        message = hash_exists_message(error)
    if index is not None and 0 <= index < len(rows):
        rows[index].add_error("value", message)
    elif error.message.startswith("hashes"):
        formset.non_form_errors().append(message)  # the rows as a whole ("at most 32")
    else:
        place_error(form, error)


@staff_page(PROPOSE)
@require_http_methods(["GET", "POST"])
def propose_entry(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "GET":
        form, formset = CreateEntryForm(), hash_row_formset()
    elif "add_row" in request.POST:
        form, formset = _with_another_row(request.POST)
    else:
        form, formset = CreateEntryForm(request.POST), hash_row_formset(request.POST)
        if form.is_valid() & formset.is_valid():  # both, so every problem shows at once
            try:
                proposal = services.proposal_create_entry(
                    actor=request.user,
                    grading=form.grading(),
                    facts=form.facts(),
                    hashes=formset.hashes(),
                    source=form.cleaned_data["source"],
                    notes=form.cleaned_data["notes"],
                    comment=form.cleaned_data["comment"],
                )
            except DomainError as error:
                _place_create_error(form, formset, error)
            else:
                return proposed(request, proposal)
        status = 400
    return render(
        request,
        "web/propose/create.html",
        {"form": form, "formset": formset, "max_rows": MAX_HASH_ROWS},
        status=status,
    )


# --- A change to an entry ----------------------------------------------------------------------


def _entry(entry_id: int) -> Entry:
    entry = selectors.entry_get(entry_id=entry_id)
    if entry is None:
        raise Http404(f"Entry {entry_id} does not exist.")
    return entry


def _entry_context(entry: Entry, **extra: Any) -> dict[str, Any]:
    return {
        "entry": entry,
        "entry_url": optional_url("web-entry", entry.pk),
        "retracted": entry.status == EntryStatus.RETRACTED,
        "hashes": [
            {
                "id": h.pk,
                "algorithm": h.algorithm,
                "label": algorithm_label(h.algorithm),
                "value": selectors.hash_canonical(h.algorithm, h.value),
            }
            for h in entry.hashes.all()
        ],
        "grading": [
            (label, value)
            for label, value in (
                ("Category", entry.get_category_display()),
                ("Age group", entry.get_age_group_display()),
                ("INTERPOL baseline", _baseline(entry)),
                ("Industry class", entry.get_industry_class_display()),
                ("Content type", entry.get_content_type_display()),
                ("Status", entry.get_status_display()),
            )
        ],
        "pending": list(selectors.entry_pending_proposals(entry_id=entry.pk)),
        **extra,
    }


def _baseline(entry: Entry) -> str:
    return {None: "Not assessed", True: "Yes", False: "No"}[entry.baseline]


def _change_page(
    request: HttpRequest, entry: Entry, template: str, form: Form, status: int, **extra: Any
) -> HttpResponse:
    return render(request, template, _entry_context(entry, form=form, **extra), status=status)


@staff_page(PROPOSE)
@require_http_methods(["GET", "POST"])
def propose_regrade(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _entry(entry_id)
    template = "web/propose/regrade.html"
    if request.method == "GET":
        form = RegradeForm(initial=GradingForm.initial_of(entry))
        return _change_page(request, entry, template, form, 200)
    form = RegradeForm(request.POST)
    if form.is_valid():
        try:
            proposal = services.proposal_regrade(
                actor=request.user,
                entry_id=entry.pk,
                grading=form.grading(),
                facts=form.facts(),
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            place_error(form, error)
        else:
            return proposed(request, proposal)
    return _change_page(request, entry, template, form, 400)


@staff_page(PROPOSE)
@require_http_methods(["GET", "POST"])
def propose_add_hash(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _entry(entry_id)
    template = "web/propose/add_hash.html"
    if request.method == "GET":
        return _change_page(request, entry, template, AddHashForm(), 200)
    form = AddHashForm(request.POST)
    if form.is_valid():
        try:
            proposal = services.proposal_add_hash(
                actor=request.user,
                entry_id=entry.pk,
                algorithm=form.cleaned_data["algorithm"],
                value=form.cleaned_data["value"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            if error.code == "hash_exists":
                form.add_error("value", hash_exists_message(error))
            else:
                place_error(form, error)
        else:
            return proposed(request, proposal)
    return _change_page(request, entry, template, form, 400)


@staff_page(PROPOSE)
@require_http_methods(["GET", "POST"])
def propose_remove_hash(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _entry(entry_id)
    template = "web/propose/remove_hash.html"
    hashes = list(entry.hashes.all())
    if request.method == "GET":
        return _change_page(request, entry, template, RemoveHashForm(hashes=hashes), 200)
    form = RemoveHashForm(request.POST, hashes=hashes)
    if form.is_valid():
        chosen = form.chosen()
        try:
            proposal = services.proposal_remove_hash(
                actor=request.user,
                entry_id=entry.pk,
                algorithm=chosen.algorithm,
                value=selectors.hash_canonical(chosen.algorithm, chosen.value),
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            if error.code in ("last_hash", "hash_not_on_entry"):
                show_error(form, error, field="hash")
            else:
                place_error(form, error)
        else:
            return proposed(request, proposal)
    return _change_page(request, entry, template, form, 400)


@staff_page(PROPOSE)
@require_http_methods(["GET", "POST"])
def propose_retract(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = _entry(entry_id)
    template = "web/propose/retract.html"
    if request.method == "GET":
        return _change_page(request, entry, template, RetractForm(), 200)
    form = RetractForm(request.POST)
    if form.is_valid():
        try:
            proposal = services.proposal_retract(
                actor=request.user, entry_id=entry.pk, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            place_error(form, error)
        else:
            return proposed(request, proposal)
    return _change_page(request, entry, template, form, 400)
