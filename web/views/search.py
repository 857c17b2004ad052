"""Search: find the entries holding a hash (pasted in any accepted form), and browse the list
by grading, status, date and author.

The hash travels only in the POST body and its result is the POST's own response (no redirect:
a redirect would have to carry the hash, or what it found, somewhere a URL or a log can see).
The browsing filters are GET parameters and never include a hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from hashlist import selectors
from hashlist.models import Entry
from hashsync.errors import DomainError
from hashsync_client.algorithms import ALGORITHMS, parse_any
from web.forms.search import OLDEST, EntryFilterForm, HashSearchForm
from web.pages import show_error, staff_page

VIEW_ENTRY = "hashlist.view_entry"
PAGE_SIZE = 50


@dataclass(frozen=True)
class HashResult:
    """What a hash search found: the matching entries, each with the label of the algorithm it
    matched as, and the algorithms the value was read as (to say what was looked for when
    nothing matched)."""

    matches: list[tuple[str, Entry]]
    read_as: list[str]


@dataclass(frozen=True)
class EntryPage:
    rows: list[Entry]
    next_url: str | None
    first_url: str | None


@staff_page(VIEW_ENTRY)
@require_http_methods(["GET", "POST"])
def search(request: HttpRequest) -> HttpResponse:
    status = 200
    hash_form = HashSearchForm()
    result: HashResult | None = None
    if request.method == "POST":
        hash_form = HashSearchForm(request.POST)
        result = _search_hash(hash_form)
        if result is None:
            status = 400
    filter_form = EntryFilterForm(request.GET)
    page = _entry_page(filter_form) if filter_form.is_valid() else None
    if page is None:
        status = 400
    context = {
        "hash_form": hash_form,
        "result": result,
        "filter_form": filter_form,
        "page": page,
        "sort_links": _sort_links(filter_form) if page else None,
        "filtered": bool(filter_form.query(sort=None)) if page else False,
    }
    return render(request, "web/search/search.html", context, status=status)


def _search_hash(form: HashSearchForm) -> HashResult | None:
    if not form.is_valid():
        return None
    value, algorithm = form.cleaned_data["value"], form.cleaned_data["algorithm"] or None
    try:
        matches = selectors.hash_search(value=value, algorithm=algorithm)
    except DomainError as error:
        show_error(form, error, field="value")
        return None
    if algorithm:
        read_as = [ALGORITHMS[algorithm].label]
    else:
        read_as = [algo.label for algo, _ in parse_any(value)]
    labelled = [(ALGORITHMS[name].label, entry) for name, entry in matches]
    return HashResult(matches=labelled, read_as=read_as)


def _entry_page(form: EntryFilterForm) -> EntryPage:
    """One page of the filtered list, newest (highest id) or oldest first. Keyset paging on
    the id, which entries receive in the order they are added: constant cost however deep."""
    rows_qs = selectors.entry_filter(**form.filters())
    after = form.cleaned_data["after"]
    if form.cleaned_data.get("sort") == OLDEST:
        rows_qs = rows_qs.order_by("pk")
        if after is not None:
            rows_qs = rows_qs.filter(pk__gt=after)
    else:
        rows_qs = rows_qs.order_by("-pk")
        if after is not None:
            rows_qs = rows_qs.filter(pk__lt=after)
    rows = list(rows_qs[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return EntryPage(
        rows=rows,
        next_url=_link(form.query(after=rows[-1].pk)) if more else None,
        first_url=_link(form.query(after=None)) if after is not None else None,
    )


def _sort_links(form: EntryFilterForm) -> dict[str, Any]:
    """The "Added" column header sorts: it links to the other order, from the first page."""
    oldest = form.cleaned_data.get("sort") == OLDEST
    return {
        "current": "ascending" if oldest else "descending",
        "toggle": _link(form.query(sort=None if oldest else OLDEST, after=None)),
        "toggle_label": "Show newest first" if oldest else "Show oldest first",
    }


def _link(query: dict[str, str]) -> str:
    return reverse("web-search") + ("?" + urlencode(query) if query else "")
