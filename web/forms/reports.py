"""The reports' range selector (GET): the last 4, 12 or 52 weeks."""

from __future__ import annotations

from django import forms

from web.reports import DEFAULT_WEEKS, WEEK_CHOICES


class RangeForm(forms.Form):
    weeks = forms.TypedChoiceField(
        label="Range",
        choices=[(w, f"Last {w} weeks") for w in WEEK_CHOICES],
        coerce=int,
        required=False,
        empty_value=None,
        error_messages={"invalid_choice": "Choose 4, 12 or 52 weeks."},
    )

    def weeks_or_default(self) -> int:
        """The chosen range; the default while the choice is missing or not one offered."""
        if self.is_valid():
            return int(self.cleaned_data["weeks"] or DEFAULT_WEEKS)
        return DEFAULT_WEEKS
