"""Forms of the search page: a hash pasted in any accepted form (POST: the value never enters a
URL), and the filters of the entry list (GET: grading, status, dates and author only).

The hash form checks only the shape (a known algorithm, a bounded length); reading the value is
``hashlist.selectors.hash_search``'s job, and its refusal is shown next to the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from hashlist import selectors
from hashlist.models import AGE_GROUP_CHOICES, CATEGORY_CHOICES, EntryStatus
from hashsync.validation import MAX_BIGINT
from hashsync_client.algorithms import ALGORITHM_CHOICES, MAX_HASH_TEXT_LENGTH

NEWEST, OLDEST = "newest", "oldest"
SORT_CHOICES = [(NEWEST, "Newest first"), (OLDEST, "Oldest first")]


class HashSearchForm(forms.Form):
    value = forms.CharField(
        label="Hash",
        max_length=MAX_HASH_TEXT_LENGTH,
        strip=False,  # the parser strips; the value is never changed before it reads it
        error_messages={"required": "Paste the hash to look for."},
        help_text="Hex in any case, base64, or PhotoDNA's 144 comma-separated numbers. "
        "It is sent in the form, never in the page's address.",
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "class": "mono",
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
    )
    algorithm = forms.ChoiceField(
        label="Algorithm",
        required=False,
        choices=[("", "Any algorithm"), *ALGORITHM_CHOICES],
        help_text="Any: every algorithm the text can be (64 hex characters are SHA-256 or PDQ).",
    )


class EntryFilterForm(forms.Form):
    """The entry list's filters. Every field is optional: no filter lists every entry."""

    category = forms.ChoiceField(
        label="Category", required=False, choices=[("", "Any category"), *CATEGORY_CHOICES]
    )
    age_group = forms.ChoiceField(
        label="Age group", required=False, choices=[("", "Any age group"), *AGE_GROUP_CHOICES]
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *EntryStatus.choices]
    )
    added_from = forms.DateField(
        label="Added from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    added_to = forms.DateField(
        label="Added to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    added_by = forms.ModelChoiceField(
        label="Added by",
        required=False,
        queryset=selectors.proposal_authors(),
        to_field_name="username",
        empty_label="Anyone",
    )
    sort = forms.ChoiceField(label="Order", required=False, choices=SORT_CHOICES)
    # The keyset cursor of the pager's links (the last entry id of the page before): never a
    # field people fill in, so a bad one says the link is broken rather than "enter a number".
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    FILTERS = ("category", "age_group", "status", "added_from", "added_to", "added_by", "sort")

    def clean_after(self) -> int | None:
        raw = self.cleaned_data.get("after") or ""
        if raw == "":
            return None
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 0 < int(raw) <= MAX_BIGINT):
            raise forms.ValidationError("That page link is not valid; start from the first page.")
        return int(raw)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("added_from"), data.get("added_to")
        if start and end and end < start:
            self.add_error("added_to", "The end date is before the start date.")
        return data

    def filters(self) -> dict[str, Any]:
        """The valid form as ``hashlist.selectors.entry_filter`` arguments. Dates are whole
        UTC days; "added to" includes its day."""
        data = self.cleaned_data
        author = data.get("added_by")
        return {
            "category": data.get("category") or None,
            "age_group": data.get("age_group") or None,
            "status": data.get("status") or None,
            "created_from": _day_start(data.get("added_from")),
            "created_before": _day_start(data.get("added_to"), days_after=1),
            "author_id": author.pk if author is not None else None,
        }

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (for the pager's and the sort's links), with
        ``changes`` applied; empty ones left out."""
        raw = {name: self.data.get(name, "") for name in self.FILTERS}
        raw.update({k: "" if v is None else str(v) for k, v in changes.items()})
        return {k: v for k, v in raw.items() if v}


def _day_start(day: dt.date | None, *, days_after: int = 0) -> dt.datetime | None:
    if day is None:
        return None
    try:
        day = day + dt.timedelta(days=days_after)
    except OverflowError:
        return None  # "to 31 December 9999": no upper bound
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
